//! The embedded store: one SQLite database file per store.
//!
//! SQLite's own `SUM` raises an error on 64-bit overflow, so the store registers
//! `gg_wsum` (a wrapping 64-bit sum) and `gg_psum` (a sum mod 2^61 − 1) as aggregates, and
//! `gg_wadd` / `gg_padd` as scalar additions for refreshes. `secure_delete` is on, so that
//! overwritten shares (after a refresh) and drained outbox rows do not linger in free pages.
//!
//! Writes land first in a landing file beside the store (`<name>.landing`), one row (a blob
//! of share rows) per batch, in arrival order, and are merged into `shares` in key order: by
//! a background thread once enough have gathered, and before any read, when the store is
//! closed, and when it is reopened after a crash. Meters report in random order: inserted one
//! batch at a time, each reading would dirty its own page of the `(interval_start, meter)`
//! B-tree; merged in key order, neighbouring readings share pages, which makes ingest several
//! times faster. The landing file has its own write lock, so a write is committed (and can be
//! acknowledged) while a merge is running. The merge sorts in memory: a sort in SQL cost more
//! than the inserts.
//!
//! The background merger runs at a lower priority (nice 10 on Linux) than the threads that
//! commit and answer meters, and it only reads the landing file: the batches it merged are
//! dropped by the store's next write, in the same transaction. A write thus never waits for
//! the merger, however long the scheduler keeps the merger off the cores.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicI64, AtomicUsize, Ordering};
use std::sync::mpsc::{sync_channel, Receiver, SyncSender};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::thread::JoinHandle;
use std::time::Duration;

use rusqlite::functions::{Aggregate, Context, FunctionFlags};
use rusqlite::{params, params_from_iter, Connection, OptionalExtension};

use super::landing;
use super::record::{from_sql, region_from_sql, tier_from_sql, to_sql};
use super::sql::{self, Dialect};
use super::{GroupSum, ShareRecord, ShareStore, StoreError, StoreLayout, StoreMeta, SumQuery};
use crate::field;
use crate::scheme::Modulus;
use crate::time::TimeRange;

/// Rows per multi-row `INSERT` statement (at most 4 parameters a row, far below SQLite's
/// limit of 32766 parameters a statement).
const ROWS_PER_INSERT: usize = 256;

/// Landed share rows that trigger a merge into `shares`.
const MERGE_ROWS: usize = 131_072;

/// How long the background merger waits for a lock held by the store's own connection.
const MERGER_BUSY: Duration = Duration::from_secs(30);

/// The merger's nice value (Linux, per thread): merging is background work that may wait,
/// while the threads that commit and answer meters may not.
const MERGER_NICE: i32 = 10;

/// A share store kept in one SQLite database file (WAL mode), with its landing file.
pub struct SqliteStore {
    conn: Connection,
    landing: Connection,
    path: PathBuf,
    layout: StoreLayout,
    shared: Arc<Shared>,
    merger: Option<Merger>,
}

/// What the store and its background merger share.
#[derive(Default)]
struct Shared {
    /// Held while landed batches are merged, and while the store writes to `shares` itself.
    merging: Mutex<()>,
    /// Share rows landed and not merged yet.
    landed: AtomicUsize,
    /// Landed batches up to this id were merged by the background merger and are deleted by
    /// the store's next write (0: none). The merger only reads the landing file, so it never
    /// holds the lock that a write waits for: a merger running at low priority would
    /// otherwise keep the ingest waiting.
    merged_to: AtomicI64,
}

impl Shared {
    fn hold(&self) -> MutexGuard<'_, ()> {
        self.merging.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// The background merger: a thread with connections of its own.
struct Merger {
    wake: SyncSender<()>,
    thread: JoinHandle<()>,
}

impl std::fmt::Debug for SqliteStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SqliteStore")
            .field("path", &self.path)
            .field("layout", &self.layout)
            .finish()
    }
}

/// Wrapping (mod 2^64) or prime-field sum aggregate.
struct ModSum(Modulus);

impl Aggregate<u64, i64> for ModSum {
    fn init(&self, _: &mut Context<'_>) -> rusqlite::Result<u64> {
        Ok(0)
    }
    fn step(&self, ctx: &mut Context<'_>, acc: &mut u64) -> rusqlite::Result<()> {
        let v = from_sql(ctx.get::<i64>(0)?);
        *acc = match self.0 {
            Modulus::Wrap64 => acc.wrapping_add(v),
            Modulus::Prime61 => field::add(*acc, field::reduce(v)),
        };
        Ok(())
    }
    fn finalize(&self, _: &mut Context<'_>, acc: Option<u64>) -> rusqlite::Result<i64> {
        Ok(to_sql(acc.unwrap_or(0)))
    }
}

