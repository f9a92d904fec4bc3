//! Test scenarios run against every store backend (SQLite files, PostgreSQL servers).

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;

use gridguard_vault::scheme::ShareRow;
use gridguard_vault::store::{
    GroupSum, ShareRecord, ShareStore, StoreError, StoreLayout, StoreMeta, SumQuery,
};
use gridguard_vault::{
    Caller, Granularity, Modulus, Month, Reading, SchemeSpec, StoreConfig, StoreState, TimeRange,
    Vault, VaultConfig, VaultError,
};

use super::{calendar, plain_bill, plain_regions, stores_of};

/// A place to run share stores: SQLite files or PostgreSQL servers.
pub trait Backend {
    /// A fresh, empty configuration for `n` stores (each call gives new, empty stores).
    fn fresh(&mut self, n: usize) -> Vec<StoreConfig>;
    /// The outbox folder for the current stores.
    fn outbox_dir(&self) -> PathBuf;
    /// Destroys store `i` of the current set (all its data), leaving an empty store there.
    fn lose(&mut self, i: usize);
    /// Makes store `i` unreachable for writes.
    fn take_down(&mut self, i: usize);
    /// Makes store `i` reachable again.
    fn bring_up(&mut self, i: usize);
    /// Changes one stored share value of store `i` behind the vault's back.
    fn tamper(&mut self, i: usize);
    /// Opens store `i` directly (to wrap it in a lying store).
    fn open_store(&self, i: usize, layout: StoreLayout) -> Box<dyn ShareStore>;
}

pub fn config(b: &mut dyn Backend, spec: SchemeSpec) -> VaultConfig {
    let stores = b.fresh(stores_of(spec));
    VaultConfig::new(spec, stores, b.outbox_dir()).with_min_group_size(1)
}

pub fn month() -> Month {
    Month::new(2026, 3).unwrap()
}

pub fn modulus(spec: SchemeSpec) -> Modulus {
    spec.build().unwrap().modulus()
}

/// Public metadata every scenario uses: 3 regions, the calendar for the month.
pub fn setup_public(
    v: &mut Vault,
    meters: &BTreeSet<u64>,
) -> (BTreeMap<u64, u32>, BTreeMap<i64, u8>) {
    let regions: BTreeMap<u64, u32> = meters.iter().map(|&m| (m, (m % 3) as u32)).collect();
    v.set_regions(&regions.iter().map(|(&m, &r)| (m, r)).collect::<Vec<_>>())
        .unwrap();
    let cal = calendar();
    v.set_tou_calendar(&cal, month().range()).unwrap();
    let tiers = cal.intervals(month().range()).into_iter().collect();
    (regions, tiers)
}

/// Keeps the first reading of each (meter, interval): the vault's first-write-wins rule.
pub fn dedup(readings: &[Reading]) -> Vec<Reading> {
    let mut seen = BTreeSet::new();
    readings
        .iter()
        .copied()
        .filter(|r| seen.insert((r.meter, r.interval_start)))
        .collect()
}

