//! Meter behaviour around midnight, outages, clock changes, the switch and the procedures.
#![allow(clippy::unwrap_used, clippy::indexing_slicing)]

use std::sync::Arc;

use gridguard_meter::load_profile::{BLOCKS, INTERVALS_PER_BLOCK};
use gridguard_meter::tables::{id, procedures, profile, registers::CurrentRegisterData};
use gridguard_meter::{
    IntervalFlags, Meter, MeterConfig, MeterError, Solar, SwitchPoint, SwitchState, TableError,
    Tier, TouCalendar,
};

/// 2026-11-23 00:00:00, a Monday.
const MONDAY: u64 = 1_795_392_000;
const H: u64 = 3_600;

fn sp(minute: u16, tier: u8) -> SwitchPoint {
    SwitchPoint {
        minute,
        tier: Tier::new(tier).unwrap(),
    }
}

fn meter(cal: TouCalendar, start: u64) -> Meter {
    Meter::new(
        MeterConfig::new(1, 11).with_solar(Solar::No),
        Arc::new(cal),
        start,
    )
}

#[test]
fn demand_block_across_midnight_counts_for_the_tier_of_its_last_second() {
    // Tier 1 only from 23:30 to midnight, tier 2 from midnight, tier 0 otherwise.
    let cal = TouCalendar::new(vec![vec![sp(0, 2), sp(60, 0), sp(1_410, 1)]], [0; 7]).unwrap();
    let start = MONDAY + 23 * H;
    let mut m = meter(cal, start);
    let mut deltas = Vec::new();
    let mut last = 0;
    for k in 1..=4u64 {
        m.advance(start + k * 1_800).unwrap();
        let d = m.registers().delivered_wh;
        deltas.push(d - last);
        last = d;
    }
    let d = m.demand();
    let midnight = MONDAY + 24 * H;
    assert_eq!(d.tier_max[1].at, midnight);
    assert_eq!(u64::from(d.tier_max[1].watts), 2 * deltas[1]);
    let t2 = 2 * deltas[2].max(deltas[3]);
    assert_eq!(u64::from(d.tier_max[2].watts), t2);
    assert_eq!(u64::from(d.tier_max[0].watts), 2 * deltas[0]);
    assert_eq!(
        u64::from(d.max.watts),
        2 * deltas.iter().copied().max().unwrap()
    );
    // Tier registers follow the switch points exactly.
    let tiers = m.tier_registers();
    assert_eq!(tiers[1].delivered_wh, deltas[1]);
    assert_eq!(tiers[2].delivered_wh, deltas[2] + deltas[3]);
    assert_eq!(tiers[0].delivered_wh, deltas[0]);
}

#[test]
fn outage_flags_intervals_and_demand_sees_only_powered_time() {
    let mut m = meter(TouCalendar::flat(), MONDAY + 10 * H);
    m.advance(MONDAY + 10 * H + 600).unwrap();
    let before = m.registers().delivered_wh;
    m.power_off(MONDAY + 10 * H + 600).unwrap();
    assert_eq!(m.instantaneous().voltage_v, 0.0);
    m.power_on(MONDAY + 10 * H + 3_000).unwrap();
    assert_eq!(
        m.registers().delivered_wh,
        before,
        "no energy during the outage"
    );
    assert!(m.instantaneous().voltage_v > 200.0);
    m.advance(MONDAY + 11 * H).unwrap();
    let block2 = m.registers().delivered_wh - before;
    m.advance(MONDAY + 11 * H + 900).unwrap();
    let iv = m.load_profile().intervals();
    let flags: Vec<_> = iv.iter().map(|i| i.flags).collect();
    let op = IntervalFlags::OUTAGE | IntervalFlags::PARTIAL;
    assert_eq!(
        flags,
        vec![
            op,
            IntervalFlags::OUTAGE,
            IntervalFlags::OUTAGE,
            op,
            IntervalFlags::NONE
        ]
    );
    assert_eq!((iv[1].delivered, iv[2].delivered), (0, 0));
    assert!(iv[0].delivered > 0 && iv[3].delivered > 0);
    assert_eq!(u64::from(m.demand().max.watts), 2 * before.max(block2));
    // ST64 carries power fail in the common nibble and partial in the channel nibbles.
    let st64 = profile::LpDataSet::parse(&m.read_table_full(id::ST64).unwrap()).unwrap();
    let b = &st64.blocks[0];
    assert_eq!(
        (b.intervals[0].common, b.intervals[0].status),
        (0x2, [2, 2])
    );
    assert_eq!(
        (b.intervals[1].common, b.intervals[1].status),
        (0x2, [0, 0])
    );
    assert_eq!((b.intervals[4].common, b.intervals[4].status), (0, [0, 0]));
}

