//! Cost of secret sharing, measured beside its anchor in the same run: the same readings and
//! the same monthly aggregates, once as plaintext in one store and once secret-shared (2-of-3
//! replicated) in three stores, on SQLite and on PostgreSQL.
//!
//! ```text
//! cargo run --release -p gridguard-vault --example vault_bench -- --readings 200000
//! ```
//!
//! The plaintext anchor uses the same store code with one column holding the reading itself.
//! "Work" is CPU time: this process's (all threads) plus, for PostgreSQL, the servers' (the
//! postmaster with its reaped backends, plus live backends). Aggregate latency is wall time
//! with the three stores queried in parallel, combining included; on one machine the three
//! stores share its cores (three queries on two cores cannot finish in the time of one), so
//! the run also prints one store's query alone plus the combining, which is the latency when
//! each store runs on its own machine as deployed. Query figures are the best of `--repeat`
//! runs (default 3, 2 from 1,000,000 readings). PostgreSQL servers are
//! started in a temporary folder (as the `postgres` user when run as root) and stopped at the
//! end; without PostgreSQL 15 that part is skipped with the reason.

// A benchmark binary run by hand or by a script: failing loudly is what it should do.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    clippy::too_many_arguments
)]

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use gridguard_vault::combine::combine;
use gridguard_vault::scheme::{Replicated2of3, ShareRow, ShareScheme};
use gridguard_vault::store::{
    GroupSum, PostgresStore, ShareRecord, ShareStore, SqliteStore, StoreLayout, SumQuery,
};
use gridguard_vault::{
    Caller, Granularity, Modulus, Month, Reading, SchemeSpec, StoreConfig, TouCalendar, Vault,
    VaultConfig,
};
use rand_core::SeedableRng;

const BATCH: usize = 100_000;
const REGIONS: u64 = 10;

fn clock_ticks() -> f64 {
    100.0 // USER_HZ on Linux
}

/// utime + stime (+ cutime + cstime when `children`) of a process, seconds.
fn proc_cpu(pid: &str, children: bool) -> f64 {
    let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
        return 0.0;
    };
    let Some(after) = stat.rsplit_once(')').map(|(_, a)| a) else {
        return 0.0;
    };
    let f: Vec<f64> = after
        .split_whitespace()
        .map(|x| x.parse().unwrap_or(0.0))
        .collect();
    // Fields after the command: state is index 0, utime 11, stime 12, cutime 13, cstime 14.
    let get = |i: usize| f.get(i).copied().unwrap_or(0.0);
    let mut t = get(11) + get(12);
    if children {
        t += get(13) + get(14);
    }
    t / clock_ticks()
}

fn self_cpu() -> f64 {
    proc_cpu("self", false)
}

/// CPU of a PostgreSQL server: the postmaster with reaped children, plus live children.
fn server_cpu(postmaster: u32) -> f64 {
    let mut t = proc_cpu(&postmaster.to_string(), true);
    if let Ok(dir) = std::fs::read_dir("/proc") {
        for e in dir.flatten() {
            let name = e.file_name().to_string_lossy().to_string();
            if !name.bytes().all(|b| b.is_ascii_digit()) {
                continue;
            }
            let Ok(stat) = std::fs::read_to_string(format!("/proc/{name}/stat")) else {
                continue;
            };
            let ppid = stat
                .rsplit_once(')')
                .and_then(|(_, a)| a.split_whitespace().nth(1).map(str::to_string));
            if ppid.as_deref() == Some(&postmaster.to_string()) {
                t += proc_cpu(&name, false);
            }
        }
    }
    t
}

fn readings(n: usize, month: Month) -> (Vec<Reading>, u64) {
    let intervals = ((month.range().end - month.range().start) / 900) as usize;
    let households = n.div_ceil(intervals).max(1) as u64;
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(1);
    use rand_core::RngCore;
    let start = month.range().start;
    let out = (0..n)
        .map(|i| {
            let slot = (i as u64 / households) as i64;
            Reading {
                meter: i as u64 % households,
                interval_start: start + slot * 900,
                wh: 50 + rng.next_u64() % 400,
            }
        })
        .collect();
    (out, households)
}

fn calendar() -> TouCalendar {
    let mut cal = TouCalendar::flat(9 * 3600);
    for (i, s) in cal.slots.iter_mut().enumerate() {
        *s = (i / 8) as u8;
    }
    cal
}

