//! Garbage in: random and mutated packets into every decoder and both state machines give a typed
//! error or a clean state change, never a panic.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

use std::sync::Arc;
use std::time::Instant;

use gridguard_eap::psk::message;
use gridguard_eap::{
    Authenticator, AuthenticatorConfig, MemoryCredentials, Packet, Peer, PeerConfig, PeerMethod,
    Psk, PskPeer, PskServerConfig, ServerMethodFactory,
};
use proptest::prelude::*;
use rand::rngs::StdRng;
use rand::SeedableRng;

const VECTOR: &str = include_str!("../../../tests/vectors/eap-psk.txt");

fn recorded(name: &str) -> Vec<u8> {
    let line = VECTOR.lines().find(|l| l.starts_with(name)).unwrap();
    hex::decode(line.split_whitespace().nth(1).unwrap()).unwrap()
}

fn valid_packets() -> Vec<Vec<u8>> {
    ["MSG1", "MSG2", "MSG3", "MSG4"]
        .iter()
        .map(|n| recorded(n))
        .collect()
}

/// A valid packet with a few bytes changed, truncated or extended.
fn mutated() -> impl Strategy<Value = Vec<u8>> {
    (
        0usize..4,
        prop::collection::vec((any::<usize>(), any::<u8>()), 0..6),
        any::<Option<usize>>(),
        prop::collection::vec(any::<u8>(), 0..4),
    )
        .prop_map(|(which, edits, cut, extra)| {
            let mut p = valid_packets()[which].clone();
            for (at, byte) in edits {
                let i = at % p.len();
                p[i] = byte;
            }
            if let Some(c) = cut {
                p.truncate(c % (p.len() + 1));
            }
            p.extend(extra);
            p
        })
}

fn inputs() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![prop::collection::vec(any::<u8>(), 0..1200), mutated()]
}

fn new_peer() -> Peer {
    let psk = Psk::new(recorded("PSK").try_into().unwrap());
    let m: Box<dyn PeerMethod> = Box::new(PskPeer::new(recorded("ID_P"), &psk).unwrap());
    Peer::new(
        recorded("ID_P"),
        vec![m],
        PeerConfig::default(),
        Instant::now(),
    )
}

fn new_authenticator() -> Authenticator {
    let mut creds = MemoryCredentials::new();
    creds.insert(
        recorded("ID_P"),
        Psk::new(recorded("PSK").try_into().unwrap()),
    );
    let f: Arc<dyn ServerMethodFactory> =
        Arc::new(PskServerConfig::new(recorded("ID_S"), Arc::new(creds)).unwrap());
    Authenticator::new(vec![f].into(), AuthenticatorConfig::default())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn packet_parse_never_panics(bytes in inputs()) {
        if let Ok(p) = Packet::parse(&bytes) {
            let again = p.to_bytes().unwrap();
            prop_assert_eq!(Packet::parse(&again).unwrap(), p);
        }
    }

    #[test]
    fn psk_message_parse_round_trips_or_errs(bytes in inputs()) {
        let data = bytes.get(5..).unwrap_or_default();
        if let Ok(m) = message::parse(data) {
            let again = message::emit(&m);
            prop_assert_eq!(message::parse(&again).unwrap(), m);
        }
    }

    #[test]
    fn peer_survives_garbage_in_any_state(seq in prop::collection::vec(inputs(), 1..8)) {
        let mut rng = StdRng::seed_from_u64(1);
        let now = Instant::now();
        let mut peer = new_peer();
        // Bring it to the middle of an exchange first.
        peer.handle_packet(&recorded("MSG1"), now, &mut rng).unwrap();
        for input in seq {
            let _ = peer.handle_packet(&input, now, &mut rng);
            while peer.poll_transmit().is_some() {}
        }
    }

    #[test]
    fn authenticator_survives_garbage_in_any_state(seq in prop::collection::vec(inputs(), 1..8)) {
        let mut rng = StdRng::seed_from_u64(2);
        let now = Instant::now();
        let mut auth = new_authenticator();
        auth.start(now, &mut rng);
        let id = auth.poll_transmit().unwrap()[1];
        let identity = gridguard_eap::packet::build(gridguard_eap::Code::RESPONSE, id, gridguard_eap::MethodType::IDENTITY, &recorded("ID_P")).unwrap();
        auth.handle_response(&identity, now, &mut rng).unwrap();
        let msg1 = auth.poll_transmit().unwrap();
        for mut input in seq {
            // Half the inputs carry the live identifier so they reach the method.
            if input.len() > 1 && input[0] % 2 == 0 {
                input[1] = msg1[1];
            }
            let _ = auth.handle_response(&input, now, &mut rng);
            while auth.poll_transmit().is_some() {}
        }
    }
}
