//! PANA codec: parsing never panics, and whatever parses re-encodes to a message that parses
//! to the same value; the AUTH locator never panics either.
#![no_main]

use gridguard_pana::message::auth_value_range;
use gridguard_pana::Message;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = auth_value_range(data);
    if let Ok(msg) = Message::parse(data) {
        let bytes = msg.emit().expect("a parsed message re-encodes");
        assert_eq!(bytes.len(), msg.buffer_len());
        let again = Message::parse(&bytes).expect("a re-encoded message parses");
        assert_eq!(again, msg);
    }
});
