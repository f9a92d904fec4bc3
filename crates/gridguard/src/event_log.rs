//! The head-end's event log: a SQLite file (`headend/events.sqlite` in the data directory)
//! of what happened to each meter (sessions, key rollovers, registrations, gaps and
//! backfills, commands and their acknowledgements, refusals). It never holds a reading.
//!
//! Writes go through a background thread ([`EventLog::spawn`]) so that the head-end's loop
//! never waits for the disk; [`read_events`] serves `gridguard events`.

use std::path::Path;
use std::sync::mpsc;
use std::thread::JoinHandle;

use rusqlite::{params, Connection};

/// One logged event.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Event {
    /// Simulated time (meter clock), seconds since 1970.
    pub sim_time: u64,
    /// The meter, when the event concerns one.
    pub meter: Option<u64>,
    /// Kind, e.g. `session`, `rekey`, `registered`, `gap`, `backfilled`, `command`, `ack`.
    pub kind: String,
    /// Free text.
    pub detail: String,
}

const SCHEMA: &str = "CREATE TABLE IF NOT EXISTS events (
    id INTEGER PRIMARY KEY,
    sim_time INTEGER NOT NULL,
    meter INTEGER,
    kind TEXT NOT NULL,
    detail TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS events_meter ON events (meter, id);";

fn open(path: &Path) -> rusqlite::Result<Connection> {
    let conn = Connection::open(path)?;
    conn.pragma_update(None, "journal_mode", "WAL")?;
    conn.pragma_update(None, "synchronous", "NORMAL")?;
    conn.execute_batch(SCHEMA)?;
    Ok(conn)
}

/// The writing end of the event log.
#[derive(Debug)]
pub struct EventLog {
    tx: Option<mpsc::Sender<Event>>,
    thread: Option<JoinHandle<rusqlite::Result<u64>>>,
}

impl EventLog {
    /// Opens (creating) the log at `path` and starts its writer thread.
    ///
    /// # Errors
    /// When the file cannot be opened.
    pub fn spawn(path: &Path) -> anyhow::Result<Self> {
        let mut conn = open(path)?;
        let (tx, rx) = mpsc::channel::<Event>();
        let thread = std::thread::Builder::new().name("event-log".into()).spawn(move || {
            let mut written = 0u64;
            while let Ok(first) = rx.recv() {
                let t = conn.transaction()?;
                {
                    let mut stmt = t.prepare_cached(
                        "INSERT INTO events (sim_time, meter, kind, detail) VALUES (?1, ?2, ?3, ?4)",
                    )?;
                    for e in std::iter::once(first).chain(rx.try_iter()) {
                        stmt.execute(params![
                            i64::try_from(e.sim_time).unwrap_or(i64::MAX),
                            e.meter.and_then(|m| i64::try_from(m).ok()),
                            e.kind,
                            e.detail
                        ])?;
                        written += 1;
                    }
                }
                t.commit()?;
            }
            Ok(written)
        })?;
        Ok(EventLog {
            tx: Some(tx),
            thread: Some(thread),
        })
    }

    /// Logs an event (never blocks).
    pub fn log(&self, sim_time: u64, meter: Option<u64>, kind: &str, detail: impl Into<String>) {
        if let Some(tx) = &self.tx {
            let _ = tx.send(Event {
                sim_time,
                meter,
                kind: kind.to_string(),
                detail: detail.into(),
            });
        }
    }

    /// Writes what is queued and stops the writer; returns the number of events written.
    ///
    /// # Errors
    /// When the writer failed.
    pub fn close(mut self) -> anyhow::Result<u64> {
        self.tx.take();
        match self.thread.take().map(JoinHandle::join) {
            Some(Ok(r)) => Ok(r?),
            Some(Err(_)) => anyhow::bail!("event log writer panicked"),
            None => Ok(0),
        }
    }
}

impl Drop for EventLog {
    fn drop(&mut self) {
        self.tx.take();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// Reads events, oldest first, optionally of one meter and/or one kind, at most `limit`
/// (the newest `limit` when there are more).
///
/// # Errors
/// When the log cannot be read.
pub fn read_events(
    path: &Path,
    meter: Option<u64>,
    kind: Option<&str>,
    limit: usize,
) -> anyhow::Result<Vec<Event>> {
    let conn = Connection::open_with_flags(path, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)?;
    let mut stmt = conn.prepare(
        "SELECT sim_time, meter, kind, detail FROM events
         WHERE (?1 IS NULL OR meter = ?1) AND (?2 IS NULL OR kind = ?2)
         ORDER BY id DESC LIMIT ?3",
    )?;
    let rows = stmt.query_map(
        params![
            meter.and_then(|m| i64::try_from(m).ok()),
            kind,
            i64::try_from(limit).unwrap_or(i64::MAX)
        ],
        |r| {
            Ok(Event {
                sim_time: u64::try_from(r.get::<_, i64>(0)?).unwrap_or(0),
                meter: r
                    .get::<_, Option<i64>>(1)?
                    .and_then(|m| u64::try_from(m).ok()),
                kind: r.get(2)?,
                detail: r.get(3)?,
            })
        },
    )?;
    let mut out = rows.collect::<rusqlite::Result<Vec<_>>>()?;
    out.reverse();
    Ok(out)
}

/// Counts events per kind.
///
/// # Errors
/// When the log cannot be read.
pub fn count_by_kind(path: &Path) -> anyhow::Result<Vec<(String, u64)>> {
    let conn = Connection::open_with_flags(path, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)?;
    let mut stmt = conn.prepare("SELECT kind, COUNT(*) FROM events GROUP BY kind ORDER BY kind")?;
    let rows = stmt.query_map([], |r| {
        Ok((
            r.get::<_, String>(0)?,
            u64::try_from(r.get::<_, i64>(1)?).unwrap_or(0),
        ))
    })?;
    Ok(rows.collect::<rusqlite::Result<Vec<_>>>()?)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::indexing_slicing)]
    use super::*;

    #[test]
    fn events_round_trip_through_the_file_filtered_by_meter_and_kind() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("events.sqlite");
        let log = EventLog::spawn(&path).unwrap();
        log.log(10, Some(1), "session", "established");
        log.log(20, Some(2), "session", "established");
        log.log(30, Some(1), "ack", "disconnect");
        log.log(40, None, "outage", "region 3");
        assert_eq!(log.close().unwrap(), 4);
        let all = read_events(&path, None, None, 100).unwrap();
        assert_eq!(all.len(), 4);
        assert_eq!(all[0].sim_time, 10);
        let m1 = read_events(&path, Some(1), None, 100).unwrap();
        assert_eq!(
            m1.iter().map(|e| e.kind.as_str()).collect::<Vec<_>>(),
            ["session", "ack"]
        );
        let newest = read_events(&path, None, Some("session"), 1).unwrap();
        assert_eq!(newest[0].meter, Some(2));
        let counts = count_by_kind(&path).unwrap();
        assert!(counts.contains(&("session".to_string(), 2)));
    }
}
