//! The vault on SQLite stores: correctness against plaintext for every scheme, loss and
//! repair, lying stores, outbox catch-up, refresh, permissions.

// Test support code: a failed set-up step should stop the test loudly.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod common;

use std::path::PathBuf;

use common::scenarios::{self, Backend};
use common::{delete_sqlite, load_curve};
use gridguard_vault::field::P;
use gridguard_vault::store::{ShareStore, SqliteStore, StoreLayout};
use gridguard_vault::{Reading, SchemeSpec, StoreConfig, VaultError};
use proptest::prelude::*;

/// SQLite files in a temporary folder; each `fresh` call uses a new sub-folder.
struct SqliteBackend {
    dir: tempfile::TempDir,
    generation: usize,
    locks: Vec<(usize, rusqlite::Connection)>,
}

impl SqliteBackend {
    fn new() -> Self {
        SqliteBackend {
            dir: tempfile::tempdir().unwrap(),
            generation: 0,
            locks: Vec::new(),
        }
    }
    fn current(&self) -> PathBuf {
        self.dir.path().join(format!("gen{}", self.generation))
    }
    fn path(&self, i: usize) -> PathBuf {
        self.current().join(format!("store-{i}.sqlite"))
    }
}

impl Backend for SqliteBackend {
    fn fresh(&mut self, n: usize) -> Vec<StoreConfig> {
        self.generation += 1;
        std::fs::create_dir_all(self.current()).unwrap();
        (0..n)
            .map(|i| StoreConfig::Sqlite { path: self.path(i) })
            .collect()
    }
    fn outbox_dir(&self) -> PathBuf {
        self.current().join("outbox")
    }
    fn lose(&mut self, i: usize) {
        delete_sqlite(&self.path(i));
    }
    fn take_down(&mut self, i: usize) {
        // Another process holding the write locks of the store and of its landing file: every
        // write of the vault fails.
        for path in [self.path(i), SqliteStore::landing_path(&self.path(i))] {
            let conn = rusqlite::Connection::open(path).unwrap();
            conn.execute_batch("BEGIN EXCLUSIVE").unwrap();
            self.locks.push((i, conn));
        }
    }
    fn bring_up(&mut self, i: usize) {
        self.locks.retain(|(j, _)| *j != i);
    }
    fn tamper(&mut self, i: usize) {
        let conn = rusqlite::Connection::open(self.path(i)).unwrap();
        // Change every share column of one row (a one-column change under 2-of-3 replicated
        // sharing is detected but narrowed only to two suspects: see README).
        let two_columns = conn.prepare("SELECT b FROM shares LIMIT 1").is_ok();
        let set = if two_columns {
            "a = 12345, b = 54321"
        } else {
            "a = 12345"
        };
        let n = conn
            .execute(
                &format!(
                    "UPDATE shares SET {set} WHERE (interval_start, meter) = \
                     (SELECT interval_start, meter FROM shares LIMIT 1)"
                ),
                [],
            )
            .unwrap();
        assert_eq!(n, 1);
    }
    fn open_store(&self, i: usize, layout: StoreLayout) -> Box<dyn ShareStore> {
        Box::new(SqliteStore::open(&self.path(i), layout).unwrap())
    }
}

fn all_specs() -> Vec<SchemeSpec> {
    vec![
        SchemeSpec::Replicated2of3,
        SchemeSpec::Additive2of2,
        SchemeSpec::Shamir { t: 2, n: 3 },
        SchemeSpec::Shamir { t: 3, n: 5 },
    ]
}

fn small_curve() -> Vec<Reading> {
    load_curve(scenarios::month(), 12, 3, 42)
}

/// Readings whose values sit at the edges: near 2^64 (wrap-around) and near p.
fn edge_value() -> impl Strategy<Value = u64> {
    prop_oneof![
        any::<u64>(),
        (0u64..1000).prop_map(|d| u64::MAX - d),
        (0u64..1000).prop_map(|d| P - 1 - d),
        0u64..5000,
    ]
}

fn readings_strategy() -> impl Strategy<Value = Vec<Reading>> {
    let start = scenarios::month().range().start;
    proptest::collection::vec((0u64..9, 0i64..(3 * 96), edge_value()), 1..80).prop_map(move |v| {
        v.into_iter()
            .map(|(meter, slot, wh)| Reading {
                meter,
                interval_start: start + slot * 900,
                wh,
            })
            .collect()
    })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 8, ..ProptestConfig::default() })]

    /// For random readings and every scheme, every aggregate reconstructed from shares equals
    /// the plaintext computation (mod 2^64, or mod p for Shamir).
    #[test]
    fn aggregates_on_shares_equal_plaintext(readings in readings_strategy(), seed: u64) {
        let mut b = SqliteBackend::new();
        for spec in all_specs() {
            let fitted: Vec<Reading> = readings
                .iter()
                .map(|r| Reading { wh: if matches!(spec, SchemeSpec::Shamir { .. }) { r.wh % P } else { r.wh }, ..*r })
                .collect();
            scenarios::correctness(&mut b, spec, &fitted, seed);
        }
    }
}

