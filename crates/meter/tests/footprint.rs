//! Memory per simulated meter: the struct, its heap after 30 days, and the raw load-profile
//! bytes, against the 8 KiB budget.
#![allow(clippy::unwrap_used)]

use std::sync::Arc;

use gridguard_meter::load_profile::{BLOCKS, INTERVALS_PER_BLOCK};
use gridguard_meter::{Meter, MeterConfig, Solar, TouCalendar};

#[test]
fn thirty_days_fit_in_eight_kib() {
    let start = 1_780_272_000; // 2026-06-01
    let cal = Arc::new(TouCalendar::residential());
    let mut worst = 0usize;
    for (seed, solar) in [
        (1u64, Solar::No),
        (2, Solar::Yes),
        (3, Solar::FromSeed),
        (4, Solar::Yes),
    ] {
        let mut m = Meter::new(
            MeterConfig::new(seed, seed)
                .with_solar(solar)
                .with_step(300),
            cal.clone(),
            start,
        );
        m.advance(start + 31 * 86_400).unwrap();
        assert_eq!(m.load_profile().len(), BLOCKS * INTERVALS_PER_BLOCK);
        let total = std::mem::size_of::<Meter>() + m.heap_bytes();
        println!(
            "seed {seed} {solar:?}: size_of::<Meter>() = {} B, heap = {} B (load profile data {} B for {} intervals), total {} B",
            std::mem::size_of::<Meter>(),
            m.heap_bytes(),
            m.load_profile().data_bytes(),
            m.load_profile().len(),
            total
        );
        worst = worst.max(total);
    }
    assert!(worst <= 8 * 1024, "{worst} bytes per meter");
}
