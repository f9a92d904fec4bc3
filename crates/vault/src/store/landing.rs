//! The landed-batch encoding of the SQLite store: a batch of share rows as one blob, 32 bytes
//! a row (interval start, meter, two share columns; little-endian), so that landing a batch
//! is one row insert and merging sorts in memory rather than in SQL.

use super::record::RowError;
use super::ShareRecord;

const ROW_BYTES: usize = 32;

/// The blob of a batch.
pub(crate) fn encode(rows: &[ShareRecord]) -> Vec<u8> {
    let mut out = Vec::with_capacity(rows.len() * ROW_BYTES);
    for r in rows {
        out.extend_from_slice(&r.interval_start.to_le_bytes());
        out.extend_from_slice(&r.meter.to_le_bytes());
        out.extend_from_slice(&r.share[0].to_le_bytes());
        out.extend_from_slice(&r.share[1].to_le_bytes());
    }
    out
}

/// Appends the rows of a batch blob to `out`.
pub(crate) fn decode_into(blob: &[u8], out: &mut Vec<ShareRecord>) -> Result<(), RowError> {
    if blob.len() % ROW_BYTES != 0 {
        return Err(RowError::TornBatch(blob.len()));
    }
    out.reserve(blob.len() / ROW_BYTES);
    for row in blob.chunks_exact(ROW_BYTES) {
        let word = |i: usize| -> [u8; 8] {
            let mut w = [0u8; 8];
            if let Some(b) = row.get(i * 8..i * 8 + 8) {
                w.copy_from_slice(b);
            }
            w
        };
        out.push(ShareRecord {
            interval_start: i64::from_le_bytes(word(0)),
            meter: u64::from_le_bytes(word(1)),
            share: [u64::from_le_bytes(word(2)), u64::from_le_bytes(word(3))],
        });
    }
    Ok(())
}

/// Sorts landed rows by key, keeping of each key the row that landed first (`rows` is in
/// arrival order).
pub(crate) fn sort_first_wins(rows: &mut Vec<ShareRecord>) {
    rows.sort_by_key(|r| (r.interval_start, r.meter));
    rows.dedup_by_key(|r| (r.interval_start, r.meter));
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn row(meter: u64, interval_start: i64, share: u64) -> ShareRecord {
        ShareRecord {
            meter,
            interval_start,
            share: [share, !share],
        }
    }

    #[test]
    fn batches_round_trip_and_the_first_landed_copy_wins() {
        let first = vec![row(2, 900, 1), row(1, 900, 2), row(2, 0, 3)];
        let second = vec![row(1, 900, 9), row(0, 1800, 4)];
        let mut rows = Vec::new();
        decode_into(&encode(&first), &mut rows).unwrap();
        decode_into(&encode(&second), &mut rows).unwrap();
        assert_eq!(rows.len(), 5);
        sort_first_wins(&mut rows);
        assert_eq!(
            rows,
            vec![
                row(2, 0, 3),
                row(1, 900, 2),
                row(2, 900, 1),
                row(0, 1800, 4)
            ]
        );
    }

    proptest! {
        #[test]
        fn any_blob_decodes_or_is_refused(blob in proptest::collection::vec(any::<u8>(), 0..300)) {
            let mut rows = Vec::new();
            match decode_into(&blob, &mut rows) {
                Ok(()) => prop_assert_eq!(rows.len() * ROW_BYTES, blob.len()),
                Err(_) => prop_assert!(rows.is_empty()),
            }
        }
    }
}
