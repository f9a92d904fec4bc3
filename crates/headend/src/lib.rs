//! The head-end's ANSI C12.22 host and the meter's C12.22 client, keyed by UKMF.
//!
//! * [`c1222_host`] — sans-IO [`C1222Host`]: one key ring per meter (installed by whoever runs
//!   PANA), EAX′ verification with the current or previous key generation, replay refusal,
//!   Registration, interval-data Writes handed out as [`HostEvent::Intervals`], Read
//!   responses, and host-originated requests (reads, demand-response writes).
//! * [`meter_link`] — sans-IO [`MeterLink`]: the meter's side of the same exchange.
//! * [`udp`] and [`tcp`] — thin tokio drivers for port 1153.
//!
//! Every refusal is a typed [`Refusal`] (or [`LinkError`] on the meter side) and is counted
//! in [`HostStats`].
#![forbid(unsafe_code)]

pub mod c1222_host;
mod envelope;
mod error;
mod live_key;
pub mod meter_link;
mod shared;
pub mod tcp;
pub mod udp;

pub use c1222_host::{C1222Host, HostConfig, HostEvent, HostReply, HostStats, RefusalKind};
pub use error::{HostError, LinkError, Refusal};
pub use meter_link::{MemoryTables, MeterEvent, MeterLink, MeterLinkConfig, MeterTables, Outgoing};
pub use shared::SharedHost;
