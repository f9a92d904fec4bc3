//! The meter: measurement model integrated over simulated time into registers, TOU tiers,
//! block demand and the load profile; outages, clock changes and the remote switch.

use std::collections::VecDeque;
use std::sync::Arc;

use crate::demand_response::{reduce, DrState, LoadControl};
use crate::load_profile::{IntervalFlags, LoadProfile, UNIT_WH};
use crate::model::{grid, Household, Solar};
use crate::optical::{OpticalConfig, OpticalPort};
use crate::registers::{Demand, Registers, TierRegisters};
use crate::time::{next_boundary, DEMAND_BLOCK_S, INTERVAL_S};
use crate::tou::{Tier, TouCalendar, TIERS};

/// How a meter is built.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct MeterConfig {
    /// Serial number (also the C12.19 identification).
    pub serial: u64,
    /// Seed of the measurement model.
    pub seed: u64,
    /// Rooftop solar.
    pub solar: Solar,
    /// Model step in seconds (power is constant over a step), 1..=900; 60 by default.
    pub step_s: u32,
    /// Optical port rules.
    pub optical: OpticalConfig,
    /// Meter clock minus simulated time at installation (s): a meter installed with a
    /// skewed clock. 0 by default.
    pub clock_offset: i64,
}

impl MeterConfig {
    /// A meter with serial `serial` and model seed `seed`, one-minute steps, solar drawn
    /// from the seed.
    pub fn new(serial: u64, seed: u64) -> Self {
        MeterConfig {
            serial,
            seed,
            solar: Solar::FromSeed,
            step_s: 60,
            optical: OpticalConfig::default(),
            clock_offset: 0,
        }
    }
    /// Starts the meter's clock `secs` ahead of simulated time (behind if negative): meter
    /// time = simulated time + `secs` until the clock is set (SP10 or [`Meter::set_clock`]).
    /// A clock that would read before 1970 or after [`MAX_TIME`] is clamped.
    pub fn with_clock_offset(mut self, secs: i64) -> Self {
        self.clock_offset = secs;
        self
    }
    /// Sets the solar choice.
    pub fn with_solar(mut self, solar: Solar) -> Self {
        self.solar = solar;
        self
    }
    /// Sets the model step (clamped to 1..=900 s).
    pub fn with_step(mut self, step_s: u32) -> Self {
        self.step_s = step_s.clamp(1, 900);
        self
    }
    /// Sets the optical port rules.
    pub fn with_optical(mut self, optical: OpticalConfig) -> Self {
        self.optical = optical;
        self
    }
}

/// Errors of the meter model.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum MeterError {
    /// A time beyond [`MAX_TIME`] (year 9999).
    #[error("time {0} is beyond 9999-12-31")]
    TimeOutOfRange(u64),
    /// A load-control event with a reduction above 100 %.
    #[error("load-control reduction {0} % is above 100 %")]
    BadReduction(u8),
    /// A load-control event whose window has already closed.
    #[error("load-control window already closed at meter time {end}")]
    WindowClosed {
        /// Meter time at which the window closed.
        end: u64,
    },
    /// Saved state that does not decode or breaks an invariant of the model.
    #[error("saved meter state: bad {what} at byte {at}")]
    BadSavedState {
        /// Offset of the field.
        at: usize,
        /// Which field.
        what: &'static str,
    },
    /// Saved state of another meter (serial or seed differ from the configuration).
    #[error("saved state of serial {saved}, configured serial {config} (or the seeds differ)")]
    WrongMeter {
        /// Serial in the saved state.
        saved: u64,
        /// Serial configured.
        config: u64,
    },
    /// A call carried a simulated time before the last one.
    #[error("time went backwards: last {last}, now {now}")]
    TimeWentBackwards {
        /// Last simulated time seen.
        last: u64,
        /// Time passed in.
        now: u64,
    },
}

/// The latest simulated or meter time accepted: 9999-12-31T23:59:59.
pub const MAX_TIME: u64 = 253_402_300_799;

