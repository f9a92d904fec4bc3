//! Keeping the shares healthy: refresh (re-randomise), repair (rebuild a lost store), check
//! (compare every store's sums and name a liar), and status.

use std::collections::{BTreeMap, BTreeSet};

use rand_core::RngCore;

use super::combine::combine;
use super::{parallel, Health, Vault};
use crate::error::{Result, VaultError};
use crate::field;
use crate::scheme::{RepairPlan, ShareRow};
use crate::store::ShareStore as _;
use crate::store::{ShareRecord, SumQuery};
use crate::time::{TimeRange, DAY_SECS};

/// Health of a store as reported by [`Vault::check`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum StoreState {
    /// Reachable, holding this vault's data, caught up.
    Healthy,
    /// Reachable but its outbox still holds rows for it.
    CatchingUp,
    /// Reachable but empty: needs [`Vault::repair`].
    Lost,
    /// Not reachable (the error text).
    Unavailable(String),
}

/// One store in a [`CheckReport`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StoreStatus {
    /// Index of the store.
    pub index: usize,
    /// Where it is (no credentials).
    pub location: String,
    /// Its state.
    pub state: StoreState,
    /// Share rows it holds, if reachable.
    pub rows: Option<u64>,
}

/// Result of [`Vault::check`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CheckReport {
    /// Every store's state.
    pub stores: Vec<StoreStatus>,
    /// Days compared.
    pub days_checked: usize,
    /// Whether redundant shares were available (false for 2-of-2, or with too few stores).
    pub verified: bool,
    /// Stores identified as returning wrong sums or counts.
    pub lying_stores: Vec<usize>,
    /// Days on which the stores disagreed without a single culprit.
    pub unresolved_days: usize,
    /// Stores one of which lied on those days.
    pub suspects: Vec<usize>,
}

impl CheckReport {
    /// True when every store is healthy and nothing disagreed.
    pub fn all_good(&self) -> bool {
        self.lying_stores.is_empty()
            && self.unresolved_days == 0
            && self.stores.iter().all(|s| s.state == StoreState::Healthy)
    }
}

/// Result of [`Vault::repair`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RepairReport {
    /// The store rebuilt.
    pub store: usize,
    /// Share rows written.
    pub rows: u64,
    /// Rows some helper store lacked, which could not be rebuilt.
    pub missing: u64,
}

/// Columns read from helper stores during a repair: `(store, column)` → `(meter, interval
/// start, value)` rows.
type ColumnsRead = BTreeMap<(usize, usize), Vec<(u64, i64, u64)>>;

/// How much time one refresh or repair step covers.
const STEP_SECS: i64 = 7 * DAY_SECS;

impl Vault {
    /// Re-randomises every share of `range` without reconstructing any reading: for each row,
    /// fresh shares of zero are added to the stored shares, inside each store's SQL. Needs
    /// every store reachable and caught up. Works in steps of a week; each step is staged in
    /// every store before any store applies it, so a crash leaves either nothing or a step
    /// that [`Vault::ensure_available`] finishes.
    pub fn refresh(&mut self, range: TimeRange) -> Result<u64> {
        self.ensure_available()?;
        self.require_all()?;
        let n = self.slots.len();
        let all: Vec<usize> = (0..n).collect();
        let mut refreshed = 0u64;
        // Only the part of the range that holds data is walked (the range may be
        // `TimeRange::ALL`).
        let extent = {
            let slot = self.slots.first_mut().ok_or(VaultError::NoSuchStore(0))?;
            let store = slot.store.as_mut().ok_or(VaultError::NoSuchStore(0))?;
            match store.extent() {
                Ok(e) => e,
                Err(e) => return Err(slot.store_err(e)),
            }
        };
        let Some(extent) = extent else {
            return Ok(0);
        };
        let range = TimeRange::new(range.start.max(extent.start), range.end.min(extent.end));
        for step in range.chunks(STEP_SECS) {
            let keys = {
                let slot = self.slots.first_mut().ok_or(VaultError::NoSuchStore(0))?;
                let store = slot.store.as_mut().ok_or(VaultError::NoSuchStore(0))?;
                match store.keys(step) {
                    Ok(k) => k,
                    Err(e) => return Err(slot.store_err(e)),
                }
            };
            if keys.is_empty() {
                continue;
            }
            let mut rng = self.fresh_rng();
            let refresh_id = rng.next_u64();
            let mut deltas: Vec<Vec<ShareRecord>> =
                (0..n).map(|_| Vec::with_capacity(keys.len())).collect();
            let mut rows: Vec<ShareRow> = vec![[0; 2]; n];
            for &(meter, interval_start) in &keys {
                self.scheme.split(0, &mut rng, &mut rows)?;
                for (d, share) in deltas.iter_mut().zip(&rows) {
                    d.push(ShareRecord {
                        meter,
                        interval_start,
                        share: *share,
                    });
                }
            }
            let staged = {
                let deltas = &deltas;
                parallel(&mut self.slots, &all, move |i, s| {
                    s.stage_deltas(refresh_id, deltas.get(i).map(Vec::as_slice).unwrap_or(&[]))
                })
            };
            if let Some((i, Err(e))) = staged.into_iter().find(|(_, r)| r.is_err()) {
                // Not staged everywhere: nothing was applied, drop it where it was staged.
                let _ = parallel(&mut self.slots, &all, |_, s| s.discard_deltas(refresh_id));
                let slot = self.slots.get_mut(i).ok_or(VaultError::NoSuchStore(i))?;
                let err = slot.store_err(e);
                return Err(err);
            }
            let applied = parallel(&mut self.slots, &all, |_, s| s.apply_deltas(refresh_id));
            for (i, r) in applied {
                if let Err(e) = r {
                    // Staged everywhere: the store applies it when it is back.
                    let slot = self.slots.get_mut(i).ok_or(VaultError::NoSuchStore(i))?;
                    slot.mark_down(&e);
                    return Err(slot.store_err(e));
                }
            }
            refreshed += keys.len() as u64;
        }
        Ok(refreshed)
    }

