//! Secrecy: what a single store holds is uniformly random whatever the readings are, and no
//! file the vault writes (stores, WAL, outbox) contains a plaintext reading.

// Test support code: a failed set-up step should stop the test loudly.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod common;

use std::path::Path;

use common::scenarios;
use common::{all_files, find_any, load_curve, reading_patterns, sqlite_config, sqlite_paths};
use gridguard_vault::field::P;
use gridguard_vault::store::SqliteStore;
use gridguard_vault::{Modulus, Reading, SchemeSpec, Vault};

/// Upper critical value of chi-square with `df` degrees of freedom at significance 0.001
/// (Wilson–Hilferty approximation; z = 3.0902 is the standard normal 0.999 quantile).
fn chi2_critical_001(df: f64) -> f64 {
    let z = 3.0902;
    let a = 2.0 / (9.0 * df);
    df * (1.0 - a + z * a.sqrt()).powi(3)
}

/// Maps a share value to one of 256 equally likely bins: its top byte (Z_2^64), or its
/// position in 0..p scaled to 256 bins (GF(p)); `low` picks the low byte instead.
fn bin(v: u64, m: Modulus, low: bool) -> usize {
    if low {
        return (v & 0xff) as usize;
    }
    match m {
        Modulus::Wrap64 => (v >> 56) as usize,
        Modulus::Prime61 => ((u128::from(v) * 256) / u128::from(P)) as usize,
    }
}

fn histogram(values: &[u64], m: Modulus, low: bool) -> [f64; 256] {
    let mut h = [0.0; 256];
    for &v in values {
        h[bin(v, m, low)] += 1.0;
    }
    h
}

/// Chi-square statistic of a histogram against the uniform distribution.
fn chi2_uniform(h: &[f64; 256]) -> f64 {
    let n: f64 = h.iter().sum();
    let e = n / 256.0;
    h.iter().map(|o| (o - e) * (o - e) / e).sum()
}

/// Chi-square statistic of the 2×256 contingency table (are both samples from one law?).
fn chi2_two_sample(a: &[f64; 256], b: &[f64; 256]) -> f64 {
    let (na, nb): (f64, f64) = (a.iter().sum(), b.iter().sum());
    let n = na + nb;
    let mut stat = 0.0;
    for (x, y) in a.iter().zip(b) {
        let col = x + y;
        if col == 0.0 {
            continue;
        }
        let (ea, eb) = (na * col / n, nb * col / n);
        stat += (x - ea) * (x - ea) / ea + (y - eb) * (y - eb) / eb;
    }
    stat
}

/// All values of one share column of a SQLite store file.
fn column(path: &Path, col: &str) -> Vec<u64> {
    let conn = rusqlite::Connection::open(path).unwrap();
    let mut stmt = conn
        .prepare(&format!(
            "SELECT {col} FROM shares ORDER BY interval_start, meter"
        ))
        .unwrap();
    let rows = stmt.query_map([], |r| r.get::<_, i64>(0)).unwrap();
    rows.map(|v| v.unwrap() as u64).collect()
}

fn store_month(
    dir: &Path,
    spec: SchemeSpec,
    readings: &[Reading],
    seed: u64,
) -> Vec<Vec<Vec<u64>>> {
    let n = common::stores_of(spec);
    let mut v = Vault::open_seeded(sqlite_config(dir, spec, n), seed).unwrap();
    v.ingest(readings).unwrap();
    drop(v);
    let cols: &[&str] = if spec == SchemeSpec::Replicated2of3 {
        &["a", "b"]
    } else {
        &["a"]
    };
    sqlite_paths(dir, n)
        .iter()
        .map(|p| cols.iter().map(|c| column(p, c)).collect())
        .collect()
}

/// The same month stored twice, once all zeros and once a real load curve: every single
/// store's share columns are uniform, and indistinguishable between the two.
#[test]
fn single_store_columns_are_uniform_and_independent_of_the_readings() {
    let month = scenarios::month();
    let real = load_curve(month, 10, 30, 11);
    let zeros: Vec<Reading> = real.iter().map(|r| Reading { wh: 0, ..*r }).collect();
    let critical = chi2_critical_001(255.0);
    for (k, spec) in [
        SchemeSpec::Replicated2of3,
        SchemeSpec::Additive2of2,
        SchemeSpec::Shamir { t: 2, n: 3 },
        SchemeSpec::Shamir { t: 3, n: 5 },
    ]
    .into_iter()
    .enumerate()
    {
        let m = spec.build().unwrap().modulus();
        let d0 = tempfile::tempdir().unwrap();
        let d1 = tempfile::tempdir().unwrap();
        let a = store_month(d0.path(), spec, &zeros, 1000 + k as u64);
        let b = store_month(d1.path(), spec, &real, 2000 + k as u64);
        for (store, (ca, cb)) in a.iter().zip(&b).enumerate() {
            for (col, (va, vb)) in ca.iter().zip(cb).enumerate() {
                assert_eq!(va.len(), real.len());
                for low in [false, true] {
                    let (ha, hb) = (histogram(va, m, low), histogram(vb, m, low));
                    let (ua, ub, two) = (
                        chi2_uniform(&ha),
                        chi2_uniform(&hb),
                        chi2_two_sample(&ha, &hb),
                    );
                    let what = format!("{spec} store {store} column {col} low byte {low}");
                    assert!(
                        ua < critical,
                        "{what}: zeros not uniform, chi2 {ua:.1} >= {critical:.1}"
                    );
                    assert!(
                        ub < critical,
                        "{what}: load curve not uniform, chi2 {ub:.1} >= {critical:.1}"
                    );
                    assert!(
                        two < critical,
                        "{what}: distinguishable, chi2 {two:.1} >= {critical:.1}"
                    );
                }
            }
        }
    }
}