/// Instantaneous values.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Instantaneous {
    /// Active power (W, positive = delivered).
    pub active_w: f32,
    /// Reactive power (var, positive = lagging).
    pub reactive_var: f32,
    /// Apparent power (VA).
    pub apparent_va: f32,
    /// Voltage (V), 0 during an outage.
    pub voltage_v: f32,
    /// Current (A).
    pub current_a: f32,
    /// Frequency (Hz), 0 during an outage.
    pub frequency_hz: f32,
}

/// Events queued for the driver (the head-end would see them as exceptions or alarms),
/// each with the meter time at which it happened.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum MeterEvent {
    /// Power failed.
    PowerFail {
        /// Meter time.
        at: u64,
    },
    /// Power came back.
    PowerRestored {
        /// Meter time.
        at: u64,
    },
    /// The remote switch opened.
    Disconnected {
        /// Meter time.
        at: u64,
    },
    /// The remote switch closed.
    Connected {
        /// Meter time.
        at: u64,
    },
    /// The clock was set.
    ClockSet {
        /// Meter time before.
        from: u64,
        /// Meter time after.
        to: u64,
    },
    /// Demand was reset.
    DemandReset {
        /// Meter time.
        at: u64,
    },
    /// A demand-response window opened.
    DemandResponseStarted {
        /// Meter time.
        at: u64,
        /// Share of the load shed (percent).
        reduction_pct: u8,
    },
    /// A demand-response window closed (or the event in force was cancelled).
    DemandResponseEnded {
        /// Meter time.
        at: u64,
    },
}

/// Events kept before the oldest is dropped.
pub const EVENT_QUEUE: usize = 16;

/// Position of the remote connect/disconnect switch.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SwitchState {
    /// Closed: the premises are supplied.
    Connected,
    /// Open: the premises are cut off.
    Disconnected,
}

/// One residential meter (single phase, three wire, 240 V, class 200, 60 Hz, form 2S).
#[derive(Clone, Debug)]
pub struct Meter {
    pub(crate) serial: u64,
    pub(crate) seed: u64,
    pub(crate) step_s: u32,
    pub(crate) household: Household,
    pub(crate) calendar: Arc<TouCalendar>,
    pub(crate) sim_now: u64,
    pub(crate) clock_offset: i64,
    pub(crate) powered: bool,
    pub(crate) switch: SwitchState,
    /// Watt-second remainders below 1 Wh: delivered, received, lagging, leading.
    pub(crate) acc: [u32; 4],
    pub(crate) regs: Registers,
    pub(crate) tiers: TierRegisters,
    pub(crate) tier: Tier,
    pub(crate) tier_until: u64,
    pub(crate) demand: Demand,
    pub(crate) lp: LoadProfile,
    pub(crate) int_start: u64,
    pub(crate) int_flags: IntervalFlags,
    pub(crate) lp_base: [u64; 2],
    pub(crate) optical: OpticalPort,
    pub(crate) proc_response: [u8; 4],
    pub(crate) dr: Option<DrState>,
    pub(crate) dr_events: u32,
    pub(crate) events: VecDeque<MeterEvent>,
}

impl Meter {
    /// A meter installed (powered, switch closed, registers zero) at simulated time `now`
    /// (at most [`MAX_TIME`]; later times are clamped); its clock starts at `now` plus the
    /// configured [`MeterConfig::clock_offset`].
    pub fn new(config: MeterConfig, calendar: Arc<TouCalendar>, now: u64) -> Self {
        let now = now.min(MAX_TIME);
        let mt = (i128::from(now) + i128::from(config.clock_offset)).clamp(0, i128::from(MAX_TIME));
        let clock_offset = i64::try_from(mt - i128::from(now)).unwrap_or(0);
        let mt = u64::try_from(mt).unwrap_or(now);
        let int_start = mt - mt % INTERVAL_S;
        Meter {
            serial: config.serial,
            seed: config.seed,
            step_s: config.step_s.clamp(1, 900),
            household: Household::from_seed(config.seed, config.solar),
            calendar,
            sim_now: now,
            clock_offset,
            powered: true,
            switch: SwitchState::Connected,
            acc: [0; 4],
            regs: Registers::default(),
            tiers: [Registers::default(); TIERS],
            tier: Tier::default(),
            tier_until: 0,
            demand: Demand::default(),
            lp: LoadProfile::new(),
            int_start,
            int_flags: if mt.is_multiple_of(INTERVAL_S) {
                IntervalFlags::NONE
            } else {
                IntervalFlags::PARTIAL
            },
            lp_base: [0; 2],
            optical: OpticalPort::new(config.optical),
            proc_response: [0; 4],
            dr: None,
            dr_events: 0,
            events: VecDeque::new(),
        }
    }

