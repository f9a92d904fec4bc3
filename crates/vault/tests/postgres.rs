//! The same scenarios as on SQLite, against real PostgreSQL servers (four, started once for
//! the whole suite): one server per store,
//! each with its own password. Skipped, with the reason printed, when PostgreSQL 15 is not
//! installed (the project's scripts install it, so CI runs these).

// Test support code: a failed set-up step should stop the test loudly.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod common;

use std::path::PathBuf;

use common::pg::{self, PgServer};
use common::scenarios::{self, Backend};
use common::{all_files, find_any, load_curve, reading_patterns};
use gridguard_vault::field::P;
use gridguard_vault::store::{PostgresStore, ShareStore, StoreLayout};
use gridguard_vault::{Caller, Reading, SchemeSpec, StoreConfig, Vault};

struct PgBackend {
    servers: Vec<PgServer>,
    generation: usize,
    outbox: tempfile::TempDir,
}

impl PgBackend {
    fn db(&self) -> String {
        format!("vault{}", self.generation)
    }
}

impl Backend for PgBackend {
    fn fresh(&mut self, n: usize) -> Vec<StoreConfig> {
        self.generation += 1;
        let db = self.db();
        self.servers
            .iter()
            .take(n)
            .map(|s| {
                s.client("postgres")
                    .batch_execute(&format!("CREATE DATABASE {db}"))
                    .unwrap();
                StoreConfig::Postgres {
                    conninfo: s.conninfo(&db),
                }
            })
            .collect()
    }
    fn outbox_dir(&self) -> PathBuf {
        self.outbox.path().join(format!("gen{}", self.generation))
    }
    fn lose(&mut self, i: usize) {
        let db = self.db();
        let mut c = self.servers[i].client("postgres");
        c.batch_execute(&format!("DROP DATABASE {db} WITH (FORCE)"))
            .unwrap();
        c.batch_execute(&format!("CREATE DATABASE {db}")).unwrap();
    }
    fn take_down(&mut self, i: usize) {
        self.servers[i].pause();
    }
    fn bring_up(&mut self, i: usize) {
        self.servers[i].resume();
    }
    fn tamper(&mut self, i: usize) {
        let mut c = self.servers[i].client(&self.db());
        let two = c.query("SELECT b FROM shares LIMIT 1", &[]).is_ok();
        let set = if two {
            "a = 12345, b = 54321"
        } else {
            "a = 12345"
        };
        let n = c
            .execute(
                &format!(
                    "UPDATE shares SET {set} WHERE (interval_start, meter) = \
                     (SELECT interval_start, meter FROM shares LIMIT 1)"
                ),
                &[],
            )
            .unwrap();
        assert_eq!(n, 1);
    }
    fn open_store(&self, i: usize, layout: StoreLayout) -> Box<dyn ShareStore> {
        Box::new(PostgresStore::connect(&self.servers[i].conninfo(&self.db()), layout).unwrap())
    }
}

fn step(name: &str) {
    use std::sync::Mutex;
    static LAST: Mutex<Option<std::time::Instant>> = Mutex::new(None);
    let mut last = LAST.lock().unwrap();
    let took = last.map(|t| t.elapsed().as_secs_f64()).unwrap_or(0.0);
    println!("postgres scenario: {name} (previous step {took:.1} s)");
    *last = Some(std::time::Instant::now());
}

