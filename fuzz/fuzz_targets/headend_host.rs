//! Fuzz target for the head-end C12.22 host: arbitrary bytes, and valid APDUs with
//! fuzzer-chosen edits, fed to `handle_apdu` of a host holding a live session.
//!
//! Invariants: nothing panics; anything that differs from a genuine APDU is refused; a refusal
//! changes nothing the host knows of the meter (the genuine APDU is still accepted after it).
//!
//! Needs the packages `gridguard-headend`, `gridguard-keys`, `gridguard-c1222` and `rand`.
#![no_main]

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use gridguard_c1222::{ApTitle, ObjectId};
use gridguard_headend::{C1222Host, HostConfig, MeterLink, MeterLinkConfig};
use gridguard_keys::SessionFacts;
use libfuzzer_sys::fuzz_target;
use rand::rngs::StdRng;
use rand::SeedableRng;

fn title(last: u64) -> ApTitle {
    ApTitle::Absolute(ObjectId::from_arcs(&[2, 16, 124, 113620, 1, 22, 0, last]).expect("oid"))
}

fuzz_target!(|data: &[u8]| {
    let now = Instant::now();
    let emsk = [0x5a_u8; 64];
    let facts = SessionFacts::new(7, 1, b"meter-fuzz".to_vec());
    let lifetime = Duration::from_secs(3600);
    let mut host = C1222Host::new(HostConfig::new(title(1)), StdRng::seed_from_u64(1));
    host.install_session(title(77), &facts, &emsk, lifetime, now)
        .expect("install");
    let mut meter = MeterLink::new(
        MeterLinkConfig::new(title(77), title(1), vec![10, 0, 0, 77]),
        StdRng::seed_from_u64(2),
    );
    meter
        .install_session(&facts, &emsk, lifetime, now)
        .expect("install");
    let genuine = meter.registration(now).expect("registration").bytes;
    let from: SocketAddr = "192.0.2.77:1153".parse().expect("addr");

    let (mode, rest) = match data.split_first() {
        Some((m, r)) => (*m, r),
        None => return,
    };
    let input = if mode & 1 == 0 {
        rest.to_vec()
    } else {
        // Edits: pairs (position, xor mask), then an optional truncation.
        let mut v = genuine.clone();
        let mut it = rest.chunks_exact(2);
        for pair in &mut it {
            if let [pos, mask] = pair {
                let n = v.len();
                if let Some(b) = v.get_mut(usize::from(*pos) % n.max(1)) {
                    *b ^= *mask;
                }
            }
        }
        if let [cut] = it.remainder() {
            v.truncate(usize::from(*cut));
        }
        v
    };
    let accepted = host.handle_apdu(from, &input, now).is_ok();
    if input != genuine {
        assert!(!accepted, "altered APDU accepted");
        assert_eq!(host.stats().accepted, 0);
        assert!(host.native_address(&title(77)).is_none());
        assert!(
            host.handle_apdu(from, &genuine, now).is_ok(),
            "refusal changed state"
        );
    } else {
        assert!(accepted);
    }
});
