//! Fuzz target for the key store: the input is read as a sequence of operations
//! (install / advance time / revoke / handle_timeout / lookups with arbitrary key ids), plus
//! RFC 5295 derivations with arbitrary EMSK, label and optional data.
//!
//! Invariants checked: nothing panics; no lookup hands out a key at or past its
//! `usable_until`; after `handle_timeout(now)` the next deadline is later than `now`; a key
//! handed out for receiving carries the id that was asked for.
//!
//! Needs the package `gridguard-keys` (default features are fine).
#![no_main]

use std::time::{Duration, Instant};

use gridguard_keys::{kdf, Application, KeyConfig, KeyId, KeyStore, SessionFacts};
use libfuzzer_sys::fuzz_target;

fn app(b: u8) -> Application {
    match b % 3 {
        0 => Application::C1222Data,
        1 => Application::DemandResponse,
        _ => Application::LinkLayer,
    }
}

fuzz_target!(|data: &[u8]| {
    // Derivation with arbitrary inputs: errors are fine, panics are not.
    if let Some((&len, rest)) = data.split_first() {
        let split = rest.len() / 2;
        let (emsk, tail) = rest.split_at(split);
        let label = String::from_utf8_lossy(tail.get(..tail.len().min(40)).unwrap_or(&[]));
        let out = kdf::usrk(emsk, &label, tail, usize::from(len) * 40);
        if let Ok(out) = out {
            assert_eq!(out.len(), usize::from(len) * 40);
        }
    }

    let t0 = Instant::now();
    let mut now = t0;
    let grace = Duration::from_secs(u64::from(data.first().copied().unwrap_or(0)));
    let mut store: KeyStore<u8> = KeyStore::new(KeyConfig::new().with_grace(grace));
    let mut it = data.iter().copied().skip(1);
    let mut counter: u32 = 0;
    while let Some(op) = it.next() {
        let arg = it.next().unwrap_or(0);
        let arg2 = it.next().unwrap_or(0);
        let meter = arg % 4;
        match op % 6 {
            0 => {
                counter = counter.wrapping_add(1);
                let facts =
                    SessionFacts::new(u32::from(meter), counter, vec![arg2; usize::from(arg2 % 8)]);
                let emsk: Vec<u8> = (0..64u8).map(|i| i ^ arg2 ^ counter as u8).collect();
                let lifetime = Duration::from_secs(u64::from(arg2));
                let _ = store.install_generation(meter, &facts, &emsk, lifetime, now);
            }
            1 => now += Duration::from_millis(u64::from(u16::from_be_bytes([arg, arg2])) * 10),
            2 => {
                store.revoke(&meter, now);
            }
            3 => {
                store.handle_timeout(now);
                if let Some(t) = store.poll_timeout() {
                    assert!(t > now);
                }
            }
            4 => {
                if let Some(t) = store.poll_timeout() {
                    now = now.max(t);
                }
            }
            _ => {
                let a = app(arg2);
                if let Ok(k) = store.sending_key(&meter, a, now) {
                    assert!(k.usable_until > now);
                    assert_eq!(k.key_id.application(), Some(a));
                }
                if let Ok(k) = store.receiving_key(&meter, a, KeyId(arg2), now) {
                    assert!(k.usable_until > now);
                    assert_eq!(k.key_id, KeyId(arg2));
                }
            }
        }
        while store.poll_event().is_some() {}
    }
});