    /// Finishes refreshes a crash left half-way, once every store is reachable: a refresh
    /// staged in every store (or applied in one) is applied everywhere; one staged only in
    /// some stores was never applied anywhere and is dropped.
    pub(crate) fn resume_refreshes(&mut self) -> Result<()> {
        let n = self.slots.len();
        if self
            .slots
            .iter()
            .any(|s| s.health != Health::Healthy || s.store.is_none())
        {
            return Ok(());
        }
        let all: Vec<usize> = (0..n).collect();
        let states = parallel(&mut self.slots, &all, |_, s| s.refresh_state());
        let mut staged: BTreeMap<u64, usize> = BTreeMap::new();
        let mut done: BTreeSet<u64> = BTreeSet::new();
        let mut failed = false;
        let mut answers = Vec::new();
        for (i, r) in states {
            match r {
                Ok(x) => answers.push(x),
                Err(e) => {
                    // Finished later, when the store is back.
                    if let Some(slot) = self.slots.get_mut(i) {
                        slot.mark_down(&e);
                    }
                    failed = true;
                }
            }
        }
        if failed {
            return Ok(());
        }
        for (s, d) in answers {
            for id in s {
                *staged.entry(id).or_default() += 1;
            }
            done.extend(d);
        }
        for (id, count) in staged {
            let complete = count == n || done.contains(&id);
            tracing::info!(refresh_id = id, complete, "resuming interrupted refresh");
            let results = parallel(&mut self.slots, &all, |_, s| {
                if complete {
                    s.apply_deltas(id)
                } else {
                    s.discard_deltas(id)
                }
            });
            for (i, r) in results {
                if let Err(e) = r {
                    if let Some(slot) = self.slots.get_mut(i) {
                        slot.mark_down(&e);
                    }
                }
            }
        }
        Ok(())
    }

    fn require_all(&self) -> Result<()> {
        let unavailable: Vec<usize> = self
            .slots
            .iter()
            .filter(|s| !s.ready())
            .map(|s| s.index)
            .collect();
        if unavailable.is_empty() {
            Ok(())
        } else {
            Err(VaultError::AllStoresRequired { unavailable })
        }
    }

