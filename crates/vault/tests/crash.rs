//! A vault process killed with SIGKILL between its stores' commits: the next open undoes the
//! half-written batch, so the copy its meters send again is stored whole and reads back. When
//! a store is down at that open, the copy sent again waits until the store is back.

// Test support code: a failed set-up step should stop the test loudly.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::scenarios::{month, Faulty};
use common::{load_curve, sqlite_config, sqlite_paths, stores_of};
use gridguard_vault::store::{ShareStore, SqliteStore, StoreLayout};
use gridguard_vault::{Caller, Reading, SchemeSpec, TimeRange, Vault};

/// Set in the child process: the folder its vault lives in.
const CHILD_DIR: &str = "GG_VAULT_CRASH_CHILD_DIR";
/// Set in the child process: the scheme, as its index in [`SCHEMES`].
const CHILD_SCHEME: &str = "GG_VAULT_CRASH_CHILD_SCHEME";
const TEST_NAME: &str = "a_batch_half_written_by_a_killed_process_is_undone_then_stored_whole";
const DOWN_TEST_NAME: &str = "a_half_written_batch_sent_again_while_a_store_is_down_waits_for_it";
const SCHEMES: [SchemeSpec; 2] = [
    SchemeSpec::Replicated2of3,
    SchemeSpec::Shamir { t: 2, n: 3 },
];

/// The first batch, written whole, and the second, which the child dies writing.
fn batches() -> (Vec<Reading>, Vec<Reading>) {
    let readings = load_curve(month(), 12, 2, 41);
    let half = readings.len() / 2;
    (readings[..half].to_vec(), readings[half..].to_vec())
}

fn marker(dir: &Path) -> PathBuf {
    dir.join("store-0-committed")
}

/// The vault in `dir` over its SQLite stores, each store `i` as `wrap(i, store)` makes it.
fn vault_of_sqlite_stores(
    dir: &Path,
    spec: SchemeSpec,
    mut wrap: impl FnMut(usize, Box<dyn ShareStore>) -> Box<dyn ShareStore>,
) -> Vault {
    let layout = StoreLayout {
        columns: spec.build().unwrap().columns(),
        modulus: spec.build().unwrap().modulus(),
    };
    let stores: Vec<Box<dyn ShareStore>> = sqlite_paths(dir, stores_of(spec))
        .iter()
        .enumerate()
        .map(|(i, path)| wrap(i, Box::new(SqliteStore::open(path, layout).unwrap())))
        .collect();
    Vault::with_stores(spec, stores, dir.join("outbox"), 1).unwrap()
}

/// The child: store 0 commits the second batch and says so; stores 1 and 2 stall until the
/// parent kills the process.
fn child(dir: &Path, spec: SchemeSpec) {
    let mut vault = vault_of_sqlite_stores(dir, spec, |i, inner| {
        let mut puts = 0;
        let signal = marker(dir);
        let hook = Box::new(move |after: bool| {
            if !after {
                puts += 1;
            }
            if puts < 2 {
                return;
            }
            match (i, after) {
                (0, true) => std::fs::write(&signal, b"1").unwrap(),
                (0, false) => {}
                (_, false) => std::thread::sleep(Duration::from_secs(120)),
                (_, true) => {}
            }
        });
        Box::new(Faulty::hooked(inner, hook))
    });
    let (first, second) = batches();
    vault.ingest(&first).unwrap();
    vault.ingest(&second).unwrap();
    panic!("the parent should have killed this process");
}

