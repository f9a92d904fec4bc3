//! Interval bookkeeping of the head-end, sans-IO: which intervals of each meter are stored,
//! which are missing, and which backfills (reads of the meter's own load profile) to ask for.
//!
//! Interval starts are seconds (meter time, a multiple of the interval length). Each meter is
//! expected to deliver every interval from the collector's epoch on. Per meter the collector
//! keeps a watermark (every interval before it is stored) and the few stored intervals above
//! it, so a meter costs a few dozen bytes however long it has been reporting.
//!
//! The collector never sees a reading: only (meter, interval start) keys, which are public
//! metadata in the vault too.

use std::collections::{BTreeSet, HashMap};
use std::time::{Duration, Instant};

/// Collector settings.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CollectorConfig {
    /// Interval length, seconds.
    pub interval_s: i64,
    /// First interval start every meter must deliver.
    pub epoch: i64,
    /// How long after an interval ends it may still arrive by the meter's own upload before it
    /// counts as missing, seconds of meter time.
    pub settle_s: i64,
    /// How long to wait for a backfill answer before asking again.
    pub backfill_timeout: Duration,
    /// Backfills outstanding at once over all meters.
    pub max_backfills: usize,
    /// Meters one [`Collector::poll_backfill`] call looks at for a gap, at most (the scan
    /// goes on from there at the next call), so that a call costs the same with a million
    /// meters as with ten.
    pub scan_per_call: usize,
}

impl CollectorConfig {
    /// 15-minute intervals from `epoch`, a 2-hour settle time, 2 s backfill timeout, 64
    /// backfills at once, gaps looked for in 4,096 meters a call.
    pub fn new(epoch: i64) -> Self {
        CollectorConfig {
            interval_s: 900,
            epoch,
            settle_s: 7_200,
            backfill_timeout: Duration::from_secs(2),
            max_backfills: 64,
            scan_per_call: 4_096,
        }
    }
}

/// A backfill to send: read the meter's load profile covering `[from, to)`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BackfillRequest {
    /// The meter.
    pub meter: u64,
    /// First missing interval start.
    pub from: i64,
    /// End of the last missing interval.
    pub to: i64,
}

/// Counters of the collector.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct CollectorStats {
    /// Intervals stored (each (meter, interval) counted once).
    pub stored: u64,
    /// Intervals that arrived again after being stored (retransmissions, backfill overlap).
    pub duplicates: u64,
    /// Intervals stored from a backfill (they were missing).
    pub filled: u64,
    /// Backfill requests issued (including retries).
    pub backfills_sent: u64,
    /// Gaps found: runs of missing intervals that triggered a backfill.
    pub gaps_detected: u64,
}

#[derive(Clone, Debug, Default)]
struct Track {
    /// Every interval before this start is stored.
    watermark: i64,
    /// Stored intervals at or above the watermark.
    above: BTreeSet<i64>,
    /// Outstanding backfill: (from, to, sent at).
    backfill: Option<(i64, i64, Instant)>,
}

impl Track {
    fn contains(&self, start: i64) -> bool {
        start < self.watermark || self.above.contains(&start)
    }

    fn insert(&mut self, start: i64, interval_s: i64) -> bool {
        if self.contains(start) {
            return false;
        }
        if start == self.watermark {
            self.watermark += interval_s;
            while self.above.remove(&self.watermark) {
                self.watermark += interval_s;
            }
        } else {
            self.above.insert(start);
        }
        true
    }

    /// The first run of missing intervals before `up_to`, if any.
    fn first_gap(&self, up_to: i64, interval_s: i64) -> Option<(i64, i64)> {
        if self.watermark >= up_to {
            return None;
        }
        let from = self.watermark;
        let to = self
            .above
            .iter()
            .next()
            .copied()
            .unwrap_or(up_to)
            .min(up_to);
        (to > from).then_some((from, to.max(from + interval_s)))
    }
}

/// The head-end's interval bookkeeping.
#[derive(Clone, Debug)]
pub struct Collector {
    config: CollectorConfig,
    meters: HashMap<u64, Track>,
    in_flight: usize,
    stats: CollectorStats,
    /// Round-robin position of the backfill scan.
    order: Vec<u64>,
    cursor: usize,
    /// The meters with a backfill outstanding.
    outstanding: Vec<u64>,
}

impl Collector {
    /// An empty collector.
    pub fn new(config: CollectorConfig) -> Self {
        Collector {
            config,
            meters: HashMap::new(),
            in_flight: 0,
            stats: CollectorStats::default(),
            order: Vec::new(),
            cursor: 0,
            outstanding: Vec::new(),
        }
    }

    /// The settings.
    pub fn config(&self) -> &CollectorConfig {
        &self.config
    }

