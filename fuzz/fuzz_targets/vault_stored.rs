#![no_main]
//! Whatever the vault parses from a store or a configuration: store metadata text, scheme
//! names, and stored share rows under every layout. Must never panic; what parses must
//! round-trip.

use gridguard_vault::scheme::SchemeSpec;
use gridguard_vault::store::{GroupSum, ShareRecord, StoreLayout, StoreMeta};
use gridguard_vault::Modulus;
use libfuzzer_sys::fuzz_target;

fn i64_at(data: &[u8], at: usize) -> i64 {
    let mut b = [0u8; 8];
    for (i, x) in b.iter_mut().enumerate() {
        *x = data.get(at + i).copied().unwrap_or(0);
    }
    i64::from_le_bytes(b)
}

fuzz_target!(|data: &[u8]| {
    if let Ok(meta) = StoreMeta::parse(data) {
        assert_eq!(StoreMeta::parse(meta.to_string().as_bytes()).ok(), Some(meta));
    }
    if let Ok(text) = std::str::from_utf8(data) {
        if let Ok(spec) = text.parse::<SchemeSpec>() {
            assert_eq!(spec.to_string(), text);
            assert!(spec.build().is_ok());
        }
    }
    let flags = data.first().copied().unwrap_or(0);
    let layout = StoreLayout {
        columns: 1 + usize::from(flags & 1),
        modulus: if flags & 2 == 0 { Modulus::Wrap64 } else { Modulus::Prime61 },
    };
    let b = (flags & 4 != 0).then(|| i64_at(data, 33));
    let _ = ShareRecord::from_sql(&layout, i64_at(data, 1), i64_at(data, 9), i64_at(data, 17), b);
    let _ = GroupSum::from_sql(
        &layout,
        i64_at(data, 1),
        i64_at(data, 9),
        i64_at(data, 17),
        i64_at(data, 25),
        i64_at(data, 33),
        b,
    );
});
