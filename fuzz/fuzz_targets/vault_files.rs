#![no_main]
//! The vault's own files read back after a crash or from a foreign disk: landing blobs of the
//! SQLite store and the ingest journal. Must never panic; what decodes must re-encode to the
//! same bytes.

use gridguard_vault::decoders::{
    decode_landing_blob, encode_ingest_journal, encode_landing_blob, parse_ingest_journal,
};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(rows) = decode_landing_blob(data) {
        assert_eq!(encode_landing_blob(&rows), data);
    }
    let keys = parse_ingest_journal(data);
    assert_eq!(parse_ingest_journal(&encode_ingest_journal(&keys)), keys);
    assert!(keys.windows(2).all(|w| w[0] < w[1]));
});
