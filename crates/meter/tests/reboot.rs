//! Reboot with the non-volatile state kept: a restored meter behaves exactly like one whose
//! power failed at the save and came back at the restore; the optical port keeps its
//! accounts, lockout and audit log; saved state from garbage is refused, never a panic.
#![allow(clippy::unwrap_used, clippy::indexing_slicing)]

use std::sync::Arc;

use gridguard_meter::load_profile::{BLOCKS, INTERVALS_PER_BLOCK};
use gridguard_meter::optical::LogonOutcome;
use gridguard_meter::tables::id;
use gridguard_meter::{
    AccessLevel, IntervalFlags, LoadControl, LogonError, Meter, MeterConfig, MeterError,
    MeterEvent, Registers, Solar, TouCalendar,
};
use proptest::prelude::*;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

/// 2026-06-01 00:00:00, a Monday.
const START: u64 = 1_780_272_000;

#[derive(Clone, Copy, Debug)]
enum Op {
    Advance,
    PowerOff,
    PowerOn,
    Disconnect,
    Connect,
    Clock(i32),
    DemandReset,
    Dr { off: u16, minutes: u16, pct: u8 },
}

fn arb_op() -> impl Strategy<Value = Op> {
    prop_oneof![
        4 => Just(Op::Advance),
        1 => Just(Op::PowerOff),
        1 => Just(Op::PowerOn),
        1 => Just(Op::Disconnect),
        1 => Just(Op::Connect),
        1 => (-7_200i32..7_200).prop_map(Op::Clock),
        1 => Just(Op::DemandReset),
        1 => (0u16..7_200, 1u16..240, 1u8..=100).prop_map(|(off, minutes, pct)| Op::Dr { off, minutes, pct }),
    ]
}

fn apply(m: &mut Meter, t: u64, op: Op) {
    match op {
        Op::Advance => m.advance(t).unwrap(),
        Op::PowerOff => m.power_off(t).unwrap(),
        Op::PowerOn => m.power_on(t).unwrap(),
        Op::Disconnect => m.disconnect(t).unwrap(),
        Op::Connect => m.connect(t).unwrap(),
        Op::Clock(d) => {
            let mt = (m.meter_time() as i64 + i64::from(d)).max(0) as u64;
            m.set_clock(t, mt).unwrap();
        }
        Op::DemandReset => m.demand_reset(t).unwrap(),
        Op::Dr { off, minutes, pct } => {
            m.advance(t).unwrap();
            let start = m.meter_time() + u64::from(off);
            m.load_control(
                t,
                LoadControl {
                    start,
                    duration_min: minutes,
                    reduction_pct: pct,
                },
            )
            .unwrap();
        }
    }
}

fn config(seed: u64) -> MeterConfig {
    MeterConfig::new(31, seed)
}

fn cal() -> Arc<TouCalendar> {
    Arc::new(TouCalendar::residential())
}

/// Everything observable: every table, the registers, the profile and the saved state.
fn assert_same(a: &Meter, b: &Meter) {
    for t in id::READABLE {
        assert_eq!(
            a.read_table_full(t).unwrap(),
            b.read_table_full(t).unwrap(),
            "table {t}"
        );
    }
    assert_eq!(a.registers(), b.registers());
    assert_eq!(a.tier_registers(), b.tier_registers());
    assert_eq!(a.demand(), b.demand());
    assert_eq!(a.load_profile().intervals(), b.load_profile().intervals());
    assert_eq!(a.pending_interval_units(), b.pending_interval_units());
    assert_eq!(a.meter_time(), b.meter_time());
    assert_eq!(a.switch_state(), b.switch_state());
    assert_eq!(a.demand_response(), b.demand_response());
    assert_eq!(a.demand_response_events(), b.demand_response_events());
    assert_eq!(a.save(), b.save());
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    /// Save, stay down for a while, restore: from then on the meter is the meter whose
    /// power failed at the save and returned at the restore, table for table and byte for
    /// byte, whatever happened before (outages, switch, clock changes, demand response).
    #[test]
    fn restore_equals_an_outage(
        seed in any::<u64>(),
        before in proptest::collection::vec((1u64..5_400, arb_op()), 0..25),
        down in 0u64..20_000,
        after in proptest::collection::vec((1u64..5_400, arb_op()), 0..25),
    ) {
        let mut a = Meter::new(config(seed), cal(), START);
        let mut t = START;
        for &(gap, op) in &before {
            t += gap;
            apply(&mut a, t, op);
        }
        let mut b = a.clone();
        let saved = a.save();
        let up = t + down;
        let mut a = Meter::restore(config(seed), cal(), &saved, up).unwrap();
        b.power_off(t).unwrap();
        b.power_on(up).unwrap();
        assert_same(&a, &b);
        let mut t = up;
        for &(gap, op) in &after {
            t += gap;
            apply(&mut a, t, op);
            apply(&mut b, t, op);
        }
        assert_same(&a, &b);
        prop_assert_eq!(Registers::sum(a.tier_registers().iter()), *a.registers());
    }
}

