//! PANA-Relay (RFC 6345): unwrapping never panics, and whatever unwraps and wraps again (it fits)
//! unwraps to the same PaC and message.
#![no_main]

use gridguard_pana::relay::{is_relay, unwrap, wrap};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = is_relay(data);
    if let Ok(r) = unwrap(data) {
        // Re-wrapping may not fit 64 KiB (a 6-octet PaC-Information comes back as 18 octets,
        // and unknown AVPs are dropped): only a PRY that wraps must unwrap to the same.
        if let Ok(pry) = wrap(r.pac, &r.message) {
            assert_eq!(unwrap(&pry).expect("a re-wrapped PRY unwraps"), r);
        }
    }
});
