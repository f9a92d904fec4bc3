//! PANA-Relay (RFC 6345): unwrapping never panics, and whatever unwraps wraps again into a
//! PRY that unwraps to the same PaC and message.
#![no_main]

use gridguard_pana::relay::{is_relay, unwrap, wrap};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = is_relay(data);
    if let Ok(r) = unwrap(data) {
        let again = unwrap(&wrap(r.pac, &r.message).expect("a relayed message re-wraps"))
            .expect("a re-wrapped PRY unwraps");
        assert_eq!(again, r);
    }
});
