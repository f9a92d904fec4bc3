#![no_main]
//! ACSE APDU decoder: never panics; whatever it accepts re-encodes byte for byte, and the
//! canonical cleartext / verification path never panics on it.

use gridguard_c1222::security::{canonical_cleartext, open_apdu, CanonOptions};
use gridguard_c1222::{AcseApdu, EaxPrime};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(mut apdu) = AcseApdu::parse(data) {
        let again = apdu.to_bytes().expect("accepted APDU must re-encode");
        assert_eq!(again, data, "re-encoding differs");
        let len = apdu.user_information.epsem.len();
        let _ = canonical_cleartext(&apdu, len, &CanonOptions::default());
        let _ = open_apdu(&mut apdu, &EaxPrime::new(&[0u8; 16]), &CanonOptions::default());
    }
});
