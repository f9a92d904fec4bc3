//! The vault commands over a data directory: bills, regional totals and single readings
//! reconstructed from the shares equal the plaintext computation; a deleted store is still
//! billed around and rebuilt by `vault repair`; a tampered store is named; and no file of the
//! data directory holds a plaintext reading.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use gridguard::datadir::DataDir;
use gridguard::vault_cli::{bill_report, readings_report, totals_report};
use gridguard_vault::store::SqliteStore;
use gridguard_vault::time::{format_utc, TIERS};
use gridguard_vault::{Month, Reading, TimeRange, TouCalendar};

/// Region 1 holds meters 101..=108 (8 households), region 2 meters 201..=203 (3: below the
/// minimum group size of 5).
fn meters() -> Vec<(u64, u32)> {
    (101..=108)
        .map(|m| (m, 1))
        .chain((201..=203).map(|m| (m, 2)))
        .collect()
}

fn month() -> Month {
    "2026-10".parse().unwrap()
}

fn days() -> [TimeRange; 2] {
    [
        TimeRange::parse_day("2026-10-05").unwrap(),
        TimeRange::parse_day("2026-10-06").unwrap(),
    ]
}

fn calendar() -> TouCalendar {
    let mut cal = TouCalendar::flat(0);
    for (i, s) in cal.slots.iter_mut().enumerate() {
        *s = (i / 8) as u8;
    }
    cal
}

/// Two days of readings of every meter, except a gap (meter 102's first 10 intervals of the
/// second day). Every value is distinct and above 2^32, so that its encodings (8-byte little
/// and big endian, SQLite's 6-byte big-endian integer, decimal text) are distinctive enough to
/// search for in the files.
fn readings() -> Vec<Reading> {
    let mut out = Vec::new();
    for (d, day) in days().iter().enumerate() {
        for slot in 0..96i64 {
            for (m, _) in meters() {
                if m == 102 && d == 1 && slot < 10 {
                    continue;
                }
                out.push(Reading {
                    meter: m,
                    interval_start: day.start + slot * 900,
                    wh: 5_000_000_000 + m * 1_000_003 + (d as u64 * 96 + slot as u64) * 7_919,
                });
            }
        }
    }
    out
}

/// A data directory with the readings ingested. `lock_store` (0-based) is held locked by
/// another writer during the second day's ingest, so its shares of that day wait in its outbox
/// (until the next open delivers them).
fn populated(lock_store: Option<usize>) -> (tempfile::TempDir, DataDir) {
    let tmp = tempfile::tempdir().unwrap();
    let dir = DataDir::new(tmp.path().join("data"));
    let mut vault = dir.open_vault().unwrap();
    vault.set_regions(&meters()).unwrap();
    vault
        .set_tou_calendar(&calendar(), month().range())
        .unwrap();
    let all = readings();
    let (first, second) = all.split_at(all.len() / 2);
    vault.ingest(first).unwrap();
    // The store and its landing file, both held by another writer.
    let lock: Option<Vec<rusqlite::Connection>> = lock_store.map(|i| {
        let store = dir.store_path(i);
        [store.clone(), SqliteStore::landing_path(&store)]
            .iter()
            .map(|path| {
                let c = rusqlite::Connection::open(path).unwrap();
                c.execute_batch("BEGIN EXCLUSIVE").unwrap();
                c
            })
            .collect()
    });
    let receipt = vault.ingest(second).unwrap();
    if let Some(i) = lock_store {
        assert_eq!(receipt.queued, vec![i]);
    }
    drop(lock);
    drop(vault);
    (tmp, dir)
}

/// Plaintext billing determinants: meter → (energy per tier, readings).
fn plain_bill() -> BTreeMap<u64, ([u64; TIERS], u64)> {
    let cal = calendar();
    let mut out: BTreeMap<u64, ([u64; TIERS], u64)> = BTreeMap::new();
    for r in readings() {
        let e = out.entry(r.meter).or_default();
        e.0[usize::from(cal.tier_at(r.interval_start))] += r.wh;
        e.1 += 1;
    }
    out
}

