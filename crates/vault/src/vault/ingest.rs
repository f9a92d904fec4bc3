//! Ingest: split every reading in memory, write each store's shares to that store (or to its
//! outbox when it is down), acknowledge once enough stores committed.

use zeroize::Zeroize;

use super::{parallel, Health, Vault};
use crate::error::{Result, VaultError};
use crate::scheme::ShareRow;
use crate::store::ShareRecord;
use crate::store::ShareStore as _;
use crate::time::{TimeRange, TouCalendar, INTERVAL_SECS};

/// One interval reading of one meter.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct Reading {
    /// Meter id.
    pub meter: u64,
    /// Interval start, unix seconds UTC, a multiple of 900.
    pub interval_start: i64,
    /// Energy in the interval, watt-hours (below 2^61 − 1 under Shamir).
    pub wh: u64,
}

impl std::fmt::Debug for Reading {
    // The reading itself is the secret the vault protects: keep it out of logs.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Reading")
            .field("meter", &self.meter)
            .field("interval_start", &self.interval_start)
            .field("wh", &"<secret>")
            .finish()
    }
}

/// What an ingest call achieved.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IngestReceipt {
    /// Readings written: the batch less `deferred`.
    pub readings: usize,
    /// Stores that committed the batch.
    pub committed: Vec<usize>,
    /// Stores that were down: their shares wait in their outbox.
    pub queued: Vec<usize>,
    /// Stores that are lost (empty): their shares will come from `repair`.
    pub skipped: Vec<usize>,
    /// Readings (meter, interval start) not written: an earlier copy of them, half-written by
    /// a process that died, waits to be undone until every store can be asked. Written now,
    /// the stores that kept the earlier split would hold shares of another split than the
    /// rest, so the caller must not acknowledge them and should take them again later.
    pub deferred: Vec<(u64, i64)>,
}

impl Vault {
    /// Splits every reading into shares and stores them: each store gets its own share rows
    /// in one transaction, in parallel. Returns once at least `threshold` stores committed;
    /// stores that are down get their rows in their outbox and catch up when they return.
    ///
    /// Writes are idempotent: a reading already stored (same meter and interval) is left as
    /// it was, in every store and outbox (first write wins), so re-sending a batch is safe.
    ///
    /// Refuses the batch before writing anything if as many stores as the threshold are
    /// down, so that the outboxes on this host never hold enough shares to rebuild a reading.
    ///
    /// Readings of a half-written batch that could not be undone yet (a store was down) are
    /// left out and listed in [`IngestReceipt::deferred`].
    pub fn ingest(&mut self, readings: &[Reading]) -> Result<IngestReceipt> {
        let modulus = self.scheme.modulus();
        for r in readings {
            let bad = |reason| VaultError::InvalidReading {
                meter: r.meter,
                interval_start: r.interval_start,
                reason,
            };
            if r.interval_start < 0 || r.interval_start % INTERVAL_SECS != 0 {
                return Err(bad("interval start must be a non-negative multiple of 900"));
            }
            if !modulus.contains(r.wh) {
                return Err(bad("value must be below 2^61-1 under Shamir sharing"));
            }
        }
        self.ensure_available()?;
        let threshold = self.scheme.threshold();
        let ready = self.ready();
        let down: Vec<usize> = self
            .slots
            .iter()
            .filter(|s| {
                matches!(s.health, Health::Down(_)) || (s.health == Health::Healthy && s.pending)
            })
            .map(|s| s.index)
            .collect();
        if ready.len() < threshold || down.len() >= threshold {
            return Err(VaultError::NotEnoughStores {
                needed: threshold,
                available: ready.len(),
            });
        }

        // Keys still pending (a store was down when a crash was reconciled) stay recorded.
        let carried = self.journal.pending();
        let mut deferred = Vec::new();
        let kept: Vec<Reading>;
        let readings = if carried {
            let pending = self.journal.keys()?;
            let (writable, later): (Vec<Reading>, Vec<Reading>) = readings
                .iter()
                .partition(|r| pending.binary_search(&(r.meter, r.interval_start)).is_err());
            deferred = later.iter().map(|r| (r.meter, r.interval_start)).collect();
            if !deferred.is_empty() {
                tracing::warn!(
                    readings = deferred.len(),
                    "readings of a half-written batch wait until every store can be asked"
                );
            }
            kept = writable;
            kept.as_slice()
        } else {
            readings
        };
        self.journal
            .record(readings.iter().map(|r| (r.meter, r.interval_start)))?;
        let per_store = self.split_all(readings)?;
        let results = {
            let per_store = &per_store;
            parallel(&mut self.slots, &ready, move |i, store| {
                store.put_shares(per_store.get(i).map(Vec::as_slice).unwrap_or(&[]))
            })
        };
        let mut receipt = IngestReceipt {
            readings: readings.len(),
            committed: Vec::new(),
            queued: Vec::new(),
            skipped: Vec::new(),
            deferred,
        };
        for (i, r) in results {
            match r {
                Ok(()) => receipt.committed.push(i),
                Err(e) => {
                    if let Some(slot) = self.slots.get_mut(i) {
                        slot.mark_down(&e);
                    }
                }
            }
        }
        for slot in &mut self.slots {
            if receipt.committed.contains(&slot.index) {
                continue;
            }
            if slot.health == Health::Lost {
                receipt.skipped.push(slot.index);
                continue;
            }
            let rows = per_store.get(slot.index).map(Vec::as_slice).unwrap_or(&[]);
            slot.outbox
                .put_shares(rows)
                .map_err(|source| VaultError::Outbox {
                    store: slot.index,
                    source,
                })?;
            slot.pending = true;
            receipt.queued.push(slot.index);
        }
        // Every store that is not lost holds the batch now, directly or in its outbox.
        if !carried {
            self.journal.clear()?;
        }
        if receipt.committed.len() < threshold {
            return Err(VaultError::NotEnoughStores {
                needed: threshold,
                available: receipt.committed.len(),
            });
        }
        Ok(receipt)
    }

