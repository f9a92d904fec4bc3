//! The meter's non-volatile memory: what survives a reboot, and the power-up that follows.
//!
//! [`Meter::save`] writes the state a real meter keeps in NVRAM; [`Meter::restore`] powers a
//! meter up from it at a later simulated time. The time in between is an outage: the meter
//! records it exactly as if power had failed at the moment of the save and come back at the
//! restore (the interval in progress flagged power outage and partial, every interval of the
//! outage flagged power outage with no energy, the interval in which power returns flagged
//! outage and partial; `PowerFail` and `PowerRestored` events). The clock keeps running
//! through the outage (a battery-backed real-time clock), with its offset kept.
//!
//! # What is kept
//!
//! Registers and TOU tier registers with their sub-Wh remainders, block demand (maxima, the
//! block in progress, the reset count), the load-profile ring in its compact form, the
//! interval in progress, the remote switch, the clock offset, the last procedure response
//! (ST8), the demand-response event and the count of events, and the optical port's
//! accounts (as the salted HMAC-SHA-256 hashes they already are: no password is ever
//! stored), its failure count, lockout and audit log — so a reboot neither bypasses a
//! lockout nor erases the record of logon attempts.
//!
//! Not kept: the queued events (volatile), an open optical session (a reboot ends it), and
//! the TOU calendar, which is shared between meters through an `Arc` and handed back by the
//! driver to [`Meter::restore`] (a calendar written through ST54 must be kept by the
//! driver). The model step, solar choice and optical rules come from the [`MeterConfig`]
//! given to `restore`; its clock offset is ignored (the saved clock wins).
//!
//! # Format
//!
//! Little-endian: `b"GGMS"`, version 1, serial and seed (UINT64, must match the
//! configuration), simulated time of the save, clock offset (INT64), then the fields above
//! in the order of [`Meter::save`]. Every field is checked on the way in: a saved state
//! that does not decode or breaks an invariant of the model (tiers that do not add up to the
//! registers, an interval in progress that is not the one of the clock, a malformed
//! load-profile block, …) is refused with [`MeterError::BadSavedState`].

use std::sync::Arc;

use crate::demand_response::{DrState, LoadControl};
use crate::load_profile::{IntervalFlags, LoadProfile, UNIT_WH};
use crate::meter::{Meter, MeterConfig, MeterError, SwitchState, MAX_TIME};
use crate::optical::OpticalPort;
use crate::registers::{Peak, Registers};
use crate::tables::codec::{Reader, Writer};
use crate::tables::TableError;
use crate::time::INTERVAL_S;
use crate::tou::{Tier, TouCalendar};

/// First bytes of a saved state.
pub const MAGIC: [u8; 4] = *b"GGMS";
/// Format version written by [`Meter::save`].
pub const VERSION: u8 = 1;

fn bad(at: usize, what: &'static str) -> MeterError {
    MeterError::BadSavedState { at, what }
}

impl From<TableError> for MeterError {
    fn from(e: TableError) -> Self {
        match e {
            TableError::Truncated { at } => bad(at, "length (data ends early)"),
            TableError::TrailingBytes { at } => bad(at, "length (trailing bytes)"),
            TableError::BadValue { at, what } => bad(at, what),
            _ => bad(0, "field"),
        }
    }
}

fn put_regs(w: &mut Writer, r: &Registers) {
    for v in [
        r.delivered_wh,
        r.received_wh,
        r.lagging_varh,
        r.leading_varh,
    ] {
        w.u64(v);
    }
}

fn get_regs(r: &mut Reader<'_>) -> Result<Registers, TableError> {
    Ok(Registers {
        delivered_wh: r.u64()?,
        received_wh: r.u64()?,
        lagging_varh: r.u64()?,
        leading_varh: r.u64()?,
    })
}

fn put_peak(w: &mut Writer, p: &Peak) {
    w.u32(p.watts);
    w.u64(p.at);
}

fn get_peak(r: &mut Reader<'_>) -> Result<Peak, TableError> {
    Ok(Peak {
        watts: r.u32()?,
        at: r.u64()?,
    })
}

/// Whether the tiers add up to the total without wrapping.
fn tiers_add_up(tiers: &[Registers], total: &Registers) -> bool {
    let field = |f: fn(&Registers) -> u64| {
        tiers
            .iter()
            .try_fold(0u64, |acc, r| acc.checked_add(f(r)))
            .is_some_and(|s| s == f(total))
    };
    field(|r| r.delivered_wh)
        && field(|r| r.received_wh)
        && field(|r| r.lagging_varh)
        && field(|r| r.leading_varh)
}

impl Meter {
    /// The meter's non-volatile state (see [`crate::nvram`] for what is kept and the
    /// format), a few KiB after 30 days.
    pub fn save(&self) -> Vec<u8> {
        let mut w = Writer(Vec::with_capacity(512 + self.lp.data_bytes()));
        w.bytes(&MAGIC);
        w.u8(VERSION);
        w.u64(self.serial);
        w.u64(self.seed);
        w.u64(self.sim_now);
        w.i64(self.clock_offset);
        w.u8(u8::from(self.powered) | (u8::from(self.switch == SwitchState::Disconnected) << 1));
        for &a in &self.acc {
            w.u32(a);
        }
        put_regs(&mut w, &self.regs);
        for t in &self.tiers {
            put_regs(&mut w, t);
        }
        w.u8(self.tier.get());
        w.u64(self.tier_until);
        put_peak(&mut w, &self.demand.max);
        for p in &self.demand.tier_max {
            put_peak(&mut w, p);
        }
        w.u8(self.demand.resets);
        w.u32(self.demand.block_wh);
        w.u64(self.int_start);
        w.u8(self.int_flags.0);
        w.u64(self.lp_base[0]);
        w.u64(self.lp_base[1]);
        w.bytes(&self.proc_response);
        match self.dr {
            Some(d) => {
                w.u8(1);
                w.u64(d.event.start);
                w.u16(d.event.duration_min);
                w.u8(d.event.reduction_pct);
                w.u8(u8::from(d.started));
            }
            None => w.u8(0),
        }
        w.u32(self.dr_events);
        self.lp.save(&mut w);
        self.optical.save(&mut w);
        w.0
    }

