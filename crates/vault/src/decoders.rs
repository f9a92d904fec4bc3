//! The decoders of the vault's own files, public for fuzzing and tests: the landing blob of
//! the SQLite store (a batch of share rows waiting to be merged) and the ingest journal (the
//! keys of the batch in flight). Both files are written by the vault itself; a torn or
//! foreign file must be refused or read as empty, never crash the vault.

use crate::store::{RowError, ShareRecord};

/// The share rows of a landing blob, in landing order.
///
/// # Errors
/// [`RowError::TornBatch`] when the blob is not a whole number of rows.
pub fn decode_landing_blob(blob: &[u8]) -> Result<Vec<ShareRecord>, RowError> {
    let mut rows = Vec::new();
    crate::store::landing::decode_into(blob, &mut rows)?;
    Ok(rows)
}

/// The landing blob of `rows`.
pub fn encode_landing_blob(rows: &[ShareRecord]) -> Vec<u8> {
    crate::store::landing::encode(rows)
}

/// The keys (meter, interval start) an ingest journal file holds, sorted and deduplicated;
/// none for a torn file or one that is not a journal.
pub fn parse_ingest_journal(bytes: &[u8]) -> Vec<(u64, i64)> {
    crate::vault::journal::parse(bytes)
}

/// The bytes of an ingest journal holding `keys`.
pub fn encode_ingest_journal(keys: &[(u64, i64)]) -> Vec<u8> {
    crate::vault::journal::encode(keys)
}
