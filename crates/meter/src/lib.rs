//! Sans-IO model of a residential smart meter: single phase, three wire, 240 V, class 200,
//! 60 Hz, form 2S.
//!
//! A [`Meter`] is fed simulated time ([`Meter::advance`]); it integrates a seeded household
//! load curve (daily and weekly shape, noise, optional rooftop solar that feeds energy back)
//! into exact integer registers (delivered, received, delivered + received, delivered −
//! received, reactive lagging and leading), six TOU tiers (up to 48 switch points a day),
//! 30-minute block demand with its maximum and the time it happened, and a 15-minute load
//! profile kept for 30 days in a compact ring (about one byte per interval, 10 Wh
//! resolution, see [`load_profile`]). Outages, clock changes and the remote
//! connect/disconnect switch are events with a time. The optical port ([`OpticalPort`])
//! checks user names and salted password hashes, locks out after repeated failures and logs
//! every attempt. The meter exposes its data as ANSI C12.19 tables ([`tables`]) through
//! [`Meter::read_table`] and takes procedures through [`Meter::write_table`], for a C12.22
//! layer to serve. [`Meter::save`] and [`Meter::restore`] carry the non-volatile state
//! across a reboot ([`nvram`]). Demand response ([`demand_response`], manufacturer procedure MP1) sheds a
//! share of the household's load during a window; the interval upload
//! ([`tables::upload`]) is what the meter pushes to the head-end.
//!
//! No clock, no I/O, no threads: every call carries its time, and the same seed gives the
//! same readings however the calls are chunked. [`Meter::poll_timeout`] names the next
//! interval end; [`Meter::poll_event`] hands out power, switch, clock and demand-reset
//! events.
//!
//! # Time
//!
//! Simulated time is seconds since 1970 ([`time`]). The meter keeps its own clock as an
//! offset from simulated time, changed by [`Meter::set_clock`] or the SP10 procedure; the
//! household model runs on simulated time, the registers' TOU, demand blocks and load
//! profile on the meter clock. There are no time zones and no DST: the meter clock is local
//! standard time.
//!
//! # Memory
//!
//! A meter is `size_of::<Meter>()` (about 740 bytes) plus its load profile (about one byte per
//! interval for a home without solar, about 1.4 with solar: 3 to 4.2 KiB for 30 days) plus
//! 30 small allocations; `examples/footprint.rs` measures about 5.6 KiB of resident memory
//! per meter after 30 simulated days (the raw profile bytes, its anchor, about 3.2 KiB). The
//! TOU calendar is shared through an `Arc`; the optical port and event queue allocate only
//! when used.
//!
//! # Limits of the model
//!
//! One demand-response event at a time (a new one replaces it). One season and no holidays
//! in the TOU calendar; no self-reads, no coincident values, no
//! cumulative demand; no event log tables (ST74–ST76); reads are not access-controlled here
//! (the C12.22 layer authenticates requests; the optical port gives sessions with levels for
//! a C12.18 driver to enforce).
//!
//! ```
//! use std::sync::Arc;
//! use gridguard_meter::{Meter, MeterConfig, TouCalendar};
//!
//! let start = 1_795_392_000; // 2026-11-23 00:00, a Monday
//! let mut m = Meter::new(MeterConfig::new(42, 7), Arc::new(TouCalendar::residential()), start);
//! m.advance(start + 86_400).unwrap();
//! let r = m.registers();
//! assert_eq!(r.net_wh(), r.delivered_wh as i64 - r.received_wh as i64);
//! assert_eq!(m.load_profile().len(), 96);
//! let st23 = m.read_table_full(gridguard_meter::tables::id::ST23).unwrap();
//! assert_eq!(st23.len(), 316);
//! ```
#![forbid(unsafe_code)]

pub mod demand_response;
pub mod load_profile;
mod meter;
pub mod model;
mod noise;
pub mod nvram;
pub mod optical;
pub mod registers;
pub mod tables;
pub mod time;
pub mod tou;

pub use demand_response::LoadControl;
pub use load_profile::{Interval, IntervalFlags, LoadProfile};
pub use meter::{
    Instantaneous, Meter, MeterConfig, MeterError, MeterEvent, SwitchState, EVENT_QUEUE, MAX_TIME,
};
pub use model::{Household, Solar};
pub use optical::{AccessLevel, LogonError, OpticalConfig, OpticalPort, Session};
pub use registers::{Demand, Peak, Registers};
pub use tables::TableError;
pub use tou::{SwitchPoint, Tier, TouCalendar, TouError};
