//! Aggregates: billing determinants per household and TOU tier, and regional totals.

use std::collections::BTreeMap;

use super::combine::{combine, Combined};
use super::Reading;
use super::{parallel, Vault};
use crate::error::{Result, VaultError};
use crate::store::{Granularity, GroupSum, SumQuery};
use crate::time::{Month, TimeRange, TIERS};

/// Each store's answer to one aggregate (`None`: not asked or failed).
pub(crate) type Answers = Vec<Option<Vec<GroupSum>>>;

/// Who is asking, and what they may see.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Caller {
    household_data: bool,
}

impl Caller {
    /// A caller allowed only aggregates over at least the minimum group size.
    pub fn aggregates_only() -> Self {
        Caller {
            household_data: false,
        }
    }

    /// A caller holding the household-data permission (billing, customer support).
    pub fn with_household_data() -> Self {
        Caller {
            household_data: true,
        }
    }

    /// Whether the caller may see per-household values.
    pub fn may_see_households(&self) -> bool {
        self.household_data
    }
}

/// How far an answer could be checked across stores.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Integrity {
    /// Stores whose sums were used.
    pub stores_used: Vec<usize>,
    /// Whether redundant shares were available and compared.
    pub checked: bool,
    /// Stores caught returning wrong sums (left out of the answer).
    pub lying_stores: Vec<usize>,
}

/// The billing determinants of one household for one month.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BillLine {
    /// Meter id.
    pub meter: u64,
    /// Energy per TOU tier, watt-hours (mod 2^64, or mod p under Shamir).
    pub tier_wh: [u64; TIERS],
    /// Interval readings present in the month (for gap detection).
    pub readings: u64,
}

/// A month's bills.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Bill {
    /// The month billed.
    pub month: Month,
    /// One line per meter with readings, ordered by meter.
    pub lines: Vec<BillLine>,
    /// Cross-store check result.
    pub integrity: Integrity,
}

/// The total of one region over one interval or day.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RegionTotal {
    /// Region.
    pub region: u32,
    /// Interval start or day start.
    pub start: i64,
    /// Households that contributed.
    pub meters: u64,
    /// Readings summed.
    pub readings: u64,
    /// Total energy, watt-hours.
    pub wh: u64,
}

/// Regional totals with their integrity report.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RegionTotals {
    /// Ordered by region, then start.
    pub rows: Vec<RegionTotal>,
    /// Cross-store check result.
    pub integrity: Integrity,
}

/// One meter's interval readings, reconstructed from the shares.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MeterReadings {
    /// The meter.
    pub meter: u64,
    /// The time range asked for.
    pub range: TimeRange,
    /// The readings stored in the range, ordered by interval start.
    pub readings: Vec<Reading>,
    /// Cross-store check result.
    pub integrity: Integrity,
}

impl Vault {
    /// Asks every ready store for `query`, in parallel, and returns their answers by store.
    pub(crate) fn gather(&mut self, query: &SumQuery) -> Result<(Vec<usize>, Answers)> {
        self.ensure_available()?;
        let ready = self.ready();
        if ready.len() < self.scheme.threshold() {
            return Err(VaultError::NotEnoughStores {
                needed: self.scheme.threshold(),
                available: ready.len(),
            });
        }
        let results = parallel(&mut self.slots, &ready, |_, s| s.sums(query));
        let mut answers = vec![None; self.slots.len()];
        let mut used = Vec::new();
        for (i, r) in results {
            match r {
                Ok(a) => {
                    if let Some(slot) = answers.get_mut(i) {
                        *slot = Some(a);
                        used.push(i);
                    }
                }
                Err(e) => {
                    if let Some(slot) = self.slots.get_mut(i) {
                        slot.mark_down(&e);
                    }
                }
            }
        }
        Ok((used, answers))
    }

    /// Monthly billing determinants: for every household, the energy per TOU tier. Needs the
    /// household-data permission. Each store sums its shares per (meter, tier) in SQL; only
    /// these per-tier totals are reconstructed.
    pub fn bill(&mut self, month: Month, caller: &Caller) -> Result<Bill> {
        if !caller.may_see_households() {
            return Err(VaultError::HouseholdDataRequired);
        }
        let query = SumQuery::ByMeterTier {
            range: month.range(),
        };
        let (used, answers) = self.gather(&query)?;
        let combined = combine(&*self.scheme, &answers, true, |_, _, _| Ok(true))?;
        let mut lines: std::collections::BTreeMap<u64, BillLine> = Default::default();
        for t in &combined.totals {
            let meter = crate::store::record_meter(t.k0);
            let line = lines.entry(meter).or_insert(BillLine {
                meter,
                tier_wh: [0; TIERS],
                readings: 0,
            });
            if let Some(slot) = usize::try_from(t.k1)
                .ok()
                .and_then(|k| line.tier_wh.get_mut(k))
            {
                *slot = t.value;
            }
            line.readings += t.rows;
        }
        Ok(Bill {
            month,
            lines: lines.into_values().collect(),
            integrity: integrity(used, &combined),
        })
    }