/// The test's own statistics reject what they should: a column that leaks the reading
/// (share = reading) is flagged.
#[test]
fn the_uniformity_test_has_power() {
    let real: Vec<u64> = load_curve(scenarios::month(), 20, 30, 11)
        .iter()
        .map(|r| r.wh)
        .collect();
    let h = histogram(&real, Modulus::Wrap64, true);
    assert!(chi2_uniform(&h) > chi2_critical_001(255.0));
    let zeros = vec![0u64; real.len()];
    let hz = histogram(&zeros, Modulus::Wrap64, true);
    assert!(chi2_two_sample(&h, &hz) > chi2_critical_001(255.0));
}

/// Readings with distinctive 8-byte patterns never appear in any file the vault writes —
/// not as little-endian or big-endian bytes, not as decimal text — including the WAL files
/// of open stores and the outbox of a store that is down.
#[test]
fn no_plaintext_reading_in_any_written_file() {
    let month = scenarios::month();
    let start = month.range().start;
    let readings: Vec<Reading> = (0..64u64)
        .map(|i| Reading {
            meter: 7000 + i % 8,
            interval_start: start + (i / 8) as i64 * 900,
            // Distinctive, below p so every scheme can take it.
            wh: 0x1DEC_AF5E_C0DE_0000 + i * 0x0101,
        })
        .collect();
    let needles = reading_patterns(&readings);
    // The search itself works: a buffer holding one reading is caught in every encoding.
    for pat in &needles {
        let mut hay = vec![0u8; 100];
        hay.extend_from_slice(pat);
        assert!(find_any(&hay, &needles).is_some());
    }
    for spec in [
        SchemeSpec::Replicated2of3,
        SchemeSpec::Shamir { t: 2, n: 3 },
    ] {
        let dir = tempfile::tempdir().unwrap();
        let n = common::stores_of(spec);
        let cfg = sqlite_config(dir.path(), spec, n);
        let mut v = Vault::open(cfg).unwrap();
        let (first, second) = readings.split_at(32);
        v.ingest(first).unwrap();
        // Store 2 is locked by another writer: its shares of the second half go to its outbox.
        let store_2 = &sqlite_paths(dir.path(), n)[2];
        let locks: Vec<rusqlite::Connection> =
            [store_2.clone(), SqliteStore::landing_path(store_2)]
                .iter()
                .map(|path| {
                    let lock = rusqlite::Connection::open(path).unwrap();
                    lock.execute_batch("BEGIN EXCLUSIVE").unwrap();
                    lock
                })
                .collect();
        let receipt = v.ingest(second).unwrap();
        assert_eq!(receipt.queued, vec![2]);
        let scan = |when: &str| {
            let files = all_files(dir.path());
            if when == "while open" {
                assert!(
                    files.iter().any(|f| f.to_string_lossy().ends_with("-wal")),
                    "no WAL file to scan: {files:?}"
                );
            }
            assert!(files
                .iter()
                .any(|f| f.to_string_lossy().contains("outbox-store-2")));
            for f in &files {
                let bytes = std::fs::read(f).unwrap();
                if let Some(found) = find_any(&bytes, &needles) {
                    panic!(
                        "{when}: reading pattern {found:02x?} found in {}",
                        f.display()
                    );
                }
            }
        };
        scan("while open");
        drop(locks);
        let report = v.check().unwrap();
        assert!(report.all_good(), "{report:?}");
        drop(v);
        scan("after close");
        // And the values really are in the vault: they come back as a bill.
        let mut v = Vault::open(sqlite_config(dir.path(), spec, n)).unwrap();
        let bill = v
            .bill(month, &gridguard_vault::Caller::with_household_data())
            .unwrap();
        let total: u64 = bill
            .lines
            .iter()
            .flat_map(|l| l.tier_wh)
            .fold(0, |a, b| a.wrapping_add(b));
        let expect: u64 = readings
            .iter()
            .map(|r| r.wh)
            .fold(0, |a: u64, b| a.wrapping_add(b));
        let expect = if matches!(spec, SchemeSpec::Shamir { .. }) {
            // Sum mod p, per meter and tier; fold the same way.
            readings
                .iter()
                .map(|r| r.wh)
                .fold(0, gridguard_vault::field::add)
        } else {
            expect
        };
        let total = if matches!(spec, SchemeSpec::Shamir { .. }) {
            bill.lines
                .iter()
                .flat_map(|l| l.tier_wh)
                .fold(0, gridguard_vault::field::add)
        } else {
            total
        };
        assert_eq!(total, expect);
    }
}