fn register_functions(conn: &Connection) -> rusqlite::Result<()> {
    let flags = FunctionFlags::SQLITE_UTF8 | FunctionFlags::SQLITE_DETERMINISTIC;
    conn.create_aggregate_function("gg_wsum", 1, flags, ModSum(Modulus::Wrap64))?;
    conn.create_aggregate_function("gg_psum", 1, flags, ModSum(Modulus::Prime61))?;
    // hi · 2^32 + lo, reduced: the two halves' sums back into one value.
    conn.create_scalar_function("gg_wjoin", 2, flags, |ctx| {
        let hi = ctx.get::<i64>(0)?;
        let lo = ctx.get::<i64>(1)?;
        Ok(to_sql((hi as u64).wrapping_shl(32).wrapping_add(lo as u64)))
    })?;
    conn.create_scalar_function("gg_pjoin", 2, flags, |ctx| {
        let hi = field::reduce(from_sql(ctx.get::<i64>(0)?));
        let lo = field::reduce(from_sql(ctx.get::<i64>(1)?));
        Ok(to_sql(field::add(field::mul(hi, 1 << 32), lo)))
    })?;
    conn.create_scalar_function("gg_wadd", 2, flags, |ctx| {
        Ok(to_sql(
            from_sql(ctx.get::<i64>(0)?).wrapping_add(from_sql(ctx.get::<i64>(1)?)),
        ))
    })?;
    conn.create_scalar_function("gg_padd", 2, flags, |ctx| {
        let x = field::reduce(from_sql(ctx.get::<i64>(0)?));
        let y = field::reduce(from_sql(ctx.get::<i64>(1)?));
        Ok(to_sql(field::add(x, y)))
    })?;
    Ok(())
}

impl SqliteStore {
    /// Opens (creating if needed) the store file at `path` with the given layout, and its
    /// landing file beside it.
    pub fn open(path: &Path, layout: StoreLayout) -> Result<Self, StoreError> {
        let landing_path = Self::landing_path(path);
        if !path.exists() {
            // A landing file without its store belongs to a store that was deleted.
            for suffix in ["", "-wal", "-shm"] {
                let _ = std::fs::remove_file(format!("{}{suffix}", landing_path.display()));
            }
        }
        let conn = open_connection(path, Duration::from_millis(250))?;
        register_functions(&conn)?;
        for stmt in sql::schema(Dialect::Sqlite, &layout) {
            conn.execute(&stmt, [])?;
        }
        let landing = open_connection(&landing_path, Duration::from_millis(250))?;
        landing.execute(
            "CREATE TABLE IF NOT EXISTS landing_batches (id INTEGER PRIMARY KEY, rows BLOB NOT NULL)",
            [],
        )?;
        // Checkpoints of the landing file run after merges, not in the writes waiting on them.
        landing.pragma_update(None, "wal_autocheckpoint", 0)?;
        let shared = Arc::new(Shared::default());
        // Batches a killed process left landed are merged now.
        shared.landed.store(1, Ordering::Release);
        let merger = {
            let main = open_connection(path, MERGER_BUSY)?;
            let landed = open_connection(&landing_path, MERGER_BUSY)?;
            let (wake, woken) = sync_channel(1);
            let shared = Arc::clone(&shared);
            let thread = std::thread::Builder::new()
                .name("store-merger".into())
                .spawn(move || run_merger(&main, &landed, layout, &shared, &woken))
                .map_err(|e| StoreError::Config(format!("cannot start the merger: {e}")))?;
            Merger { wake, thread }
        };
        let mut store = SqliteStore {
            conn,
            landing,
            path: path.to_path_buf(),
            layout,
            shared,
            merger: Some(merger),
        };
        store.merge()?;
        Ok(store)
    }

    /// The landing file of the store at `path`.
    pub fn landing_path(path: &Path) -> PathBuf {
        PathBuf::from(format!("{}.landing", path.display()))
    }

    /// Moves every landed row into `shares` now (waiting for a merge the background thread
    /// is running). Batches the merger already merged may stay in the landing file (for the
    /// next write to drop): merging them again changes nothing, and whatever deletes from
    /// `shares` calls [`merge_held`](Self::merge_held), which drops them first.
    fn merge(&mut self) -> Result<(), StoreError> {
        if self.shared.landed.load(Ordering::Acquire) == 0 {
            return Ok(());
        }
        let shared = Arc::clone(&self.shared);
        let _merging = shared.hold();
        self.merge_held()
    }

