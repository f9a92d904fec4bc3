//! A meter installed with a skewed clock stamps its intervals on its own clock until the
//! head-end corrects it with SP10; afterwards the intervals are stamped on the true time and
//! the intervals around the correction carry the clock-change flags.
#![allow(clippy::unwrap_used, clippy::indexing_slicing)]

use std::sync::Arc;

use gridguard_meter::tables::calendar::parse_clock;
use gridguard_meter::tables::id;
use gridguard_meter::tables::procedures::{result, ProcedureRequest, SP_SET_DATE_TIME};
use gridguard_meter::time::{civil, weekday};
use gridguard_meter::{IntervalFlags, Meter, MeterConfig, Solar, TouCalendar, MAX_TIME};

/// 2026-11-23 00:00:00, a Monday.
const MONDAY: u64 = 1_795_392_000;
const H: u64 = 3_600;

fn cfg() -> MeterConfig {
    MeterConfig::new(3, 99).with_solar(Solar::No)
}

/// What a head-end writes to ST7 to set the meter's clock to `t`.
fn sp10(seq: u8, t: u64) -> Vec<u8> {
    let c = civil(t);
    let params = vec![
        0x03,
        (c.year - 2000) as u8,
        c.month,
        c.day,
        c.hour,
        c.minute,
        c.second,
        weekday(t),
    ];
    ProcedureRequest {
        number: SP_SET_DATE_TIME,
        manufacturer: false,
        selector: 0,
        seq,
        params,
    }
    .to_bytes()
}

fn corrected_by_sp10(offset: i64, dir: IntervalFlags) {
    let cal = Arc::new(TouCalendar::residential());
    let mut m = Meter::new(cfg().with_clock_offset(offset), cal.clone(), MONDAY);
    let mut truth = Meter::new(cfg(), cal, MONDAY);
    let skewed = |t: u64| (t as i64 + offset) as u64;
    assert_eq!(m.meter_time(), skewed(MONDAY));
    // Before the correction: intervals on the meter's own 15-minute boundaries, which fall
    // `offset` seconds off the true ones.
    let boundary = m.poll_timeout();
    assert_eq!(skewed(boundary) % 900, 0);
    assert_ne!(boundary % 900, 0);
    m.advance(MONDAY + 2 * H).unwrap();
    truth.advance(MONDAY + 2 * H).unwrap();
    let first = m.load_profile().intervals();
    assert_eq!(first[0].flags, IntervalFlags::PARTIAL);
    assert!(first.iter().all(|i| i.start % 900 == 0));
    assert_eq!(
        parse_clock(&m.read_table_full(id::ST52).unwrap()).unwrap(),
        skewed(MONDAY + 2 * H)
    );
    // The head-end sets the true time.
    let now = MONDAY + 2 * H + 100;
    m.advance(now).unwrap();
    m.write_table(id::ST7, 0, &sp10(1, now)).unwrap();
    assert_eq!(m.read_table_full(id::ST8).unwrap()[3], result::COMPLETED);
    assert_eq!(m.meter_time(), now);
    assert_eq!(m.poll_timeout(), MONDAY + 2 * H + 900);
    let end = MONDAY + 5 * H;
    m.advance(end).unwrap();
    truth.advance(end).unwrap();
    // The interval cut short by the change and the one the new time falls in carry the flag.
    let changed: Vec<_> = m
        .load_profile()
        .intervals()
        .into_iter()
        .filter(|i| i.flags.clock_changed())
        .collect();
    assert_eq!(changed.len(), 2, "{changed:?}");
    assert!(changed
        .iter()
        .all(|i| i.flags.contains(dir | IntervalFlags::PARTIAL)));
    assert_eq!(changed[1].start, MONDAY + 2 * H);
    // From the next boundary on: the true time's intervals, clean, with the energy the
    // never-skewed twin measured (the household runs on true time), to 10 Wh.
    let after = m.intervals_between(MONDAY + 2 * H + 900, end);
    let twin = truth.intervals_between(MONDAY + 2 * H + 900, end);
    assert_eq!(after.len(), 11);
    for (a, b) in after.iter().zip(&twin) {
        assert_eq!(a.start, b.start);
        assert_eq!(a.flags, IntervalFlags::NONE);
        assert!(a.delivered.abs_diff(b.delivered) <= 1, "{a:?} {b:?}");
    }
    assert_eq!(
        parse_clock(&m.read_table_full(id::ST52).unwrap()).unwrap(),
        end
    );
}

#[test]
fn fast_clock_is_set_back() {
    corrected_by_sp10(437, IntervalFlags::CLOCK_BACKWARD);
}

#[test]
fn slow_clock_is_set_forward() {
    corrected_by_sp10(-1_010, IntervalFlags::CLOCK_FORWARD);
}

#[test]
fn offsets_are_clamped_to_the_clock_range() {
    let cal = Arc::new(TouCalendar::flat());
    let m = Meter::new(cfg().with_clock_offset(i64::MIN), cal.clone(), MONDAY);
    assert_eq!(m.meter_time(), 0);
    let mut m = Meter::new(cfg().with_clock_offset(i64::MAX), cal.clone(), MONDAY);
    assert_eq!(m.meter_time(), MAX_TIME);
    assert_eq!(m.now(), MONDAY);
    m.advance(MONDAY + 900).unwrap();
    let m = Meter::new(cfg().with_clock_offset(0), cal, MONDAY + 1);
    assert_eq!(m.meter_time(), MONDAY + 1);
}

#[test]
fn the_sp10_builder_writes_the_field_layout_by_hand() {
    for t in [MONDAY, MONDAY + 437, MONDAY + 86_399, 1_790_812_800] {
        assert_eq!(ProcedureRequest::set_date_time(9, t).to_bytes(), sp10(9, t));
    }
}