/// Plaintext region total per interval: start → (Wh, households).
fn plain_region(region: u32, day: TimeRange) -> BTreeMap<i64, (u64, u64)> {
    let regions: BTreeMap<u64, u32> = meters().into_iter().collect();
    let mut out: BTreeMap<i64, (u64, u64)> = BTreeMap::new();
    for r in readings() {
        if regions[&r.meter] == region && day.contains(r.interval_start) {
            let e = out.entry(r.interval_start).or_default();
            e.0 += r.wh;
            e.1 += 1;
        }
    }
    out
}

/// The table rows of a bill report: meter → (tiers, total, intervals).
fn parse_bill(text: &str) -> BTreeMap<u64, ([u64; TIERS], u64, u64)> {
    let mut out = BTreeMap::new();
    for line in text.lines() {
        let f: Vec<&str> = line.split_whitespace().collect();
        if f.len() != TIERS + 3 {
            continue;
        }
        let Ok(nums) = f
            .iter()
            .map(|x| x.parse::<u64>())
            .collect::<Result<Vec<_>, _>>()
        else {
            continue;
        };
        let mut tiers = [0; TIERS];
        tiers.copy_from_slice(&nums[1..=TIERS]);
        out.insert(nums[0], (tiers, nums[TIERS + 1], nums[TIERS + 2]));
    }
    out
}

fn expected_bill_rows() -> BTreeMap<u64, ([u64; TIERS], u64, u64)> {
    plain_bill()
        .into_iter()
        .map(|(m, (t, n))| (m, (t, t.iter().sum(), n)))
        .collect()
}

/// The report's lines with runs of spaces collapsed.
fn normalized(text: &str) -> Vec<String> {
    text.lines()
        .map(|l| l.split_whitespace().collect::<Vec<_>>().join(" "))
        .collect()
}

