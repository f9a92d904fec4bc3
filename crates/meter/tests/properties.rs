//! Register arithmetic, TOU attribution, block demand and the load profile, property-tested
//! over random households, random TOU calendars (switch points at midnight, 48 a day) and
//! random sequences of outages, switch operations and clock changes.
#![allow(clippy::unwrap_used, clippy::indexing_slicing)]

use std::sync::Arc;

use gridguard_meter::tables::{id, profile, registers::CurrentRegisterData};
use gridguard_meter::{Meter, MeterConfig, Registers, Solar, SwitchPoint, Tier, TouCalendar};
use proptest::prelude::*;

/// 2026-06-01 00:00:00 (a Monday in summer, so solar homes export).
const START: u64 = 1_780_272_000;

#[derive(Clone, Copy, Debug)]
enum Event {
    None,
    PowerOff,
    PowerOn,
    Disconnect,
    Connect,
    /// Clock set by this many seconds (may be negative).
    Clock(i32),
}

fn arb_schedule() -> impl Strategy<Value = Vec<SwitchPoint>> {
    let tier = |t: u8| Tier::new(t).unwrap();
    prop_oneof![
        // Any set of up to 48 switch points, with a point at midnight half of the time.
        (
            proptest::collection::btree_set(1u16..1_440, 0..=47),
            any::<bool>(),
            proptest::collection::vec(0u8..6, 48)
        )
            .prop_map(move |(mins, midnight, tiers)| {
                let mut m: Vec<u16> = mins.into_iter().collect();
                if midnight {
                    m.insert(0, 0);
                }
                m.truncate(48);
                m.iter()
                    .zip(tiers)
                    .map(|(&minute, t)| SwitchPoint {
                        minute,
                        tier: tier(t),
                    })
                    .collect()
            }),
        // Exactly 48 switch points, every 30 minutes from midnight.
        proptest::collection::vec(0u8..6, 48).prop_map(move |tiers| {
            tiers
                .iter()
                .enumerate()
                .map(|(i, &t)| SwitchPoint {
                    minute: i as u16 * 30,
                    tier: tier(t),
                })
                .collect()
        }),
    ]
}

fn arb_calendar() -> impl Strategy<Value = TouCalendar> {
    proptest::collection::vec(arb_schedule(), 1..4).prop_flat_map(|s| {
        let n = s.len() as u8;
        (Just(s), proptest::array::uniform7(0..n))
            .prop_map(|(s, week)| TouCalendar::new(s, week).unwrap())
    })
}

fn arb_event(clock: bool) -> impl Strategy<Value = Event> {
    let max_clock = if clock { 1 } else { 0 };
    (0u8..12, -7_200i32..7_200).prop_map(move |(k, d)| match k {
        0 => Event::PowerOff,
        1 => Event::PowerOn,
        2 => Event::Disconnect,
        3 => Event::Connect,
        4 if max_clock == 1 => Event::Clock(d),
        _ => Event::None,
    })
}

fn arb_solar() -> impl Strategy<Value = Solar> {
    prop_oneof![Just(Solar::Yes), Just(Solar::No), Just(Solar::FromSeed)]
}

fn apply(m: &mut Meter, t: u64, e: Event) {
    match e {
        Event::None => m.advance(t).unwrap(),
        Event::PowerOff => m.power_off(t).unwrap(),
        Event::PowerOn => m.power_on(t).unwrap(),
        Event::Disconnect => m.disconnect(t).unwrap(),
        Event::Connect => m.connect(t).unwrap(),
        Event::Clock(d) => {
            let mt = (m.meter_time() as i64 + i64::from(d)).max(0) as u64;
            m.set_clock(t, mt).unwrap()
        }
    }
}

fn check_register_arithmetic(m: &Meter) {
    let r = m.registers();
    assert_eq!(
        Registers::sum(m.tier_registers().iter()),
        *r,
        "tiers sum to the total"
    );
    assert_eq!(r.net_wh(), r.delivered_wh as i64 - r.received_wh as i64);
    assert_eq!(r.total_wh(), r.delivered_wh + r.received_wh);
    // The same through ST23.
    let t = CurrentRegisterData::parse(&m.read_table_full(id::ST23).unwrap()).unwrap();
    for b in std::iter::once(&t.total).chain(t.tiers.iter()) {
        assert_eq!(b.summations[2], b.summations[0] + b.summations[1]);
        assert_eq!(b.summations[3], b.summations[0] - b.summations[1]);
    }
    for i in 0..6 {
        assert_eq!(
            t.tiers.iter().map(|b| b.summations[i]).sum::<i64>(),
            t.total.summations[i]
        );
    }
    assert_eq!(t.total.summations[0] as u64, r.delivered_wh);
    assert_eq!(t.total.summations[1] as u64, r.received_wh);
    // Each block counts for exactly one tier, so the overall maximum is the largest tier maximum.
    assert_eq!(
        t.total.demand_w,
        t.tiers.iter().map(|b| b.demand_w).max().unwrap()
    );
}