struct Figures {
    backend: &'static str,
    plain_ingest_wall: f64,
    plain_ingest_work: f64,
    shared_ingest_wall: f64,
    shared_ingest_work: f64,
    plain_bill: f64,
    shared_bill: f64,
    plain_region: f64,
    shared_region: f64,
    combine_bill: f64,
    combine_region: f64,
    one_store_bill: f64,
    one_store_region: f64,
    households: u64,
}

fn print(f: &Figures) {
    println!("--- {} ---", f.backend);
    println!(
        "ingest      plaintext 1 store: {:8.3} s wall {:8.3} s work | shared 3 stores: {:8.3} s wall {:8.3} s work | work ratio {:5.2} (target <= 3.3), wall ratio {:5.2}",
        f.plain_ingest_wall,
        f.plain_ingest_work,
        f.shared_ingest_wall,
        f.shared_ingest_work,
        f.shared_ingest_work / f.plain_ingest_work,
        f.shared_ingest_wall / f.plain_ingest_wall
    );
    println!(
        "monthly bill (per household x tier): plaintext {:8.4} s | shared {:8.4} s | ratio {:5.2} (target <= 1.3)",
        f.plain_bill,
        f.shared_bill,
        f.shared_bill / f.plain_bill
    );
    println!(
        "regional totals (per region x interval): plaintext {:8.4} s | shared {:8.4} s | ratio {:5.2} (target <= 1.3)",
        f.plain_region,
        f.shared_region,
        f.shared_region / f.plain_region
    );
    println!(
        "one shared store queried alone: bill {:8.4} s ({:4.2}x plaintext), regional {:8.4} s ({:4.2}x plaintext)",
        f.one_store_bill,
        f.one_store_bill / f.plain_bill,
        f.one_store_region,
        f.one_store_region / f.plain_region
    );
    println!(
        "stores on separate machines (estimate: one store's query alone + combining): bill {:8.4} s ({:4.2}x plaintext), regional {:8.4} s ({:4.2}x plaintext) (target <= 1.3)",
        f.one_store_bill + f.combine_bill,
        (f.one_store_bill + f.combine_bill) / f.plain_bill,
        f.one_store_region + f.combine_region,
        (f.one_store_region + f.combine_region) / f.plain_region
    );
    println!(
        "combining the bill sums of {} households: {:.3} ms = {:.3} ms per 10,000 households (target <= 5)",
        f.households,
        f.combine_bill * 1e3,
        f.combine_bill * 1e3 * 10_000.0 / f.households as f64
    );
}

