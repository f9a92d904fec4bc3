//! The interval upload: what a meter pushes to the head-end, as the data of a C12.22 Full
//! Write of ST64.
//!
//! # Our convention
//!
//! A Full Write of ST64 would, by the letter of C12.19, replace the whole load-profile data
//! set (30 blocks, 17,790 bytes). A meter pushing its newest intervals instead writes a
//! *segment* of load profile in the shape of ST64's own records, so that the head-end decodes
//! pushed and read intervals with the same code: this is a gridguard convention, chosen
//! because a 15-minute push then costs tens of bytes instead of 17.8 KB and the head-end
//! still never needs a second format. The upload carries only the newest intervals; for
//! backfill the head-end reads the real ST63 and ST64 ([`profile_intervals`]).
//!
//! # Layout
//!
//! | field | type | meaning |
//! |---|---|---|
//! | `START` | `STIME_DATE` (YY MM DD hh mm, `TM_FORMAT` 2) | meter time at which the first interval starts (minute a multiple of 15) |
//! | `NBR_INTS` | UINT16 | number of records that follow |
//! | `LP_INT` × `NBR_INTS` | 6 bytes each | exactly ST64's record ([`profile`]): `EXTENDED_INT_STATUS` (2 bytes), delivered and received UINT16 in 10 Wh units |
//!
//! The records describe consecutive 15-minute intervals: record *i* starts at
//! `START + 900 i`. `START` is the standard-looking `STIME_DATE` of ST64's block end times
//! rather than a bare UINT32, so it can carry meter times from 2000-01-01 to 2255-12-31 only
//! (a start outside that range is written as the all-zero "no time", which [`parse`]
//! refuses). The status is the one ST64 uses: power fail, clock set forward/backward in the
//! common nibble, partial interval in both channel nibbles, overflow (value 0xFFFF) for a
//! channel above 65,535 units (decoded as 65,536). A decoder accepts only records in the
//! form this meter writes them, so an accepted upload re-encodes byte for byte.
//!
//! [`parse`]: IntervalUpload::parse
//! [`profile`]: super::profile

pub use super::profile::profile_intervals;

use crate::load_profile::Interval;
use crate::meter::Meter;
use crate::tables::codec::{Reader, Writer};
use crate::tables::profile::{interval_of, record, IntRecord, INT_RECORD_LEN};
use crate::tables::TableError;
use crate::time::INTERVAL_S;

/// Bytes before the first record (`START` and `NBR_INTS`).
pub const HEADER_LEN: usize = 5 + 2;
/// Most intervals one upload carries (`NBR_INTS` is a UINT16).
pub const MAX_INTERVALS: usize = u16::MAX as usize;

/// A pushed segment of load profile: consecutive intervals from `first_start`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IntervalUpload {
    /// Meter time at which the first interval starts (a multiple of 900 s).
    pub first_start: u64,
    /// The intervals, oldest first; interval *i* starts at `first_start + 900 i` (the
    /// encoder derives the starts and does not read the `start` fields).
    pub intervals: Vec<Interval>,
}

impl IntervalUpload {
    /// Encoded length.
    pub fn len_bytes(&self) -> usize {
        HEADER_LEN + self.intervals.len().min(MAX_INTERVALS) * INT_RECORD_LEN
    }

    /// Meter time at which the last interval ends (`first_start` when empty).
    pub fn end(&self) -> u64 {
        self.first_start
            .saturating_add(self.intervals.len() as u64 * INTERVAL_S)
    }

    /// Encodes the upload (at most [`MAX_INTERVALS`] records; any beyond are left out).
    pub fn to_bytes(&self) -> Vec<u8> {
        let n = self.intervals.len().min(MAX_INTERVALS);
        let mut w = Writer(Vec::with_capacity(HEADER_LEN + n * INT_RECORD_LEN));
        w.stime(self.first_start);
        w.u16(n as u16);
        for iv in self.intervals.iter().take(n) {
            record(iv).emit(&mut w);
        }
        w.0
    }

    /// Decodes an upload; interval starts are derived from `START`.
    pub fn parse(data: &[u8]) -> Result<IntervalUpload, TableError> {
        let mut r = Reader::new(data);
        let first_start = r.stime()?;
        if first_start == 0 || !first_start.is_multiple_of(INTERVAL_S) {
            return Err(TableError::BadValue {
                at: 0,
                what: "upload START (no time, or not an interval boundary)",
            });
        }
        let n = usize::from(r.u16()?);
        let need = n * INT_RECORD_LEN;
        if data.len().saturating_sub(HEADER_LEN) < need {
            return Err(TableError::Truncated { at: data.len() });
        }
        let mut intervals = Vec::with_capacity(n);
        for i in 0..n as u64 {
            let at = r.pos();
            let rec = IntRecord::read(&mut r)?;
            let iv = interval_of(&rec, first_start + i * INTERVAL_S);
            if record(&iv) != rec {
                return Err(TableError::BadValue {
                    at,
                    what: "interval status this meter never writes",
                });
            }
            intervals.push(iv);
        }
        r.finish()?;
        Ok(IntervalUpload {
            first_start,
            intervals,
        })
    }