fn gridguard(data: &Path, args: &[&str]) -> (bool, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_gridguard"))
        .args(args)
        .arg("--data")
        .arg(data)
        .output()
        .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

#[test]
fn bill_totals_and_readings_equal_the_plaintext_computation() {
    let (_tmp, dir) = populated(None);
    let mut vault = dir.open_vault().unwrap();

    let text = bill_report(&mut vault, month(), None, 0).unwrap();
    assert_eq!(parse_bill(&text), expected_bill_rows(), "{text}");
    assert!(
        text.contains("integrity: stores 1, 2, 3 answered and agreed"),
        "{text}"
    );
    // Selected meters, a meter without readings, and the limit.
    let text = bill_report(&mut vault, month(), Some(&[103, 999]), 0).unwrap();
    let rows = parse_bill(&text);
    assert_eq!(rows.keys().copied().collect::<Vec<_>>(), vec![103]);
    assert_eq!(rows[&103], expected_bill_rows()[&103]);
    assert!(text.contains("999 no readings stored in 2026-10"), "{text}");
    let text = bill_report(&mut vault, month(), None, 4).unwrap();
    assert_eq!(parse_bill(&text).len(), 4);
    assert!(text.contains("... 7 more household(s)"), "{text}");

    // Region 1 (8 households): the day total and all 96 interval totals.
    for day in days() {
        let plain = plain_region(1, day);
        let text = totals_report(&mut vault, 1, Some(day)).unwrap();
        let day_total: u64 = plain.values().map(|v| v.0).sum();
        assert!(
            text.contains(&format!("day total: {day_total} Wh from 8 household(s)")),
            "{text}"
        );
        let mut seen = 0;
        for (start, (wh, n)) in &plain {
            let row = format!("{} {wh} {n}", format_utc(*start));
            assert!(normalized(&text).contains(&row), "missing {row} in\n{text}");
            seen += 1;
        }
        assert_eq!(seen, 96);
        assert!(text.contains("96 of 96 intervals"), "{text}");
    }
    // Without --day: one total per day.
    let text = totals_report(&mut vault, 1, None).unwrap();
    for day in days() {
        let plain = plain_region(1, day);
        let total: u64 = plain.values().map(|v| v.0).sum();
        let count: u64 = plain.values().map(|v| v.1).sum();
        let row = format!(
            "{} {total} 8 {count}",
            gridguard_vault::time::format_day(day.start)
        );
        assert!(normalized(&text).contains(&row), "missing {row} in\n{text}");
    }
    // Region 2 has 3 households: refused, nothing reconstructed.
    let text = totals_report(&mut vault, 2, Some(days()[0])).unwrap();
    assert!(text.contains("REFUSED: region 2"), "{text}");
    assert!(text.contains("3 household(s), below the minimum group size 5"));
    assert!(!text.contains("day total"), "{text}");

    // Single readings (household-data permission), with the gap of meter 102.
    let day = days()[1];
    let text = readings_report(&mut vault, 102, Some(day)).unwrap();
    let want: Vec<String> = readings()
        .iter()
        .filter(|r| r.meter == 102 && day.contains(r.interval_start))
        .map(|r| format!("{} {}", format_utc(r.interval_start), r.wh))
        .collect();
    assert_eq!(want.len(), 86);
    let got: Vec<String> = normalized(&text)
        .into_iter()
        .filter(|l| l.starts_with("2026-"))
        .collect();
    assert_eq!(got, want, "{text}");
    assert!(text.contains("86 reading(s)"), "{text}");

    // Stored keys (public metadata) for the head-end's gap detection.
    let stored = vault.stored_intervals(month().range()).unwrap();
    let mut want: BTreeMap<u64, Vec<i64>> = BTreeMap::new();
    for r in readings() {
        want.entry(r.meter).or_default().push(r.interval_start);
    }
    want.values_mut().for_each(|v| v.sort_unstable());
    assert_eq!(stored, want);
    let counts = vault.count_intervals(days()[1]).unwrap();
    assert_eq!(counts[&102], 86);
    assert_eq!(counts[&101], 96);
}

#[test]
fn a_deleted_store_is_billed_around_and_rebuilt_by_repair() {
    let (_tmp, dir) = populated(None);
    let data = dir.root().to_path_buf();
    for suffix in ["", "-wal", "-shm"] {
        let p = PathBuf::from(format!("{}{suffix}", dir.store_path(1).display()));
        let _ = std::fs::remove_file(p);
    }
    let (ok, text) = gridguard(&data, &["bill", "--month", "2026-10", "--limit", "0"]);
    assert!(ok, "{text}");
    assert_eq!(parse_bill(&text), expected_bill_rows(), "{text}");
    assert!(text.contains("integrity: stores 1, 3 answered"), "{text}");

    let (_, text) = gridguard(&data, &["vault", "status"]);
    assert!(text.contains("LOST"), "{text}");
    let (ok, text) = gridguard(&data, &["vault", "check"]);
    assert!(!ok, "{text}");
    assert!(text.contains("PROBLEMS FOUND"), "{text}");

    let (ok, text) = gridguard(&data, &["vault", "repair", "--store", "2"]);
    assert!(ok, "{text}");
    let rows = readings().len();
    assert!(
        text.contains(&format!("store 2 rebuilt: {rows} share row(s)")),
        "{text}"
    );
    let (ok, text) = gridguard(&data, &["vault", "check"]);
    assert!(ok, "{text}");
    assert!(text.contains("check: all good"), "{text}");
    assert!(text.contains("2 day(s) compared"), "{text}");
    let (ok, text) = gridguard(&data, &["bill", "--month", "2026-10", "--limit", "0"]);
    assert!(ok, "{text}");
    assert_eq!(parse_bill(&text), expected_bill_rows(), "{text}");
    assert!(
        text.contains("integrity: stores 1, 2, 3 answered and agreed"),
        "{text}"
    );
    let (ok, text) = gridguard(&data, &["vault", "repair", "--store", "4"]);
    assert!(!ok && text.contains("--store must be 1 to 3"), "{text}");
}

/// Adds `delta` (mod 2^64) to both share columns of every row of a store file.
fn tamper(path: &Path, delta: u64) {
    tamper_columns(path, delta, delta);
}

/// Adds `da` to column a and `db` to column b (mod 2^64) of every row of a store file.
fn tamper_columns(path: &Path, da: u64, db: u64) {
    let c = rusqlite::Connection::open(path).unwrap();
    let rows: Vec<(i64, i64, i64, i64)> = c
        .prepare("SELECT interval_start, meter, a, b FROM shares")
        .unwrap()
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    assert!(!rows.is_empty());
    let add = |v: i64, d: u64| (v as u64).wrapping_add(d) as i64;
    c.execute_batch("BEGIN").unwrap();
    for (s, m, a, b) in rows {
        c.execute(
            "UPDATE shares SET a = ?1, b = ?2 WHERE interval_start = ?3 AND meter = ?4",
            rusqlite::params![add(a, da), add(b, db), s, m],
        )
        .unwrap();
    }
    c.execute_batch("COMMIT").unwrap();
}

#[test]
fn a_tampered_store_is_named_and_left_out() {
    let (_tmp, dir) = populated(None);
    let data = dir.root().to_path_buf();
    tamper(&dir.store_path(1), 12_345);

    let (ok, text) = gridguard(&data, &["vault", "check"]);
    assert!(!ok, "{text}");
    assert!(text.contains("STORE 2 LIES"), "{text}");
    assert!(!text.contains("STORE 1 LIES") && !text.contains("STORE 3 LIES"));

    let (ok, text) = gridguard(&data, &["bill", "--month", "2026-10", "--limit", "0"]);
    assert!(ok, "{text}");
    assert_eq!(parse_bill(&text), expected_bill_rows(), "{text}");
    assert!(text.contains("STORE 2 LIED"), "{text}");

    let mut vault = dir.open_vault().unwrap();
    let text = readings_report(&mut vault, 105, Some(days()[0])).unwrap();
    assert!(text.contains("STORE 2 LIED"), "{text}");
    assert!(text.contains("96 reading(s)"), "{text}");
    drop(vault);

    // Rebuilding the lying store from the two honest ones clears it.
    let (ok, text) = gridguard(&data, &["vault", "repair", "--store", "2"]);
    assert!(ok, "{text}");
    let (ok, text) = gridguard(&data, &["vault", "check"]);
    assert!(ok && text.contains("check: all good"), "{text}");
}

/// A store that changes only one of its two columns spoils one additive part, which exactly
/// two stores hold: the disagreement is detected, both holders are suspects, and the bill is
/// refused rather than answered wrong.
#[test]
fn a_store_changing_one_column_makes_both_holders_suspects() {
    let (_tmp, dir) = populated(None);
    let data = dir.root().to_path_buf();
    // Store 2 holds parts x1 (column a) and x2 (column b); store 1 holds x0 and x1.
    tamper_columns(&dir.store_path(1), 777, 0);
    let (ok, text) = gridguard(&data, &["bill", "--month", "2026-10"]);
    assert!(!ok, "{text}");
    assert!(
        text.contains("one of stores 1, 2 returned wrong values"),
        "{text}"
    );
    let (ok, text) = gridguard(&data, &["vault", "check"]);
    assert!(!ok, "{text}");
    assert!(
        text.contains("2 day(s) disagree without a single culprit: one of stores 1, 2 is wrong"),
        "{text}"
    );
}

/// Every encoding of a reading a file might hold: 8-byte little and big endian, SQLite's
/// 6-byte big-endian record integer (values between 2^32 and 2^47), decimal text.
fn needles(readings: &[Reading]) -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    for r in readings {
        out.push(r.wh.to_le_bytes().to_vec());
        out.push(r.wh.to_be_bytes().to_vec());
        assert!(r.wh >> 47 == 0 && r.wh >> 32 != 0);
        out.push(r.wh.to_be_bytes()[2..].to_vec());
        out.push(r.wh.to_string().into_bytes());
    }
    out
}