/// Asserts that bills and regional totals computed on shares equal the plaintext results.
pub fn assert_matches_plaintext(
    v: &mut Vault,
    spec: SchemeSpec,
    readings: &[Reading],
    regions: &BTreeMap<u64, u32>,
    tiers: &BTreeMap<i64, u8>,
) {
    let m = modulus(spec);
    let bill = v.bill(month(), &Caller::with_household_data()).unwrap();
    let expected = plain_bill(readings, tiers, month(), m);
    let got: BTreeMap<u64, ([u64; 6], u64)> = bill
        .lines
        .iter()
        .map(|l| (l.meter, (l.tier_wh, l.readings)))
        .collect();
    assert_eq!(got, expected, "bills differ from plaintext under {spec}");
    for g in [Granularity::Interval, Granularity::Day] {
        let got = v
            .region_totals(None, month().range(), g, &Caller::with_household_data())
            .unwrap();
        let got: BTreeMap<(u32, i64), (u64, u64)> = got
            .rows
            .iter()
            .map(|r| ((r.region, r.start), (r.meters, r.wh)))
            .collect();
        let expected = plain_regions(readings, regions, month().range(), g, m);
        assert_eq!(
            got, expected,
            "regional totals differ under {spec} by {g:?}"
        );
    }
    // Single readings (household-data permission) and the stored keys (public metadata).
    let mut keys: BTreeMap<u64, Vec<i64>> = BTreeMap::new();
    for r in readings {
        keys.entry(r.meter).or_default().push(r.interval_start);
    }
    keys.values_mut().for_each(|k| k.sort_unstable());
    assert_eq!(v.stored_intervals(month().range()).unwrap(), keys);
    let counts: BTreeMap<u64, u64> = keys.iter().map(|(&m, k)| (m, k.len() as u64)).collect();
    assert_eq!(v.count_intervals(month().range()).unwrap(), counts);
    for &meter in keys.keys().take(2) {
        let got = v
            .readings(meter, month().range(), &Caller::with_household_data())
            .unwrap();
        let mut want: Vec<(i64, u64)> = readings
            .iter()
            .filter(|r| r.meter == meter)
            .map(|r| (r.interval_start, r.wh))
            .collect();
        want.sort_unstable();
        let got_pairs: Vec<(i64, u64)> = got
            .readings
            .iter()
            .map(|r| (r.interval_start, r.wh))
            .collect();
        assert_eq!(got_pairs, want, "readings of meter {meter} under {spec}");
    }
}

/// Ingests readings and checks every aggregate against plaintext.
pub fn correctness(b: &mut dyn Backend, spec: SchemeSpec, readings: &[Reading], seed: u64) {
    let readings = dedup(readings);
    let mut v = Vault::open_seeded(config(b, spec), seed).unwrap();
    let meters: BTreeSet<u64> = readings.iter().map(|r| r.meter).collect();
    let (regions, tiers) = setup_public(&mut v, &meters);
    for chunk in readings.chunks(997) {
        let receipt = v.ingest(chunk).unwrap();
        assert_eq!(receipt.committed.len(), stores_of(spec));
    }
    // Re-sending is a no-op (first write wins) and does not break the sums.
    v.ingest(&readings).unwrap();
    assert_matches_plaintext(&mut v, spec, &readings, &regions, &tiers);
    let report = v.check().unwrap();
    assert!(report.all_good(), "{report:?}");
    assert_eq!(report.verified, spec != SchemeSpec::Additive2of2);
}

/// Lose one store of a 2-of-3: bills still computed; repair restores it; a re-check matches.
pub fn loss_and_repair(b: &mut dyn Backend, spec: SchemeSpec, readings: &[Reading]) {
    let cfg = config(b, spec);
    let mut v = Vault::open(cfg.clone()).unwrap();
    let meters: BTreeSet<u64> = readings.iter().map(|r| r.meter).collect();
    let (regions, tiers) = setup_public(&mut v, &meters);
    v.ingest(readings).unwrap();
    drop(v);
    let lost = 1;
    b.lose(lost);
    let mut v = Vault::open(cfg.clone()).unwrap();
    assert_eq!(v.check().unwrap().stores[lost].state, StoreState::Lost);
    // Bills still computed from the remaining stores.
    assert_matches_plaintext(&mut v, spec, readings, &regions, &tiers);
    let report = v.repair(lost).unwrap();
    assert_eq!(report.rows, readings.len() as u64);
    assert_eq!(report.missing, 0);
    let check = v.check().unwrap();
    assert!(check.all_good(), "{check:?}");
    assert!(check.verified);
    assert_eq!(check.stores[lost].rows, Some(readings.len() as u64));
    drop(v);
    // The repaired store really carries its shares: lose another store, bills still match.
    let other = 0;
    b.lose(other);
    let mut v = Vault::open(cfg).unwrap();
    assert_matches_plaintext(&mut v, spec, readings, &regions, &tiers);
    v.repair(other).unwrap();
    assert!(v.check().unwrap().all_good());
}

