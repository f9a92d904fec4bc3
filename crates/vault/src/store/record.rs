//! Typed rows as stored: conversion between SQL integers and share values, with validation.

use crate::scheme::{Modulus, ShareRow};
use crate::time::INTERVAL_SECS;

/// The share columns a store keeps and how it sums them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct StoreLayout {
    /// Share columns per row (1 or 2).
    pub columns: usize,
    /// How the columns are summed.
    pub modulus: Modulus,
}

/// One store's share of one reading.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ShareRecord {
    /// Meter id.
    pub meter: u64,
    /// Interval start, unix seconds, a multiple of 900.
    pub interval_start: i64,
    /// The share columns (column 1 is 0 in one-column layouts).
    pub share: ShareRow,
}

/// One group of an aggregate computed by a store.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct GroupSum {
    /// First part of the group key (meter, region or day start).
    pub k0: i64,
    /// Second part of the group key (tier, interval/day start, or 0).
    pub k1: i64,
    /// Share rows summed.
    pub rows: u64,
    /// Distinct meters in the group.
    pub meters: u64,
    /// The summed share columns.
    pub share: ShareRow,
}

/// A stored row that does not decode.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum RowError {
    /// The interval start is negative or not on a 15-minute boundary.
    #[error("interval start {0} is not a non-negative multiple of 900")]
    BadInterval(i64),
    /// A share value is outside the field of the layout.
    #[error("share value {0} outside the field")]
    OutOfField(u64),
    /// A layout with a second column has no value in it.
    #[error("second share column missing")]
    MissingColumn,
    /// A count is negative.
    #[error("negative count {0}")]
    NegativeCount(i64),
    /// A region or tier is out of range.
    #[error("{what} {value} out of range")]
    OutOfRange {
        /// Which field.
        what: &'static str,
        /// The stored value.
        value: i64,
    },
    /// A landed batch is not a whole number of rows.
    #[error("landed batch of {0} bytes is not whole rows")]
    TornBatch(usize),
}

/// A u64 share value as stored in a signed 64-bit SQL column (two's-complement bit pattern).
pub(crate) fn to_sql(v: u64) -> i64 {
    v as i64
}

/// The u64 share value of a signed 64-bit SQL column.
pub(crate) fn from_sql(v: i64) -> u64 {
    v as u64
}

impl StoreLayout {
    /// Validates and converts stored share columns.
    pub fn share_from_sql(&self, a: i64, b: Option<i64>) -> Result<ShareRow, RowError> {
        let a = from_sql(a);
        let b = match (self.columns, b) {
            (1, _) => 0,
            (_, Some(b)) => from_sql(b),
            (_, None) => return Err(RowError::MissingColumn),
        };
        for v in [a, b] {
            if !self.modulus.contains(v) {
                return Err(RowError::OutOfField(v));
            }
        }
        Ok([a, b])
    }
}

impl ShareRecord {
    /// Validates and converts one stored share row.
    pub fn from_sql(
        layout: &StoreLayout,
        meter: i64,
        interval_start: i64,
        a: i64,
        b: Option<i64>,
    ) -> Result<Self, RowError> {
        if interval_start < 0 || interval_start % INTERVAL_SECS != 0 {
            return Err(RowError::BadInterval(interval_start));
        }
        Ok(ShareRecord {
            meter: from_sql(meter),
            interval_start,
            share: layout.share_from_sql(a, b)?,
        })
    }
}

impl GroupSum {
    /// Validates and converts one aggregate row returned by a store.
    pub fn from_sql(
        layout: &StoreLayout,
        k0: i64,
        k1: i64,
        rows: i64,
        meters: i64,
        a: i64,
        b: Option<i64>,
    ) -> Result<Self, RowError> {
        let count = |c: i64| u64::try_from(c).map_err(|_| RowError::NegativeCount(c));
        Ok(GroupSum {
            k0,
            k1,
            rows: count(rows)?,
            meters: count(meters)?,
            share: layout.share_from_sql(a, b)?,
        })
    }
}

/// Converts a stored region value.
pub(crate) fn region_from_sql(v: i64) -> Result<u32, RowError> {
    u32::try_from(v).map_err(|_| RowError::OutOfRange {
        what: "region",
        value: v,
    })
}

/// Converts a stored tier value.
pub(crate) fn tier_from_sql(v: i64) -> Result<u8, RowError> {
    u8::try_from(v)
        .ok()
        .filter(|&t| usize::from(t) < crate::time::TIERS)
        .ok_or(RowError::OutOfRange {
            what: "tier",
            value: v,
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn stored_rows_decode_or_error(meter: i64, start: i64, a: i64, b: Option<i64>, cols in 1usize..3, prime: bool) {
            let layout = StoreLayout {
                columns: cols,
                modulus: if prime { Modulus::Prime61 } else { Modulus::Wrap64 },
            };
            if let Ok(r) = ShareRecord::from_sql(&layout, meter, start, a, b) {
                prop_assert_eq!(to_sql(r.meter), meter);
                prop_assert_eq!(to_sql(r.share[0]), a);
                prop_assert!(start >= 0 && start % 900 == 0);
            }
            let _ = GroupSum::from_sql(&layout, meter, start, a, start, a, b);
            let _ = region_from_sql(a);
            let _ = tier_from_sql(a);
        }
    }

    #[test]
    fn u64_round_trips_through_sql_integers() {
        for v in [0, 1, u64::MAX, 1 << 63, (1 << 63) - 1] {
            assert_eq!(from_sql(to_sql(v)), v);
        }
    }

    #[test]
    fn rejects_bad_rows() {
        let l = StoreLayout {
            columns: 1,
            modulus: Modulus::Prime61,
        };
        assert_eq!(
            ShareRecord::from_sql(&l, 1, 901, 0, None),
            Err(RowError::BadInterval(901))
        );
        assert_eq!(
            ShareRecord::from_sql(&l, 1, 900, -1, None),
            Err(RowError::OutOfField(u64::MAX))
        );
        let l2 = StoreLayout {
            columns: 2,
            modulus: Modulus::Wrap64,
        };
        assert_eq!(
            ShareRecord::from_sql(&l2, 1, 900, 5, None),
            Err(RowError::MissingColumn)
        );
        assert!(tier_from_sql(6).is_err());
        assert!(region_from_sql(-1).is_err());
    }
}
