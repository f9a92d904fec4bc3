//! Demand response through MP1: the household's consumption during the window drops by the
//! percent asked (against the same seed without the event), the registers stay consistent,
//! and ST8 reports each outcome.
#![allow(clippy::unwrap_used, clippy::indexing_slicing)]

use std::sync::Arc;

use gridguard_meter::tables::procedures::{
    result, LoadControlParams, ProcedureRequest, LOAD_CONTROL_PARAMS_LEN, MP_LOAD_CONTROL,
};
use gridguard_meter::tables::{id, registers::CurrentRegisterData};
use gridguard_meter::{LoadControl, Meter, MeterConfig, MeterEvent, Registers, Solar, TouCalendar};

/// 2026-11-23 00:00:00, a Monday.
const MONDAY: u64 = 1_795_392_000;
const H: u64 = 3_600;

fn meter(seed: u64) -> Meter {
    Meter::new(
        MeterConfig::new(5, seed).with_solar(Solar::No),
        Arc::new(TouCalendar::residential()),
        MONDAY,
    )
}

fn run(m: &mut Meter, req: &ProcedureRequest) -> u8 {
    m.write_table(id::ST7, 0, &req.to_bytes()).unwrap();
    let st8 = m.read_table_full(id::ST8).unwrap();
    assert_eq!(&st8[..3], &[MP_LOAD_CONTROL as u8, 0x08, req.seq]);
    st8[3]
}

fn events(m: &mut Meter) -> Vec<MeterEvent> {
    std::iter::from_fn(|| m.poll_event()).collect()
}

fn consistent(m: &Meter) {
    assert_eq!(Registers::sum(m.tier_registers().iter()), *m.registers());
    let t = CurrentRegisterData::parse(&m.read_table_full(id::ST23).unwrap()).unwrap();
    assert_eq!(
        t.total.summations[3],
        t.total.summations[0] - t.total.summations[1]
    );
    let iv = m.load_profile().intervals();
    let (pd, _) = m.pending_interval_units();
    let d: u64 = iv.iter().map(|i| u64::from(i.delivered)).sum();
    assert_eq!(d + pd, m.registers().delivered_wh / 10);
}

#[test]
fn window_cuts_consumption_by_the_percent() {
    for (seed, pct) in [(1u64, 40u8), (2, 25), (3, 100), (4, 7)] {
        let mut base = meter(seed);
        let mut dr = meter(seed);
        base.advance(MONDAY + 17 * H).unwrap();
        dr.advance(MONDAY + 17 * H).unwrap();
        let event = LoadControl {
            start: MONDAY + 18 * H,
            duration_min: 120,
            reduction_pct: pct,
        };
        assert_eq!(
            run(&mut dr, &ProcedureRequest::load_control(7, &event)),
            result::COMPLETED
        );
        assert_eq!(dr.demand_response(), Some(event));
        assert_eq!(dr.demand_response_events(), 1);
        assert!(!dr.demand_response_active());
        let mut at = Vec::new();
        for t in [MONDAY + 18 * H, MONDAY + 20 * H, MONDAY + 23 * H] {
            base.advance(t).unwrap();
            dr.advance(t).unwrap();
            at.push((base.registers().delivered_wh, dr.registers().delivered_wh));
            if t == MONDAY + 18 * H {
                // Nothing changes before the window.
                assert_eq!(base.registers(), dr.registers());
                dr.advance(t + 60).unwrap();
                base.advance(t + 60).unwrap();
                assert!(dr.demand_response_active());
                let (pb, pd) = (base.instantaneous().active_w, dr.instantaneous().active_w);
                assert!(
                    (pd - pb * f32::from(100 - pct) / 100.0).abs() <= 1.0,
                    "{pb} {pd}"
                );
            }
        }
        assert!(!dr.demand_response_active());
        assert_eq!(dr.demand_response(), None);
        // Registers over the window (Wh): the reduced draw is (100 - pct) % of the base
        // within the rounding of one watt per minute step.
        let window = |m: &Meter| {
            let iv = m.intervals_between(MONDAY + 18 * H, MONDAY + 20 * H);
            assert_eq!(iv.len(), 8);
            iv.iter()
                .map(|i| i64::from(i.delivered))
                .collect::<Vec<_>>()
        };
        let (wb, wd) = (window(&base), window(&dr));
        for (b, d) in wb.iter().zip(&wd) {
            assert!(
                (d * 100 - b * i64::from(100 - pct)).abs() <= 200,
                "{b} {d} {pct}"
            );
        }
        let sum_b: i64 = wb.iter().sum();
        let sum_d: i64 = wd.iter().sum();
        assert!(sum_d < sum_b || pct == 0);
        // After the window both meters draw the same again (interval by interval within the
        // 10 Wh quantisation).
        let after = |m: &Meter| m.intervals_between(MONDAY + 20 * H, MONDAY + 23 * H);
        for (b, d) in after(&base).iter().zip(&after(&dr)) {
            assert!(b.delivered.abs_diff(d.delivered) <= 1);
        }
        // In Wh over the window: off by at most one watt per one-minute step (120 steps,
        // 2 Wh) plus the sub-Wh remainders carried in and out.
        let (base_w, dr_w) = (at[1].0 - at[0].0, at[1].1 - at[0].1);
        let expected = base_w * u64::from(100 - pct);
        assert!(
            (dr_w * 100).abs_diff(expected) <= 400,
            "{dr_w} vs {base_w} at {pct}"
        );
        // After the window the energy drawn is the same again (Wh remainders aside).
        let (base_a, dr_a) = (at[2].0 - at[1].0, at[2].1 - at[1].1);
        assert!(base_a.abs_diff(dr_a) <= 1);
        consistent(&dr);
        let ev = events(&mut dr);
        assert_eq!(
            ev,
            vec![
                MeterEvent::DemandResponseStarted {
                    at: MONDAY + 18 * H,
                    reduction_pct: pct
                },
                MeterEvent::DemandResponseEnded {
                    at: MONDAY + 20 * H
                },
            ]
        );
    }
}