/// Called before (`false`) and after (`true`) each write of shares to a [`Faulty`] store.
pub type PutHook = Box<dyn FnMut(bool) + Send>;

/// A real store with faults injected: it adds `add` to every sum it returns (the adversary),
/// runs `around_put` around each write of shares (to stall or observe it) and fails every
/// call on readings (not the metadata) while `down` is set: a server that answers but cannot
/// serve its tables.
pub struct Faulty {
    pub inner: Box<dyn ShareStore>,
    pub add: u64,
    pub around_put: Option<PutHook>,
    pub down: Option<std::sync::Arc<std::sync::atomic::AtomicBool>>,
}

impl Faulty {
    /// A store that lies about its sums by `add`.
    pub fn lying(inner: Box<dyn ShareStore>, add: u64) -> Self {
        Faulty {
            inner,
            add,
            around_put: None,
            down: None,
        }
    }

    /// A store that runs `hook` around each write of shares.
    pub fn hooked(inner: Box<dyn ShareStore>, hook: PutHook) -> Self {
        Faulty {
            inner,
            add: 0,
            around_put: Some(hook),
            down: None,
        }
    }

    /// A store whose calls on readings fail while `down` is set.
    pub fn switched(
        inner: Box<dyn ShareStore>,
        down: std::sync::Arc<std::sync::atomic::AtomicBool>,
    ) -> Self {
        Faulty {
            inner,
            add: 0,
            around_put: None,
            down: Some(down),
        }
    }

    fn reachable(&self) -> Result<(), StoreError> {
        match &self.down {
            Some(d) if d.load(std::sync::atomic::Ordering::SeqCst) => {
                Err(StoreError::Config("unreachable (test switch)".into()))
            }
            _ => Ok(()),
        }
    }
}

impl ShareStore for Faulty {
    fn location(&self) -> String {
        self.inner.location()
    }
    fn layout(&self) -> StoreLayout {
        self.inner.layout()
    }
    fn meta(&mut self) -> Result<Option<StoreMeta>, StoreError> {
        self.inner.meta()
    }
    fn set_meta(&mut self, meta: &StoreMeta) -> Result<(), StoreError> {
        self.inner.set_meta(meta)
    }
    fn put_shares(&mut self, rows: &[ShareRecord]) -> Result<(), StoreError> {
        self.reachable()?;
        if let Some(hook) = self.around_put.as_mut() {
            hook(false);
        }
        let result = self.inner.put_shares(rows);
        if let Some(hook) = self.around_put.as_mut() {
            hook(true);
        }
        result
    }
    fn put_regions(&mut self, rows: &[(u64, u32)]) -> Result<(), StoreError> {
        self.reachable()?;
        self.inner.put_regions(rows)
    }
    fn put_tiers(&mut self, rows: &[(i64, u8)]) -> Result<(), StoreError> {
        self.reachable()?;
        self.inner.put_tiers(rows)
    }
    fn regions(&mut self) -> Result<Vec<(u64, u32)>, StoreError> {
        self.reachable()?;
        self.inner.regions()
    }
    fn tiers(&mut self) -> Result<Vec<(i64, u8)>, StoreError> {
        self.reachable()?;
        self.inner.tiers()
    }
    fn read_shares(&mut self, range: TimeRange) -> Result<Vec<ShareRecord>, StoreError> {
        self.reachable()?;
        self.inner.read_shares(range)
    }
    fn read_column(
        &mut self,
        range: TimeRange,
        column: usize,
    ) -> Result<Vec<(u64, i64, u64)>, StoreError> {
        self.reachable()?;
        self.inner.read_column(range, column)
    }
    fn keys(&mut self, range: TimeRange) -> Result<Vec<(u64, i64)>, StoreError> {
        self.reachable()?;
        self.inner.keys(range)
    }
    fn contains_keys(&mut self, keys: &[(u64, i64)]) -> Result<Vec<bool>, StoreError> {
        self.reachable()?;
        self.inner.contains_keys(keys)
    }
    fn delete_keys(&mut self, keys: &[(u64, i64)]) -> Result<(), StoreError> {
        self.reachable()?;
        self.inner.delete_keys(keys)
    }
    fn clear(&mut self) -> Result<(), StoreError> {
        self.reachable()?;
        self.inner.clear()
    }
    fn count(&mut self) -> Result<u64, StoreError> {
        self.reachable()?;
        self.inner.count()
    }
    fn extent(&mut self) -> Result<Option<TimeRange>, StoreError> {
        self.reachable()?;
        self.inner.extent()
    }
    fn sums(&mut self, query: &SumQuery) -> Result<Vec<GroupSum>, StoreError> {
        self.reachable()?;
        let m = self.inner.layout().modulus;
        let two = self.inner.layout().columns >= 2;
        let mut out = self.inner.sums(query)?;
        for g in &mut out {
            let s: &mut ShareRow = &mut g.share;
            s[0] = m.add(s[0], self.add);
            if two {
                s[1] = m.add(s[1], self.add);
            }
        }
        Ok(out)
    }
    fn stage_deltas(&mut self, id: u64, d: &[ShareRecord]) -> Result<(), StoreError> {
        self.reachable()?;
        self.inner.stage_deltas(id, d)
    }
    fn apply_deltas(&mut self, id: u64) -> Result<(), StoreError> {
        self.reachable()?;
        self.inner.apply_deltas(id)
    }
    fn discard_deltas(&mut self, id: u64) -> Result<(), StoreError> {
        self.reachable()?;
        self.inner.discard_deltas(id)
    }
    fn refresh_state(&mut self) -> Result<(Vec<u64>, Vec<u64>), StoreError> {
        self.reachable()?;
        self.inner.refresh_state()
    }
}

