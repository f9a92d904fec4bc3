//! A vault process killed with SIGKILL between its stores' commits: the next open undoes the
//! half-written batch, so the copy its meters send again is stored whole and reads back.

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

/// The child: store 0 commits the second batch and says so; stores 1 and 2 stall until the
/// parent kills the process.
fn child(dir: &Path, spec: SchemeSpec) {
    let layout = StoreLayout {
        columns: spec.build().unwrap().columns(),
        modulus: spec.build().unwrap().modulus(),
    };
    let stores: Vec<Box<dyn ShareStore>> = sqlite_paths(dir, stores_of(spec))
        .iter()
        .enumerate()
        .map(|(i, path)| {
            let inner = Box::new(SqliteStore::open(path, layout).unwrap());
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
            Box::new(Faulty::hooked(inner, hook)) as Box<dyn ShareStore>
        })
        .collect();
    let mut vault = Vault::with_stores(spec, stores, dir.join("outbox"), 1).unwrap();
    let (first, second) = batches();
    vault.ingest(&first).unwrap();
    vault.ingest(&second).unwrap();
    panic!("the parent should have killed this process");
}

#[test]
fn a_batch_half_written_by_a_killed_process_is_undone_then_stored_whole() {
    if let (Ok(dir), Ok(scheme)) = (std::env::var(CHILD_DIR), std::env::var(CHILD_SCHEME)) {
        child(Path::new(&dir), SCHEMES[scheme.parse::<usize>().unwrap()]);
        return;
    }
    for (index, spec) in SCHEMES.into_iter().enumerate() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path();
        let mut child = Command::new(std::env::current_exe().unwrap())
            .args(["--exact", TEST_NAME, "--nocapture", "--test-threads=1"])
            .env(CHILD_DIR, dir)
            .env(CHILD_SCHEME, index.to_string())
            .spawn()
            .unwrap();
        let deadline = Instant::now() + Duration::from_secs(60);
        while !marker(dir).exists() {
            assert!(Instant::now() < deadline, "{spec}: store 0 never committed");
            assert!(child.try_wait().unwrap().is_none(), "{spec}: child exited");
            std::thread::sleep(Duration::from_millis(10));
        }
        child.kill().unwrap();
        child.wait().unwrap();

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
        for store in sqlite_paths(dir, stores_of(spec)) {
            let conn = rusqlite::Connection::open(&store).unwrap();
            let rows: i64 = conn
                .query_row("SELECT COUNT(*) FROM shares", [], |r| r.get(0))
                .unwrap();
            assert_eq!(rows as usize, first.len(), "{spec}: {}", store.display());
        }

        // The meters send the unacknowledged readings again.
        vault.ingest(&second).unwrap();
        let caller = Caller::with_household_data();
        let all: Vec<Reading> = first.iter().chain(&second).copied().collect();
        let meters: std::collections::BTreeSet<u64> = all.iter().map(|r| r.meter).collect();
        for meter in meters {
            let got = vault.readings(meter, TimeRange::ALL, &caller).unwrap();
            assert!(got.integrity.lying_stores.is_empty(), "{spec}: {got:?}");
            let want: Vec<Reading> = all.iter().filter(|r| r.meter == meter).copied().collect();
            assert_eq!(got.readings, want, "{spec}: meter {meter}");
        }
    }
}