#[test]
fn power_changes_on_interval_boundaries_leave_no_partial_flag() {
    let mut m = meter(TouCalendar::flat(), MONDAY);
    m.power_off(MONDAY + 900).unwrap();
    m.power_on(MONDAY + 1_800).unwrap();
    m.advance(MONDAY + 2_700).unwrap();
    let flags: Vec<_> = m
        .load_profile()
        .intervals()
        .iter()
        .map(|i| i.flags)
        .collect();
    assert_eq!(
        flags,
        vec![
            IntervalFlags::NONE,
            IntervalFlags::OUTAGE,
            IntervalFlags::NONE
        ]
    );
}

#[test]
fn clock_changes_close_the_interval_and_start_a_block() {
    let mut m = meter(TouCalendar::flat(), MONDAY);
    m.advance(MONDAY + 12 * H + 300).unwrap();
    // Forward two hours at 12:05.
    m.set_clock(MONDAY + 12 * H + 300, MONDAY + 14 * H + 300)
        .unwrap();
    assert_eq!(m.meter_time(), MONDAY + 14 * H + 300);
    // Backward to 13:55 at (meter) 14:50.
    m.set_clock(MONDAY + 12 * H + 3_000, MONDAY + 13 * H + 3_300)
        .unwrap();
    m.advance(MONDAY + 13 * H).unwrap();
    let blocks = m.load_profile().blocks();
    assert_eq!(blocks.len(), 3);
    let last0 = blocks[0].intervals.last().unwrap();
    assert_eq!(last0.start, MONDAY + 12 * H);
    assert_eq!(
        last0.flags,
        IntervalFlags::PARTIAL | IntervalFlags::CLOCK_FORWARD
    );
    let b1 = &blocks[1].intervals;
    assert_eq!(b1[0].start, MONDAY + 14 * H);
    assert_eq!(
        b1[0].flags,
        IntervalFlags::PARTIAL | IntervalFlags::CLOCK_FORWARD
    );
    assert_eq!(
        b1.last().unwrap().flags,
        IntervalFlags::PARTIAL | IntervalFlags::CLOCK_BACKWARD
    );
    let b2 = &blocks[2].intervals;
    assert_eq!(b2[0].start, MONDAY + 13 * H + 2_700);
    assert_eq!(
        b2[0].flags,
        IntervalFlags::PARTIAL | IntervalFlags::CLOCK_BACKWARD
    );
    // No energy is lost across clock changes.
    let lp_sum: u64 = m
        .load_profile()
        .intervals()
        .iter()
        .map(|i| u64::from(i.delivered))
        .sum();
    let (pending, _) = m.pending_interval_units();
    assert_eq!(lp_sum + pending, m.registers().delivered_wh / 10);
    // The ST64 reader reconstructs the same intervals from the table.
    let st63 = profile::LpStatus::parse(&m.read_table_full(id::ST63).unwrap()).unwrap();
    let st64 = profile::LpDataSet::parse(&m.read_table_full(id::ST64).unwrap()).unwrap();
    assert_eq!(st64.intervals(&st63), m.load_profile().intervals());
}

#[test]
fn time_must_not_go_backwards() {
    let mut m = meter(TouCalendar::flat(), MONDAY + 100);
    assert_eq!(
        m.advance(MONDAY + 50),
        Err(MeterError::TimeWentBackwards {
            last: MONDAY + 100,
            now: MONDAY + 50
        })
    );
    assert_eq!(m.poll_timeout(), MONDAY + 900);
}

#[test]
fn ring_wraps_after_thirty_days() {
    let mut m = Meter::new(
        MeterConfig::new(3, 4).with_step(300),
        Arc::new(TouCalendar::residential()),
        MONDAY,
    );
    let mut readings = Vec::new();
    for day in 1..=32u64 {
        m.advance(MONDAY + day * 86_400).unwrap();
        readings.push(m.registers().delivered_wh / 10);
    }
    let lp = m.load_profile();
    assert_eq!(lp.block_count(), BLOCKS);
    assert_eq!(lp.len(), BLOCKS * INTERVALS_PER_BLOCK);
    let iv = lp.intervals();
    // Days 0 and 1 were overwritten: the ring starts on day 2.
    assert_eq!(iv[0].start, MONDAY + 2 * 86_400);
    let sum: u64 = iv.iter().map(|i| u64::from(i.delivered)).sum();
    assert_eq!(sum, readings[31] - readings[1]);
    let st63 = profile::LpStatus::parse(&m.read_table_full(id::ST63).unwrap()).unwrap();
    assert_eq!(st63.last_block_seq, 31);
    assert_eq!(st63.last_block_element, 1);
    assert_eq!(st63.valid_blocks, 30);
    assert_eq!(st63.valid_intervals, 96);
    assert_eq!(
        st63.flags & 0x02,
        0x02,
        "overflow flag once a block was overwritten"
    );
    let st64 = profile::LpDataSet::parse(&m.read_table_full(id::ST64).unwrap()).unwrap();
    assert_eq!(st64.intervals(&st63), iv);
    // End readings: the newest block (day 31, element 1) ends at the day-32 reading.
    assert_eq!(st64.blocks[1].end_readings[0], (readings[31] * 10) as i64);
    assert_eq!(st64.blocks[0].end_readings[0], (readings[30] * 10) as i64);
    assert_eq!(
        st64.blocks[2].end_readings[0],
        (readings[1 + 1] * 10) as i64
    );
}