/// Finds any of many needles (each at least 4 bytes long): a bitmap over the first four bytes
/// of every needle filters the positions, the candidates are compared in full.
struct Finder<'a> {
    filter: Vec<u64>,
    by_key: BTreeMap<u32, Vec<&'a [u8]>>,
}

const FILTER_BITS: u32 = 24;

fn key4(w: &[u8]) -> u32 {
    u32::from_le_bytes([w[0], w[1], w[2], w[3]])
}

fn filter_slot(k: u32) -> usize {
    (k.wrapping_mul(0x9E37_79B1) >> (32 - FILTER_BITS)) as usize
}

impl<'a> Finder<'a> {
    fn new(needles: &'a [Vec<u8>]) -> Self {
        let mut f = Finder {
            filter: vec![0u64; (1 << FILTER_BITS) / 64],
            by_key: BTreeMap::new(),
        };
        for n in needles {
            assert!(n.len() >= 4);
            let slot = filter_slot(key4(n));
            f.filter[slot / 64] |= 1 << (slot % 64);
            f.by_key.entry(key4(n)).or_default().push(n);
        }
        f
    }

    fn find(&self, hay: &[u8]) -> Option<Vec<u8>> {
        for i in 0..hay.len().saturating_sub(3) {
            let k = key4(&hay[i..i + 4]);
            let slot = filter_slot(k);
            if self.filter[slot / 64] & (1 << (slot % 64)) == 0 {
                continue;
            }
            for n in self.by_key.get(&k).into_iter().flatten() {
                if hay[i..].starts_with(n) {
                    return Some(n.to_vec());
                }
            }
        }
        None
    }
}