    /// Serial number.
    pub fn serial(&self) -> u64 {
        self.serial
    }
    /// The household model.
    pub fn household(&self) -> &Household {
        &self.household
    }
    /// The TOU calendar.
    pub fn calendar(&self) -> &TouCalendar {
        &self.calendar
    }
    /// Replaces the TOU calendar (takes effect from the current time).
    pub fn set_calendar(&mut self, calendar: Arc<TouCalendar>) {
        self.calendar = calendar;
        self.tier_until = 0;
    }
    /// Last simulated time the meter was advanced to.
    pub fn now(&self) -> u64 {
        self.sim_now
    }
    /// The meter's clock (simulated time plus the offset a clock change introduced).
    pub fn meter_time(&self) -> u64 {
        self.to_meter(self.sim_now)
    }
    fn to_meter(&self, sim: u64) -> u64 {
        u64::try_from(i128::from(sim) + i128::from(self.clock_offset)).unwrap_or(0)
    }
    fn to_sim(&self, meter: u64) -> u64 {
        u64::try_from(i128::from(meter) - i128::from(self.clock_offset)).unwrap_or(u64::MAX)
    }
    /// Whether the meter has power.
    pub fn powered(&self) -> bool {
        self.powered
    }
    /// Position of the remote switch.
    pub fn switch_state(&self) -> SwitchState {
        self.switch
    }
    /// The energy registers (totals).
    pub fn registers(&self) -> &Registers {
        &self.regs
    }
    /// The energy registers per TOU tier.
    pub fn tier_registers(&self) -> &TierRegisters {
        &self.tiers
    }
    /// Block demand state.
    pub fn demand(&self) -> &Demand {
        &self.demand
    }
    /// The load profile.
    pub fn load_profile(&self) -> &LoadProfile {
        &self.lp
    }
    /// The TOU tier in force at the current meter time.
    pub fn current_tier(&self) -> Tier {
        self.calendar.tier_at(self.meter_time()).0
    }
    /// The optical port.
    pub fn optical(&mut self) -> &mut OpticalPort {
        &mut self.optical
    }
    /// Delivered and received energy of the interval in progress, in 10 Wh units, as the
    /// load profile will record it if the interval closed now.
    pub fn pending_interval_units(&self) -> (u64, u64) {
        (
            self.regs.delivered_wh / UNIT_WH - self.lp_base[0],
            self.regs.received_wh / UNIT_WH - self.lp_base[1],
        )
    }

    /// The quantised registers (delivered, received in 10 Wh units) at the last closed
    /// interval.
    pub(crate) fn lp_base(&self) -> [u64; 2] {
        self.lp_base
    }

    /// The simulated time at which the next load-profile interval ends: when a driver should
    /// call [`Meter::advance`] next at the latest.
    pub fn poll_timeout(&self) -> u64 {
        self.to_sim(next_boundary(self.meter_time(), INTERVAL_S))
    }