    /// Rebuilds store `index` (lost, emptied or suspected) from the other stores without
    /// reconstructing any reading where the scheme allows it: under 2-of-3 replicated sharing
    /// each of its two columns is a copy of a column another store holds, and only those
    /// columns are read. Under Shamir the new share is interpolated from `t` other shares, so
    /// the repairing process transiently holds enough to rebuild readings (see README).
    /// 2-of-2 additive sharing cannot repair.
    pub fn repair(&mut self, index: usize) -> Result<RepairReport> {
        self.ensure_available()?;
        let n = self.slots.len();
        let target = self
            .slots
            .get(index)
            .ok_or(VaultError::NoSuchStore(index))?;
        if target.store.is_none() {
            return Err(VaultError::NotEnoughStores {
                needed: 1,
                available: 0,
            });
        }
        let available: Vec<bool> = (0..n)
            .map(|i| i != index && self.slots.get(i).is_some_and(|s| s.ready()))
            .collect();
        let plan =
            self.scheme
                .repair_plan(index, &available)
                .ok_or_else(|| match self.scheme.spec() {
                    crate::SchemeSpec::Additive2of2 => VaultError::RepairUnsupported {
                        scheme: self.scheme.spec(),
                    },
                    _ => VaultError::NotEnoughStores {
                        needed: self.scheme.threshold(),
                        available: available.iter().filter(|a| **a).count(),
                    },
                })?;
        // (helper store, its column) pairs to read, and how each feeds the target.
        let reads: Vec<(usize, usize)> = match &plan {
            RepairPlan::Copy(cols) => cols.iter().map(|&(_, src, col)| (src, col)).collect(),
            RepairPlan::Interpolate(helpers) => helpers.iter().map(|&(h, _)| (h, 0)).collect(),
        };
        let helper = reads
            .first()
            .map(|r| r.0)
            .ok_or(VaultError::NoSuchStore(index))?;
        // Public metadata and the overall extent from the first helper.
        let (regions, tiers, extent) = {
            let slot = self
                .slots
                .get_mut(helper)
                .ok_or(VaultError::NoSuchStore(helper))?;
            let store = slot.store.as_mut().ok_or(VaultError::NoSuchStore(helper))?;
            let r = (|| Ok((store.regions()?, store.tiers()?, store.extent()?)))();
            r.map_err(|e| slot.store_err(e))?
        };
        {
            let slot = self
                .slots
                .get_mut(index)
                .ok_or(VaultError::NoSuchStore(index))?;
            let store = slot.store.as_mut().ok_or(VaultError::NoSuchStore(index))?;
            let r = (|| {
                store.clear()?;
                store.put_regions(&regions)?;
                store.put_tiers(&tiers)
            })();
            r.map_err(|e| slot.store_err(e))?;
        }
        let mut report = RepairReport {
            store: index,
            rows: 0,
            missing: 0,
        };
        for step in extent.iter().flat_map(|e| e.chunks(STEP_SECS)) {
            let helpers: Vec<usize> = reads.iter().map(|r| r.0).collect();
            let reads_ref = &reads;
            let columns = parallel(&mut self.slots, &helpers, move |i, s| {
                let cols: Vec<usize> = reads_ref.iter().filter(|r| r.0 == i).map(|r| r.1).collect();
                cols.into_iter()
                    .map(|c| Ok(((i, c), s.read_column(step, c)?)))
                    .collect::<Result<Vec<_>, _>>()
            });
            let mut by_read = ColumnsRead::new();
            for (i, r) in columns {
                match r {
                    Ok(v) => by_read.extend(v),
                    Err(e) => {
                        let slot = self.slots.get_mut(i).ok_or(VaultError::NoSuchStore(i))?;
                        return Err(slot.store_err(e));
                    }
                }
            }
            let (rows, missing) = rebuild(&plan, &by_read, self.scheme.columns());
            report.missing += missing;
            report.rows += rows.len() as u64;
            let slot = self
                .slots
                .get_mut(index)
                .ok_or(VaultError::NoSuchStore(index))?;
            let store = slot.store.as_mut().ok_or(VaultError::NoSuchStore(index))?;
            if let Err(e) = store.put_shares(&rows) {
                return Err(slot.store_err(e));
            }
        }
        self.init_meta(index)?;
        let slot = self
            .slots
            .get_mut(index)
            .ok_or(VaultError::NoSuchStore(index))?;
        // Everything the outbox held is in the rebuilt rows already.
        slot.outbox.clear().map_err(|source| VaultError::Outbox {
            store: index,
            source,
        })?;
        slot.pending = false;
        slot.health = Health::Healthy;
        tracing::info!(
            store = index,
            rows = report.rows,
            missing = report.missing,
            "store repaired"
        );
        Ok(report)
    }

