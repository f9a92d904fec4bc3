//! gridguard vault: household readings kept as secret shares in independent stores; bills and
//! regional totals computed on the shares, only the totals ever reconstructed.
//!
//! - [`scheme`]: the share arithmetic behind [`ShareScheme`] — 2-of-3 replicated over Z_2^64
//!   (default), 2-of-2 additive over Z_2^64, Shamir t-of-n over GF(2^61 − 1). Pure and sans-IO,
//!   randomness injected.
//! - [`store`]: the share stores behind [`ShareStore`] — SQLite (one file per store) and
//!   PostgreSQL (one database or server per store); aggregates are SQL sums inside each store.
//! - [`Vault`]: ingest (split before anything touches disk, per-store outbox for stores that
//!   are down), bills per household and TOU tier, regional totals, consistency checks naming a
//!   lying store, share refresh and store repair.
//!
//! Readings are `u64` watt-hours per 15-minute interval, named by the interval start in unix
//! seconds (UTC). See `README.md` for the threat model.
#![forbid(unsafe_code)]

pub mod decoders;
mod error;
pub mod field;
pub mod scheme;
pub mod store;
pub mod time;
mod vault;

pub use error::{Result, VaultError};
pub use scheme::{Modulus, SchemeSpec, ShareScheme};
pub use store::{Granularity, ShareStore};
pub use time::{Month, ParseDateError, TimeRange, TouCalendar};
pub use vault::combine;
pub use vault::{
    Bill, BillLine, Caller, CheckReport, IngestReceipt, Integrity, MeterReadings, Reading,
    RegionTotal, RegionTotals, RepairReport, StoreConfig, StoreState, StoreStatus, Vault,
    VaultConfig,
};