#[test]
fn outage_while_down_is_flagged_and_the_ring_is_kept() {
    let cfg = config(7).with_solar(Solar::No).with_step(300);
    let mut m = Meter::new(cfg, cal(), START);
    let mut never = m.clone();
    // 31 days: the ring is full and has wrapped.
    let t1 = START + 31 * 86_400 + 10 * 3_600 + 300; // 10:05
    m.advance(t1).unwrap();
    never.advance(t1).unwrap();
    let saved = m.save();
    assert!(saved.len() < 8 * 1_024, "{} bytes", saved.len());
    drop(m);
    let t2 = t1 + 3_600 + 1_200; // 11:25
    let mut m = Meter::restore(cfg, cal(), &saved, t2).unwrap();
    assert_eq!(
        std::iter::from_fn(|| m.poll_event()).collect::<Vec<_>>(),
        vec![
            MeterEvent::PowerFail { at: t1 },
            MeterEvent::PowerRestored { at: t2 }
        ]
    );
    assert!(m.powered());
    let t3 = t2 + 7_200;
    m.advance(t3).unwrap();
    never.advance(t3).unwrap();
    // Everything closed before the save is the same as on the meter that never rebooted.
    let before = never.intervals_between(0, t1 - 300);
    assert_eq!(before.len(), BLOCKS * INTERVALS_PER_BLOCK - 96 + 40);
    assert_eq!(m.intervals_between(0, t1 - 300), before);
    // 10:00 partial outage, 10:15..11:15 outage with no energy, 11:15 partial outage.
    let down = m.intervals_between(t1 - 300, t2 + 300);
    let flags: Vec<_> = down.iter().map(|i| i.flags).collect();
    let op = IntervalFlags::OUTAGE | IntervalFlags::PARTIAL;
    let o = IntervalFlags::OUTAGE;
    assert_eq!(flags, vec![op, o, o, o, o, op]);
    assert!(down[1..5]
        .iter()
        .all(|i| i.delivered == 0 && i.received == 0));
    assert!(down[0].delivered > 0 && down[5].delivered > 0);
    // Afterwards clean intervals again, on the same clock as the meter that never rebooted.
    let later = m.intervals_between(t2 + 300, t3);
    assert!(later.iter().all(|i| i.flags == IntervalFlags::NONE));
    let never_later = never.intervals_between(t2 + 300, t3);
    assert_eq!(
        later.iter().map(|i| i.start).collect::<Vec<_>>(),
        never_later.iter().map(|i| i.start).collect::<Vec<_>>()
    );
    // It drew less (nothing while down) and its arithmetic holds.
    assert!(m.registers().delivered_wh < never.registers().delivered_wh);
    assert_eq!(Registers::sum(m.tier_registers().iter()), *m.registers());
}

#[test]
fn forty_days_down_fill_the_ring_with_outage_intervals() {
    let cfg = config(11);
    let mut m = Meter::new(cfg, cal(), START);
    m.advance(START + 86_400 + 450).unwrap();
    let regs = *m.registers();
    let saved = m.save();
    let up = START + 41 * 86_400 + 450;
    let m = Meter::restore(cfg, cal(), &saved, up).unwrap();
    assert_eq!(*m.registers(), regs, "no energy while down");
    let iv = m.load_profile().intervals();
    assert_eq!(iv.len(), BLOCKS * INTERVALS_PER_BLOCK);
    assert!(iv
        .iter()
        .all(|i| i.flags == IntervalFlags::OUTAGE && i.delivered == 0));
    assert_eq!(iv.last().unwrap().start, up - 450 - 900);
    assert_eq!(m.load_profile().recorded(), 41 * 96);
}