    /// Compares every store's per-day sums over all data and reports each store's state, the
    /// stores caught lying (wrong sums or wrong row counts) and days that disagree without a
    /// single culprit. Reconstructs only per-day totals, which it discards.
    pub fn check(&mut self) -> Result<CheckReport> {
        self.ensure_available()?;
        let mut stores = Vec::new();
        for slot in &mut self.slots {
            let state = match (&slot.health, slot.pending) {
                (Health::Healthy, false) => StoreState::Healthy,
                (Health::Healthy, true) => StoreState::CatchingUp,
                (Health::Lost, _) => StoreState::Lost,
                (Health::Down(e), _) => StoreState::Unavailable(e.clone()),
            };
            let rows = match (&state, slot.store.as_mut()) {
                (StoreState::Unavailable(_), _) | (_, None) => None,
                (_, Some(s)) => s.count().ok(),
            };
            stores.push(StoreStatus {
                index: slot.index,
                location: slot.location.clone(),
                state,
                rows,
            });
        }
        let (_, answers) = self.gather(&SumQuery::ByDay {
            range: TimeRange::ALL,
        })?;
        let combined = combine(&*self.scheme, &answers, false, |_, _, _| Ok(true))?;
        Ok(CheckReport {
            stores,
            days_checked: combined.totals.len() + combined.unresolved,
            verified: combined.checked,
            lying_stores: combined.liars.iter().copied().collect(),
            unresolved_days: combined.unresolved,
            suspects: combined.suspects.iter().copied().collect(),
        })
    }

    /// Every store's state and share row count (when reachable), without comparing sums.
    pub fn status(&mut self) -> Vec<StoreStatus> {
        let _ = self.ensure_available();
        self.slots
            .iter_mut()
            .map(|s| {
                let state = match (&s.health, s.pending) {
                    (Health::Healthy, false) => StoreState::Healthy,
                    (Health::Healthy, true) => StoreState::CatchingUp,
                    (Health::Lost, _) => StoreState::Lost,
                    (Health::Down(e), _) => StoreState::Unavailable(e.clone()),
                };
                let rows = match (&state, s.store.as_mut()) {
                    (StoreState::Unavailable(_), _) | (_, None) => None,
                    (_, Some(store)) => store.count().ok(),
                };
                StoreStatus {
                    index: s.index,
                    location: s.location.clone(),
                    state,
                    rows,
                }
            })
            .collect()
    }

    /// Share rows waiting in each store's outbox (index by store).
    pub fn outbox_rows(&mut self) -> Result<Vec<u64>> {
        self.slots
            .iter_mut()
            .map(|s| {
                s.outbox.count().map_err(|source| VaultError::Outbox {
                    store: s.index,
                    source,
                })
            })
            .collect()
    }
}

/// Builds the target's rows from the columns read. Rows that a helper lacks are skipped and
/// counted as missing.
fn rebuild(plan: &RepairPlan, reads: &ColumnsRead, columns: usize) -> (Vec<ShareRecord>, u64) {
    // key (interval, meter) -> values per read, in plan order.
    let order: Vec<(usize, usize)> = match plan {
        RepairPlan::Copy(cols) => cols.iter().map(|&(_, s, c)| (s, c)).collect(),
        RepairPlan::Interpolate(h) => h.iter().map(|&(s, _)| (s, 0)).collect(),
    };
    let mut merged: BTreeMap<(i64, u64), Vec<Option<u64>>> = BTreeMap::new();
    for (pos, key) in order.iter().enumerate() {
        for &(meter, start, v) in reads.get(key).map(Vec::as_slice).unwrap_or(&[]) {
            let e = merged
                .entry((start, meter))
                .or_insert_with(|| vec![None; order.len()]);
            if let Some(cell) = e.get_mut(pos) {
                *cell = Some(v);
            }
        }
    }
    let mut out = Vec::with_capacity(merged.len());
    let mut missing = 0;
    for ((interval_start, meter), vals) in merged {
        let Some(vals): Option<Vec<u64>> = vals.into_iter().collect() else {
            missing += 1;
            continue;
        };
        let mut share: ShareRow = [0; 2];
        match plan {
            RepairPlan::Copy(cols) => {
                for (&(target_col, _, _), v) in cols.iter().zip(&vals) {
                    if let Some(c) = share.get_mut(target_col) {
                        *c = *v;
                    }
                }
            }
            RepairPlan::Interpolate(helpers) => {
                share[0] = helpers.iter().zip(&vals).fold(0, |acc, (&(_, coeff), &v)| {
                    field::add(acc, field::mul(coeff, v))
                });
            }
        }
        if columns < 2 {
            share[1] = 0;
        }
        out.push(ShareRecord {
            meter,
            interval_start,
            share,
        });
    }
    (out, missing)
}