#[test]
fn refusals_cancellation_and_immediate_start() {
    let mut m = meter(9);
    m.advance(MONDAY + 10 * H).unwrap();
    // Reduction above 100 %: invalid parameter, nothing held.
    let mut bad = ProcedureRequest::load_control(
        1,
        &LoadControl {
            start: 0,
            duration_min: 30,
            reduction_pct: 50,
        },
    );
    assert_eq!(bad.params.len(), LOAD_CONTROL_PARAMS_LEN);
    bad.params[8] = 101;
    assert_eq!(run(&mut m, &bad), result::INVALID_PARAMETER);
    assert!(LoadControlParams::parse(&bad.params).is_err());
    // Short parameters.
    bad.params.truncate(8);
    assert_eq!(run(&mut m, &bad), result::INVALID_PARAMETER);
    // A window that closed before now: timing constraint.
    let old = LoadControl {
        start: MONDAY + 8 * H,
        duration_min: 60,
        reduction_pct: 50,
    };
    assert_eq!(
        run(&mut m, &ProcedureRequest::load_control(2, &old)),
        result::TIMING_CONSTRAINT
    );
    assert_eq!(m.demand_response_events(), 0);
    assert!(m.demand_response().is_none());
    // Start 0: at once.
    let now = LoadControl {
        start: 0,
        duration_min: 60,
        reduction_pct: 50,
    };
    assert_eq!(
        run(&mut m, &ProcedureRequest::load_control(3, &now)),
        result::COMPLETED
    );
    assert!(m.demand_response_active());
    assert_eq!(m.demand_response().unwrap().start, MONDAY + 10 * H);
    m.advance(MONDAY + 10 * H + 600).unwrap();
    // Duration 0 cancels.
    let cancel = LoadControl {
        start: 0,
        duration_min: 0,
        reduction_pct: 50,
    };
    assert_eq!(
        run(&mut m, &ProcedureRequest::load_control(4, &cancel)),
        result::COMPLETED
    );
    assert!(!m.demand_response_active());
    assert_eq!(m.demand_response_events(), 2);
    assert_eq!(
        events(&mut m),
        vec![
            MeterEvent::DemandResponseStarted {
                at: MONDAY + 10 * H,
                reduction_pct: 50
            },
            MeterEvent::DemandResponseEnded {
                at: MONDAY + 10 * H + 600
            },
        ]
    );
    // After the cancellation the meter draws what an untouched meter draws.
    let mut twin = meter(9);
    twin.advance(MONDAY + 10 * H + 600).unwrap();
    m.advance(MONDAY + 12 * H).unwrap();
    twin.advance(MONDAY + 12 * H).unwrap();
    let d = |x: &Meter| x.intervals_between(MONDAY + 11 * H, MONDAY + 12 * H);
    for (a, b) in d(&m).iter().zip(&d(&twin)) {
        assert!(a.delivered.abs_diff(b.delivered) <= 1);
    }
    consistent(&m);
}

#[test]
fn solar_export_is_not_reduced() {
    // A sunny June noon: the solar home exports; a 100 % event leaves export alone.
    let june = 1_780_272_000 + 2 * 86_400;
    let mk = || {
        Meter::new(
            MeterConfig::new(1, 123).with_solar(Solar::Yes),
            Arc::new(TouCalendar::flat()),
            june,
        )
    };
    let (mut a, mut b) = (mk(), mk());
    b.load_control(
        june,
        LoadControl {
            start: june,
            duration_min: 24 * 60,
            reduction_pct: 100,
        },
    )
    .unwrap();
    a.advance(june + 86_400).unwrap();
    b.advance(june + 86_400).unwrap();
    assert_eq!(b.registers().delivered_wh, 0);
    assert!(a.registers().delivered_wh > 0);
    assert_eq!(a.registers().received_wh, b.registers().received_wh);
    assert!(b.registers().received_wh > 0);
    consistent(&b);
}
