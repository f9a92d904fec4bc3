//! The head-end's ANSI C12.22 host and the meter's C12.22 client, keyed by UKMF.
//!
//! * [`c1222_host`] — sans-IO [`C1222Host`]: one key ring per meter (installed by whoever runs
//!   PANA), EAX′ verification with the current or previous key generation, replay refusal,
//!   Registration, interval-data Writes handed out as [`HostEvent::Intervals`], Read
//!   responses, and host-originated requests (reads, demand-response writes).
//! * [`meter_link`] — sans-IO [`MeterLink`]: the meter's side of the same exchange.
//! * [`collector`] — sans-IO [`Collector`]: which intervals of each meter are stored, the
//!   gaps, and the backfills to ask for.
//! * [`udp`] and [`tcp`] — thin tokio drivers for port 1153.
//!
//! Every refusal is a typed [`Refusal`] (or [`LinkError`] on the meter side) and is counted
//! in [`HostStats`].
//!
//! ```
//! use std::time::{Duration, Instant};
//! use gridguard_c1222::{ApTitle, ObjectId};
//! use gridguard_headend::{C1222Host, HostConfig, HostEvent, MemoryTables, MeterLink, MeterLinkConfig};
//! use gridguard_keys::SessionFacts;
//! use rand::{rngs::StdRng, SeedableRng};
//!
//! let title = |n| ApTitle::Absolute(ObjectId::from_arcs(&[2, 16, 124, 113620, 1, 22, 0, n]).unwrap());
//! let (host_title, meter_title) = (title(1), title(77));
//! let emsk = [0x5a_u8; 64]; // from EAP, on both sides
//! let facts = SessionFacts::new(7, 1, b"meter-0077".to_vec()); // from PANA
//! let (now, lifetime) = (Instant::now(), Duration::from_secs(3600));
//!
//! let mut host = C1222Host::new(HostConfig::new(host_title.clone()), StdRng::seed_from_u64(1));
//! host.install_session(meter_title.clone(), &facts, &emsk, lifetime, now)?;
//! let mut meter = MeterLink::new(
//!     MeterLinkConfig::new(meter_title.clone(), host_title, vec![10, 0, 0, 77]),
//!     StdRng::seed_from_u64(2),
//! );
//! meter.install_session(&facts, &emsk, lifetime, now)?;
//!
//! let from = "192.0.2.77:1153".parse()?;
//! let reg = meter.registration(now)?;
//! let reply = host.handle_apdu(from, &reg.bytes, now)?;
//! meter.handle_apdu(&reply.bytes.unwrap(), now, &mut MemoryTables::default())?;
//! let write = meter.write_intervals(64, &[1, 2, 3], now)?;
//! host.handle_apdu(from, &write.bytes, now)?;
//! let intervals: Vec<_> = std::iter::from_fn(|| host.poll_event())
//!     .filter(|e| matches!(e, HostEvent::Intervals { .. }))
//!     .collect();
//! assert_eq!(intervals, [HostEvent::Intervals { meter: meter_title, table: 64, data: vec![1, 2, 3] }]);
//! // A replay is refused, typed and counted.
//! assert!(host.handle_apdu(from, &write.bytes, now).is_err());
//! assert_eq!(host.stats().total_refused(), 1);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
#![forbid(unsafe_code)]

pub mod c1222_host;
pub mod collector;
mod envelope;
mod error;
mod live_key;
pub mod meter_link;
mod shared;
pub mod tcp;
pub mod udp;

pub use c1222_host::{
    C1222Host, HostConfig, HostEvent, HostReply, HostStats, RefusalKind, DEFAULT_REPLAY_WINDOW,
};
pub use collector::{BackfillRequest, Collector, CollectorConfig, CollectorStats};
pub use error::{HostError, LinkError, Refusal};
pub use meter_link::{MemoryTables, MeterEvent, MeterLink, MeterLinkConfig, MeterTables, Outgoing};
pub use shared::SharedHost;