    /// Powers a meter up at simulated time `now` from the state `bytes` that
    /// [`Meter::save`] wrote at an earlier simulated time: the time between is recorded as
    /// an outage (see [`crate::nvram`]). Refused: bytes that do not decode or break an
    /// invariant ([`MeterError::BadSavedState`]), the state of another serial or seed
    /// ([`MeterError::WrongMeter`]), a `now` before the save
    /// ([`MeterError::TimeWentBackwards`]) or beyond [`MAX_TIME`].
    pub fn restore(
        config: MeterConfig,
        calendar: Arc<TouCalendar>,
        bytes: &[u8],
        now: u64,
    ) -> Result<Meter, MeterError> {
        let mut r = Reader::new(bytes);
        if r.array::<4>()? != MAGIC {
            return Err(bad(0, "magic"));
        }
        if r.u8()? != VERSION {
            return Err(bad(4, "version"));
        }
        let serial = r.u64()?;
        let seed = r.u64()?;
        if serial != config.serial || seed != config.seed {
            return Err(MeterError::WrongMeter {
                saved: serial,
                config: config.serial,
            });
        }
        let at = r.pos();
        let saved_at = r.u64()?;
        let clock_offset = r.i64()?;
        let meter_time = i128::from(saved_at) + i128::from(clock_offset);
        if saved_at > MAX_TIME || !(0..=i128::from(MAX_TIME)).contains(&meter_time) {
            return Err(bad(at, "time or clock offset"));
        }
        let meter_time = u64::try_from(meter_time).map_err(|_| bad(at, "clock offset"))?;
        let mut m = Meter::new(config, calendar, saved_at);
        m.clock_offset = clock_offset;

        let at = r.pos();
        let state = r.u8()?;
        if state & !0x03 != 0 {
            return Err(bad(at, "power and switch state"));
        }
        m.powered = state & 0x01 != 0;
        m.switch = if state & 0x02 != 0 {
            SwitchState::Disconnected
        } else {
            SwitchState::Connected
        };
        let at = r.pos();
        for a in m.acc.iter_mut() {
            *a = r.u32()?;
            if *a >= 3_600 {
                return Err(bad(at, "watt-second remainder"));
            }
        }
        let at = r.pos();
        m.regs = get_regs(&mut r)?;
        for t in m.tiers.iter_mut() {
            *t = get_regs(&mut r)?;
        }
        if !tiers_add_up(&m.tiers, &m.regs) {
            return Err(bad(at, "tier registers (do not add up to the total)"));
        }
        let at = r.pos();
        m.tier = Tier::new(r.u8()?).ok_or(bad(at, "tier"))?;
        m.tier_until = r.u64()?;
        m.demand.max = get_peak(&mut r)?;
        for p in m.demand.tier_max.iter_mut() {
            *p = get_peak(&mut r)?;
        }
        m.demand.resets = r.u8()?;
        m.demand.block_wh = r.u32()?;
        let at = r.pos();
        m.int_start = r.u64()?;
        if m.int_start != meter_time - meter_time % INTERVAL_S {
            return Err(bad(at, "start of the interval in progress"));
        }
        let at = r.pos();
        m.int_flags = IntervalFlags(r.u8()?);
        if m.int_flags.0 & !0x0F != 0 {
            return Err(bad(at, "interval flags"));
        }
        let at = r.pos();
        m.lp_base = [r.u64()?, r.u64()?];
        if m.lp_base[0] > m.regs.delivered_wh / UNIT_WH
            || m.lp_base[1] > m.regs.received_wh / UNIT_WH
        {
            return Err(bad(at, "load-profile base (above the registers)"));
        }
        m.proc_response = r.array()?;
        let at = r.pos();
        m.dr = match r.u8()? {
            0 => None,
            1 => {
                let event = LoadControl {
                    start: r.u64()?,
                    duration_min: r.u16()?,
                    reduction_pct: r.u8()?,
                };
                let started = match r.u8()? {
                    0 => false,
                    1 => true,
                    _ => return Err(bad(at, "demand-response state")),
                };
                if event.start > MAX_TIME || event.is_cancel() || event.reduction_pct > 100 {
                    return Err(bad(at, "demand-response event"));
                }
                Some(DrState { event, started })
            }
            _ => return Err(bad(at, "demand-response tag")),
        };
        m.dr_events = r.u32()?;
        m.lp = LoadProfile::restore(&mut r)?;
        m.optical = OpticalPort::restore(config.optical, &mut r)?;
        r.finish()?;

        // A tier cached from another calendar is looked up again.
        if m.tier_until > meter_time && m.calendar.tier_at(meter_time) != (m.tier, m.tier_until) {
            m.tier_until = 0;
        }
        if now > MAX_TIME {
            return Err(MeterError::TimeOutOfRange(now));
        }
        m.power_off(saved_at)?;
        m.power_on(now)?;
        Ok(m)
    }
}