    /// Integrates the measurement model up to simulated time `now`.
    pub fn advance(&mut self, now: u64) -> Result<(), MeterError> {
        if now > MAX_TIME {
            return Err(MeterError::TimeOutOfRange(now));
        }
        if now < self.sim_now {
            return Err(MeterError::TimeWentBackwards {
                last: self.sim_now,
                now,
            });
        }
        let step = u64::from(self.step_s);
        while self.sim_now < now {
            let mt = self.meter_time();
            if mt >= self.tier_until {
                let (tier, until) = self.calendar.tier_at(mt);
                self.tier = tier;
                self.tier_until = until;
            }
            let reduction = self.dr_reduction_at(mt);
            let dr_edge = self.dr.map_or(u64::MAX, |d| d.next_edge(mt));
            let seg_end_mt = next_boundary(mt, INTERVAL_S)
                .min(self.tier_until)
                .min(dr_edge);
            // Without power or with the switch open nothing is integrated, so the model step
            // does not cut the segment (a long outage costs one segment per interval).
            let live = self.powered && self.switch == SwitchState::Connected;
            let step_end = if live {
                next_boundary(self.sim_now, step)
            } else {
                u64::MAX
            };
            let seg_end = now.min(step_end).min(self.to_sim(seg_end_mt));
            if live {
                let (p, q) = self
                    .household
                    .power(self.seed, self.sim_now / step, self.step_s);
                let (p, q) = reduce(p, q, reduction);
                self.integrate(p, q, seg_end - self.sim_now);
            }
            self.sim_now = seg_end;
            let mt = self.meter_time();
            self.dr_expire(mt);
            if mt.is_multiple_of(INTERVAL_S) {
                self.close_interval(mt);
            }
        }
        Ok(())
    }

    fn integrate(&mut self, p: i32, q: i32, dt: u64) {
        let dt = dt as u32; // a segment never exceeds 900 s
        let [d, r, lag, lead] = &mut self.acc;
        let add = |acc: &mut u32, v: i32| -> u64 {
            let ws = u64::from(*acc) + u64::from(v.unsigned_abs()) * u64::from(dt);
            *acc = (ws % 3_600) as u32;
            ws / 3_600
        };
        let mut delta = Registers::default();
        if p >= 0 {
            delta.delivered_wh = add(d, p);
        } else {
            delta.received_wh = add(r, p);
        }
        if q >= 0 {
            delta.lagging_varh = add(lag, q);
        } else {
            delta.leading_varh = add(lead, q);
        }
        self.regs.add(&delta);
        if let Some(t) = self.tiers.get_mut(self.tier.index()) {
            t.add(&delta);
        }
        self.demand.block_wh = self
            .demand
            .block_wh
            .saturating_add(delta.delivered_wh as u32);
    }

    /// Closes the interval in progress at meter time `end` and starts the next one.
    fn close_interval(&mut self, end: u64) {
        self.push_interval();
        if end.is_multiple_of(DEMAND_BLOCK_S) {
            self.demand.close_block(end, self.tier.index());
        }
        self.int_start = end;
        self.int_flags = if self.powered {
            IntervalFlags::NONE
        } else {
            IntervalFlags::OUTAGE
        };
    }

    fn push_interval(&mut self) {
        let q = [
            self.regs.delivered_wh / UNIT_WH,
            self.regs.received_wh / UNIT_WH,
        ];
        let units = [q[0] - self.lp_base[0], q[1] - self.lp_base[1]];
        self.lp_base = q;
        let clamp = |u: u64| u32::try_from(u).unwrap_or(u32::MAX);
        self.lp.push(
            self.int_start,
            clamp(units[0]),
            clamp(units[1]),
            self.int_flags,
        );
    }

    /// Power fails at simulated time `now`: no energy is measured until [`Meter::power_on`];
    /// the interval in progress is flagged outage (and partial unless it starts at `now`),
    /// later intervals outage.
    pub fn power_off(&mut self, now: u64) -> Result<(), MeterError> {
        self.advance(now)?;
        if self.powered {
            self.push_event(MeterEvent::PowerFail {
                at: self.meter_time(),
            });
            self.powered = false;
            self.int_flags |= IntervalFlags::OUTAGE;
            if !self.meter_time().is_multiple_of(INTERVAL_S) {
                self.int_flags |= IntervalFlags::PARTIAL;
            }
        }
        Ok(())
    }

