//! The vault's error type.

use crate::scheme::{ParseSchemeError, SchemeError, SchemeSpec};
use crate::store::StoreError;

/// Errors of the vault, with variants a caller can act on.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum VaultError {
    /// The configuration is unusable (wrong number of stores, unusable outbox folder...).
    #[error("invalid vault configuration: {0}")]
    Config(String),
    /// The scheme parameters are invalid.
    #[error(transparent)]
    Scheme(#[from] ParseSchemeError),
    /// A store failed while the operation needed it.
    #[error("store {store} ({location}): {source}")]
    Store {
        /// Index of the store.
        store: usize,
        /// Where the store is (no credentials).
        location: String,
        /// What failed.
        #[source]
        source: StoreError,
    },
    /// The local outbox of a store failed.
    #[error("outbox of store {store}: {source}")]
    Outbox {
        /// Index of the store.
        store: usize,
        /// What failed.
        #[source]
        source: StoreError,
    },
    /// A store belongs to another vault, sits at another position, or uses another scheme.
    #[error("store {store} does not belong here: {reason}")]
    StoreMismatch {
        /// Index of the store.
        store: usize,
        /// What did not match.
        reason: String,
    },
    /// A reading cannot be stored.
    #[error("reading of meter {meter} at {interval_start}: {reason}")]
    InvalidReading {
        /// Meter id.
        meter: u64,
        /// Interval start given.
        interval_start: i64,
        /// What is wrong.
        reason: &'static str,
    },
    /// Fewer stores are reachable than the operation needs; nothing was acknowledged.
    #[error("{available} store(s) available, {needed} needed")]
    NotEnoughStores {
        /// Stores the operation needs.
        needed: usize,
        /// Stores that were reachable and up to date.
        available: usize,
    },
    /// The operation (refresh) needs every store reachable and caught up.
    #[error("every store must be available; not available: {unavailable:?}")]
    AllStoresRequired {
        /// Stores that are down, lost or still catching up.
        unavailable: Vec<usize>,
    },
    /// The answer would be per household and the caller lacks the household-data permission.
    #[error(
        "this query returns per-household data; the caller lacks the household-data permission"
    )]
    HouseholdDataRequired,
    /// A group of the answer has fewer households than the configured minimum.
    #[error(
        "region {region} at {start}: {meters} household(s), below the minimum group size {min}"
    )]
    GroupTooSmall {
        /// Region of the group.
        region: u32,
        /// Interval or day start of the group.
        start: i64,
        /// Households in the group.
        meters: u64,
        /// Configured minimum.
        min: u64,
    },
    /// The stores' sums disagree and the lying store could not be singled out.
    #[error("stores disagree; one of {suspects:?} returned wrong sums")]
    Inconsistent {
        /// Stores one of which lied.
        suspects: Vec<usize>,
    },
    /// The scheme cannot rebuild a lost store (2-of-2 additive).
    #[error("scheme {scheme} cannot rebuild a lost store")]
    RepairUnsupported {
        /// The vault's scheme.
        scheme: SchemeSpec,
    },
    /// No store has this index.
    #[error("no store with index {0}")]
    NoSuchStore(usize),
    /// Share arithmetic failed.
    #[error(transparent)]
    Arithmetic(#[from] SchemeError),
    /// A file-system operation failed (outbox folder).
    #[error("i/o: {0}")]
    Io(#[from] std::io::Error),
}

/// Result alias of the vault.
pub type Result<T, E = VaultError> = std::result::Result<T, E>;