fn all_files(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).unwrap().flatten() {
        let p = e.path();
        if p.is_dir() {
            out.extend(all_files(&p));
        } else {
            out.push(p);
        }
    }
    out
}

#[test]
fn no_plaintext_reading_in_any_file_of_the_data_dir() {
    let all = readings();
    let needles = needles(&all);
    let finder = Finder::new(&needles);
    // The search finds a reading in every encoding.
    for n in &needles {
        let mut hay = vec![0xa5u8; 50];
        hay.extend_from_slice(n);
        hay.extend_from_slice(&[0x5a; 50]);
        let found = finder.find(&hay).expect("planted reading not found");
        // The 6-byte form is the tail of the 8-byte big-endian one.
        assert!(
            n.ends_with(&found) || n == &found,
            "{found:02x?} for {n:02x?}"
        );
    }
    // ... and in a SQLite file that holds the readings as plain integers.
    let control = tempfile::tempdir().unwrap();
    let path = control.path().join("plain.sqlite");
    {
        let c = rusqlite::Connection::open(&path).unwrap();
        c.execute_batch("CREATE TABLE r (v INTEGER)").unwrap();
        c.execute("INSERT INTO r VALUES (?1)", [all[7].wh as i64])
            .unwrap();
    }
    assert!(finder.find(&std::fs::read(&path).unwrap()).is_some());
    // Store 3 is locked during half of the ingest: its shares wait in its outbox.
    let (_tmp, dir) = populated(Some(2));
    let scan = |when: &str, expect_wal: bool| {
        let files = all_files(dir.root());
        assert!(files.iter().any(|f| f.to_string_lossy().contains("outbox")));
        if expect_wal {
            assert!(
                files.iter().any(|f| f.to_string_lossy().ends_with("-wal")),
                "{files:?}"
            );
        }
        for f in &files {
            let bytes = std::fs::read(f).unwrap();
            if let Some(found) = finder.find(&bytes) {
                panic!("{when}: reading {found:02x?} found in {}", f.display());
            }
        }
        files.len()
    };
    // After the ingest (outbox of store 3 still full), then while a vault is open and
    // queried, then after a refresh.
    let outbox_rows = {
        let c = rusqlite::Connection::open(dir.outbox_dir().join("outbox-store-2.sqlite")).unwrap();
        c.query_row("SELECT COUNT(*) FROM shares", [], |r| r.get::<_, i64>(0))
            .unwrap()
    };
    assert_eq!(outbox_rows as usize, all.len() - all.len() / 2);
    scan("after ingest", false);
    let mut vault = dir.open_vault().unwrap();
    let text = bill_report(&mut vault, month(), None, 0).unwrap();
    assert_eq!(parse_bill(&text), expected_bill_rows());
    scan("while open", true);
    let text = gridguard::vault_cli::refresh_report(&mut vault, TimeRange::ALL).unwrap();
    assert!(
        text.contains(&format!("refreshed {} share row(s)", all.len())),
        "{text}"
    );
    scan("after refresh", false);
    drop(vault);
    let n = scan("after close", false);
    assert!(n >= 6, "too few files scanned: {n}");
}