    /// The counters.
    pub fn stats(&self) -> CollectorStats {
        self.stats
    }

    /// Meters known.
    pub fn meters(&self) -> usize {
        self.meters.len()
    }

    fn track(&mut self, meter: u64) -> &mut Track {
        let epoch = self.config.epoch;
        let order = &mut self.order;
        self.meters.entry(meter).or_insert_with(|| {
            order.push(meter);
            Track {
                watermark: epoch,
                ..Track::default()
            }
        })
    }

    /// Makes `meter` known (it registered): from now on its intervals from the epoch on are
    /// expected.
    pub fn register(&mut self, meter: u64) {
        self.track(meter);
    }

    /// Loads what a store already holds (after a restart): `starts` of `meter`, any order.
    /// Not counted as newly stored.
    pub fn load(&mut self, meter: u64, starts: &[i64]) {
        let interval_s = self.config.interval_s;
        let mut sorted = starts.to_vec();
        sorted.sort_unstable();
        let track = self.track(meter);
        for s in sorted {
            track.insert(s, interval_s);
        }
    }

    /// Whether `(meter, start)` is stored.
    pub fn is_stored(&self, meter: u64, start: i64) -> bool {
        self.meters.get(&meter).is_some_and(|t| t.contains(start))
    }

    /// Records that `(meter, start)` is now committed; `from_backfill` when a backfill brought
    /// it. Returns whether it was new.
    pub fn stored(&mut self, meter: u64, start: i64, from_backfill: bool) -> bool {
        let interval_s = self.config.interval_s;
        let new = self.track(meter).insert(start, interval_s);
        if new {
            self.stats.stored += 1;
            if from_backfill {
                self.stats.filled += 1;
            }
        } else {
            self.stats.duplicates += 1;
        }
        new
    }

    /// Whether `start` is an interval the collector wants: aligned and not before the epoch.
    pub fn wanted(&self, start: i64) -> bool {
        start >= self.config.epoch && start % self.config.interval_s == 0
    }

    /// The backfill of `meter` was answered (or failed for good): it may be asked again.
    pub fn backfill_done(&mut self, meter: u64) {
        if let Some(t) = self.meters.get_mut(&meter) {
            if t.backfill.take().is_some() {
                self.in_flight = self.in_flight.saturating_sub(1);
                self.outstanding.retain(|&m| m != meter);
            }
        }
    }

    /// Missing intervals of `meter` before `up_to`.
    pub fn missing(&self, meter: u64, up_to: i64) -> u64 {
        let Some(t) = self.meters.get(&meter) else {
            return 0;
        };
        if up_to <= t.watermark {
            return 0;
        }
        let span = (up_to - t.watermark).max(0) / self.config.interval_s;
        let above = t.above.range(t.watermark..up_to).count() as i64;
        u64::try_from(span - above).unwrap_or(0)
    }

    /// Missing intervals of every meter before `up_to`.
    pub fn missing_total(&self, up_to: i64) -> u64 {
        self.meters.keys().map(|&m| self.missing(m, up_to)).sum()
    }

