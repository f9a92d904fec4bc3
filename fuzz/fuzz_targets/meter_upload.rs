#![no_main]
//! Meter interval upload (a pushed ST64 segment) and the ST63/ST64 backfill decoder: any
//! bytes give an error or an upload that re-encodes byte for byte; never a panic.

use std::sync::{Arc, OnceLock};

use gridguard_meter::tables::id;
use gridguard_meter::tables::upload::{profile_intervals, IntervalUpload};
use gridguard_meter::{Meter, MeterConfig, TouCalendar};
use libfuzzer_sys::fuzz_target;

fn tables() -> &'static (Vec<u8>, Vec<u8>) {
    static T: OnceLock<(Vec<u8>, Vec<u8>)> = OnceLock::new();
    T.get_or_init(|| {
        let start = 1_795_392_000;
        let mut m = Meter::new(
            MeterConfig::new(1, 2),
            Arc::new(TouCalendar::residential()),
            start,
        );
        m.advance(start + 86_400).expect("time moves forward");
        (
            m.read_table_full(id::ST63).expect("ST63"),
            m.read_table_full(id::ST64).expect("ST64"),
        )
    })
}

fuzz_target!(|data: &[u8]| {
    let Some((&selector, rest)) = data.split_first() else {
        return;
    };
    if selector % 2 == 0 {
        if let Ok(u) = IntervalUpload::parse(rest) {
            assert_eq!(u.to_bytes(), rest);
            let runs = IntervalUpload::runs(&u.intervals);
            assert!(runs.len() <= 1);
        }
    } else {
        // Mutate the meter's own ST63 and ST64 (ST64 is 17,790 bytes).
        let (st63, st64) = tables();
        let (mut a, mut b) = (st63.clone(), st64.clone());
        let (head, tail) = rest.split_at(rest.len().min(a.len()));
        for (x, y) in a.iter_mut().zip(head) {
            *x ^= y;
        }
        for (x, y) in b.iter_mut().zip(tail) {
            *x ^= y;
        }
        let _ = profile_intervals(&a, &b);
    }
});
