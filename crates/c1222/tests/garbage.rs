//! Property tests: decoders survive garbage and mutated valid messages (never panic; whatever
//! they accept re-encodes byte for byte), encoders and decoders round-trip, EAX′ open refuses
//! random input without touching the buffer.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

mod common;

use gridguard_c1222::security::{open_apdu, seal_apdu, CanonOptions};
use gridguard_c1222::{
    AcseApdu, ApTitle, AuthenticationValue, EaxPrime, Epsem, EpsemControl, Error, Integer,
    ObjectId, RelativeOid, Request, Response, ResponseCode, Service, TableId,
};
use proptest::prelude::*;

fn seeds() -> Vec<Vec<u8>> {
    let mut v: Vec<Vec<u8>> = common::repository()
        .iter()
        .filter(|v| v.name.starts_with("paper-") || v.name == "ieee1703-annexG")
        .map(|v| common::rebuild(v).apdu)
        .collect();
    v.extend(
        common::repository()
            .iter()
            .filter(|v| !v.apdu.is_empty())
            .map(|v| v.apdu.clone()),
    );
    v
}

fn mutate(mut m: Vec<u8>, edits: &[(usize, u8, u8)]) -> Vec<u8> {
    for &(pos, val, op) in edits {
        if m.is_empty() {
            m.push(val);
            continue;
        }
        let p = pos % m.len();
        match op % 4 {
            0 => m[p] ^= val | 1,
            1 => {
                m.remove(p);
            }
            2 => m.insert(p, val),
            _ => m.truncate(p),
        }
    }
    m
}

fn title() -> impl Strategy<Value = ApTitle> {
    prop_oneof![
        (0u64..3, 0u64..40, prop::collection::vec(any::<u32>(), 0..6)).prop_map(|(a, b, rest)| {
            let mut arcs = vec![a, b];
            arcs.extend(rest.into_iter().map(u64::from));
            ApTitle::Absolute(ObjectId::from_arcs(&arcs).unwrap())
        }),
        prop::collection::vec(any::<u64>(), 1..5)
            .prop_map(|a| ApTitle::Relative(RelativeOid::from_arcs(&a).unwrap())),
        prop::collection::vec(any::<u16>(), 1..5).prop_map(|a| {
            let a: Vec<u64> = a.into_iter().map(u64::from).collect();
            ApTitle::RelativeContextTagged(RelativeOid::from_arcs(&a).unwrap())
        }),
    ]
}

fn request() -> impl Strategy<Value = Request> {
    prop_oneof![
        Just(Request::Identify),
        Just(Request::Logoff),
        Just(Request::Terminate),
        any::<u16>().prop_map(|t| Request::FullRead { table: TableId(t) }),
        (any::<u16>(), 0u32..0x100_0000, any::<u16>()).prop_map(|(t, o, c)| {
            Request::PartialReadOffset {
                table: TableId(t),
                offset: o,
                count: c,
            }
        }),
        (
            any::<u16>(),
            prop::collection::vec(any::<u16>(), 1..10),
            any::<u16>()
        )
            .prop_map(|(t, index, count)| Request::PartialReadIndex {
                table: TableId(t),
                index,
                count
            }),
        (any::<u16>(), prop::collection::vec(any::<u8>(), 0..300)).prop_map(|(t, data)| {
            Request::FullWrite {
                table: TableId(t),
                data,
            }
        }),
        (
            any::<u16>(),
            0u32..0x100_0000,
            prop::collection::vec(any::<u8>(), 0..40)
        )
            .prop_map(|(t, offset, data)| Request::PartialWriteOffset {
                table: TableId(t),
                offset,
                data
            }),
        (any::<u16>(), any::<[u8; 10]>(), any::<Option<u16>>()).prop_map(|(u, n, t)| {
            Request::Logon {
                user_id: u,
                user: n,
                session_idle_timeout: t,
            }
        }),
        any::<u8>().prop_map(|s| Request::Wait { seconds: s }),
        title().prop_map(|t| Request::Resolve { ap_title: t }),
        title().prop_map(|t| Request::Deregistration { ap_title: t }),
        (
            title(),
            title(),
            prop::collection::vec(any::<u8>(), 0..20),
            0u32..0x100_0000,
            proptest::option::of(prop::collection::vec(any::<u8>(), 0..8)),
        )
            .prop_map(|(a, e, n, p, d)| {
                Request::Registration(gridguard_c1222::epsem::Registration {
                    node_type: if d.is_some() { 0x81 } else { 0x01 },
                    connection_type: 2,
                    device_class: *b"GGMT",
                    ap_title: a,
                    electronic_serial_number: e,
                    native_address: n,
                    registration_period: p,
                    my_domain_pattern: d,
                })
            }),
    ]
}

fn service() -> impl Strategy<Value = Service> {
    prop_oneof![
        request().prop_map(Service::Request),
        (0u8..0x20, prop::collection::vec(any::<u8>(), 0..50)).prop_map(|(c, d)| {
            Service::Response(Response {
                code: ResponseCode(c),
                data: d,
            })
        }),
    ]
}