    /// Totals per region and interval or day over `range`, for one region or all. Refuses
    /// (`GroupTooSmall`) when a group covers fewer households than the minimum group size,
    /// unless the caller holds the household-data permission.
    pub fn region_totals(
        &mut self,
        region: Option<u32>,
        range: TimeRange,
        granularity: Granularity,
        caller: &Caller,
    ) -> Result<RegionTotals> {
        let query = SumQuery::ByRegion {
            region,
            range,
            granularity,
        };
        let (used, answers) = self.gather(&query)?;
        let min = self.min_group_size;
        let allowed = caller.may_see_households();
        // The group sizes are checked before anything is reconstructed.
        let combined = combine(&*self.scheme, &answers, true, |k0, k1, (_, meters)| {
            if !allowed && meters < min {
                return Err(VaultError::GroupTooSmall {
                    region: u32::try_from(k0).unwrap_or(u32::MAX),
                    start: k1,
                    meters,
                    min,
                });
            }
            Ok(true)
        })?;
        let mut rows: Vec<RegionTotal> = combined
            .totals
            .iter()
            .map(|t| RegionTotal {
                region: u32::try_from(t.k0).unwrap_or(u32::MAX),
                start: t.k1,
                meters: t.meters,
                readings: t.rows,
                wh: t.value,
            })
            .collect();
        rows.sort_by_key(|r| (r.region, r.start));
        Ok(RegionTotals {
            rows,
            integrity: integrity(used, &combined),
        })
    }
}

impl Vault {
    /// One meter's interval readings over `range`, each reconstructed from the shares. Needs
    /// the household-data permission: this is the only query that reconstructs single
    /// readings. Every ready store is asked in parallel; the answers are compared as for any
    /// aggregate, so a store that returns a wrong share is named in
    /// [`Integrity::lying_stores`] and left out.
    pub fn readings(
        &mut self,
        meter: u64,
        range: TimeRange,
        caller: &Caller,
    ) -> Result<MeterReadings> {
        if !caller.may_see_households() {
            return Err(VaultError::HouseholdDataRequired);
        }
        let (used, answers) = self.gather(&SumQuery::MeterIntervals { meter, range })?;
        let combined = combine(&*self.scheme, &answers, true, |_, _, _| Ok(true))?;
        let mut readings: Vec<Reading> = combined
            .totals
            .iter()
            .map(|t| Reading {
                meter,
                interval_start: t.k0,
                wh: t.value,
            })
            .collect();
        readings.sort_by_key(|r| r.interval_start);
        Ok(MeterReadings {
            meter,
            range,
            readings,
            integrity: integrity(used, &combined),
        })
    }

    /// Which `(meter, interval)` keys are stored in `range`: for each meter, its interval
    /// starts in ascending order. Only public metadata (which meter reported when, which every
    /// store sees) is read, from the first ready store that answers; no share is read and
    /// nothing is reconstructed, so no permission is needed. Meant for gap detection, e.g. by
    /// a head-end after a restart. A store that fails is marked down and the next one asked.
    pub fn stored_intervals(&mut self, range: TimeRange) -> Result<BTreeMap<u64, Vec<i64>>> {
        let keys = self.stored_keys(range)?;
        let mut out: BTreeMap<u64, Vec<i64>> = BTreeMap::new();
        // The store returns keys ordered by (interval, meter): each meter's list is sorted.
        for (meter, start) in keys {
            out.entry(meter).or_default().push(start);
        }
        Ok(out)
    }

    /// How many intervals each meter has stored in `range` (public metadata, read like
    /// [`Vault::stored_intervals`]).
    pub fn count_intervals(&mut self, range: TimeRange) -> Result<BTreeMap<u64, u64>> {
        let keys = self.stored_keys(range)?;
        let mut out: BTreeMap<u64, u64> = BTreeMap::new();
        for (meter, _) in keys {
            *out.entry(meter).or_default() += 1;
        }
        Ok(out)
    }

    fn stored_keys(&mut self, range: TimeRange) -> Result<Vec<(u64, i64)>> {
        self.ensure_available()?;
        let ready = self.ready();
        let mut last = None;
        for i in ready {
            let Some(slot) = self.slots.get_mut(i) else {
                continue;
            };
            let Some(store) = slot.store.as_mut() else {
                continue;
            };
            match store.keys(range) {
                Ok(k) => return Ok(k),
                Err(e) => {
                    slot.mark_down(&e);
                    last = Some(slot.store_err(e));
                }
            }
        }
        Err(last.unwrap_or(VaultError::NotEnoughStores {
            needed: 1,
            available: 0,
        }))
    }
}

pub(crate) fn integrity(used: Vec<usize>, combined: &Combined) -> Integrity {
    Integrity {
        stores_used: used,
        checked: combined.checked,
        lying_stores: combined.liars.iter().copied().collect(),
    }
}