    /// Cuts `intervals` (in ring order, as [`Meter::intervals_between`] returns them) into
    /// uploads of consecutive intervals: a new upload starts wherever the next interval does
    /// not follow on in time (a clock change) and after [`MAX_INTERVALS`].
    pub fn runs(intervals: &[Interval]) -> Vec<IntervalUpload> {
        let mut out: Vec<IntervalUpload> = Vec::new();
        for iv in intervals {
            match out.last_mut() {
                Some(u) if u.end() == iv.start && u.intervals.len() < MAX_INTERVALS => {
                    u.intervals.push(*iv);
                }
                _ => out.push(IntervalUpload {
                    first_start: iv.start,
                    intervals: vec![*iv],
                }),
            }
        }
        out
    }
}

impl Meter {
    /// The closed load-profile intervals whose start (meter time) lies in `[from, to)`,
    /// oldest first, from the compact ring (only the blocks that overlap are decoded). They
    /// are consecutive unless the clock was set inside the range: a forward change leaves a
    /// gap, a backward one repeats starts ([`IntervalUpload::runs`] cuts them into uploads).
    pub fn intervals_between(&self, from: u64, to: u64) -> Vec<Interval> {
        self.load_profile().intervals_between(from, to)
    }

    /// Load-profile intervals closed since installation (those the ring has dropped
    /// included): keep it after an upload, and [`Meter::intervals_since`] gives the intervals
    /// closed after, however the clock moved meanwhile.
    pub fn intervals_recorded(&self) -> u64 {
        self.load_profile().recorded()
    }

    /// The intervals closed after [`Meter::intervals_recorded`] returned `recorded` (at most
    /// the ring's 30 days), oldest first in ring order: unlike a range of start times this
    /// also catches the intervals after a backward clock change, whose starts repeat.
    pub fn intervals_since(&self, recorded: u64) -> Vec<Interval> {
        let n = self.intervals_recorded().saturating_sub(recorded);
        self.load_profile()
            .newest(usize::try_from(n).unwrap_or(usize::MAX))
    }

    /// The upload of the intervals closed in `[from, to)` (meter time), one per consecutive
    /// run (usually one).
    pub fn upload_between(&self, from: u64, to: u64) -> Vec<IntervalUpload> {
        IntervalUpload::runs(&self.intervals_between(from, to))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::load_profile::IntervalFlags;

    #[test]
    fn hand_computed_bytes() {
        // 2026-11-25 15:15 meter time.
        let t = 1_795_619_700;
        let u = IntervalUpload {
            first_start: t,
            intervals: vec![
                Interval {
                    start: t,
                    delivered: 0x0102,
                    received: 0,
                    flags: IntervalFlags::NONE,
                },
                Interval {
                    start: t + 900,
                    delivered: 3,
                    received: 70_000,
                    flags: IntervalFlags::OUTAGE | IntervalFlags::PARTIAL,
                },
            ],
        };
        let b = u.to_bytes();
        assert_eq!(
            b,
            vec![
                26, 11, 25, 15, 15, 2, 0, // START, NBR_INTS
                0x00, 0x00, 0x02, 0x01, 0x00, 0x00, // plain
                0x20, 0x12, 0x03, 0x00, 0xFF, 0xFF, // power fail; ch0 partial, ch1 overflow
            ]
        );
        assert_eq!(b.len(), u.len_bytes());
        let back = IntervalUpload::parse(&b).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(back.first_start, t);
        assert_eq!(back.intervals[0], u.intervals[0]);
        assert_eq!(back.intervals[1].received, 65_536);
        assert_eq!(back.to_bytes(), b);
        // Not on a 15-minute boundary.
        let mut off = b.clone();
        off[4] = 16;
        assert!(IntervalUpload::parse(&off).is_err());
        // A DST flag this meter never sets.
        let mut dst = b.clone();
        dst[7] = 0x10;
        assert!(IntervalUpload::parse(&dst).is_err());
        assert!(IntervalUpload::parse(&b[..b.len() - 1]).is_err());
    }
}
