//! Garbage in: random bytes and mutated valid APDUs are refused with a typed error, never
//! panic, and never change what the host (or the meter) knows of the meter: after the
//! garbage the genuine message is still accepted exactly once.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

mod common;

use std::net::SocketAddr;
use std::sync::OnceLock;
use std::time::Instant;

use common::*;
use gridguard_headend::{C1222Host, MemoryTables, MeterLink, Refusal};
use gridguard_keys::SessionFacts;
use proptest::prelude::*;
use rand::rngs::StdRng;

fn from() -> SocketAddr {
    "192.0.2.77:50077".parse().unwrap()
}

/// EMSKs of one real EAP-PSK run (shared by all cases: the exchange is the slow part).
fn emsks() -> &'static ([u8; 64], [u8; 64]) {
    static E: OnceLock<([u8; 64], [u8; 64])> = OnceLock::new();
    E.get_or_init(|| {
        let (s, c) = eap_psk(41);
        (*s.emsk(), *c.emsk())
    })
}

fn fresh(now: Instant) -> (C1222Host<StdRng>, MeterLink<StdRng>) {
    let (s, c) = emsks();
    let mut h = host(41);
    let mut m = meter(42);
    let f: SessionFacts = facts(1);
    h.install_session(meter_title(), &f, s, LIFETIME, now)
        .unwrap();
    m.install_session(&f, c, LIFETIME, now).unwrap();
    (h, m)
}

type Snapshot = (u64, Option<Vec<u8>>, Option<SocketAddr>, bool, u64);

fn snapshot(h: &C1222Host<StdRng>) -> Snapshot {
    let s = h.stats();
    (
        s.accepted,
        h.native_address(&meter_title()).map(<[u8]>::to_vec),
        h.meter_address(&meter_title()),
        h.keys().contains(&meter_title()),
        s.registrations + s.interval_writes + s.responses,
    )
}

fn mutate(valid: &[u8], edits: &[(usize, u8)], cut: Option<usize>) -> Vec<u8> {
    let mut v = valid.to_vec();
    for (pos, x) in edits {
        let n = v.len();
        if n > 0 {
            v[pos % n] ^= x;
        }
    }
    if let Some(c) = cut {
        v.truncate(c % (valid.len() + 1));
    }
    v
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn random_bytes_are_refused_without_state_change(bytes in proptest::collection::vec(any::<u8>(), 0..400)) {
        let t0 = Instant::now();
        let (mut h, mut m) = fresh(t0);
        let reg = m.registration(t0).unwrap();
        let before = snapshot(&h);
        let r = h.handle_apdu(from(), &bytes, t0);
        prop_assert!(r.is_err());
        prop_assert_eq!(snapshot(&h), before);
        prop_assert_eq!(h.stats().total_refused(), 1);
        prop_assert!(h.handle_apdu(from(), &reg.bytes, t0).is_ok());
        // The meter side survives the same bytes.
        prop_assert!(m.handle_apdu(&bytes, t0, &mut MemoryTables::default()).is_err());
    }

    #[test]
    fn mutated_valid_apdus_are_refused_without_state_change(
        edits in proptest::collection::vec((any::<usize>(), 1u8..=255), 0..4),
        cut in proptest::option::of(any::<usize>()),
        write in any::<bool>(),
    ) {
        let t0 = Instant::now();
        let (mut h, mut m) = fresh(t0);
        let reg = m.registration(t0).unwrap();
        let valid = if write {
            h.handle_apdu(from(), &reg.bytes, t0).unwrap();
            m.write_intervals(64, &[5; 40], t0).unwrap().bytes
        } else {
            reg.bytes
        };
        let bad = mutate(&valid, &edits, cut);
        prop_assume!(bad != valid);
        let before = snapshot(&h);
        let r = h.handle_apdu(from(), &bad, t0);
        prop_assert!(r.is_err(), "mutated APDU accepted");
        if let Err(Refusal::Replay { .. }) = r {
            prop_assert!(false, "a mutated APDU must not count as a replay of a message not yet seen");
        }
        prop_assert_eq!(snapshot(&h), before);
        prop_assert!(h.handle_apdu(from(), &valid, t0).is_ok());
        prop_assert!(h.handle_apdu(from(), &valid, t0).is_err());
    }

    #[test]
    fn mutated_host_messages_are_refused_by_the_meter(
        edits in proptest::collection::vec((any::<usize>(), 1u8..=255), 1..4),
    ) {
        let t0 = Instant::now();
        let (mut h, mut m) = fresh(t0);
        let mut tables = MemoryTables::default();
        tables.tables.insert(1, vec![1, 2, 3]);
        let read = gridguard_c1222::Epsem {
            control: gridguard_c1222::EpsemControl::new(
                gridguard_c1222::SecurityMode::CIPHERTEXT_AUTH,
                gridguard_c1222::ResponseControl::ALWAYS,
            ),
            ed_class: None,
            services: vec![gridguard_c1222::Service::Request(gridguard_c1222::Request::FullRead {
                table: gridguard_c1222::TableId(1),
            })],
            end_marker: false,
        };
        let q = h.request(&meter_title(), &read, t0).unwrap();
        let bad = mutate(&q, &edits, None);
        prop_assume!(bad != q);
        prop_assert!(m.handle_apdu(&bad, t0, &mut tables).is_err());
        prop_assert!(m.poll_event().is_none());
        prop_assert!(m.handle_apdu(&q, t0, &mut tables).unwrap().is_some());
    }
}