/// One store adding a constant to its sums is detected and named; answers stay correct when
/// the scheme can identify it.
pub fn liar(b: &mut dyn Backend, spec: SchemeSpec, readings: &[Reading]) {
    let cfg = config(b, spec);
    let mut v = Vault::open(cfg.clone()).unwrap();
    let meters: BTreeSet<u64> = readings.iter().map(|r| r.meter).collect();
    let (regions, tiers) = setup_public(&mut v, &meters);
    v.ingest(readings).unwrap();
    let layout = StoreLayout {
        columns: spec.build().unwrap().columns(),
        modulus: modulus(spec),
    };
    drop(v);
    let n = stores_of(spec);
    for liar_index in 0..n {
        let stores: Vec<Box<dyn ShareStore>> = (0..n)
            .map(|i| {
                let s = b.open_store(i, layout);
                if i == liar_index {
                    Box::new(Faulty::lying(s, 1_000)) as Box<dyn ShareStore>
                } else {
                    s
                }
            })
            .collect();
        let mut v = Vault::with_stores(spec, stores, b.outbox_dir(), 1).unwrap();
        let report = v.check().unwrap();
        assert_eq!(report.lying_stores, vec![liar_index], "{report:?}");
        let bill = v.bill(month(), &Caller::with_household_data()).unwrap();
        assert_eq!(bill.integrity.lying_stores, vec![liar_index]);
        assert_matches_plaintext(&mut v, spec, readings, &regions, &tiers);
    }
    // Tampering with one stored row is caught by the check and the tampered store named.
    b.tamper(2);
    let mut v = Vault::open(cfg).unwrap();
    let report = v.check().unwrap();
    assert_eq!(report.lying_stores, vec![2], "{report:?}");
    assert!(!report.all_good());
}

/// A store that is down gets its rows in its outbox and catches up when it returns.
pub fn outbox(b: &mut dyn Backend, spec: SchemeSpec, readings: &[Reading]) {
    let cfg = config(b, spec);
    let mut v = Vault::open(cfg).unwrap();
    let meters: BTreeSet<u64> = readings.iter().map(|r| r.meter).collect();
    let (regions, tiers) = setup_public(&mut v, &meters);
    let (first, second) = readings.split_at(readings.len() / 2);
    v.ingest(first).unwrap();
    b.take_down(2);
    let receipt = v.ingest(second).unwrap();
    assert_eq!(receipt.committed, vec![0, 1]);
    assert_eq!(receipt.queued, vec![2]);
    // With one store catching up, aggregates come from the others and are still right.
    assert_matches_plaintext(&mut v, spec, readings, &regions, &tiers);
    b.bring_up(2);
    let check = v.check().unwrap();
    assert!(check.all_good(), "{check:?}");
    assert_eq!(check.stores[2].rows, Some(readings.len() as u64));
    assert_matches_plaintext(&mut v, spec, readings, &regions, &tiers);
}

