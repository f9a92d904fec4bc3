#![no_main]
//! Meter saved state (`Meter::restore`): any bytes are refused or give a meter that runs on
//! a simulated day without a panic, with tiers that add up to its registers.

use std::sync::{Arc, OnceLock};

use gridguard_meter::{LoadControl, Meter, MeterConfig, Registers, TouCalendar};
use libfuzzer_sys::fuzz_target;

const START: u64 = 1_795_392_000;

fn saved() -> &'static [u8] {
    static S: OnceLock<Vec<u8>> = OnceLock::new();
    S.get_or_init(|| {
        let mut m = Meter::new(
            MeterConfig::new(1, 2),
            Arc::new(TouCalendar::residential()),
            START,
        );
        m.advance(START + 86_400).expect("time moves forward");
        m.power_off(START + 86_400 + 100)
            .expect("time moves forward");
        m.power_on(START + 86_400 + 4_000)
            .expect("time moves forward");
        m.set_clock(START + 86_400 + 5_000, START + 86_400 + 9_000)
            .expect("valid time");
        let dr = LoadControl {
            start: 0,
            duration_min: 90,
            reduction_pct: 30,
        };
        m.load_control(START + 86_400 + 5_000, dr)
            .expect("valid event");
        m.advance(START + 2 * 86_400).expect("time moves forward");
        m.save()
    })
}

fuzz_target!(|data: &[u8]| {
    let Some((&selector, rest)) = data.split_first() else {
        return;
    };
    let bytes: Vec<u8> = if selector % 2 == 0 {
        rest.to_vec()
    } else {
        // Mutate the saved state of a busy meter.
        let mut s = saved().to_vec();
        for (x, y) in s.iter_mut().zip(rest) {
            *x ^= y;
        }
        if selector & 0x80 != 0 {
            s.truncate(rest.len());
        }
        s
    };
    let config = MeterConfig::new(1, 2);
    if let Ok(mut m) = Meter::restore(
        config,
        Arc::new(TouCalendar::residential()),
        &bytes,
        START + 3 * 86_400,
    ) {
        m.advance(START + 4 * 86_400)
            .expect("restored meter advances");
        assert_eq!(Registers::sum(m.tier_registers().iter()), *m.registers());
        let _ = m.save();
    }
});