fn proc_write(m: &mut Meter, req: procedures::ProcedureRequest) -> [u8; 4] {
    m.write_table(id::ST7, 0, &req.to_bytes()).unwrap();
    m.read_table_full(id::ST8).unwrap().try_into().unwrap()
}

#[test]
fn remote_switch_and_demand_reset_through_procedures() {
    let mut m = meter(TouCalendar::flat(), MONDAY);
    m.advance(MONDAY + 2 * H).unwrap();
    let switch = |on: u8, seq: u8| procedures::ProcedureRequest {
        number: procedures::MP_REMOTE_SWITCH,
        manufacturer: true,
        selector: 0,
        seq,
        params: vec![on],
    };
    assert_eq!(proc_write(&mut m, switch(0, 5)), [0x00, 0x08, 5, 0]);
    assert_eq!(m.switch_state(), SwitchState::Disconnected);
    assert_eq!(m.read_table_full(id::ST3).unwrap()[4], 1);
    let r = *m.registers();
    m.advance(MONDAY + 3 * H).unwrap();
    assert_eq!(*m.registers(), r, "no energy through an open switch");
    let inst = m.instantaneous();
    assert_eq!((inst.active_w, inst.current_a), (0.0, 0.0));
    assert!(inst.voltage_v > 200.0 && inst.frequency_hz > 59.0);
    assert_eq!(
        proc_write(&mut m, switch(7, 6))[3],
        procedures::result::INVALID_PARAMETER
    );
    assert_eq!(proc_write(&mut m, switch(1, 7)), [0x00, 0x08, 7, 0]);
    m.advance(MONDAY + 4 * H).unwrap();
    assert!(m.registers().delivered_wh > r.delivered_wh);
    assert!(m.instantaneous().current_a > 0.0);

    assert!(m.demand().max.watts > 0);
    let reset = procedures::ProcedureRequest {
        number: procedures::SP_REMOTE_RESET,
        manufacturer: false,
        selector: 0,
        seq: 9,
        params: vec![0x01],
    };
    assert_eq!(proc_write(&mut m, reset), [9, 0, 9, 0]);
    assert_eq!(m.demand().max.watts, 0);
    let st23 = CurrentRegisterData::parse(&m.read_table_full(id::ST23).unwrap()).unwrap();
    assert_eq!(st23.demand_resets, 1);
    assert_eq!(st23.total.demand_w, 0);

    let unknown = procedures::ProcedureRequest {
        number: 77,
        manufacturer: false,
        selector: 0,
        seq: 1,
        params: vec![],
    };
    assert_eq!(
        proc_write(&mut m, unknown)[3],
        procedures::result::UNRECOGNISED
    );
}

#[test]
fn set_date_time_procedure_moves_the_clock() {
    let mut m = meter(TouCalendar::flat(), MONDAY);
    m.advance(MONDAY + 600).unwrap();
    // SET_MASK time only: 06:30:00.
    let req = procedures::ProcedureRequest {
        number: procedures::SP_SET_DATE_TIME,
        manufacturer: false,
        selector: 0,
        seq: 2,
        params: vec![0x01, 0, 0, 0, 6, 30, 0, 0],
    };
    assert_eq!(proc_write(&mut m, req.clone())[3], 0);
    assert_eq!(m.meter_time(), MONDAY + 6 * H + 1_800);
    let bad = procedures::ProcedureRequest {
        params: vec![0x01, 0, 0, 0, 25, 0, 0, 0],
        ..req.clone()
    };
    assert_eq!(
        proc_write(&mut m, bad)[3],
        procedures::result::INVALID_PARAMETER
    );
    let short = procedures::ProcedureRequest {
        params: vec![0x01, 0],
        ..req
    };
    assert_eq!(
        proc_write(&mut m, short)[3],
        procedures::result::INVALID_PARAMETER
    );
}

