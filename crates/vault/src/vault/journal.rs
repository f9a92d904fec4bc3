//! The ingest journal: the keys of the batch being written, kept in a file beside the outboxes
//! until every store (or its outbox) holds the batch.
//!
//! Each store commits its part of a batch in its own transaction. A process killed between
//! those commits leaves some stores holding a reading that the others lack: the reading was
//! never acknowledged, so its meter sends it again, but it would be split afresh and the stores
//! that kept the first split would hold shares of a different split from the rest. On the next
//! start the vault reads the journal and deletes such readings from every store, so the
//! re-sent copy is stored whole. Until every store can be asked, a re-sent copy of a journaled
//! reading is left out of the batch (`IngestReceipt::deferred`) and its meter sends it again.
//!
//! Format: the magic `GGJ1`, then 16 bytes a key (meter and interval start, little-endian).
//! A batch the process died while recording was not yet sent to any store, so a file whose
//! length is not a whole number of keys describes nothing and is ignored.

use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};

const MAGIC: &[u8; 4] = b"GGJ1";
const KEY_BYTES: usize = 16;

/// The bytes of a journal file holding `keys` (for tests and fuzzing).
pub(crate) fn encode(keys: &[(u64, i64)]) -> Vec<u8> {
    let mut bytes = MAGIC.to_vec();
    for (meter, start) in keys {
        bytes.extend_from_slice(&meter.to_le_bytes());
        bytes.extend_from_slice(&start.to_le_bytes());
    }
    bytes
}

/// The journal file of one vault.
#[derive(Debug)]
pub(super) struct IngestJournal {
    path: PathBuf,
    /// The file holds keys not yet known to be in every store.
    pending: bool,
}

impl IngestJournal {
    /// The journal in `dir`; `pending` if a previous process left keys in it.
    pub(super) fn open(dir: &Path) -> Self {
        let path = dir.join("ingest-journal");
        let pending = std::fs::metadata(&path).is_ok_and(|m| m.len() > 0);
        IngestJournal { path, pending }
    }

    /// Whether keys wait to be reconciled.
    pub(super) fn pending(&self) -> bool {
        self.pending
    }

    /// Records the keys of the batch about to be written. Keys still pending from an earlier
    /// batch are kept: the new ones are appended.
    pub(super) fn record(&mut self, keys: impl Iterator<Item = (u64, i64)>) -> io::Result<()> {
        let mut bytes = Vec::with_capacity(keys.size_hint().0 * KEY_BYTES + MAGIC.len());
        let mut file = if self.pending {
            OpenOptions::new().append(true).open(&self.path)?
        } else {
            bytes.extend_from_slice(MAGIC);
            File::create(&self.path)?
        };
        for (meter, start) in keys {
            bytes.extend_from_slice(&meter.to_le_bytes());
            bytes.extend_from_slice(&start.to_le_bytes());
        }
        file.write_all(&bytes)?;
        self.pending = true;
        Ok(())
    }

    /// Forgets the recorded keys: every store (or its outbox) holds them, or none does.
    pub(super) fn clear(&mut self) -> io::Result<()> {
        File::create(&self.path)?;
        self.pending = false;
        Ok(())
    }

    /// The recorded keys, deduplicated and sorted.
    pub(super) fn keys(&self) -> io::Result<Vec<(u64, i64)>> {
        let bytes = match std::fs::read(&self.path) {
            Ok(b) => b,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(e),
        };
        Ok(parse(&bytes))
    }
}

/// The keys of a journal file; none if it is torn or not a journal.
pub(crate) fn parse(bytes: &[u8]) -> Vec<(u64, i64)> {
    let Some(body) = bytes.strip_prefix(MAGIC) else {
        return Vec::new();
    };
    if body.len() % KEY_BYTES != 0 {
        return Vec::new();
    }
    let mut keys: Vec<(u64, i64)> = body
        .chunks_exact(KEY_BYTES)
        .filter_map(|k| {
            let (meter, start) = k.split_at(8);
            Some((
                u64::from_le_bytes(meter.try_into().ok()?),
                i64::from_le_bytes(start.try_into().ok()?),
            ))
        })
        .collect();
    keys.sort_unstable();
    keys.dedup();
    keys
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn recorded_keys_read_back_until_cleared() {
        let dir = tempfile::tempdir().unwrap();
        let mut j = IngestJournal::open(dir.path());
        assert!(!j.pending());
        j.record([(7, 900), (3, 1800)].into_iter()).unwrap();
        j.record([(7, 900), (1, 0)].into_iter()).unwrap();
        let again = IngestJournal::open(dir.path());
        assert!(again.pending());
        assert_eq!(again.keys().unwrap(), vec![(1, 0), (3, 1800), (7, 900)]);
        j.clear().unwrap();
        assert!(!IngestJournal::open(dir.path()).pending());
        assert!(j.keys().unwrap().is_empty());
        j.record([(9, 2700)].into_iter()).unwrap();
        assert_eq!(j.keys().unwrap(), vec![(9, 2700)]);
    }

    #[test]
    fn a_torn_journal_describes_nothing() {
        let mut bytes = MAGIC.to_vec();
        bytes.extend_from_slice(&[1; KEY_BYTES + 3]);
        assert!(parse(&bytes).is_empty());
        assert!(parse(b"nope").is_empty());
    }

    proptest! {
        #[test]
        fn parse_takes_any_bytes(bytes in proptest::collection::vec(any::<u8>(), 0..200)) {
            let keys = parse(&bytes);
            prop_assert!(keys.windows(2).all(|w| w[0] < w[1]));
        }
    }
}