#[test]
fn optical_port_keeps_accounts_lockout_and_audit_but_not_the_session() {
    let cfg = config(8);
    let mut m = Meter::new(cfg, cal(), START);
    let mut rng = ChaCha8Rng::seed_from_u64(5);
    m.optical()
        .set_user(&mut rng, "tech", b"correct horse", AccessLevel::Operator);
    for t in 1..=3 {
        assert!(m.optical().logon("tech", b"wrong", START + t).is_err());
    }
    let saved = m.save();
    // The password is not in the saved state (only its salted hash).
    assert!(!saved.windows(13).any(|w| w == b"correct horse"));
    let mut r = Meter::restore(cfg, cal(), &saved, START + 60).unwrap();
    // Still locked: a reboot does not lift a lockout.
    assert!(matches!(
        r.optical().logon("tech", b"correct horse", START + 61),
        Err(LogonError::LockedOut { .. })
    ));
    let s = r
        .optical()
        .logon("tech", b"correct horse", START + 1_000)
        .unwrap();
    assert_eq!(s.level, AccessLevel::Operator);
    let outcomes: Vec<_> = r.optical().audit_log().map(|e| e.outcome).collect();
    assert_eq!(
        outcomes,
        vec![
            LogonOutcome::BadCredentials,
            LogonOutcome::BadCredentials,
            LogonOutcome::BadCredentialsLockedOut,
            LogonOutcome::RefusedLocked,
            LogonOutcome::Success,
        ]
    );
    // A session open at the save is gone after the restore.
    let saved = r.save();
    let mut r2 = Meter::restore(cfg, cal(), &saved, START + 1_001).unwrap();
    assert!(r2.optical().session(START + 1_001).is_none());
}

#[test]
fn wrong_meter_time_and_truncation_are_refused() {
    let cfg = config(9);
    let mut m = Meter::new(cfg, cal(), START);
    m.advance(START + 86_400 + 77).unwrap();
    let saved = m.save();
    assert!(matches!(
        Meter::restore(MeterConfig::new(32, 9), cal(), &saved, START + 90_000),
        Err(MeterError::WrongMeter {
            saved: 31,
            config: 32
        })
    ));
    assert!(matches!(
        Meter::restore(MeterConfig::new(31, 10), cal(), &saved, START + 90_000),
        Err(MeterError::WrongMeter { .. })
    ));
    assert!(matches!(
        Meter::restore(cfg, cal(), &saved, START),
        Err(MeterError::TimeWentBackwards { .. })
    ));
    for cut in 0..saved.len() {
        assert!(
            matches!(
                Meter::restore(cfg, cal(), &saved[..cut], START + 90_000),
                Err(MeterError::BadSavedState { .. })
            ),
            "prefix of {cut} bytes"
        );
    }
    let mut long = saved.clone();
    long.push(0);
    assert!(Meter::restore(cfg, cal(), &long, START + 90_000).is_err());
    assert!(Meter::restore(cfg, cal(), &saved, START + 90_000).is_ok());
}

fn busy_saved() -> Vec<u8> {
    let mut m = Meter::new(config(12), cal(), START);
    let mut rng = ChaCha8Rng::seed_from_u64(1);
    m.optical()
        .set_user(&mut rng, "u", b"p", AccessLevel::Reader);
    let _ = m.optical().logon("u", b"x", START);
    m.advance(START + 86_400).unwrap();
    m.power_off(START + 86_400 + 100).unwrap();
    m.power_on(START + 86_400 + 4_000).unwrap();
    m.set_clock(START + 86_400 + 5_000, START + 86_400 + 9_000)
        .unwrap();
    m.load_control(
        START + 86_400 + 5_000,
        LoadControl {
            start: 0,
            duration_min: 90,
            reduction_pct: 30,
        },
    )
    .unwrap();
    m.advance(START + 2 * 86_400 + 1_234).unwrap();
    m.save()
}

fn survives(bytes: &[u8]) {
    if let Ok(mut m) = Meter::restore(config(12), cal(), bytes, START + 3 * 86_400) {
        // Whatever was accepted runs on without a panic and keeps its arithmetic.
        m.advance(START + 4 * 86_400).unwrap();
        assert_eq!(Registers::sum(m.tier_registers().iter()), *m.registers());
        let _ = m.read_table_full(id::ST64).unwrap();
        let _ = m.save();
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn random_bytes_are_refused(mut data in proptest::collection::vec(any::<u8>(), 0..600), magic in any::<bool>()) {
        if magic && data.len() >= 21 {
            data[..5].copy_from_slice(b"GGMS\x01");
            data[5..13].copy_from_slice(&31u64.to_le_bytes());
            data[13..21].copy_from_slice(&12u64.to_le_bytes());
        }
        survives(&data);
    }

    #[test]
    fn mutated_states_never_panic(
        flips in proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..6),
        cut in any::<prop::sample::Index>(),
        truncate in any::<bool>(),
    ) {
        thread_local!(static S: Vec<u8> = busy_saved());
        let mut data = S.with(Clone::clone);
        for (i, b) in flips {
            let i = i.index(data.len());
            data[i] ^= b;
        }
        if truncate {
            data.truncate(cut.index(data.len()));
        }
        survives(&data);
    }
}