#[test]
fn table_access_errors_and_partial_reads() {
    let mut m = meter(TouCalendar::residential(), MONDAY);
    m.advance(MONDAY + 5 * H).unwrap();
    let full = m.read_table_full(id::ST23).unwrap();
    assert_eq!(m.read_table(id::ST23, 1, 6).unwrap(), full[1..7].to_vec());
    assert_eq!(m.read_table(id::ST23, 0, full.len() as u16).unwrap(), full);
    let err = m.read_table(id::ST23, 1, full.len() as u16).unwrap_err();
    assert_eq!(err.response_code(), 0x04);
    assert!(matches!(err, TableError::OutOfRange { table: 23, .. }));
    assert_eq!(m.read_table(99, 0, 1), Err(TableError::UnknownTable(99)));
    assert_eq!(
        m.write_table(id::ST23, 0, &[0]),
        Err(TableError::NotWritable(23))
    );
    assert_eq!(
        m.write_table(99, 0, &[0]),
        Err(TableError::UnknownTable(99))
    );
    assert_eq!(
        m.write_table(id::ST7, 0, &[1, 0]),
        Err(TableError::Truncated { at: 2 })
    );
    assert_eq!(
        m.write_table(id::ST7, 0, &[1, 0])
            .unwrap_err()
            .response_code(),
        0x05
    );
    // Every readable table reads.
    for t in id::READABLE {
        assert!(m.read_table_full(t).is_ok(), "table {t}");
    }
    assert_eq!(
        m.read_table_full(id::ST64).unwrap().len(),
        profile::DATA_SET_LEN
    );
    assert_eq!(
        m.read_table_full(id::ST61).unwrap()[..4],
        (profile::DATA_SET_LEN as u32).to_le_bytes()
    );
}

#[test]
fn st23_hand_computed_for_known_registers() {
    // A flat calendar and a disconnected meter keep the registers at zero: the table is all
    // zero except the demand reset counter after one reset.
    let mut m = meter(TouCalendar::flat(), MONDAY);
    m.disconnect(MONDAY).unwrap();
    m.demand_reset(MONDAY + 60).unwrap();
    let b = m.read_table_full(id::ST23).unwrap();
    let mut expected = vec![0u8; 316];
    expected[0] = 1;
    assert_eq!(b, expected);
    // One hour connected: total block summations are the registers in INT48 little-endian.
    m.connect(MONDAY + 60).unwrap();
    m.advance(MONDAY + H).unwrap();
    let b = m.read_table_full(id::ST23).unwrap();
    let d = m.registers().delivered_wh;
    assert_eq!(&b[1..7], &d.to_le_bytes()[..6]);
    assert_eq!(&b[19..25], &(d as i64).to_le_bytes()[..6]);
    // Demand event time: STIME_DATE 26-11-23 01:00 or 00:30.
    let at = &b[37..42];
    assert!(
        at == [26, 11, 23, 1, 0] || at == [26, 11, 23, 0, 30],
        "{at:?}"
    );
    assert_eq!(&b[42..46], &m.demand().max.watts.to_le_bytes());
}

#[test]
fn writing_st54_replaces_the_calendar() {
    use gridguard_meter::tables::calendar::CalendarTable;
    let mut m = meter(TouCalendar::flat(), MONDAY + 15 * H);
    let res = TouCalendar::residential();
    let bytes = CalendarTable::of(&res).to_bytes();
    m.write_table(id::ST54, 0, &bytes).unwrap();
    assert_eq!(*m.calendar(), res);
    assert_eq!(m.read_table_full(id::ST54).unwrap(), bytes);
    assert_eq!(
        m.read_table_full(id::ST55).unwrap()[7],
        2,
        "peak tier at 15:00 on a Monday"
    );
    m.advance(MONDAY + 16 * H).unwrap();
    assert_eq!(
        m.tier_registers()[2].delivered_wh,
        m.registers().delivered_wh
    );
    // A length that is not 7 + 3n, or a bad switch, is refused and changes nothing.
    assert!(m.write_table(id::ST54, 0, &bytes[1..]).is_err());
    let mut bad = bytes.clone();
    bad[0] = 0x07; // NEW_TIER 7
    assert!(matches!(
        m.write_table(id::ST54, 0, &bad),
        Err(TableError::BadValue { .. })
    ));
    assert!(m.write_table(id::ST54, 3, &bytes).is_err());
    assert_eq!(*m.calendar(), res);
}