    /// [`merge`](Self::merge) for a caller already holding the merge lock.
    fn merge_held(&self) -> Result<(), StoreError> {
        if self.shared.landed.load(Ordering::Acquire) == 0
            && self.shared.merged_to.load(Ordering::Acquire) == 0
        {
            return Ok(());
        }
        // The merger is not running (the caller holds the merge lock).
        let after = self.shared.merged_to.load(Ordering::Acquire);
        let last = merge_landed(
            &self.conn,
            &self.landing,
            self.layout,
            &self.shared.landed,
            after,
        )?;
        let upto = last.unwrap_or(0).max(after);
        if upto > 0 {
            self.landing
                .execute("DELETE FROM landing_batches WHERE id <= ?1", [upto])?;
            self.shared.merged_to.store(0, Ordering::Release);
        }
        Ok(())
    }

    /// The database file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Truncates the WAL so no overwritten page survives in it.
    fn checkpoint(&self) -> Result<(), StoreError> {
        self.conn
            .query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(()))?;
        Ok(())
    }
}

/// A connection in WAL mode with the store's settings.
fn open_connection(path: &Path, busy: Duration) -> Result<Connection, StoreError> {
    let conn = Connection::open(path)?;
    conn.busy_timeout(busy)?;
    let mode: String = conn.pragma_update_and_check(None, "journal_mode", "WAL", |r| r.get(0))?;
    if !mode.eq_ignore_ascii_case("wal") {
        tracing::warn!(path = %path.display(), %mode, "SQLite store not in WAL mode");
    }
    conn.pragma_update(None, "synchronous", "NORMAL")?;
    conn.pragma_update(None, "secure_delete", "ON")?;
    // Aggregates group a month of rows: sort in memory, keep a larger page cache.
    conn.pragma_update(None, "temp_store", "MEMORY")?;
    conn.pragma_update(None, "cache_size", -32_768)?;
    Ok(conn)
}

/// The background merger: merges whenever woken with enough rows landed, until the store is
/// dropped.
fn run_merger(
    main: &Connection,
    landing: &Connection,
    layout: StoreLayout,
    shared: &Shared,
    woken: &Receiver<()>,
) {
    yield_to_foreground();
    while woken.recv().is_ok() {
        let _merging = shared.hold();
        if shared.landed.load(Ordering::Acquire) < MERGE_ROWS {
            continue; // merged by the store meanwhile
        }
        let after = shared.merged_to.load(Ordering::Acquire);
        match merge_landed(main, landing, layout, &shared.landed, after) {
            Ok(Some(last)) => shared.merged_to.store(last, Ordering::Release),
            Ok(None) => {}
            Err(e) => {
                tracing::warn!(%e, "background merge failed; landed rows wait for the next one");
            }
        }
    }
}

/// Lowers the calling thread's priority to [`MERGER_NICE`] (Linux; a no-op elsewhere). On a
/// busy head-end three stores' merges would otherwise take the cores from the thread that
/// answers the meters, whose requests then wait past their timeouts and come again.
fn yield_to_foreground() {
    #[cfg(target_os = "linux")]
    if let Err(e) =
        rustix::process::setpriority_process(Some(rustix::thread::gettid()), MERGER_NICE)
    {
        tracing::debug!(%e, "cannot lower the merger's priority");
    }
}

/// Moves the batches landed after batch `after` into `shares` in key order, in one
/// transaction, and returns the id of the last one merged (None: nothing new had landed).
/// A key that is already stored, or that landed more than once, keeps its first value. The
/// batches stay in the landing file for the caller to drop; a crash before that merges them
/// again at the next open, which changes nothing.
fn merge_landed(
    main: &Connection,
    landing: &Connection,
    layout: StoreLayout,
    landed: &AtomicUsize,
    after: i64,
) -> Result<Option<i64>, StoreError> {
    let last: Option<i64> =
        landing.query_row("SELECT MAX(id) FROM landing_batches", [], |r| r.get(0))?;
    let Some(last) = last.filter(|&last| last > after) else {
        landed.store(0, Ordering::Release);
        return Ok(None);
    };
    let mut rows = Vec::new();
    {
        let mut stmt = landing.prepare_cached(
            "SELECT rows FROM landing_batches WHERE id > ?1 AND id <= ?2 ORDER BY id",
        )?;
        let mut batches = stmt.query([after, last])?;
        while let Some(batch) = batches.next()? {
            let blob: Vec<u8> = batch.get(0)?;
            landing::decode_into(&blob, &mut rows)?;
        }
    }
    let merged = rows.len();
    landing::sort_first_wins(&mut rows);
    let tx = main.unchecked_transaction()?;
    insert_rows(&tx, layout, "shares", &rows)?;
    tx.commit()?;
    landing.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |_| Ok(()))?;
    let _ = landed.fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
        Some(n.saturating_sub(merged))
    });
    Ok(Some(last))
}