    /// Power returns at simulated time `now`; the interval in progress is flagged outage and
    /// partial (unless power returns exactly at its start, which leaves it clean).
    pub fn power_on(&mut self, now: u64) -> Result<(), MeterError> {
        self.advance(now)?;
        if !self.powered {
            self.push_event(MeterEvent::PowerRestored {
                at: self.meter_time(),
            });
            self.powered = true;
            if self.meter_time().is_multiple_of(INTERVAL_S) {
                self.int_flags = IntervalFlags::NONE;
            } else {
                self.int_flags |= IntervalFlags::OUTAGE | IntervalFlags::PARTIAL;
            }
        }
        Ok(())
    }

    /// Sets the meter's clock to `meter_time` at simulated time `now`. The interval in
    /// progress is closed early (partial, clock change), the demand block in progress ends,
    /// and the interval containing the new time is flagged clock change (and partial unless
    /// the new time is an interval boundary). Intervals a forward change skips are not
    /// recorded; the load profile starts a new block.
    pub fn set_clock(&mut self, now: u64, meter_time: u64) -> Result<(), MeterError> {
        if meter_time > MAX_TIME {
            return Err(MeterError::TimeOutOfRange(meter_time));
        }
        self.advance(now)?;
        let old = self.meter_time();
        if old == meter_time {
            return Ok(());
        }
        let dir = if meter_time > old {
            IntervalFlags::CLOCK_FORWARD
        } else {
            IntervalFlags::CLOCK_BACKWARD
        };
        if !old.is_multiple_of(INTERVAL_S) {
            self.int_flags |= IntervalFlags::PARTIAL | dir;
            self.push_interval();
        }
        self.demand.close_block(old, self.tier.index());
        self.push_event(MeterEvent::ClockSet {
            from: old,
            to: meter_time,
        });
        self.clock_offset = i64::try_from(i128::from(meter_time) - i128::from(now)).unwrap_or(0);
        self.int_start = meter_time - meter_time % INTERVAL_S;
        self.int_flags = dir;
        if !meter_time.is_multiple_of(INTERVAL_S) {
            self.int_flags |= IntervalFlags::PARTIAL;
        }
        if !self.powered {
            self.int_flags |= IntervalFlags::OUTAGE;
        }
        self.tier_until = 0;
        Ok(())
    }

    /// Opens the remote switch at simulated time `now` (no energy flows afterwards).
    pub fn disconnect(&mut self, now: u64) -> Result<(), MeterError> {
        self.advance(now)?;
        if self.switch != SwitchState::Disconnected {
            self.push_event(MeterEvent::Disconnected {
                at: self.meter_time(),
            });
        }
        self.switch = SwitchState::Disconnected;
        Ok(())
    }

    /// Closes the remote switch at simulated time `now`.
    pub fn connect(&mut self, now: u64) -> Result<(), MeterError> {
        self.advance(now)?;
        if self.switch != SwitchState::Connected {
            self.push_event(MeterEvent::Connected {
                at: self.meter_time(),
            });
        }
        self.switch = SwitchState::Connected;
        Ok(())
    }

    /// Demand reset at simulated time `now`: maxima cleared, reset counter incremented.
    pub fn demand_reset(&mut self, now: u64) -> Result<(), MeterError> {
        self.advance(now)?;
        self.demand.reset();
        self.push_event(MeterEvent::DemandReset {
            at: self.meter_time(),
        });
        Ok(())
    }

    /// The reduction in force at meter time `mt` (0 outside a window); announces the start
    /// of a window the first time it is seen open.
    fn dr_reduction_at(&mut self, mt: u64) -> u8 {
        let Some(d) = self.dr.as_mut() else { return 0 };
        if !d.event.covers(mt) {
            return 0;
        }
        let pct = d.event.reduction_pct;
        if !d.started {
            d.started = true;
            self.push_event(MeterEvent::DemandResponseStarted {
                at: mt,
                reduction_pct: pct,
            });
        }
        pct
    }