#[test]
fn postgres_suite() {
    if let Some(reason) = pg::unavailable() {
        println!("SKIPPED postgres tests: {reason}");
        return;
    }
    let servers = pg::start_many(4, &["fsync=off", "synchronous_commit=off"]);
    let mut b = PgBackend {
        servers,
        generation: 0,
        outbox: tempfile::tempdir().unwrap(),
    };
    let month = scenarios::month();
    let curve = load_curve(month, 9, 2, 42);
    let edge: Vec<Reading> = curve
        .iter()
        .take(300)
        .enumerate()
        .map(|(i, r)| Reading {
            wh: match i % 3 {
                0 => u64::MAX - i as u64,
                1 => P - 1 - i as u64,
                _ => r.wh,
            },
            ..*r
        })
        .collect();
    // First, while the data folders are small enough to scan whole.
    step("no plaintext in the servers' files");
    no_plaintext_in_server_files(&mut b);
    for spec in [
        SchemeSpec::Replicated2of3,
        SchemeSpec::Additive2of2,
        SchemeSpec::Shamir { t: 2, n: 3 },
        SchemeSpec::Shamir { t: 3, n: 4 },
    ] {
        step(&format!("correctness {spec}"));
        scenarios::correctness(&mut b, spec, &curve, 5);
        let fitted: Vec<Reading> = edge
            .iter()
            .map(|r| Reading {
                wh: if matches!(spec, SchemeSpec::Shamir { .. }) {
                    r.wh % P
                } else {
                    r.wh
                },
                ..*r
            })
            .collect();
        step(&format!("wrap-around and field edges {spec}"));
        scenarios::correctness(&mut b, spec, &fitted, 6);
    }
    step("loss and repair 2-of-3");
    scenarios::loss_and_repair(&mut b, SchemeSpec::Replicated2of3, &curve);
    step("loss and repair shamir 3-of-4");
    scenarios::loss_and_repair(&mut b, SchemeSpec::Shamir { t: 3, n: 4 }, &curve);
    step("liar 2-of-3");
    scenarios::liar(&mut b, SchemeSpec::Replicated2of3, &curve);
    step("liar shamir 2-of-4");
    scenarios::liar(&mut b, SchemeSpec::Shamir { t: 2, n: 4 }, &curve);
    step("outbox");
    scenarios::outbox(&mut b, SchemeSpec::Replicated2of3, &curve);
    step("key presence and deletion");
    scenarios::key_presence_and_deletion(&mut b, SchemeSpec::Replicated2of3, &curve);
    step("refresh");
    scenarios::refresh(&mut b, SchemeSpec::Replicated2of3, &curve);
    scenarios::refresh(&mut b, SchemeSpec::Shamir { t: 2, n: 3 }, &curve);
    step("interrupted refresh");
    scenarios::interrupted_refresh(&mut b, SchemeSpec::Replicated2of3, &curve);
    step("permissions");
    scenarios::permissions(&mut b, &load_curve(month, 30, 2, 7));
    step("done");
}

/// Readings with distinctive patterns are not found in any file of any server's data
/// folder (tables, indexes, WAL), after a checkpoint.
fn no_plaintext_in_server_files(b: &mut PgBackend) {
    let month = scenarios::month();
    let start = month.range().start;
    let readings: Vec<Reading> = (0..64u64)
        .map(|i| Reading {
            meter: 7000 + i % 8,
            interval_start: start + (i / 8) as i64 * 900,
            wh: 0x1DEC_AF5E_C0DE_0000 + i * 0x0101,
        })
        .collect();
    let cfg = scenarios::config(b, SchemeSpec::Replicated2of3);
    let mut v = Vault::open(cfg).unwrap();
    v.ingest(&readings).unwrap();
    let bill = v.bill(month, &Caller::with_household_data()).unwrap();
    assert_eq!(bill.lines.len(), 8);
    for s in b.servers.iter().take(3) {
        s.client("postgres").batch_execute("CHECKPOINT").unwrap();
    }
    let needles = reading_patterns(&readings);
    let mut scanned = 0;
    for s in b.servers.iter().take(3) {
        for f in all_files(&s.data_dir()) {
            let Ok(bytes) = std::fs::read(&f) else {
                continue;
            };
            scanned += bytes.len();
            if let Some(found) = find_any(&bytes, &needles) {
                panic!("reading pattern {found:02x?} found in {}", f.display());
            }
        }
    }
    assert!(scanned > 1_000_000, "scanned only {scanned} bytes");
    for f in all_files(b.outbox.path()) {
        let bytes = std::fs::read(&f).unwrap();
        assert!(
            find_any(&bytes, &needles).is_none(),
            "reading found in {}",
            f.display()
        );
    }
}
