//! Whether the head-end can take interval uploads now, sans-IO.
//!
//! Two signs say it cannot: the vault writer has fallen behind (the oldest job it holds waits
//! longer than `busy_after`), or the C12.22 socket holds a standing queue (it has not run
//! empty for [`STANDING_QUEUE`]). While either holds, uploads are answered `bsy` at once
//! instead of being queued: an answer in time, which tells the meter to keep its intervals
//! for a later upload, costs the head-end less than storing them, and a meter that waits in
//! vain sends the same upload again into a queue that is already late. Backfill reads (which
//! ask meters for more) wait too.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

/// A C12.22 socket that has not run empty for this long holds a standing queue: the host is
/// past its capacity.
pub const STANDING_QUEUE: Duration = Duration::from_millis(200);

/// The load signals of one head-end.
#[derive(Debug)]
pub struct IngestLoad {
    busy_after: Duration,
    /// When each job the vault writer holds was handed to it, oldest first (it commits them
    /// in order).
    in_writer: VecDeque<Instant>,
    /// Since when the socket has held datagrams without running empty.
    queued_since: Option<Instant>,
}

impl IngestLoad {
    /// Signals for a vault writer allowed to fall `busy_after` behind.
    pub fn new(busy_after: Duration) -> Self {
        IngestLoad {
            busy_after,
            in_writer: VecDeque::new(),
            queued_since: None,
        }
    }

    /// A job was handed to the vault writer.
    pub fn handed(&mut self, now: Instant) {
        self.in_writer.push_back(now);
    }

    /// The vault writer finished `jobs` jobs (the oldest ones).
    pub fn committed(&mut self, jobs: usize) {
        let jobs = jobs.min(self.in_writer.len());
        self.in_writer.drain(..jobs);
    }

    /// A datagram was read from the socket (it was queued there).
    pub fn datagram(&mut self, now: Instant) {
        self.queued_since.get_or_insert(now);
    }

    /// A read found the socket empty.
    pub fn ran_empty(&mut self) {
        self.queued_since = None;
    }

    /// How long the oldest job the vault writer holds has waited.
    pub fn writer_lag(&self, now: Instant) -> Duration {
        self.in_writer
            .front()
            .map_or(Duration::ZERO, |t| now.saturating_duration_since(*t))
    }

    /// Whether uploads are to be answered `bsy` now.
    pub fn busy(&self, now: Instant) -> bool {
        let standing = self
            .queued_since
            .is_some_and(|since| now.saturating_duration_since(since) > STANDING_QUEUE);
        standing || self.writer_lag(now) > self.busy_after
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: Duration = Duration::from_millis(1);

    #[test]
    fn a_writer_behind_makes_it_busy_until_it_commits() {
        let t0 = Instant::now();
        let mut load = IngestLoad::new(400 * MS);
        load.handed(t0);
        load.handed(t0 + 300 * MS);
        assert!(!load.busy(t0 + 400 * MS));
        assert!(load.busy(t0 + 401 * MS));
        assert_eq!(load.writer_lag(t0 + 500 * MS), 500 * MS);
        load.committed(1);
        assert_eq!(load.writer_lag(t0 + 500 * MS), 200 * MS);
        assert!(!load.busy(t0 + 500 * MS));
        load.committed(5);
        assert_eq!(load.writer_lag(t0 + 10_000 * MS), Duration::ZERO);
    }

    #[test]
    fn a_standing_queue_makes_it_busy_until_the_socket_runs_empty() {
        let t0 = Instant::now();
        let mut load = IngestLoad::new(400 * MS);
        // Idle for long, then a datagram: no standing queue.
        load.ran_empty();
        load.datagram(t0);
        assert!(!load.busy(t0));
        for k in 1..=20 {
            load.datagram(t0 + k * 10 * MS);
        }
        assert!(!load.busy(t0 + 200 * MS));
        load.datagram(t0 + 201 * MS);
        assert!(load.busy(t0 + 201 * MS));
        load.ran_empty();
        load.datagram(t0 + 300 * MS);
        assert!(!load.busy(t0 + 300 * MS));
    }
}