/// Inserts rows into `table` (inside the caller's transaction), [`ROWS_PER_INSERT`] rows per
/// statement (one prepared multi-row `INSERT` for full chunks, one for the tail), ignoring
/// rows whose key exists.
fn insert_rows(
    conn: &Connection,
    layout: StoreLayout,
    table: &str,
    rows: &[ShareRecord],
) -> Result<(), StoreError> {
    let two = layout.columns >= 2;
    let mut chunks = rows.chunks_exact(ROWS_PER_INSERT);
    let mut values: Vec<i64> = Vec::with_capacity(ROWS_PER_INSERT * 4);
    let fill = |values: &mut Vec<i64>, chunk: &[ShareRecord]| {
        values.clear();
        for r in chunk {
            values.extend_from_slice(&[r.interval_start, to_sql(r.meter), to_sql(r.share[0])]);
            if two {
                values.push(to_sql(r.share[1]));
            }
        }
    };
    {
        let mut stmt = conn.prepare_cached(&sql::insert_shares(
            Dialect::Sqlite,
            &layout,
            table,
            ROWS_PER_INSERT,
        ))?;
        for chunk in chunks.by_ref() {
            fill(&mut values, chunk);
            stmt.execute(params_from_iter(values.iter()))?;
        }
    }
    let tail = chunks.remainder();
    if !tail.is_empty() {
        let mut stmt = conn.prepare(&sql::insert_shares(
            Dialect::Sqlite,
            &layout,
            table,
            tail.len(),
        ))?;
        fill(&mut values, tail);
        stmt.execute(params_from_iter(values.iter()))?;
    }
    Ok(())
}

impl ShareStore for SqliteStore {
    fn location(&self) -> String {
        format!("sqlite:{}", self.path.display())
    }

    fn layout(&self) -> StoreLayout {
        self.layout
    }

    fn meta(&mut self) -> Result<Option<StoreMeta>, StoreError> {
        let text: Option<String> = self
            .conn
            .query_row("SELECT meta FROM store_meta WHERE id = 1", [], |r| r.get(0))
            .optional()?;
        Ok(match text {
            Some(t) => Some(StoreMeta::parse(t.as_bytes())?),
            None => None,
        })
    }

    fn set_meta(&mut self, meta: &StoreMeta) -> Result<(), StoreError> {
        let shared = Arc::clone(&self.shared);
        let _merging = shared.hold();
        self.conn.execute(
            "INSERT INTO store_meta (id, meta) VALUES (1, ?1) ON CONFLICT (id) DO UPDATE SET meta = excluded.meta",
            [meta.to_string()],
        )?;
        Ok(())
    }

    fn put_shares(&mut self, rows: &[ShareRecord]) -> Result<(), StoreError> {
        if rows.is_empty() {
            return Ok(());
        }
        let merged = self.shared.merged_to.swap(0, Ordering::AcqRel);
        let tx = self.landing.transaction()?;
        if merged > 0 {
            tx.execute("DELETE FROM landing_batches WHERE id <= ?1", [merged])?;
        }
        tx.execute(
            "INSERT INTO landing_batches (rows) VALUES (?1)",
            [landing::encode(rows)],
        )?;
        tx.commit()?;
        let landed = self.shared.landed.fetch_add(rows.len(), Ordering::AcqRel) + rows.len();
        if landed >= MERGE_ROWS {
            if let Some(m) = &self.merger {
                // Full: the merger is already due to run.
                let _ = m.wake.try_send(());
            }
        }
        Ok(())
    }

    fn put_regions(&mut self, rows: &[(u64, u32)]) -> Result<(), StoreError> {
        let shared = Arc::clone(&self.shared);
        let _merging = shared.hold();
        let tx = self.conn.transaction()?;
        {
            let mut stmt = tx.prepare_cached(
                "INSERT INTO meters (meter, region) VALUES (?1, ?2) \
                 ON CONFLICT (meter) DO UPDATE SET region = excluded.region",
            )?;
            for &(m, r) in rows {
                stmt.execute(params![to_sql(m), i64::from(r)])?;
            }
        }
        tx.commit()?;
        Ok(())
    }

