//! Helpers shared by the vault's integration tests: vault set-up, synthetic load curves and
//! the plaintext reference computations the shared results are compared with.
#![allow(dead_code)]
// Test support code: a failed set-up step should stop the test loudly.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

pub mod pg;
pub mod scenarios;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use gridguard_vault::time::{INTERVAL_SECS, TIERS};
use gridguard_vault::{
    Granularity, Modulus, Month, Reading, SchemeSpec, StoreConfig, TimeRange, TouCalendar,
    VaultConfig,
};
use rand::{Rng, SeedableRng};

/// SQLite store paths inside `dir`.
pub fn sqlite_paths(dir: &Path, n: usize) -> Vec<PathBuf> {
    (0..n)
        .map(|i| dir.join(format!("store-{i}.sqlite")))
        .collect()
}

/// A configuration with `n` SQLite stores in `dir`.
pub fn sqlite_config(dir: &Path, scheme: SchemeSpec, n: usize) -> VaultConfig {
    let stores = sqlite_paths(dir, n)
        .into_iter()
        .map(|path| StoreConfig::Sqlite { path })
        .collect();
    VaultConfig::new(scheme, stores, dir.join("outbox"))
}

/// The number of stores a scheme uses.
pub fn stores_of(spec: SchemeSpec) -> usize {
    spec.build().unwrap().stores()
}

/// A TOU calendar with all six tiers in use.
pub fn calendar() -> TouCalendar {
    let mut cal = TouCalendar::flat(9 * 3600);
    for (i, s) in cal.slots.iter_mut().enumerate() {
        *s = (i / 8) as u8; // 6 blocks of 4 hours
    }
    cal
}

/// A household-like load curve for `meters` meters over the first `days` days of `month`:
/// base load plus a daily shape plus noise, in Wh per 15 minutes.
pub fn load_curve(month: Month, meters: u64, days: i64, seed: u64) -> Vec<Reading> {
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    let start = month.range().start;
    let mut out = Vec::new();
    for slot in 0..(days * 96) {
        let t = start + slot * INTERVAL_SECS;
        let hour = (slot % 96) / 4;
        for m in 0..meters {
            let shape = if (17..22).contains(&hour) { 250 } else { 60 };
            out.push(Reading {
                meter: 1000 + m,
                interval_start: t,
                wh: shape + rng.gen_range(0..120) + m % 7,
            });
        }
    }
    out
}

/// Plaintext billing determinants: meter -> (tier Wh, readings).
pub fn plain_bill(
    readings: &[Reading],
    tiers: &BTreeMap<i64, u8>,
    month: Month,
    modulus: Modulus,
) -> BTreeMap<u64, ([u64; TIERS], u64)> {
    let range = month.range();
    let mut out: BTreeMap<u64, ([u64; TIERS], u64)> = BTreeMap::new();
    for r in readings.iter().filter(|r| range.contains(r.interval_start)) {
        let tier = tiers.get(&r.interval_start).copied().unwrap_or(0) as usize;
        let e = out.entry(r.meter).or_insert(([0; TIERS], 0));
        e.0[tier] = modulus.add(e.0[tier], r.wh);
        e.1 += 1;
    }
    out
}

/// Plaintext regional totals: (region, start) -> (meters, Wh).
pub fn plain_regions(
    readings: &[Reading],
    regions: &BTreeMap<u64, u32>,
    range: TimeRange,
    granularity: Granularity,
    modulus: Modulus,
) -> BTreeMap<(u32, i64), (u64, u64)> {
    let mut meters: BTreeMap<(u32, i64), std::collections::BTreeSet<u64>> = BTreeMap::new();
    let mut out: BTreeMap<(u32, i64), (u64, u64)> = BTreeMap::new();
    for r in readings.iter().filter(|r| range.contains(r.interval_start)) {
        let Some(&region) = regions.get(&r.meter) else {
            continue;
        };
        let start = match granularity {
            Granularity::Interval => r.interval_start,
            Granularity::Day => r.interval_start - r.interval_start.rem_euclid(86_400),
        };
        meters.entry((region, start)).or_default().insert(r.meter);
        let e = out.entry((region, start)).or_insert((0, 0));
        e.1 = modulus.add(e.1, r.wh);
    }
    for (k, v) in out.iter_mut() {
        v.0 = meters[k].len() as u64;
    }
    out
}

/// Every file under `dir`, recursively.
pub fn all_files(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                stack.push(p);
            } else {
                out.push(p);
            }
        }
    }
    out
}

/// Removes a SQLite database and its WAL and shared-memory files.
pub fn delete_sqlite(path: &Path) {
    for suffix in ["", "-wal", "-shm"] {
        let p = PathBuf::from(format!("{}{suffix}", path.display()));
        let _ = std::fs::remove_file(p);
    }
}

/// Finds any of the needles in `hay` (one Aho-Corasick pass over the bytes).
pub fn find_any<'a>(
    hay: &[u8],
    needles: &'a std::collections::HashSet<Vec<u8>>,
) -> Option<&'a Vec<u8>> {
    let list: Vec<&Vec<u8>> = needles.iter().collect();
    let ac = aho_corasick::AhoCorasick::new(&list).unwrap();
    ac.find(hay).map(|m| list[m.pattern().as_usize()])
}

/// The needles for a set of readings: each value as little-endian bytes, big-endian bytes
/// and decimal text.
pub fn reading_patterns(readings: &[Reading]) -> std::collections::HashSet<Vec<u8>> {
    readings
        .iter()
        .flat_map(|r| {
            [
                r.wh.to_le_bytes().to_vec(),
                r.wh.to_be_bytes().to_vec(),
                r.wh.to_string().into_bytes(),
            ]
        })
        .collect()
}