fn check_profile_sums(m: &Meter) {
    // The ring has not wrapped in these runs: its intervals and the interval in progress hold
    // all the energy since installation, at 10 Wh resolution.
    let iv = m.load_profile().intervals();
    let (pd, pr) = m.pending_interval_units();
    let d: u64 = iv.iter().map(|i| u64::from(i.delivered)).sum();
    let r: u64 = iv.iter().map(|i| u64::from(i.received)).sum();
    assert_eq!(d + pd, m.registers().delivered_wh / 10);
    assert_eq!(r + pr, m.registers().received_wh / 10);
    // The table path gives back the same intervals.
    let st63 = profile::LpStatus::parse(&m.read_table_full(id::ST63).unwrap()).unwrap();
    let st64 = profile::LpDataSet::parse(&m.read_table_full(id::ST64).unwrap()).unwrap();
    assert_eq!(st64.intervals(&st63), iv);
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 128, ..ProptestConfig::default() })]

    /// Without clock changes: every Wh lands in the tier the calendar names for its minute,
    /// block demand is twice the largest 30-minute delivered energy (per tier too), the
    /// profile sums to the registers, and chunking the calls changes nothing.
    #[test]
    fn registers_tiers_demand_and_profile_agree(
        seed in any::<u64>(),
        solar in arb_solar(),
        cal in arb_calendar(),
        offset in 0u64..7 * 86_400,
        ops in proptest::collection::vec((1u64..5_400, arb_event(false)), 1..40),
    ) {
        let cal = Arc::new(cal);
        let start = START + offset;
        let cfg = MeterConfig::new(1, seed).with_solar(solar);
        let mut chunked = Meter::new(cfg, cal.clone(), start);
        let mut fine = Meter::new(cfg, cal.clone(), start);
        let mut per_tier = [0u64; 6];
        let mut blocks: Vec<(u64, u64)> = Vec::new(); // (block end, delivered Wh)
        let mut t = start;
        let mut last_minute = (start, 0u64);
        let mut last_block = 0u64;
        for (gap, e) in ops {
            let target = t + gap;
            // Walk minute boundaries on the fine meter.
            let mut b = (t / 60 + 1) * 60;
            while b <= target {
                fine.advance(b).unwrap();
                let d = fine.registers().delivered_wh;
                per_tier[cal.tier_at(last_minute.0).0.index()] += d - last_minute.1;
                last_minute = (b, d);
                if b.is_multiple_of(1_800) {
                    blocks.push((b, d - last_block));
                    last_block = d;
                }
                b += 60;
            }
            apply(&mut fine, target, e);
            apply(&mut chunked, target, e);
            t = target;
        }
        let d = fine.registers().delivered_wh;
        per_tier[cal.tier_at(last_minute.0).0.index()] += d - last_minute.1;

        let tiers: Vec<u64> = fine.tier_registers().iter().map(|r| r.delivered_wh).collect();
        prop_assert_eq!(tiers, per_tier.to_vec());
        let max = blocks.iter().map(|&(_, e)| e).max().unwrap_or(0);
        prop_assert_eq!(u64::from(fine.demand().max.watts), 2 * max);
        if max > 0 {
            let first = blocks.iter().find(|&&(_, e)| e == max).unwrap();
            prop_assert_eq!(fine.demand().max.at, first.0);
        }
        for tier in 0..6 {
            let tmax = blocks
                .iter()
                .filter(|&&(end, _)| cal.tier_at(end - 1).0.index() == tier)
                .map(|&(_, e)| e)
                .max()
                .unwrap_or(0);
            prop_assert_eq!(u64::from(fine.demand().tier_max[tier].watts), 2 * tmax);
        }
        check_register_arithmetic(&fine);
        check_profile_sums(&fine);
        prop_assert_eq!(chunked.registers(), fine.registers());
        prop_assert_eq!(chunked.tier_registers(), fine.tier_registers());
        prop_assert_eq!(chunked.demand(), fine.demand());
        prop_assert_eq!(chunked.load_profile().intervals(), fine.load_profile().intervals());
    }

    /// With clock changes too: tiers still sum to the total, the profile still holds every
    /// 10 Wh, and ST64 read back through its own decoder gives the profile.
    #[test]
    fn clock_changes_keep_the_arithmetic(
        seed in any::<u64>(),
        cal in arb_calendar(),
        ops in proptest::collection::vec((1u64..5_400, arb_event(true)), 1..40),
    ) {
        let mut m = Meter::new(MeterConfig::new(2, seed), Arc::new(cal), START);
        let mut t = START;
        for (gap, e) in ops {
            t += gap;
            apply(&mut m, t, e);
        }
        check_register_arithmetic(&m);
        check_profile_sums(&m);
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    /// Demand-response events (through MP1, starting now or later, overlapping, cancelled)
    /// among outages, switch operations and clock changes: tiers still sum to the total and
    /// the profile still holds every 10 Wh; a meter is never less than its reduced self.
    #[test]
    fn demand_response_keeps_the_arithmetic(
        seed in any::<u64>(),
        cal in arb_calendar(),
        ops in proptest::collection::vec(
            (1u64..5_400, arb_event(true), proptest::option::of((0u64..7_200, 0u16..240, 0u8..=100))),
            1..40,
        ),
    ) {
        use gridguard_meter::tables::procedures::{result, ProcedureRequest};
        use gridguard_meter::LoadControl;
        let cal = Arc::new(cal);
        let cfg = MeterConfig::new(4, seed).with_solar(Solar::No);
        let mut m = Meter::new(cfg, cal.clone(), START);
        let mut twin = Meter::new(cfg, cal, START);
        let mut t = START;
        let mut accepted = 0u32;
        for (i, (gap, e, dr)) in ops.into_iter().enumerate() {
            t += gap;
            apply(&mut m, t, e);
            apply(&mut twin, t, e);
            if let Some((off, duration_min, reduction_pct)) = dr {
                let ev = LoadControl { start: m.meter_time() + off, duration_min, reduction_pct };
                m.write_table(id::ST7, 0, &ProcedureRequest::load_control(i as u8, &ev).to_bytes()).unwrap();
                prop_assert_eq!(m.read_table_full(id::ST8).unwrap()[3], result::COMPLETED);
                accepted += 1;
            }
        }
        prop_assert_eq!(m.demand_response_events(), accepted);
        check_register_arithmetic(&m);
        check_profile_sums(&m);
        prop_assert!(m.registers().delivered_wh <= twin.registers().delivered_wh);
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 8, ..ProptestConfig::default() })]

    /// After the ring wraps, each block's end reading minus the previous block's equals the
    /// energy of its intervals, and the newest end reading plus the interval in progress is
    /// the register.
    #[test]
    fn wrapped_profile_blocks_match_register_deltas(seed in any::<u64>(), days in 31u64..34, extra in 0u64..86_400) {
        let mut m = Meter::new(MeterConfig::new(3, seed).with_step(300), Arc::new(TouCalendar::residential()), START);
        m.advance(START + days * 86_400 + extra).unwrap();
        let st63 = profile::LpStatus::parse(&m.read_table_full(id::ST63).unwrap()).unwrap();
        let st64 = profile::LpDataSet::parse(&m.read_table_full(id::ST64).unwrap()).unwrap();
        prop_assert_eq!(st63.valid_blocks, 30);
        let n = st63.valid_blocks as u32;
        let order: Vec<usize> = (0..n).map(|k| (st63.last_block_seq - (n - 1 - k)) as usize % 30).collect();
        for w in order.windows(2) {
            let (prev, cur) = (&st64.blocks[w[0]], &st64.blocks[w[1]]);
            let used = cur.intervals.iter().filter(|r| r.status[0] != profile::STATUS_SKIPPED);
            let is_newest = w[1] == *order.last().unwrap();
            let vals: Vec<_> = if is_newest {
                cur.intervals.iter().take(usize::from(st63.valid_intervals)).collect()
            } else {
                used.collect()
            };
            let d: i64 = vals.iter().map(|r| i64::from(r.values[0]) * 10).sum();
            let rcv: i64 = vals.iter().map(|r| i64::from(r.values[1]) * 10).sum();
            prop_assert_eq!(cur.end_readings[0] - prev.end_readings[0], d);
            prop_assert_eq!(cur.end_readings[1] - prev.end_readings[1], rcv);
        }
        let newest = &st64.blocks[*order.last().unwrap()];
        let (pd, pr) = m.pending_interval_units();
        prop_assert_eq!(newest.end_readings[0] as u64 + pd * 10, m.registers().delivered_wh / 10 * 10);
        prop_assert_eq!(newest.end_readings[1] as u64 + pr * 10, m.registers().received_wh / 10 * 10);
        check_register_arithmetic(&m);
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 128, ..ProptestConfig::default() })]

    /// A random calendar written as ST54 and read back names the same tier at every minute of
    /// a week (schedules nobody uses and that hold no switch point are not carried by ST54).
    #[test]
    fn st54_round_trips_random_calendars(cal in arb_calendar()) {
        use gridguard_meter::tables::calendar::{actual_time_tou, CalendarTable};
        let bytes = CalendarTable::of(&cal).to_bytes();
        let st51 = actual_time_tou(&cal);
        let n = u16::from_le_bytes([st51[5], st51[6]]);
        prop_assert_eq!(usize::from(u16::from_le_bytes([st51[7], st51[8]])), bytes.len());
        let back = CalendarTable::parse(&bytes, n).unwrap();
        prop_assert_eq!(back.to_bytes(), bytes);
        let cal2 = back.to_calendar().unwrap();
        for minute in (0..7 * 1_440u64).step_by(7) {
            let t = START + minute * 60;
            prop_assert_eq!(cal.tier_at(t), cal2.tier_at(t));
        }
    }
}