    fn put_tiers(&mut self, rows: &[(i64, u8)]) -> Result<(), StoreError> {
        let shared = Arc::clone(&self.shared);
        let _merging = shared.hold();
        let tx = self.conn.transaction()?;
        {
            let mut stmt = tx.prepare_cached(
                "INSERT INTO intervals (interval_start, tier) VALUES (?1, ?2) \
                 ON CONFLICT (interval_start) DO UPDATE SET tier = excluded.tier",
            )?;
            for &(t, tier) in rows {
                stmt.execute(params![t, i64::from(tier)])?;
            }
        }
        tx.commit()?;
        Ok(())
    }

    fn regions(&mut self) -> Result<Vec<(u64, u32)>, StoreError> {
        let mut stmt = self
            .conn
            .prepare("SELECT meter, region FROM meters ORDER BY meter")?;
        let rows = stmt.query_map([], |r| Ok((r.get::<_, i64>(0)?, r.get::<_, i64>(1)?)))?;
        let mut out = Vec::new();
        for row in rows {
            let (m, r) = row?;
            out.push((from_sql(m), region_from_sql(r)?));
        }
        Ok(out)
    }

    fn tiers(&mut self) -> Result<Vec<(i64, u8)>, StoreError> {
        let mut stmt = self
            .conn
            .prepare("SELECT interval_start, tier FROM intervals ORDER BY interval_start")?;
        let rows = stmt.query_map([], |r| Ok((r.get::<_, i64>(0)?, r.get::<_, i64>(1)?)))?;
        let mut out = Vec::new();
        for row in rows {
            let (t, tier) = row?;
            out.push((t, tier_from_sql(tier)?));
        }
        Ok(out)
    }

    fn read_shares(&mut self, range: TimeRange) -> Result<Vec<ShareRecord>, StoreError> {
        self.merge()?;
        let layout = self.layout;
        let two = layout.columns >= 2;
        let mut stmt = self
            .conn
            .prepare_cached(&sql::select_shares(Dialect::Sqlite, &layout))?;
        let rows = stmt.query_map(params![range.start, range.end], |r| {
            Ok((
                r.get::<_, i64>(0)?,
                r.get::<_, i64>(1)?,
                r.get::<_, i64>(2)?,
                if two { Some(r.get::<_, i64>(3)?) } else { None },
            ))
        })?;
        let mut out = Vec::new();
        for row in rows {
            let (s, m, a, b) = row?;
            out.push(ShareRecord::from_sql(&layout, m, s, a, b)?);
        }
        Ok(out)
    }

    fn read_column(
        &mut self,
        range: TimeRange,
        column: usize,
    ) -> Result<Vec<(u64, i64, u64)>, StoreError> {
        self.merge()?;
        let layout = self.layout;
        let mut stmt =
            self.conn
                .prepare_cached(&sql::select_column(Dialect::Sqlite, &layout, column))?;
        let rows = stmt.query_map(params![range.start, range.end], |r| {
            Ok((
                r.get::<_, i64>(0)?,
                r.get::<_, i64>(1)?,
                r.get::<_, i64>(2)?,
            ))
        })?;
        let mut out = Vec::new();
        for row in rows {
            let (m, s, v) = row?;
            let rec = ShareRecord::from_sql(&layout, m, s, v, Some(v))?;
            out.push((rec.meter, rec.interval_start, rec.share[0]));
        }
        Ok(out)
    }