/// In the child process (returns true): plays [`child`]. In the parent: runs the child for
/// scheme `index` in `dir` and kills it once store 0 alone holds the second batch.
fn in_child_or_half_written(dir: &Path, index: usize, test_name: &str) -> bool {
    if let (Ok(dir), Ok(scheme)) = (std::env::var(CHILD_DIR), std::env::var(CHILD_SCHEME)) {
        child(Path::new(&dir), SCHEMES[scheme.parse::<usize>().unwrap()]);
        return true;
    }
    let spec = SCHEMES[index];
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args(["--exact", test_name, "--nocapture", "--test-threads=1"])
        .env(CHILD_DIR, dir)
        .env(CHILD_SCHEME, index.to_string())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    while !marker(dir).exists() {
        if Instant::now() >= deadline || child.try_wait().unwrap().is_some() {
            let _ = child.kill();
            panic!("{spec}: store 0 never committed");
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    child.kill().unwrap();
    child.wait().unwrap();
    false
}

/// For each scheme, a vault in a fresh folder whose process died half-way through its second
/// batch, then `check` on it (in the child process: plays the vault that dies).
fn each_scheme_half_written(test_name: &str, check: impl Fn(&Path, SchemeSpec)) {
    for (index, spec) in SCHEMES.into_iter().enumerate() {
        let tmp = tempfile::tempdir().unwrap();
        if in_child_or_half_written(tmp.path(), index, test_name) {
            return;
        }
        check(tmp.path(), spec);
    }
}

/// Each SQLite store of the vault in `dir` holds `want` share rows.
fn assert_rows_in_every_store(dir: &Path, spec: SchemeSpec, want: usize) {
    for store in sqlite_paths(dir, stores_of(spec)) {
        let conn = rusqlite::Connection::open(&store).unwrap();
        let rows: i64 = conn
            .query_row("SELECT COUNT(*) FROM shares", [], |r| r.get(0))
            .unwrap();
        assert_eq!(rows as usize, want, "{spec}: {}", store.display());
    }
}

/// Every meter's readings read back equal `all`, with no store caught lying.
fn assert_reads_back(vault: &mut Vault, spec: SchemeSpec, all: &[Reading]) {
    let caller = Caller::with_household_data();
    let meters: std::collections::BTreeSet<u64> = all.iter().map(|r| r.meter).collect();
    for meter in meters {
        let got = vault.readings(meter, TimeRange::ALL, &caller).unwrap();
        assert!(got.integrity.lying_stores.is_empty(), "{spec}: {got:?}");
        let want: Vec<Reading> = all.iter().filter(|r| r.meter == meter).copied().collect();
        assert_eq!(got.readings, want, "{spec}: meter {meter}");
    }
}

#[test]
fn a_batch_half_written_by_a_killed_process_is_undone_then_stored_whole() {
    each_scheme_half_written(TEST_NAME, |dir, spec| {
        let (first, second) = batches();
        let mut vault = Vault::open(sqlite_config(dir, spec, stores_of(spec))).unwrap();
        let stored: usize = vault
            .count_intervals(TimeRange::ALL)
            .unwrap()
            .values()
            .sum::<u64>()
            .try_into()
            .unwrap();
        assert_eq!(
            stored,
            first.len(),
            "{spec}: the half-written batch is gone"
        );
        assert_rows_in_every_store(dir, spec, first.len());

        // The meters send the unacknowledged readings again.
        let receipt = vault.ingest(&second).unwrap();
        assert!(receipt.deferred.is_empty(), "{spec}: {receipt:?}");
        let all: Vec<Reading> = first.iter().chain(&second).copied().collect();
        assert_reads_back(&mut vault, spec, &all);
    });
}

#[test]
fn a_half_written_batch_sent_again_while_a_store_is_down_waits_for_it() {
    each_scheme_half_written(DOWN_TEST_NAME, |dir, spec| {
        let (first, second) = batches();
        // Store 2, which lacks the second batch, fails when the vault opens and asks it which
        // readings it holds: the journal cannot be reconciled.
        let down = Arc::new(AtomicBool::new(true));
        let mut vault = vault_of_sqlite_stores(dir, spec, |i, inner| {
            if i == 2 {
                Box::new(Faulty::switched(inner, down.clone()))
            } else {
                inner
            }
        });

        // The meters send the second batch again, with new readings of their own beside it.
        let later = load_curve(month(), 12, 1, 43)
            .into_iter()
            .map(|r| Reading {
                interval_start: r.interval_start + 10 * 86_400,
                ..r
            })
            .collect::<Vec<_>>();
        let mut resent: Vec<Reading> = second.clone();
        resent.extend_from_slice(&later);
        let receipt = vault.ingest(&resent).unwrap();
        let mut want_deferred: Vec<(u64, i64)> =
            second.iter().map(|r| (r.meter, r.interval_start)).collect();
        want_deferred.sort_unstable();
        let mut deferred = receipt.deferred.clone();
        deferred.sort_unstable();
        assert!(
            deferred == want_deferred,
            "{spec}: {} readings deferred, want the {} re-sent",
            deferred.len(),
            want_deferred.len()
        );
        assert_eq!(receipt.readings, later.len(), "{spec}");
        assert_eq!(receipt.queued, vec![2], "{spec}");

        // Store 2 is back: the next ingest undoes the half-written batch first, then the copy
        // sent again is stored whole.
        down.store(false, Ordering::SeqCst);
        let receipt = vault.ingest(&second).unwrap();
        assert!(receipt.deferred.is_empty(), "{spec}: {receipt:?}");
        assert_eq!(receipt.committed.len(), 3, "{spec}: {receipt:?}");
        let all: Vec<Reading> = first.iter().chain(&second).chain(&later).copied().collect();
        assert_reads_back(&mut vault, spec, &all);
        assert_rows_in_every_store(dir, spec, all.len());
    });
}
