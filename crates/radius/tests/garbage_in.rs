//! Property tests: random and mutated input never panics a decoder, and never gets past the
//! client's or server's checks unless it is the genuine packet.

#![allow(clippy::unwrap_used, clippy::indexing_slicing)] // test helpers fail loudly by design

use std::net::SocketAddr;
use std::time::Instant;

use gridguard_radius::auth::{encode_request, encode_response, message_authenticator_placeholder};
use gridguard_radius::mppe::decrypt_key;
use gridguard_radius::{
    eap_message_attributes, AccessRequest, Attribute, AttributeType, Client, ClientConfig, Code,
    Packet, Reply, Server, ServerConfig, VendorSpecific,
};
use proptest::prelude::*;
use rand::{rngs::StdRng, SeedableRng};

const SECRET: &[u8] = b"proptest";

fn attribute() -> impl Strategy<Value = Attribute> {
    (any::<u8>(), proptest::collection::vec(any::<u8>(), 0..=253))
        .prop_map(|(t, v)| Attribute::new(AttributeType(t), v))
}

fn packet() -> impl Strategy<Value = Packet> {
    (
        any::<u8>(),
        any::<u8>(),
        any::<[u8; 16]>(),
        proptest::collection::vec(attribute(), 0..12),
    )
        .prop_map(|(c, id, auth, attributes)| Packet {
            code: Code(c),
            identifier: id,
            authenticator: auth,
            attributes,
        })
}

#[derive(Debug, Clone)]
enum Mutation {
    Flip(usize, u8),
    Truncate(usize),
    Insert(usize, u8),
    Remove(usize),
}

fn mutation() -> impl Strategy<Value = Mutation> {
    prop_oneof![
        (any::<usize>(), 1..=255u8).prop_map(|(i, b)| Mutation::Flip(i, b)),
        any::<usize>().prop_map(Mutation::Truncate),
        (any::<usize>(), any::<u8>()).prop_map(|(i, b)| Mutation::Insert(i, b)),
        any::<usize>().prop_map(Mutation::Remove),
    ]
}

fn mutate(bytes: &[u8], muts: &[Mutation]) -> Vec<u8> {
    let mut b = bytes.to_vec();
    for m in muts {
        let n = b.len().max(1);
        match *m {
            Mutation::Flip(i, x) => {
                if let Some(v) = b.get_mut(i % n) {
                    *v ^= x;
                }
            }
            Mutation::Truncate(i) => b.truncate(i % n),
            Mutation::Insert(i, x) => b.insert(i % (b.len() + 1), x),
            Mutation::Remove(i) => {
                if !b.is_empty() {
                    b.remove(i % b.len());
                }
            }
        }
    }
    b
}