/// Refresh re-randomises every share, keeps every total, and survives a reopen.
pub fn refresh(b: &mut dyn Backend, spec: SchemeSpec, readings: &[Reading]) {
    let cfg = config(b, spec);
    let mut v = Vault::open(cfg.clone()).unwrap();
    let meters: BTreeSet<u64> = readings.iter().map(|r| r.meter).collect();
    let (regions, tiers) = setup_public(&mut v, &meters);
    v.ingest(readings).unwrap();
    let layout = StoreLayout {
        columns: spec.build().unwrap().columns(),
        modulus: modulus(spec),
    };
    let before: Vec<Vec<ShareRecord>> = (0..stores_of(spec))
        .map(|i| b.open_store(i, layout).read_shares(TimeRange::ALL).unwrap())
        .collect();
    let n = v.refresh(month().range()).unwrap();
    assert_eq!(n, readings.len() as u64);
    for (i, old) in before.iter().enumerate() {
        let new = b.open_store(i, layout).read_shares(TimeRange::ALL).unwrap();
        assert_eq!(new.len(), old.len());
        for (a, b) in old.iter().zip(&new) {
            assert_eq!((a.meter, a.interval_start), (b.meter, b.interval_start));
            assert_ne!(a.share, b.share, "share not re-randomised");
        }
    }
    assert_matches_plaintext(&mut v, spec, readings, &regions, &tiers);
    assert!(v.check().unwrap().all_good());
    drop(v);
    let mut v = Vault::open(cfg).unwrap();
    assert_matches_plaintext(&mut v, spec, readings, &regions, &tiers);
}

/// A refresh interrupted after staging everywhere is finished on reopen; one staged only in
/// some stores is dropped. Either way the totals are unchanged.
pub fn interrupted_refresh(b: &mut dyn Backend, spec: SchemeSpec, readings: &[Reading]) {
    use rand_core::SeedableRng;
    let cfg = config(b, spec);
    let mut v = Vault::open(cfg.clone()).unwrap();
    let meters: BTreeSet<u64> = readings.iter().map(|r| r.meter).collect();
    let (regions, tiers) = setup_public(&mut v, &meters);
    v.ingest(readings).unwrap();
    drop(v);
    let scheme = spec.build().unwrap();
    let layout = StoreLayout {
        columns: scheme.columns(),
        modulus: scheme.modulus(),
    };
    let n = scheme.stores();
    let mut rng = rand_chacha::ChaCha20Rng::seed_from_u64(9);
    for (refresh_id, staged_in) in [(77u64, n), (78u64, n - 1)] {
        let mut deltas: Vec<Vec<ShareRecord>> = vec![Vec::new(); n];
        let mut rows = vec![[0u64; 2]; n];
        for r in readings {
            scheme.split(0, &mut rng, &mut rows).unwrap();
            for (d, s) in deltas.iter_mut().zip(&rows) {
                d.push(ShareRecord {
                    meter: r.meter,
                    interval_start: r.interval_start,
                    share: *s,
                });
            }
        }
        for (i, d) in deltas.iter().enumerate().take(staged_in) {
            b.open_store(i, layout).stage_deltas(refresh_id, d).unwrap();
        }
        // The first refresh is also applied in store 0 before the "crash".
        if refresh_id == 77 {
            b.open_store(0, layout).apply_deltas(77).unwrap();
        }
        let before = b.open_store(1, layout).read_shares(TimeRange::ALL).unwrap();
        let mut v = Vault::open(cfg.clone()).unwrap();
        assert!(v.check().unwrap().all_good());
        assert_matches_plaintext(&mut v, spec, readings, &regions, &tiers);
        for i in 0..n {
            let (staged, _) = b.open_store(i, layout).refresh_state().unwrap();
            assert!(staged.is_empty(), "staged deltas left in store {i}");
        }
        let after = b.open_store(1, layout).read_shares(TimeRange::ALL).unwrap();
        assert_eq!(before == after, refresh_id == 78, "refresh {refresh_id}");
    }
}