/// Runs the comparison on one backend. `plain` is the plaintext store; `shared` the vault's
/// store configs; `cpu` measures the work of the backend's servers (zero for SQLite).
fn run(
    backend: &'static str,
    data: &[Reading],
    households: u64,
    month: Month,
    mut plain: Box<dyn ShareStore>,
    shared: Vec<StoreConfig>,
    outbox: &Path,
    cpu: &dyn Fn() -> f64,
    settle: &dyn Fn(),
) -> Figures {
    let regions: Vec<(u64, u32)> = (0..households).map(|m| (m, (m % REGIONS) as u32)).collect();
    let tiers = calendar().intervals(month.range());
    plain.put_regions(&regions).unwrap();
    plain.put_tiers(&tiers).unwrap();

    // Plaintext ingest: the reading itself in the one column.
    let (c0, s0, t0) = (self_cpu(), cpu(), Instant::now());
    let mut rows = Vec::with_capacity(BATCH);
    for chunk in data.chunks(BATCH) {
        rows.clear();
        rows.extend(chunk.iter().map(|r| ShareRecord {
            meter: r.meter,
            interval_start: r.interval_start,
            share: [r.wh, 0],
        }));
        plain.put_shares(&rows).unwrap();
    }
    let plain_ingest_wall = t0.elapsed().as_secs_f64();
    let plain_ingest_work = (self_cpu() - c0) + (cpu() - s0);

    let cfg = VaultConfig::new(SchemeSpec::Replicated2of3, shared, outbox);
    let mut vault = Vault::open(cfg).unwrap();
    vault.set_regions(&regions).unwrap();
    vault.set_interval_tiers(&tiers).unwrap();
    let (c0, s0, t0) = (self_cpu(), cpu(), Instant::now());
    for chunk in data.chunks(BATCH) {
        vault.ingest(chunk).unwrap();
    }
    let shared_ingest_wall = t0.elapsed().as_secs_f64();
    let shared_ingest_work = (self_cpu() - c0) + (cpu() - s0);

    // Same treatment for the anchor and the shares before any query (PostgreSQL: VACUUM
    // ANALYZE every database, so neither side is queried with stale statistics or unset hint
    // bits).
    settle();
    let caller = Caller::with_household_data();
    let bill_q = SumQuery::ByMeterTier {
        range: month.range(),
    };
    let region_q = SumQuery::ByRegion {
        region: None,
        range: month.range(),
        granularity: Granularity::Interval,
    };
    // Best of REPEAT runs (the first one warms the caches).
    let reps = REPEAT.with(std::cell::Cell::get);
    let best = |f: &mut dyn FnMut()| {
        (0..reps)
            .map(|_| {
                let t = Instant::now();
                f();
                t.elapsed().as_secs_f64()
            })
            .fold(f64::MAX, f64::min)
    };
    let plain_bill = best(&mut || {
        let g = plain.sums(&bill_q).unwrap();
        assert!(!g.is_empty());
    });
    let plain_region = best(&mut || {
        let g = plain.sums(&region_q).unwrap();
        assert!(!g.is_empty());
    });
    let mut lines = 0;
    let shared_bill = best(&mut || {
        lines = vault.bill(month, &caller).unwrap().lines.len();
    });
    assert_eq!(lines as u64, households);
    let shared_region = best(&mut || {
        let r = vault
            .region_totals(None, month.range(), Granularity::Interval, &caller)
            .unwrap();
        assert!(!r.rows.is_empty());
    });

    // The combining step alone, on the three stores' real bill answers.
    drop(vault);
    let layout = StoreLayout {
        columns: 2,
        modulus: Modulus::Wrap64,
    };
    let mut stores: Vec<Box<dyn ShareStore>> =
        (0..3).map(|i| open_shared(backend, i, layout)).collect();
    // One shared store's query alone: separates the per-store cost from the cost of running
    // three stores' queries side by side on this machine's cores.
    let one_store_bill = best(&mut || {
        assert!(!stores[0].sums(&bill_q).unwrap().is_empty());
    });
    let one_store_region = best(&mut || {
        assert!(!stores[0].sums(&region_q).unwrap().is_empty());
    });
    let answers: Vec<Option<Vec<GroupSum>>> = stores
        .iter_mut()
        .map(|s| Some(s.sums(&bill_q).unwrap()))
        .collect();
    let scheme = Replicated2of3;
    let combine_bill = best(&mut || {
        let c = combine(&scheme, &answers, true, |_, _, _| Ok(true)).unwrap();
        assert!(c.checked);
    });
    let region_answers: Vec<Option<Vec<GroupSum>>> = stores
        .iter_mut()
        .map(|s| Some(s.sums(&region_q).unwrap()))
        .collect();
    let combine_region = best(&mut || {
        let c = combine(&scheme, &region_answers, true, |_, _, _| Ok(true)).unwrap();
        assert!(c.checked);
    });
    Figures {
        backend,
        plain_ingest_wall,
        plain_ingest_work,
        shared_ingest_wall,
        shared_ingest_work,
        plain_bill,
        shared_bill,
        plain_region,
        shared_region,
        combine_bill,
        combine_region,
        one_store_bill,
        one_store_region,
        households,
    }
}

thread_local! {
    static REPEAT: std::cell::Cell<usize> = const { std::cell::Cell::new(3) };
    static SHARED: std::cell::RefCell<Vec<(String, StoreConfig)>> = const { std::cell::RefCell::new(Vec::new()) };
}

fn open_shared(backend: &str, i: usize, layout: StoreLayout) -> Box<dyn ShareStore> {
    let cfg = SHARED.with(|s| {
        s.borrow()
            .iter()
            .filter(|(b, _)| b == backend)
            .nth(i)
            .map(|(_, c)| c.clone())
            .unwrap()
    });
    match cfg {
        StoreConfig::Sqlite { path } => Box::new(SqliteStore::open(&path, layout).unwrap()),
        StoreConfig::Postgres { conninfo } => {
            Box::new(PostgresStore::connect(&conninfo, layout).unwrap())
        }
    }
}