/// The part of a datagram the Length field covers, if it is sane.
fn framed(b: &[u8]) -> Option<&[u8]> {
    let len = usize::from(u16::from_be_bytes([*b.get(2)?, *b.get(3)?]));
    b.get(..len)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn parse_random_bytes_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..5000)) {
        if let Ok(p) = Packet::parse(&bytes) {
            // Whatever parses re-emits to the bytes the Length field covered.
            prop_assert_eq!(p.to_bytes().unwrap(), framed(&bytes).unwrap());
        }
    }

    #[test]
    fn parse_random_bodies_behind_a_valid_header(
        code in any::<u8>(),
        id in any::<u8>(),
        auth in any::<[u8; 16]>(),
        body in proptest::collection::vec(any::<u8>(), 0..600),
        padding in proptest::collection::vec(any::<u8>(), 0..8),
    ) {
        let len = 20 + body.len();
        let mut b = vec![code, id];
        b.extend_from_slice(&(len as u16).to_be_bytes());
        b.extend_from_slice(&auth);
        b.extend_from_slice(&body);
        b.extend_from_slice(&padding);
        match Packet::parse(&b) {
            Ok(p) => {
                prop_assert_eq!(p.buffer_len(), len);
                prop_assert_eq!(p.to_bytes().unwrap(), &b[..len]);
                let _ = p.eap_message();
                let _ = p.vendor_specific().count();
            }
            Err(e) => prop_assert!(
                matches!(e, gridguard_radius::Error::BadAttribute { offset } if offset >= 20 && offset < len),
                "{:?}", e
            ),
        }
    }

    #[test]
    fn packets_round_trip(p in packet()) {
        match p.to_bytes() {
            Ok(bytes) => prop_assert_eq!(Packet::parse(&bytes).unwrap(), p),
            Err(_) => prop_assert!(p.buffer_len() > 4096),
        }
    }

    #[test]
    fn mutated_packets_never_panic(p in packet(), muts in proptest::collection::vec(mutation(), 1..4)) {
        if let Ok(bytes) = p.to_bytes() {
            let m = mutate(&bytes, &muts);
            let _ = Packet::parse(&m);
            let _ = gridguard_radius::auth::find_message_authenticator(&m);
            let _ = gridguard_radius::auth::verify_message_authenticator(&m, &[0; 16], SECRET, true);
            let _ = gridguard_radius::auth::verify_response_authenticator(&m, &[0; 16], SECRET);
        }
    }

    #[test]
    fn vendor_specific_and_mppe_garbage(bytes in proptest::collection::vec(any::<u8>(), 0..300)) {
        if let Ok(v) = VendorSpecific::parse(&bytes) {
            prop_assert_eq!(v.to_attribute().map(|a| a.value).ok(), (bytes.len() <= 253).then(|| bytes.clone()));
        }
        if let Ok(k) = decrypt_key(&bytes, SECRET, &[1; 16]) {
            prop_assert!(k.len() < bytes.len());
        }
    }

    #[test]
    fn client_drops_random_and_mutated_responses(
        seed in any::<u64>(),
        garbage in proptest::collection::vec(any::<u8>(), 0..600),
        muts in proptest::collection::vec(mutation(), 1..4),
    ) {
        let mut rng = StdRng::seed_from_u64(seed);
        let mut c = Client::new(SECRET, ClientConfig::default());
        let now = Instant::now();
        c.start(Code::ACCESS_REQUEST, eap_message_attributes(&[2, 0, 0, 5, 1]), now, &mut rng).unwrap();
        let req = Packet::parse(&c.poll_transmit().unwrap()).unwrap();
        prop_assert!(c.handle_datagram(&garbage, now).is_none());

        let mut resp = Packet::new(Code::ACCESS_CHALLENGE, req.identifier);
        resp.attributes.push(message_authenticator_placeholder());
        resp.attributes.extend(eap_message_attributes(&[1, 1, 0, 5, 47]));
        resp.attributes.push(Attribute::new(AttributeType::STATE, b"st".to_vec()));
        let good = encode_response(&resp, &req.authenticator, SECRET).unwrap();
        let bad = mutate(&good, &muts);
        let accepted = c.handle_datagram(&bad, now).is_some();
        // Only the genuine packet (perhaps with bytes past Length) gets through.
        prop_assert_eq!(accepted, framed(&bad) == Some(&good[..]));
        let s = c.stats();
        prop_assert_eq!(
            s.responses + s.dropped_bad_authenticator + s.dropped_bad_message_authenticator
                + s.dropped_unknown_id + s.dropped_malformed,
            2
        );
    }

    #[test]
    fn server_drops_random_and_mutated_requests(
        seed in any::<u64>(),
        garbage in proptest::collection::vec(any::<u8>(), 0..600),
        muts in proptest::collection::vec(mutation(), 1..4),
    ) {
        let mut rng = StdRng::seed_from_u64(seed);
        let mut calls = 0u32;
        let handler = |_: &AccessRequest, _: Instant| {
            calls += 1;
            Reply::challenge(&[1, 1, 0, 4], b"s")
        };
        let mut s = Server::with_rng(SECRET, handler, ServerConfig::default(), StdRng::seed_from_u64(seed));
        let from: SocketAddr = "127.0.0.1:1812".parse().unwrap();
        let now = Instant::now();
        let _ = s.handle_datagram(from, &garbage, now);

        let mut p = Packet::new(Code::ACCESS_REQUEST, 1);
        rand::RngCore::fill_bytes(&mut rng, &mut p.authenticator);
        p.attributes.push(message_authenticator_placeholder());
        p.attributes.extend(eap_message_attributes(&[2, 1, 0, 9, 1, b'm', b'e', b't', b'r']));
        let good = encode_request(&p, SECRET).unwrap();
        let bad = mutate(&good, &muts);
        let answered = s.handle_datagram(from, &bad, now).is_some();
        // A mutated request only gets an answer if it is the genuine one.
        if framed(&bad) != Some(&good[..]) {
            prop_assert!(!answered);
        }
        drop(s);
        prop_assert!(calls <= 1);
    }
}