#[test]
fn load_curve_bills_match_for_every_scheme() {
    let mut b = SqliteBackend::new();
    for spec in all_specs() {
        scenarios::correctness(&mut b, spec, &small_curve(), 1);
    }
}

#[test]
fn lost_store_bills_still_computed_and_repair_restores_it() {
    let mut b = SqliteBackend::new();
    scenarios::loss_and_repair(&mut b, SchemeSpec::Replicated2of3, &small_curve());
    scenarios::loss_and_repair(&mut b, SchemeSpec::Shamir { t: 3, n: 5 }, &small_curve());
}

#[test]
fn additive_cannot_repair() {
    let mut b = SqliteBackend::new();
    let cfg = scenarios::config(&mut b, SchemeSpec::Additive2of2);
    let mut v = gridguard_vault::Vault::open(cfg).unwrap();
    v.ingest(&small_curve()).unwrap();
    assert!(matches!(
        v.repair(0),
        Err(VaultError::RepairUnsupported { .. })
    ));
}

#[test]
fn lying_store_is_detected_and_named() {
    let mut b = SqliteBackend::new();
    scenarios::liar(&mut b, SchemeSpec::Replicated2of3, &small_curve());
    scenarios::liar(&mut b, SchemeSpec::Shamir { t: 2, n: 4 }, &small_curve());
}

#[test]
fn stores_find_and_delete_keys() {
    let mut b = SqliteBackend::new();
    scenarios::key_presence_and_deletion(&mut b, SchemeSpec::Shamir { t: 2, n: 3 }, &small_curve());
}

#[test]
fn store_that_is_down_catches_up_from_its_outbox() {
    let mut b = SqliteBackend::new();
    scenarios::outbox(&mut b, SchemeSpec::Replicated2of3, &small_curve());
}

#[test]
fn refresh_rerandomises_and_keeps_totals() {
    let mut b = SqliteBackend::new();
    for spec in all_specs() {
        scenarios::refresh(&mut b, spec, &small_curve());
    }
}

#[test]
fn interrupted_refresh_is_finished_or_dropped() {
    let mut b = SqliteBackend::new();
    scenarios::interrupted_refresh(&mut b, SchemeSpec::Replicated2of3, &small_curve());
    scenarios::interrupted_refresh(&mut b, SchemeSpec::Shamir { t: 2, n: 3 }, &small_curve());
}

#[test]
fn household_data_permission_and_minimum_group_size() {
    let mut b = SqliteBackend::new();
    scenarios::permissions(&mut b, &load_curve(scenarios::month(), 30, 2, 7));
}

#[test]
fn stores_in_the_wrong_order_are_refused() {
    let mut b = SqliteBackend::new();
    let cfg = scenarios::config(&mut b, SchemeSpec::Replicated2of3);
    gridguard_vault::Vault::open(cfg.clone()).unwrap();
    let mut swapped = cfg.clone();
    swapped.stores.swap(0, 1);
    assert!(matches!(
        gridguard_vault::Vault::open(swapped),
        Err(VaultError::StoreMismatch { .. })
    ));
    let mut other_scheme = cfg;
    other_scheme.scheme = SchemeSpec::Shamir { t: 2, n: 3 };
    assert!(gridguard_vault::Vault::open(other_scheme).is_err());
}

#[test]
fn invalid_readings_are_refused_before_anything_is_written() {
    let mut b = SqliteBackend::new();
    let cfg = scenarios::config(&mut b, SchemeSpec::Shamir { t: 2, n: 3 });
    let mut v = gridguard_vault::Vault::open(cfg).unwrap();
    let good = Reading {
        meter: 1,
        interval_start: 900,
        wh: 5,
    };
    for bad in [
        Reading {
            interval_start: 901,
            ..good
        },
        Reading {
            interval_start: -900,
            ..good
        },
        Reading { wh: P, ..good },
    ] {
        assert!(matches!(
            v.ingest(&[good, bad]),
            Err(VaultError::InvalidReading { .. })
        ));
    }
    assert_eq!(v.check().unwrap().stores[0].rows, Some(0));
}
