#![no_main]
//! EAX′ open on attacker-chosen cleartext, ciphertext and MAC: never panics, refuses one-block
//! cleartexts, and leaves the buffer untouched when it refuses.

use gridguard_c1222::{EaxPrime, Error};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if data.len() < 21 {
        return;
    }
    let (key, rest) = data.split_at(16);
    let (mac, rest) = rest.split_at(4);
    let split = usize::from(rest[0]);
    let rest = &rest[1..];
    let split = split.min(rest.len());
    let (clear, ct) = rest.split_at(split);
    let key: [u8; 16] = key.try_into().unwrap();
    let mac: [u8; 4] = mac.try_into().unwrap();
    let mut buf = ct.to_vec();
    let r = EaxPrime::new(&key).open(clear, &mut buf, &mac);
    if clear.len() <= 16 {
        assert_eq!(r, Err(Error::CleartextTooShort));
    }
    if r.is_err() {
        assert_eq!(buf, ct);
    }
});
