//! Share stores: where each store's share columns live, behind one trait.
//!
//! A store holds, for each reading, only its own share columns, keyed by `(meter, interval
//! start)`, plus public metadata (meter → region, interval → TOU tier) that every store keeps a
//! copy of so it can group its sums. Aggregates are computed inside the store as SQL sums,
//! reduced modulo 2^64 or p; the store returns one share row per group.

pub(crate) mod landing;
mod meta;
mod postgres;
mod record;
mod sql;
mod sqlite;

pub use self::postgres::PostgresStore;
pub use meta::{ParseMetaError, StoreMeta};
pub use record::{GroupSum, RowError, ShareRecord, StoreLayout};
pub use sqlite::SqliteStore;

use crate::time::TimeRange;

/// Errors of a share store.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// The SQLite database failed (file missing, locked, corrupt...).
    #[error("sqlite: {0}")]
    Sqlite(#[from] rusqlite::Error),
    /// The PostgreSQL server failed or could not be reached.
    #[error("postgres: {0}")]
    Postgres(#[from] ::postgres::Error),
    /// A stored row or metadata value is not valid.
    #[error("corrupt stored row: {0}")]
    Row(#[from] RowError),
    /// The stored metadata is not valid.
    #[error("corrupt store metadata: {0}")]
    Meta(#[from] ParseMetaError),
    /// The store's connection settings are invalid.
    #[error("invalid store configuration: {0}")]
    Config(String),
}

/// How region totals are grouped in time.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Granularity {
    /// One total per 15-minute interval.
    Interval,
    /// One total per UTC day.
    Day,
}

/// An aggregate a store computes over its share columns.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SumQuery {
    /// Per meter and TOU tier over a time range (billing determinants). Group key:
    /// `(meter, tier)`. Intervals without a tier count as tier 0.
    ByMeterTier {
        /// Intervals covered.
        range: TimeRange,
    },
    /// Per region and interval or day. Group key: `(region, interval or day start)`. Meters
    /// without a region are not counted.
    ByRegion {
        /// One region, or all regions.
        region: Option<u32>,
        /// Intervals covered.
        range: TimeRange,
        /// Interval or day.
        granularity: Granularity,
    },
    /// Per UTC day over all meters (used for consistency checks). Group key: `(day start, 0)`.
    ByDay {
        /// Intervals covered.
        range: TimeRange,
    },
    /// One meter's intervals, each interval its own group, so each group's sum is the share of
    /// a single reading. Group key: `(interval start, 0)`. The vault asks this only for
    /// callers holding the household-data permission ([`crate::Vault::readings`]).
    MeterIntervals {
        /// The meter.
        meter: u64,
        /// Intervals covered.
        range: TimeRange,
    },
}

/// One independent share store (one operator, one location, one set of credentials).
///
/// Implementations must make writes batched and idempotent: re-sending a share row for a key
/// that is already stored leaves the stored row unchanged (first write wins), so that a
/// reading re-ingested with fresh randomness never mixes shares of two different splits. (A
/// batch that a killed process left in some stores only is deleted from them by the vault's
/// ingest journal before the reading comes again.)
pub trait ShareStore: Send {
    /// Where the store is, for logs and reports (never includes credentials).
    fn location(&self) -> String;
    /// The column layout the store was opened with.
    fn layout(&self) -> StoreLayout;
    /// The store's metadata, or `None` if the store is empty (new or lost).
    fn meta(&mut self) -> Result<Option<StoreMeta>, StoreError>;
    /// Writes the store's metadata (once, when the vault is created or the store repaired).
    fn set_meta(&mut self, meta: &StoreMeta) -> Result<(), StoreError>;
    /// Stores share rows in one transaction; rows whose key exists are left unchanged.
    fn put_shares(&mut self, rows: &[ShareRecord]) -> Result<(), StoreError>;
    /// Sets meter → region (public metadata), replacing earlier values.
    fn put_regions(&mut self, rows: &[(u64, u32)]) -> Result<(), StoreError>;
    /// Sets interval start → TOU tier (public metadata), replacing earlier values.
    fn put_tiers(&mut self, rows: &[(i64, u8)]) -> Result<(), StoreError>;
    /// All meter → region rows.
    fn regions(&mut self) -> Result<Vec<(u64, u32)>, StoreError>;
    /// All interval → tier rows.
    fn tiers(&mut self) -> Result<Vec<(i64, u8)>, StoreError>;
    /// The share rows of a time range, ordered by `(interval start, meter)`.
    fn read_shares(&mut self, range: TimeRange) -> Result<Vec<ShareRecord>, StoreError>;
    /// One share column of a time range as `(meter, interval start, value)`, ordered by
    /// `(interval start, meter)`. Repair reads only the columns it copies, so the repairing
    /// process never holds more than the rebuilt store will.
    fn read_column(
        &mut self,
        range: TimeRange,
        column: usize,
    ) -> Result<Vec<(u64, i64, u64)>, StoreError>;
    /// The keys `(meter, interval start)` stored in a time range, in the same order.
    fn keys(&mut self, range: TimeRange) -> Result<Vec<(u64, i64)>, StoreError>;
    /// For each of `keys` `(meter, interval start)`, whether the store holds its share row.
    fn contains_keys(&mut self, keys: &[(u64, i64)]) -> Result<Vec<bool>, StoreError>;
    /// Deletes the share rows of `keys` in one transaction (the vault undoes with it a batch
    /// that a crash left in some stores only).
    fn delete_keys(&mut self, keys: &[(u64, i64)]) -> Result<(), StoreError>;
    /// Deletes everything: shares, metadata, staged refreshes (used to empty an outbox).
    fn clear(&mut self) -> Result<(), StoreError>;
    /// Number of share rows.
    fn count(&mut self) -> Result<u64, StoreError>;
    /// The smallest and one past the largest interval start stored, if any.
    fn extent(&mut self) -> Result<Option<TimeRange>, StoreError>;
    /// Computes an aggregate over the share columns, inside the store.
    fn sums(&mut self, query: &SumQuery) -> Result<Vec<GroupSum>, StoreError>;
    /// Stages refresh deltas (first phase of a refresh); nothing visible changes.
    fn stage_deltas(&mut self, refresh_id: u64, deltas: &[ShareRecord]) -> Result<(), StoreError>;
    /// Adds the staged deltas of `refresh_id` to the shares and forgets them, in one
    /// transaction, recording the refresh as done. Applying a refresh twice is a no-op.
    fn apply_deltas(&mut self, refresh_id: u64) -> Result<(), StoreError>;
    /// Drops the staged deltas of `refresh_id` without applying them.
    fn discard_deltas(&mut self, refresh_id: u64) -> Result<(), StoreError>;
    /// Refresh ids with staged deltas, and refresh ids already applied.
    fn refresh_state(&mut self) -> Result<(Vec<u64>, Vec<u64>), StoreError>;
}

/// The meter id of a group key column.
pub(crate) fn record_meter(k0: i64) -> u64 {
    record::from_sql(k0)
}