    /// Deletes from every store and outbox the journaled readings that only some of them hold
    /// (a batch a killed process left half-written: never acknowledged, so its meters send
    /// it again), then forgets the journal. While a store that is not lost cannot be asked,
    /// the journal is kept and this runs again on the next operation.
    pub(super) fn reconcile_journal(&mut self) -> Result<()> {
        let keys = self.journal.keys()?;
        let holders: Vec<usize> = self
            .slots
            .iter()
            .filter(|s| s.health != Health::Lost)
            .map(|s| s.index)
            .collect();
        let mut held = vec![0usize; keys.len()];
        for &i in &holders {
            let Some(slot) = self.slots.get_mut(i) else {
                continue;
            };
            let in_outbox = slot
                .outbox
                .contains_keys(&keys)
                .map_err(|source| VaultError::Outbox { store: i, source })?;
            let in_store = match (&slot.health, slot.store.as_mut()) {
                (Health::Healthy, Some(store)) => store.contains_keys(&keys),
                _ => {
                    tracing::warn!(store = i, "store down: a half-written batch waits for it");
                    return Ok(());
                }
            };
            let in_store = match in_store {
                Ok(flags) => flags,
                Err(e) => {
                    slot.mark_down(&e);
                    return Ok(());
                }
            };
            for ((n, a), b) in held.iter_mut().zip(&in_store).zip(&in_outbox) {
                *n += usize::from(*a || *b);
            }
        }
        let partial: Vec<(u64, i64)> = keys
            .iter()
            .zip(&held)
            .filter(|(_, &n)| n > 0 && n < holders.len())
            .map(|(k, _)| *k)
            .collect();
        if !partial.is_empty() {
            for &i in &holders {
                let Some(slot) = self.slots.get_mut(i) else {
                    continue;
                };
                slot.outbox
                    .delete_keys(&partial)
                    .map_err(|source| VaultError::Outbox { store: i, source })?;
                if let Some(store) = slot.store.as_mut() {
                    if let Err(e) = store.delete_keys(&partial) {
                        slot.mark_down(&e);
                        return Ok(());
                    }
                }
            }
            tracing::warn!(
                readings = partial.len(),
                "deleted readings a killed process left in some stores only"
            );
        }
        self.journal.clear()?;
        Ok(())
    }

    /// Splits a batch: one vector of share rows per store. Pure computation.
    fn split_all(&mut self, readings: &[Reading]) -> Result<Vec<Vec<ShareRecord>>> {
        let n = self.scheme.stores();
        let mut rng = self.fresh_rng();
        let mut per_store: Vec<Vec<ShareRecord>> =
            (0..n).map(|_| Vec::with_capacity(readings.len())).collect();
        let mut rows: Vec<ShareRow> = vec![[0; 2]; n];
        for r in readings {
            self.scheme.split(r.wh, &mut rng, &mut rows)?;
            for (out, share) in per_store.iter_mut().zip(rows.iter()) {
                out.push(ShareRecord {
                    meter: r.meter,
                    interval_start: r.interval_start,
                    share: *share,
                });
            }
        }
        // The scratch rows of the last reading would, taken together, rebuild it.
        rows.zeroize();
        Ok(per_store)
    }

    /// Sets the region of one meter (public metadata, copied to every store).
    pub fn set_region(&mut self, meter: u64, region: u32) -> Result<()> {
        self.set_regions(&[(meter, region)])
    }

    /// Sets the regions of many meters.
    pub fn set_regions(&mut self, rows: &[(u64, u32)]) -> Result<()> {
        self.ensure_available()?;
        self.write_public(
            |store| store.put_regions(rows),
            |outbox| outbox.put_regions(rows),
        )
    }

    /// Sets the TOU tier (0..6) of individual intervals.
    pub fn set_interval_tiers(&mut self, rows: &[(i64, u8)]) -> Result<()> {
        if let Some(&(t, tier)) = rows
            .iter()
            .find(|(_, tier)| usize::from(*tier) >= crate::time::TIERS)
        {
            return Err(VaultError::Config(format!(
                "tier {tier} at {t} out of range 0..6"
            )));
        }
        self.ensure_available()?;
        self.write_public(
            |store| store.put_tiers(rows),
            |outbox| outbox.put_tiers(rows),
        )
    }

    /// Assigns every interval of `range` its tier from a daily TOU calendar.
    pub fn set_tou_calendar(&mut self, calendar: &TouCalendar, range: TimeRange) -> Result<()> {
        self.set_interval_tiers(&calendar.intervals(range))
    }

    fn write_public(
        &mut self,
        put: impl Fn(&mut dyn crate::store::ShareStore) -> Result<(), crate::store::StoreError> + Sync,
        queue: impl Fn(&mut crate::store::SqliteStore) -> Result<(), crate::store::StoreError>,
    ) -> Result<()> {
        let ready = self.ready();
        let results = parallel(&mut self.slots, &ready, |_, s| put(s));
        let mut ok = Vec::new();
        for (i, r) in results {
            match r {
                Ok(()) => ok.push(i),
                Err(e) => {
                    if let Some(slot) = self.slots.get_mut(i) {
                        slot.mark_down(&e);
                    }
                }
            }
        }
        for slot in &mut self.slots {
            if ok.contains(&slot.index) || slot.health == Health::Lost {
                continue;
            }
            queue(&mut slot.outbox).map_err(|source| VaultError::Outbox {
                store: slot.index,
                source,
            })?;
            slot.pending = true;
        }
        Ok(())
    }
}