/// Bills need the household-data permission; small regional groups are refused.
pub fn permissions(b: &mut dyn Backend, readings: &[Reading]) {
    let spec = SchemeSpec::Replicated2of3;
    let cfg = config(b, spec).with_min_group_size(5);
    let mut v = Vault::open(cfg).unwrap();
    let meters: BTreeSet<u64> = readings.iter().map(|r| r.meter).collect();
    setup_public(&mut v, &meters);
    v.ingest(readings).unwrap();
    let outsider = Caller::aggregates_only();
    assert!(matches!(
        v.bill(month(), &outsider),
        Err(VaultError::HouseholdDataRequired)
    ));
    assert!(matches!(
        v.readings(1, month().range(), &outsider),
        Err(VaultError::HouseholdDataRequired)
    ));
    // Put one meter alone in region 99.
    let lonely = *meters.iter().next().unwrap();
    v.set_region(lonely, 99).unwrap();
    match v.region_totals(Some(99), month().range(), Granularity::Day, &outsider) {
        Err(VaultError::GroupTooSmall {
            region: 99,
            meters: 1,
            min: 5,
            ..
        }) => {}
        other => panic!("expected GroupTooSmall, got {other:?}"),
    }
    let allowed = v
        .region_totals(
            Some(99),
            month().range(),
            Granularity::Day,
            &Caller::with_household_data(),
        )
        .unwrap();
    assert!(allowed.rows.iter().all(|r| r.meters == 1));
    // Large enough groups are answered to anyone.
    let ok = v
        .region_totals(Some(1), month().range(), Granularity::Day, &outsider)
        .unwrap();
    assert!(!ok.rows.is_empty());
    assert!(ok.rows.iter().all(|r| r.meters >= 5));
}

/// Each store answers which keys it holds and deletes the keys it is told to, leaving the
/// others (the vault undoes a half-written batch with these).
pub fn key_presence_and_deletion(b: &mut dyn Backend, spec: SchemeSpec, readings: &[Reading]) {
    let cfg = config(b, spec);
    let mut v = Vault::open(cfg).unwrap();
    v.ingest(readings).unwrap();
    drop(v);
    let layout = StoreLayout {
        columns: spec.build().unwrap().columns(),
        modulus: modulus(spec),
    };
    let stored: Vec<(u64, i64)> = readings
        .iter()
        .map(|r| (r.meter, r.interval_start))
        .collect();
    let doomed: Vec<(u64, i64)> = stored.iter().step_by(3).copied().collect();
    let mut asked: Vec<(u64, i64)> = stored.iter().take(50).copied().collect();
    asked.push((u64::MAX, 0));
    asked.push((stored[0].0, stored[0].1 + 7 * 900 * 96 * 365));
    for i in 0..stores_of(spec) {
        let mut store = b.open_store(i, layout);
        let flags = store.contains_keys(&asked).unwrap();
        let want: Vec<bool> = (0..asked.len()).map(|k| k < 50).collect();
        assert_eq!(flags, want, "store {i}");
        store.delete_keys(&doomed).unwrap();
        let left = store.count().unwrap();
        assert_eq!(left as usize, stored.len() - doomed.len(), "store {i}");
        let flags = store.contains_keys(&stored).unwrap();
        for (k, flag) in stored.iter().zip(flags) {
            assert_eq!(flag, !doomed.contains(k), "store {i} key {k:?}");
        }
        assert!(store.contains_keys(&[]).unwrap().is_empty());
        store.delete_keys(&[]).unwrap();
    }
}
