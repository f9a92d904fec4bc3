//! EAP packet codec: parse never panics; what parses re-encodes to a packet that parses the same.
#![no_main]

use gridguard_eap::Packet;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(packet) = Packet::parse(data) {
        let bytes = packet.to_bytes().expect("a parsed packet re-encodes");
        assert_eq!(Packet::parse(&bytes).expect("re-encoded packet parses"), packet);
    }
});