fn remember(backend: &str, cfgs: &[StoreConfig]) {
    SHARED.with(|s| {
        s.borrow_mut()
            .extend(cfgs.iter().map(|c| (backend.to_string(), c.clone())))
    });
}

/// Splitting rate on one core.
fn split_rate(data: &[Reading]) -> f64 {
    let scheme = Replicated2of3;
    let mut rng = rand_chacha::ChaCha20Rng::from_rng(rand_core::OsRng).unwrap();
    let mut out: Vec<ShareRow> = vec![[0; 2]; 3];
    let mut acc = 0u64;
    let t = Instant::now();
    for r in data {
        scheme.split(r.wh, &mut rng, &mut out).unwrap();
        acc = acc.wrapping_add(out[0][0] ^ out[2][1]);
    }
    let s = t.elapsed().as_secs_f64();
    std::hint::black_box(acc);
    data.len() as f64 / s
}

// ---- throw-away PostgreSQL servers ----

const PG_BIN: &str = "/usr/lib/postgresql/15/bin";

fn pg_missing() -> Option<String> {
    ["initdb", "pg_ctl", "postgres"]
        .iter()
        .find(|t| !Path::new(PG_BIN).join(t).exists())
        .map(|t| format!("{PG_BIN}/{t} not found"))
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
        .unwrap_or(false)
}