    /// Drops the event once its window has closed at meter time `mt`.
    fn dr_expire(&mut self, mt: u64) {
        if let Some(d) = self.dr {
            if mt >= d.event.end() {
                self.dr = None;
                if d.started {
                    self.push_event(MeterEvent::DemandResponseEnded { at: mt });
                }
            }
        }
    }

    /// Takes a demand-response load-control event at simulated time `now` (the meter is
    /// advanced to `now` first). It replaces the event pending or in force; zero duration or
    /// zero percent cancels that event instead. A start of 0 (or in the past) opens the
    /// window at once; the window is in meter time. Refused: a reduction above 100 % and a
    /// window that has already closed. Every accepted event (cancellations included) is
    /// counted in [`Meter::demand_response_events`]; see [`crate::demand_response`] for the
    /// effect on the measurement model.
    pub fn load_control(&mut self, now: u64, event: LoadControl) -> Result<(), MeterError> {
        if event.reduction_pct > 100 {
            return Err(MeterError::BadReduction(event.reduction_pct));
        }
        self.advance(now)?;
        let mt = self.meter_time();
        let mut event = event;
        if event.start == 0 {
            event.start = mt;
        }
        if !event.is_cancel() && event.end() <= mt {
            return Err(MeterError::WindowClosed { end: event.end() });
        }
        if let Some(old) = self.dr.take() {
            if old.started {
                self.push_event(MeterEvent::DemandResponseEnded { at: mt });
            }
        }
        if !event.is_cancel() {
            self.dr = Some(DrState {
                event,
                started: false,
            });
            // Announce at once a window that is already open.
            self.dr_reduction_at(mt);
        }
        self.dr_events = self.dr_events.wrapping_add(1);
        Ok(())
    }

    /// Whether a demand-response window is open at the meter's current time.
    pub fn demand_response_active(&self) -> bool {
        self.dr.is_some_and(|d| d.event.covers(self.meter_time()))
    }

    /// The load-control event pending or in force, if any (start in meter time).
    pub fn demand_response(&self) -> Option<LoadControl> {
        self.dr.map(|d| d.event)
    }

    /// Load-control events accepted since installation (cancellations included; wraps).
    pub fn demand_response_events(&self) -> u32 {
        self.dr_events
    }

    /// Instantaneous values at the last simulated time.
    pub fn instantaneous(&self) -> Instantaneous {
        if !self.powered {
            return Instantaneous::default();
        }
        let (voltage_v, frequency_hz) = grid(self.seed, self.sim_now);
        if self.switch == SwitchState::Disconnected {
            return Instantaneous {
                voltage_v,
                frequency_hz,
                ..Instantaneous::default()
            };
        }
        let step = u64::from(self.step_s);
        let (p, q) = self
            .household
            .power(self.seed, self.sim_now / step, self.step_s);
        let reduction = self
            .dr
            .filter(|d| d.event.covers(self.meter_time()))
            .map_or(0, |d| d.event.reduction_pct);
        let (p, q) = reduce(p, q, reduction);
        let (p, q) = (p as f32, q as f32);
        let s = (p * p + q * q).sqrt();
        Instantaneous {
            active_w: p,
            reactive_var: q,
            apparent_va: s,
            voltage_v,
            current_a: s / voltage_v,
            frequency_hz,
        }
    }

    fn push_event(&mut self, e: MeterEvent) {
        while self.events.len() >= EVENT_QUEUE {
            self.events.pop_front();
        }
        self.events.push_back(e);
    }

    /// The oldest queued event, if any (at most [`EVENT_QUEUE`] are kept; older ones are
    /// dropped).
    pub fn poll_event(&mut self) -> Option<MeterEvent> {
        let e = self.events.pop_front();
        if self.events.is_empty() && self.events.capacity() > 0 {
            // Give the memory back: a million idle meters should hold no event buffers.
            self.events = VecDeque::new();
        }
        e
    }

    /// Heap bytes owned by this meter (the shared calendar excluded).
    pub fn heap_bytes(&self) -> usize {
        self.lp.heap_bytes()
            + self.optical.heap_bytes()
            + self.events.capacity() * core::mem::size_of::<MeterEvent>()
    }
}