    fn keys(&mut self, range: TimeRange) -> Result<Vec<(u64, i64)>, StoreError> {
        self.merge()?;
        let mut stmt = self.conn.prepare_cached(
            "SELECT meter, interval_start FROM shares WHERE interval_start >= ?1 AND interval_start < ?2 \
             ORDER BY interval_start, meter",
        )?;
        let rows = stmt.query_map(params![range.start, range.end], |r| {
            Ok((from_sql(r.get::<_, i64>(0)?), r.get::<_, i64>(1)?))
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    fn contains_keys(&mut self, keys: &[(u64, i64)]) -> Result<Vec<bool>, StoreError> {
        self.merge()?;
        let mut stmt = self
            .conn
            .prepare_cached("SELECT 1 FROM shares WHERE interval_start = ?1 AND meter = ?2")?;
        keys.iter()
            .map(|&(meter, start)| Ok(stmt.exists(params![start, to_sql(meter)])?))
            .collect()
    }

    fn delete_keys(&mut self, keys: &[(u64, i64)]) -> Result<(), StoreError> {
        let shared = Arc::clone(&self.shared);
        let _merging = shared.hold();
        self.merge_held()?;
        let tx = self.conn.transaction()?;
        {
            let mut stmt =
                tx.prepare_cached("DELETE FROM shares WHERE interval_start = ?1 AND meter = ?2")?;
            for &(meter, start) in keys {
                stmt.execute(params![start, to_sql(meter)])?;
            }
        }
        tx.commit()?;
        Ok(())
    }

    fn clear(&mut self) -> Result<(), StoreError> {
        let shared = Arc::clone(&self.shared);
        let _merging = shared.hold();
        self.landing.execute("DELETE FROM landing_batches", [])?;
        shared.landed.store(0, Ordering::Release);
        shared.merged_to.store(0, Ordering::Release);
        self.conn.execute_batch(
            "BEGIN; DELETE FROM shares; DELETE FROM meters; DELETE FROM intervals; \
             DELETE FROM refresh_staged; DELETE FROM refresh_done; DELETE FROM store_meta; COMMIT;",
        )?;
        self.landing
            .query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(()))?;
        self.checkpoint()
    }

    fn count(&mut self) -> Result<u64, StoreError> {
        self.merge()?;
        let n: i64 = self
            .conn
            .query_row("SELECT COUNT(*) FROM shares", [], |r| r.get(0))?;
        Ok(u64::try_from(n).unwrap_or(0))
    }

    fn extent(&mut self) -> Result<Option<TimeRange>, StoreError> {
        self.merge()?;
        let (lo, hi): (Option<i64>, Option<i64>) = self.conn.query_row(
            "SELECT MIN(interval_start), MAX(interval_start) FROM shares",
            [],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )?;
        Ok(match (lo, hi) {
            (Some(lo), Some(hi)) => Some(TimeRange::new(lo, hi.saturating_add(1))),
            _ => None,
        })
    }

    fn sums(&mut self, query: &SumQuery) -> Result<Vec<GroupSum>, StoreError> {
        self.merge()?;
        let layout = self.layout;
        let two = layout.columns >= 2;
        let (text, args) = sql::sum_query(Dialect::Sqlite, &layout, query);
        let mut stmt = self.conn.prepare_cached(&text)?;
        let rows = stmt.query_map(params_from_iter(args), |r| {
            Ok([
                r.get::<_, i64>(0)?,
                r.get::<_, i64>(1)?,
                r.get::<_, i64>(2)?,
                r.get::<_, i64>(3)?,
                r.get::<_, i64>(4)?,
                if two { r.get::<_, i64>(5)? } else { 0 },
            ])
        })?;
        let mut out = Vec::new();
        for row in rows {
            let [k0, k1, n, m, a, b] = row?;
            out.push(GroupSum::from_sql(
                &layout,
                k0,
                k1,
                n,
                m,
                a,
                two.then_some(b),
            )?);
        }
        Ok(out)
    }

    fn stage_deltas(&mut self, refresh_id: u64, deltas: &[ShareRecord]) -> Result<(), StoreError> {
        let shared = Arc::clone(&self.shared);
        let _merging = shared.hold();
        let layout = self.layout;
        let cols = sql::columns(&layout);
        let names: String = cols.iter().map(|c| format!(", {c}")).collect();
        let phs: String = (0..cols.len()).map(|i| format!(", ?{}", i + 4)).collect();
        let text = format!(
            "INSERT INTO refresh_staged (refresh_id, interval_start, meter{names}) VALUES (?1, ?2, ?3{phs}) \
             ON CONFLICT DO NOTHING"
        );
        let tx = self.conn.transaction()?;
        {
            let mut stmt = tx.prepare_cached(&text)?;
            let id = to_sql(refresh_id);
            for d in deltas {
                let (s, m, a, b) = (
                    d.interval_start,
                    to_sql(d.meter),
                    to_sql(d.share[0]),
                    to_sql(d.share[1]),
                );
                if cols.len() >= 2 {
                    stmt.execute(params![id, s, m, a, b])?;
                } else {
                    stmt.execute(params![id, s, m, a])?;
                }
            }
        }
        tx.commit()?;
        Ok(())
    }

    fn apply_deltas(&mut self, refresh_id: u64) -> Result<(), StoreError> {
        let shared = Arc::clone(&self.shared);
        let _merging = shared.hold();
        self.merge_held()?;
        let id = to_sql(refresh_id);
        let update = sql::apply_deltas(Dialect::Sqlite, &self.layout);
        let tx = self.conn.transaction()?;
        let done: Option<i64> = tx
            .query_row(
                "SELECT refresh_id FROM refresh_done WHERE refresh_id = ?1",
                [id],
                |r| r.get(0),
            )
            .optional()?;
        if done.is_none() {
            tx.execute(&update, [id])?;
            tx.execute("INSERT INTO refresh_done (refresh_id) VALUES (?1)", [id])?;
        }
        tx.execute("DELETE FROM refresh_staged WHERE refresh_id = ?1", [id])?;
        tx.commit()?;
        self.checkpoint()
    }

    fn discard_deltas(&mut self, refresh_id: u64) -> Result<(), StoreError> {
        let shared = Arc::clone(&self.shared);
        let _merging = shared.hold();
        self.conn.execute(
            "DELETE FROM refresh_staged WHERE refresh_id = ?1",
            [to_sql(refresh_id)],
        )?;
        Ok(())
    }

    fn refresh_state(&mut self) -> Result<(Vec<u64>, Vec<u64>), StoreError> {
        let ids = |conn: &Connection, q: &str| -> Result<Vec<u64>, StoreError> {
            let mut stmt = conn.prepare(q)?;
            let rows = stmt.query_map([], |r| r.get::<_, i64>(0))?;
            let mut out = Vec::new();
            for r in rows {
                out.push(from_sql(r?));
            }
            Ok(out)
        };
        Ok((
            ids(&self.conn, "SELECT DISTINCT refresh_id FROM refresh_staged")?,
            ids(&self.conn, "SELECT refresh_id FROM refresh_done")?,
        ))
    }
}

impl Drop for SqliteStore {
    /// Leaves every row in `shares` for whoever opens the file next.
    fn drop(&mut self) {
        if let Some(m) = self.merger.take() {
            drop(m.wake);
            let _ = m.thread.join();
        }
        let shared = Arc::clone(&self.shared);
        let _merging = shared.hold();
        if let Err(e) = self.merge_held() {
            tracing::warn!(path = %self.path.display(), %e, "landed shares not merged at close; merged at next open");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn store(modulus: Modulus) -> (tempfile::TempDir, SqliteStore) {
        let dir = tempfile::tempdir().unwrap();
        let s = SqliteStore::open(
            &dir.path().join("s.sqlite"),
            StoreLayout {
                columns: 1,
                modulus,
            },
        )
        .unwrap();
        (dir, s)
    }

    /// Batches cross the multi-row statement boundary; a key repeated inside one batch or
    /// sent again later keeps its first value.
    #[test]
    fn batched_inserts_keep_the_first_write() {
        let dir = tempfile::tempdir().unwrap();
        let layout = StoreLayout {
            columns: 2,
            modulus: Modulus::Wrap64,
        };
        let mut s = SqliteStore::open(&dir.path().join("s.sqlite"), layout).unwrap();
        let row = |i: u64, v: u64| ShareRecord {
            meter: i % 7,
            interval_start: 900 * (i / 7) as i64,
            share: [v, u64::MAX - v],
        };
        let n = 2 * ROWS_PER_INSERT as u64 + 37;
        let mut batch: Vec<ShareRecord> = (0..n).map(|i| row(i, i)).collect();
        // Repeats of earlier keys with other values, inside the same batch.
        batch.extend((0..20).map(|i| row(i * 5, 1_000_000 + i)));
        s.put_shares(&batch).unwrap();
        s.put_shares(&(0..n).map(|i| row(i, 2_000_000 + i)).collect::<Vec<_>>())
            .unwrap();
        let stored = s.read_shares(TimeRange::ALL).unwrap();
        assert_eq!(stored.len() as u64, n);
        let mut want: Vec<ShareRecord> = (0..n).map(|i| row(i, i)).collect();
        want.sort_by_key(|r| (r.interval_start, r.meter));
        assert_eq!(stored, want);
    }

    /// Batches still landed when the process dies (no `Drop`) are merged when the file
    /// is opened again, after the rows already stored, which keep their values.
    #[test]
    fn landed_rows_survive_a_killed_process() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s.sqlite");
        let layout = StoreLayout {
            columns: 1,
            modulus: Modulus::Wrap64,
        };
        let row = |m: u64, v: u64| ShareRecord {
            meter: m,
            interval_start: 900,
            share: [v, 0],
        };
        let mut s = SqliteStore::open(&path, layout).unwrap();
        s.put_shares(&[row(1, 10)]).unwrap();
        assert_eq!(s.count().unwrap(), 1);
        s.put_shares(&[row(1, 11), row(2, 20)]).unwrap();
        std::mem::forget(s);
        let raw = Connection::open(SqliteStore::landing_path(&path)).unwrap();
        let landed: i64 = raw
            .query_row("SELECT COUNT(*) FROM landing_batches", [], |r| r.get(0))
            .unwrap();
        assert_eq!(landed, 1, "the second batch");
        drop(raw);
        let mut s = SqliteStore::open(&path, layout).unwrap();
        let stored: Vec<(u64, u64)> = s
            .read_shares(TimeRange::ALL)
            .unwrap()
            .iter()
            .map(|r| (r.meter, r.share[0]))
            .collect();
        assert_eq!(stored, vec![(1, 10), (2, 20)]);
    }

    fn landed_batches(path: &Path) -> i64 {
        let raw = Connection::open(SqliteStore::landing_path(path)).unwrap();
        raw.query_row("SELECT COUNT(*) FROM landing_batches", [], |r| r.get(0))
            .unwrap()
    }

    /// Lands enough rows to wake the background merger and waits (bounded) for its merge.
    fn merged_in_the_background(s: &mut SqliteStore) -> Vec<ShareRecord> {
        let rows: Vec<ShareRecord> = (0..MERGE_ROWS as u64)
            .map(|i| ShareRecord {
                meter: i % 1_000,
                interval_start: 900 * (i / 1_000) as i64,
                share: [i, 0],
            })
            .collect();
        s.put_shares(&rows).unwrap();
        for _ in 0..600 {
            if s.shared.merged_to.load(Ordering::Acquire) > 0 {
                return rows;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!("the merger did not merge within 30 s");
    }

    /// The merger leaves the batches it merged in the landing file; the next write drops
    /// them in its own transaction, and the rows are read once.
    #[test]
    fn the_next_write_drops_what_the_merger_merged() {
        let (dir, mut s) = store(Modulus::Wrap64);
        let path = dir.path().join("s.sqlite");
        let rows = merged_in_the_background(&mut s);
        assert_eq!(
            landed_batches(&path),
            1,
            "merged, not dropped by the merger"
        );
        assert_eq!(s.shared.landed.load(Ordering::Acquire), 0);
        let late = ShareRecord {
            meter: 5_000,
            interval_start: 0,
            share: [7, 0],
        };
        s.put_shares(&[late]).unwrap();
        assert_eq!(landed_batches(&path), 1, "only the new batch");
        assert_eq!(s.shared.merged_to.load(Ordering::Acquire), 0);
        assert_eq!(s.count().unwrap(), rows.len() as u64 + 1);
    }

    /// Keys deleted while merged batches still sit in the landing file stay deleted: the
    /// delete drops those batches first, so no later merge brings the keys back.
    #[test]
    fn keys_deleted_after_a_background_merge_stay_deleted() {
        let (dir, mut s) = store(Modulus::Wrap64);
        let path = dir.path().join("s.sqlite");
        let rows = merged_in_the_background(&mut s);
        let gone: Vec<(u64, i64)> = rows[..10]
            .iter()
            .map(|r| (r.meter, r.interval_start))
            .collect();
        s.delete_keys(&gone).unwrap();
        assert_eq!(landed_batches(&path), 0);
        // Killed without Drop: the next open merges whatever is landed.
        std::mem::forget(s);
        let layout = StoreLayout {
            columns: 1,
            modulus: Modulus::Wrap64,
        };
        let mut s = SqliteStore::open(&path, layout).unwrap();
        assert_eq!(s.count().unwrap(), rows.len() as u64 - 10);
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 32, ..ProptestConfig::default() })]

        /// The registered aggregates and the half-word sums used by the queries both equal
        /// the wrapping (or mod p) sum computed in Rust, far past 64-bit overflow.
        #[test]
        fn sql_sums_wrap_like_rust(values in proptest::collection::vec(
            prop_oneof![any::<u64>(), (0u64..100).prop_map(|d| u64::MAX - d)], 1..60)) {
            for modulus in [Modulus::Wrap64, Modulus::Prime61] {
                let (_dir, mut s) = store(modulus);
                let vals: Vec<u64> = values.iter().map(|&v| if modulus == Modulus::Prime61 { field::reduce(v) } else { v }).collect();
                let rows: Vec<ShareRecord> = vals
                    .iter()
                    .enumerate()
                    .map(|(i, &v)| ShareRecord { meter: 1, interval_start: 900 * i as i64, share: [v, 0] })
                    .collect();
                s.put_shares(&rows).unwrap();
                s.merge().unwrap();
                let expect = vals.iter().fold(0u64, |a, &v| modulus.add(a, v));
                let name = if modulus == Modulus::Wrap64 { "gg_wsum" } else { "gg_psum" };
                let agg: i64 = s.conn.query_row(&format!("SELECT {name}(a) FROM shares"), [], |r| r.get(0)).unwrap();
                prop_assert_eq!(from_sql(agg), expect);
                let groups = s.sums(&SumQuery::ByDay { range: TimeRange::ALL }).unwrap();
                let total = groups.iter().fold(0u64, |a, g| modulus.add(a, g.share[0]));
                prop_assert_eq!(total, expect);
            }
        }
    }
}