fn pg_cmd(tool: &str) -> Command {
    let path = Path::new(PG_BIN).join(tool);
    if is_root() {
        let mut c = Command::new("runuser");
        c.args(["-u", "postgres", "--"]).arg(path);
        c
    } else {
        Command::new(path)
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

struct Pg {
    dir: PathBuf,
    port: u16,
    password: String,
}

impl Pg {
    fn start(name: &str) -> Pg {
        let dir =
            std::env::temp_dir().join(format!("gg-vault-bench-{name}-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let password = format!("bench-{name}-{}", free_port());
        std::fs::write(dir.join("pwfile"), &password).unwrap();
        if is_root() {
            Command::new("chown")
                .args(["-R", "postgres:postgres"])
                .arg(&dir)
                .status()
                .unwrap();
        }
        let pg = Pg {
            dir: dir.clone(),
            port: free_port(),
            password,
        };
        let ok = pg_cmd("initdb")
            .arg("-D")
            .arg(dir.join("data"))
            .args([
                "-U",
                "postgres",
                "--auth=scram-sha-256",
                "-E",
                "UTF8",
                "--no-sync",
            ])
            .arg(format!("--pwfile={}", dir.join("pwfile").display()))
            .output()
            .unwrap();
        assert!(
            ok.status.success(),
            "initdb: {}",
            String::from_utf8_lossy(&ok.stderr)
        );
        let opts = format!(
            "-c listen_addresses=127.0.0.1 -p {} -k {} -c shared_buffers=512MB -c max_wal_size=4GB",
            pg.port,
            dir.display()
        );
        let ok = pg_cmd("pg_ctl")
            .arg("-D")
            .arg(dir.join("data"))
            .arg("-l")
            .arg(dir.join("log"))
            .args(["-w", "-o", &opts, "start"])
            .output()
            .unwrap();
        assert!(
            ok.status.success(),
            "pg_ctl start: {}",
            String::from_utf8_lossy(&ok.stderr)
        );
        pg
    }

    fn postmaster(&self) -> u32 {
        std::fs::read_to_string(self.dir.join("data/postmaster.pid"))
            .ok()
            .and_then(|s| s.lines().next().and_then(|l| l.trim().parse().ok()))
            .unwrap_or(0)
    }

    fn conninfo(&self, db: &str) -> String {
        format!(
            "host=127.0.0.1 port={} user=postgres password={} dbname={db}",
            self.port, self.password
        )
    }

    fn create_db(&self, db: &str) -> String {
        let mut c = postgres::Client::connect(&self.conninfo("postgres"), postgres::NoTls).unwrap();
        c.batch_execute(&format!("CREATE DATABASE {db}")).unwrap();
        self.conninfo(db)
    }
}

impl Drop for Pg {
    fn drop(&mut self) {
        let _ = pg_cmd("pg_ctl")
            .arg("-D")
            .arg(self.dir.join("data"))
            .args(["-m", "immediate", "stop"])
            .output();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn main() {
    let mut n: usize = 10_000_000;
    let mut backends = vec!["sqlite".to_string(), "postgresql".to_string()];
    let mut repeat: Option<usize> = None;
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        match a.as_str() {
            "--readings" => {
                n = args
                    .next()
                    .and_then(|v| v.replace('_', "").parse().ok())
                    .expect("--readings N")
            }
            "--backends" => {
                backends = args
                    .next()
                    .expect("--backends sqlite,postgresql")
                    .split(',')
                    .map(str::to_string)
                    .collect();
            }
            "--repeat" => {
                repeat = Some(
                    args.next()
                        .and_then(|v| v.parse().ok())
                        .expect("--repeat N"),
                )
            }
            "--help" | "-h" => {
                println!(
                    "vault_bench [--readings N (default 10000000)] [--backends sqlite,postgresql] \
                     [--repeat N (query runs, best kept; default 3, 2 from 1M readings)]"
                );
                return;
            }
            other => panic!("unknown argument {other}"),
        }
    }
    REPEAT.with(|r| r.set(repeat.unwrap_or(if n >= 1_000_000 { 2 } else { 3 })));
    let month = Month::new(2026, 3).unwrap();
    let (data, households) = readings(n, month);
    println!(
        "vault_bench: {n} readings, {households} households, {REGIONS} regions, month {}-{:02}, scheme replicated-2-of-3, {} cores",
        month.year,
        month.month,
        std::thread::available_parallelism().map(|p| p.get()).unwrap_or(1)
    );
    let rate = split_rate(&data);
    println!(
        "splitting: {:.1} M readings/s on one core (target >= 20)",
        rate / 1e6
    );

    let tmp = tempfile::tempdir().unwrap();
    let layout1 = StoreLayout {
        columns: 1,
        modulus: Modulus::Wrap64,
    };
    if backends.iter().any(|b| b == "sqlite") {
        run_sqlite(&tmp, layout1, &data, households, month);
    }
    if backends.iter().any(|b| b == "postgresql") {
        run_postgres(&tmp, layout1, &data, households, month);
    }
}

fn run_sqlite(
    tmp: &tempfile::TempDir,
    layout1: StoreLayout,
    data: &[Reading],
    households: u64,
    month: Month,
) {
    let plain = Box::new(SqliteStore::open(&tmp.path().join("plain.sqlite"), layout1).unwrap());
    let shared: Vec<StoreConfig> = (0..3)
        .map(|i| StoreConfig::Sqlite {
            path: tmp.path().join(format!("store-{i}.sqlite")),
        })
        .collect();
    remember("sqlite", &shared);
    let f = run(
        "sqlite",
        data,
        households,
        month,
        plain,
        shared,
        &tmp.path().join("outbox"),
        &|| 0.0,
        &|| {},
    );
    print(&f);
}

fn run_postgres(
    tmp: &tempfile::TempDir,
    layout1: StoreLayout,
    data: &[Reading],
    households: u64,
    month: Month,
) {
    if let Some(reason) = pg_missing() {
        println!("--- postgresql --- SKIPPED: {reason}");
        return;
    }
    let servers: Vec<Pg> = std::thread::scope(|s| {
        let h: Vec<_> = (0..3)
            .map(|i| s.spawn(move || Pg::start(&format!("s{i}"))))
            .collect();
        h.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let plain_conninfo = servers[0].create_db("plain");
    let plain = Box::new(PostgresStore::connect(&plain_conninfo, layout1).unwrap());
    let shared: Vec<StoreConfig> = servers
        .iter()
        .map(|s| StoreConfig::Postgres {
            conninfo: s.create_db("shares"),
        })
        .collect();
    remember("postgresql", &shared);
    let pids: Vec<u32> = servers.iter().map(Pg::postmaster).collect();
    let cpu = move || pids.iter().map(|&p| server_cpu(p)).sum::<f64>();
    let f = run(
        "postgresql",
        data,
        households,
        month,
        plain,
        shared,
        &tmp.path().join("outbox-pg"),
        &cpu,
        &|| {
            let mut all = vec![plain_conninfo.clone()];
            all.extend(servers.iter().map(|s| s.conninfo("shares")));
            std::thread::scope(|scope| {
                for c in &all {
                    scope.spawn(move || {
                        let mut client = postgres::Client::connect(c, postgres::NoTls).unwrap();
                        client.batch_execute("VACUUM ANALYZE").unwrap();
                    });
                }
            });
        },
    );
    print(&f);
    drop(servers);
}