fn epsem() -> impl Strategy<Value = Epsem> {
    (
        any::<u8>(),
        any::<Option<[u8; 4]>>(),
        prop::collection::vec(service(), 1..4),
        any::<bool>(),
    )
        .prop_map(|(c, ed, s, end)| Epsem {
            control: EpsemControl(c).with_flag(EpsemControl::ED_CLASS_INCLUDED, ed.is_some()),
            ed_class: ed,
            services: s,
            end_marker: end,
        })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn acse_random_bytes(bytes in prop::collection::vec(any::<u8>(), 0..300)) {
        if let Ok(a) = AcseApdu::parse(&bytes) {
            prop_assert_eq!(a.to_bytes().unwrap(), bytes);
        }
    }

    #[test]
    fn acse_random_after_header(body in prop::collection::vec(any::<u8>(), 0..120)) {
        let mut bytes = vec![0x60, body.len() as u8];
        bytes.extend_from_slice(&body);
        if body.len() < 128 {
            if let Ok(a) = AcseApdu::parse(&bytes) {
                prop_assert_eq!(a.to_bytes().unwrap(), bytes);
            }
        }
    }

    #[test]
    fn acse_mutated_valid(seed in 0usize..100, edits in prop::collection::vec((any::<usize>(), any::<u8>(), any::<u8>()), 1..4)) {
        let seeds = seeds();
        let orig = seeds[seed % seeds.len()].clone();
        let m = mutate(orig.clone(), &edits);
        if let Ok(mut a) = AcseApdu::parse(&m) {
            prop_assert_eq!(a.to_bytes().unwrap(), m.clone());
            // Whatever parses still never verifies under a wrong key.
            let opts = CanonOptions::default();
            prop_assert!(open_apdu(&mut a, &EaxPrime::new(&[0xee; 16]), &opts).is_err()
                || a.user_information.epsem.first().is_some_and(|c| c & 0x0c == 0));
        }
    }

    #[test]
    fn epsem_random_bytes(bytes in prop::collection::vec(any::<u8>(), 0..200)) {
        if let Ok(e) = Epsem::parse(&bytes) {
            prop_assert_eq!(e.to_bytes().unwrap(), bytes);
        }
    }

    #[test]
    fn epsem_round_trip(e in epsem()) {
        let bytes = e.to_bytes().unwrap();
        let back = Epsem::parse(&bytes).unwrap();
        prop_assert_eq!(&back, &e);
        prop_assert_eq!(back.to_bytes().unwrap(), bytes.clone());
        // Mutations never panic and re-encode exactly when accepted.
        for i in 0..bytes.len().min(16) {
            let mut m = bytes.clone();
            m[i] = m[i].wrapping_add(0x51);
            if let Ok(x) = Epsem::parse(&m) {
                prop_assert_eq!(x.to_bytes().unwrap(), m);
            }
        }
    }

    #[test]
    fn acse_round_trip_and_seal_open(
        called in title(),
        calling in proptest::option::of(title()),
        inv in any::<u32>(),
        qual in proptest::option::of(any::<u32>()),
        key in any::<[u8; 16]>(),
        key_id in any::<u8>(),
        iv in any::<[u8; 4]>(),
        mode in 1u8..3,
        e in epsem(),
    ) {
        let mut e = e;
        e.control = e.control.with_security_mode(gridguard_c1222::SecurityMode(mode));
        let plain = e.to_bytes().unwrap();
        let mut a = AcseApdu::new(plain.clone());
        a.called_ap_title = Some(called);
        a.calling_ap_title = calling;
        a.calling_ap_invocation_id = Some(Integer::from_u32(inv));
        a.calling_ae_qualifier = qual.map(Integer::from_u32);
        a.calling_authentication_value = Some(AuthenticationValue::C1222 { key_id: Some(key_id), iv: Some(iv) });
        let opts = CanonOptions::default();
        let cipher = EaxPrime::new(&key);
        seal_apdu(&mut a, &cipher, &opts).unwrap();
        let wire = a.to_bytes().unwrap();
        let mut b = AcseApdu::parse(&wire).unwrap();
        prop_assert_eq!(b.to_bytes().unwrap(), wire.clone());
        open_apdu(&mut b, &cipher, &opts).unwrap();
        prop_assert_eq!(&b.user_information.epsem, &plain);
        prop_assert_eq!(Epsem::parse(&b.user_information.epsem).unwrap(), e);
    }

    #[test]
    fn eax_prime_open_garbage(
        key in any::<[u8; 16]>(),
        clear in prop::collection::vec(any::<u8>(), 0..80),
        ct in prop::collection::vec(any::<u8>(), 0..80),
        mac in any::<[u8; 4]>(),
    ) {
        let mut buf = ct.clone();
        let r = EaxPrime::new(&key).open(&clear, &mut buf, &mac);
        if clear.len() <= 16 {
            prop_assert_eq!(&r, &Err(Error::CleartextTooShort));
        }
        if r.is_err() {
            prop_assert_eq!(buf, ct);
        }
    }

    #[test]
    fn eax_prime_round_trip(
        key in any::<[u8; 16]>(),
        clear in prop::collection::vec(any::<u8>(), 17..100),
        pt in prop::collection::vec(any::<u8>(), 0..100),
    ) {
        let e = EaxPrime::new(&key);
        let mut buf = pt.clone();
        let mac = e.seal(&clear, &mut buf).unwrap();
        if !pt.is_empty() {
            prop_assert_ne!(&buf, &pt);
        }
        e.open(&clear, &mut buf, &mac).unwrap();
        prop_assert_eq!(buf, pt);
    }
}