#[test]
fn times_beyond_year_9999_are_refused() {
    let mut m = meter(TouCalendar::flat(), MONDAY);
    let far = gridguard_meter::MAX_TIME + 1;
    assert_eq!(m.advance(far), Err(MeterError::TimeOutOfRange(far)));
    assert_eq!(
        m.set_clock(MONDAY, u64::MAX),
        Err(MeterError::TimeOutOfRange(u64::MAX))
    );
    m.set_clock(MONDAY + 10, gridguard_meter::MAX_TIME - 100)
        .unwrap();
    m.advance(MONDAY + 5_000).unwrap();
    assert!(m.read_table_full(id::ST64).is_ok());
    let (_, until) = TouCalendar::residential().tier_at(u64::MAX);
    assert_eq!(until, u64::MAX);
}

#[test]
fn events_are_queued_in_order_and_bounded() {
    use gridguard_meter::{MeterEvent, EVENT_QUEUE};
    let mut m = meter(TouCalendar::flat(), MONDAY);
    m.power_off(MONDAY + 100).unwrap();
    m.power_off(MONDAY + 150).unwrap(); // already off: no second event
    m.power_on(MONDAY + 200).unwrap();
    m.disconnect(MONDAY + 300).unwrap();
    m.connect(MONDAY + 400).unwrap();
    m.set_clock(MONDAY + 500, MONDAY + 560).unwrap();
    m.demand_reset(MONDAY + 600).unwrap();
    let got: Vec<_> = std::iter::from_fn(|| m.poll_event()).collect();
    assert_eq!(
        got,
        vec![
            MeterEvent::PowerFail { at: MONDAY + 100 },
            MeterEvent::PowerRestored { at: MONDAY + 200 },
            MeterEvent::Disconnected { at: MONDAY + 300 },
            MeterEvent::Connected { at: MONDAY + 400 },
            MeterEvent::ClockSet {
                from: MONDAY + 500,
                to: MONDAY + 560
            },
            MeterEvent::DemandReset { at: MONDAY + 660 },
        ]
    );
    for k in 0..40u64 {
        m.demand_reset(MONDAY + 1_000 + k).unwrap();
    }
    let got: Vec<_> = std::iter::from_fn(|| m.poll_event()).collect();
    assert_eq!(got.len(), EVENT_QUEUE);
    assert_eq!(
        got[0],
        MeterEvent::DemandReset {
            at: MONDAY + 60 + 1_000 + 40 - EVENT_QUEUE as u64
        }
    );
}

#[test]
fn optical_table_access_needs_a_session_with_the_right_level() {
    use gridguard_meter::AccessLevel;
    use rand::SeedableRng;
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(9);
    let mut m = meter(TouCalendar::flat(), MONDAY);
    m.optical()
        .set_user(&mut rng, "reader", b"r-pass", AccessLevel::Reader);
    m.optical()
        .set_user(&mut rng, "op", b"o-pass", AccessLevel::Operator);
    let t = MONDAY + 60;
    let err = m.optical_read_table(t, id::ST1, 0, 4).unwrap_err();
    assert_eq!(
        (err, err.response_code()),
        (TableError::NotAuthorized(1), 0x03)
    );
    m.optical().logon("reader", b"r-pass", t).unwrap();
    assert_eq!(
        m.optical_read_table(t + 1, id::ST1, 0, 4).unwrap(),
        b"GGRD".to_vec()
    );
    let open = procedures::ProcedureRequest {
        number: procedures::MP_REMOTE_SWITCH,
        manufacturer: true,
        selector: 0,
        seq: 1,
        params: vec![0],
    };
    assert_eq!(
        m.optical_write_table(t + 2, id::ST7, 0, &open.to_bytes()),
        Err(TableError::NotAuthorized(7))
    );
    assert_eq!(m.switch_state(), SwitchState::Connected);
    m.optical().logoff();
    m.optical().logon("op", b"o-pass", t + 3).unwrap();
    m.optical_write_table(t + 4, id::ST7, 0, &open.to_bytes())
        .unwrap();
    assert_eq!(m.switch_state(), SwitchState::Disconnected);
    // The calendar needs a master session.
    let cal = gridguard_meter::tables::calendar::CalendarTable::of(&TouCalendar::residential())
        .to_bytes();
    assert_eq!(
        m.optical_write_table(t + 5, id::ST54, 0, &cal),
        Err(TableError::NotAuthorized(54))
    );
    // Sessions time out (120 s by default) without traffic.
    assert!(m.optical_read_table(t + 5 + 120, id::ST1, 0, 4).is_err());
}
