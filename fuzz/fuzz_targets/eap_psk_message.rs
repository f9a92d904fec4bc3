//! EAP-PSK message codec: parse never panics; what parses round-trips.
#![no_main]

use gridguard_eap::psk::message;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(m) = message::parse(data) {
        let bytes = message::emit(&m);
        assert_eq!(message::parse(&bytes).expect("re-encoded message parses"), m);
    }
});
