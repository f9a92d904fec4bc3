#![no_main]
//! EPSEM decoder: never panics; whatever it accepts re-encodes byte for byte.

use gridguard_c1222::Epsem;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(e) = Epsem::parse(data) {
        let again = e.to_bytes().expect("accepted EPSEM must re-encode");
        assert_eq!(again, data, "re-encoding differs");
        for s in &e.services {
            if let gridguard_c1222::Service::Response(r) = s {
                let _ = r.table_data();
            }
        }
    }
});