    /// The next backfill to send, given the meters' clock `meter_now` (an interval counts as
    /// missing once it ended `settle_s` before it) and the real time `now`. Call until
    /// `None`; every request is remembered as outstanding until [`backfill_done`] or its
    /// timeout. Each call looks at up to `scan_per_call` meters, in turn, so a gap is found
    /// within `meters / scan_per_call` calls that return `None`.
    ///
    /// [`backfill_done`]: Self::backfill_done
    pub fn poll_backfill(&mut self, meter_now: i64, now: Instant) -> Option<BackfillRequest> {
        let cfg = self.config;
        let up_to = meter_now - cfg.settle_s;
        let up_to = up_to - up_to.rem_euclid(cfg.interval_s);
        let meters = &mut self.meters;
        let in_flight = &mut self.in_flight;
        self.outstanding.retain(|m| {
            let Some(t) = meters.get_mut(m) else {
                return false;
            };
            match t.backfill {
                Some((_, _, at)) if now.saturating_duration_since(at) < cfg.backfill_timeout => {
                    true
                }
                Some(_) => {
                    t.backfill = None;
                    *in_flight = in_flight.saturating_sub(1);
                    false
                }
                None => false,
            }
        });
        let n = self.order.len();
        for _ in 0..n.min(cfg.scan_per_call) {
            if self.in_flight >= cfg.max_backfills {
                return None;
            }
            let meter = *self.order.get(self.cursor % n.max(1))?;
            self.cursor = (self.cursor + 1) % n.max(1);
            let Some(t) = self.meters.get_mut(&meter) else {
                continue;
            };
            if t.backfill.is_some() {
                continue;
            }
            if let Some((from, to)) = t.first_gap(up_to, cfg.interval_s) {
                t.backfill = Some((from, to, now));
                self.in_flight += 1;
                self.outstanding.push(meter);
                self.stats.backfills_sent += 1;
                self.stats.gaps_detected += 1;
                return Some(BackfillRequest { meter, from, to });
            }
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const I: i64 = 900;

    fn collector() -> Collector {
        let mut c = CollectorConfig::new(0);
        c.settle_s = 0;
        Collector::new(c)
    }

    #[test]
    fn consecutive_intervals_advance_the_watermark_and_duplicates_count_once() {
        let mut c = collector();
        for s in [0, I, 2 * I, I] {
            c.stored(7, s, false);
        }
        assert_eq!(c.stats().stored, 3);
        assert_eq!(c.stats().duplicates, 1);
        assert_eq!(c.missing(7, 3 * I), 0);
        assert_eq!(
            c.missing(7, I),
            0,
            "a bound below the watermark misses nothing"
        );
        assert!(c.is_stored(7, 2 * I) && !c.is_stored(7, 3 * I));
    }

    #[test]
    fn a_hole_is_found_backfilled_and_closed() {
        let mut c = collector();
        let now = Instant::now();
        for s in [0, I, 5 * I, 6 * I] {
            c.stored(1, s, false);
        }
        assert_eq!(c.missing(1, 7 * I), 3);
        let req = c.poll_backfill(7 * I, now).unwrap();
        assert_eq!(
            req,
            BackfillRequest {
                meter: 1,
                from: 2 * I,
                to: 5 * I
            }
        );
        // One outstanding per meter.
        assert_eq!(c.poll_backfill(7 * I, now), None);
        for s in [2 * I, 3 * I, 4 * I] {
            assert!(c.stored(1, s, true));
        }
        c.backfill_done(1);
        assert_eq!(c.missing(1, 7 * I), 0);
        assert_eq!(c.stats().filled, 3);
        assert_eq!(c.poll_backfill(7 * I, now), None);
    }

    #[test]
    fn nothing_is_missing_before_the_settle_time_and_backfills_retry_after_timeout() {
        let mut cfg = CollectorConfig::new(0);
        cfg.settle_s = 2 * I;
        let mut c = Collector::new(cfg);
        let now = Instant::now();
        c.register(3);
        assert_eq!(c.poll_backfill(2 * I, now), None);
        let first = c.poll_backfill(4 * I, now).unwrap();
        assert_eq!((first.from, first.to), (0, 2 * I));
        assert_eq!(c.poll_backfill(4 * I, now), None);
        let later = now + cfg.backfill_timeout;
        assert_eq!(c.poll_backfill(4 * I, later), Some(first));
        assert_eq!(c.stats().backfills_sent, 2);
    }

    #[test]
    fn load_after_restart_is_not_counted_as_new() {
        let mut c = collector();
        c.load(9, &[2 * I, 0, I]);
        assert_eq!(c.stats().stored, 0);
        assert!(!c.stored(9, I, false));
        assert_eq!(c.missing(9, 3 * I), 0);
    }

    #[test]
    fn a_call_scans_a_bounded_slice_and_the_next_call_goes_on() {
        let mut cfg = CollectorConfig::new(0);
        cfg.settle_s = 0;
        cfg.scan_per_call = 3;
        let mut c = Collector::new(cfg);
        let now = Instant::now();
        for m in 0..10 {
            c.register(m);
            if m != 8 {
                c.stored(m, 0, false);
            }
        }
        let found: Vec<Option<BackfillRequest>> = (0..4).map(|_| c.poll_backfill(I, now)).collect();
        assert_eq!(found[..2], [None, None], "meters 0..6 have no gap");
        assert_eq!(
            found[2],
            Some(BackfillRequest {
                meter: 8,
                from: 0,
                to: I
            })
        );
        assert_eq!(found[3], None);
        // The timed-out backfill is asked again once the scan comes round.
        let later = now + cfg.backfill_timeout;
        let again: Vec<_> = (0..4).filter_map(|_| c.poll_backfill(I, later)).collect();
        assert_eq!(again.len(), 1);
        assert_eq!(again[0].meter, 8);
    }

    #[test]
    fn at_most_max_backfills_are_outstanding() {
        let mut cfg = CollectorConfig::new(0);
        cfg.settle_s = 0;
        cfg.max_backfills = 2;
        let mut c = Collector::new(cfg);
        let now = Instant::now();
        for m in 0..5 {
            c.register(m);
        }
        assert!(c.poll_backfill(I, now).is_some());
        assert!(c.poll_backfill(I, now).is_some());
        assert_eq!(c.poll_backfill(I, now), None);
    }
}
