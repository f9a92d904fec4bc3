//! The 15-minute load profile, kept for 30 days in a compact ring.
//!
//! # Layout and resolution
//!
//! The profile is a ring of [`BLOCKS`] blocks of up to [`INTERVALS_PER_BLOCK`] consecutive
//! 15-minute intervals (30 × 96 = 2,880 interval slots; the block being filled occupies one
//! slot, so when block 31 starts the oldest block is dropped). Each interval records two
//! channels, delivered and received energy, in units of [`UNIT_WH`] = 10 Wh, plus status
//! flags. The units are taken from the *quantised registers*: an interval holds
//! `reg/10` at its end minus `reg/10` at its start, so the intervals of the ring add up
//! exactly to the change of `register / 10` over the ring, and the registers themselves stay
//! exact in Wh. (This is how a pulse-output profile with Ke = 10 Wh behaves.)
//!
//! A block is one byte string; an interval takes one byte in the common case:
//!
//! | first byte           | meaning |
//! |----------------------|---------|
//! | `0b0ddd_dddd`        | delivered = `d` (0..=127 units), received 0, no flags |
//! | `0b1RFx_xxxx`        | extended: delivered = `x` (0..=30) or, if `x` = 31, a LEB128 varint follows; then a varint received if `R`; then one flags byte if `F` |
//!
//! A new block starts when the current one holds 96 intervals or when the next interval does
//! not follow on in time (a clock change), so every block is a run of consecutive intervals
//! described by its start time and length.
//!
//! All blocks share one byte buffer, oldest first, the block being filled at its end; an
//! 8-byte header per sealed block says where each starts and how long it is. A 30-day
//! profile is thus two allocations whatever the number of blocks.

use std::collections::VecDeque;

use crate::meter::MAX_TIME;
use crate::tables::codec::{Reader, Writer};
use crate::tables::TableError;
use crate::time::INTERVAL_S;

/// Intervals per block (one day of 15-minute intervals).
pub const INTERVALS_PER_BLOCK: usize = 96;
/// Blocks kept (30 days).
pub const BLOCKS: usize = 30;
/// Energy resolution of the profile in Wh.
pub const UNIT_WH: u64 = 10;

/// Status flags of one interval.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct IntervalFlags(pub u8);

impl IntervalFlags {
    /// No flag.
    pub const NONE: IntervalFlags = IntervalFlags(0);
    /// Power was off during (part of) the interval.
    pub const OUTAGE: IntervalFlags = IntervalFlags(0x01);
    /// The interval is shorter than 15 minutes (power-off/on or clock change inside it).
    pub const PARTIAL: IntervalFlags = IntervalFlags(0x02);
    /// The clock was set forward inside or at the start of the interval.
    pub const CLOCK_FORWARD: IntervalFlags = IntervalFlags(0x04);
    /// The clock was set backward inside or at the start of the interval.
    pub const CLOCK_BACKWARD: IntervalFlags = IntervalFlags(0x08);

    /// Whether every flag of `other` is set.
    pub fn contains(self, other: IntervalFlags) -> bool {
        self.0 & other.0 == other.0
    }
    /// Whether any clock-change flag is set.
    pub fn clock_changed(self) -> bool {
        self.0 & (Self::CLOCK_FORWARD.0 | Self::CLOCK_BACKWARD.0) != 0
    }
}

impl core::ops::BitOr for IntervalFlags {
    type Output = IntervalFlags;
    fn bitor(self, rhs: IntervalFlags) -> IntervalFlags {
        IntervalFlags(self.0 | rhs.0)
    }
}

impl core::ops::BitOrAssign for IntervalFlags {
    fn bitor_assign(&mut self, rhs: IntervalFlags) {
        self.0 |= rhs.0;
    }
}

/// One interval of the profile.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Interval {
    /// Meter time at which the interval starts (a multiple of 900 s).
    pub start: u64,
    /// Delivered energy in units of 10 Wh.
    pub delivered: u32,
    /// Received energy in units of 10 Wh.
    pub received: u32,
    /// Status flags.
    pub flags: IntervalFlags,
}

/// A decoded block: consecutive intervals.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Block {
    /// Block sequence number (counts every block ever started, from 0).
    pub seq: u32,
    /// Intervals, oldest first.
    pub intervals: Vec<Interval>,
}

impl Block {
    /// Meter time at which the last interval ends.
    pub fn end_time(&self) -> u64 {
        self.intervals.last().map_or(0, |i| i.start + INTERVAL_S)
    }
}

/// Where a sealed block lies: its start in intervals since 1970, its byte length in the
/// shared buffer and its number of intervals.
#[derive(Clone, Copy, Debug)]
struct Head {
    slot: u32,
    bytes: u16,
    len: u8,
}

impl Head {
    fn start(self) -> u64 {
        u64::from(self.slot) * INTERVAL_S
    }
}

/// Room the shared buffer gains when it is full: at least this, or 1/32 of what it holds.
const GROWTH: usize = 64;
/// Most bytes one interval takes (header, two 5-byte varints, flags).
const MAX_INTERVAL_BYTES: usize = 12;

/// The ring of blocks.
#[derive(Clone, Debug, Default)]
pub struct LoadProfile {
    sealed: VecDeque<Head>,
    /// The sealed blocks' bytes, oldest first, then those of the block being filled.
    data: Vec<u8>,
    cur_start: u64,
    cur_len: u8,
    /// Sequence number of the block being filled (or of the next block if none).
    cur_seq: u32,
    /// Intervals ever recorded (dropped ones included).
    recorded: u64,
}

fn put_varint(out: &mut Vec<u8>, mut v: u32) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

fn get_varint(data: &[u8], pos: &mut usize) -> Option<u32> {
    let mut v: u32 = 0;
    for shift in (0..35).step_by(7) {
        let b = *data.get(*pos)?;
        *pos += 1;
        v |= u32::from(b & 0x7F).checked_shl(shift)?;
        if b & 0x80 == 0 {
            return Some(v);
        }
    }
    None
}

fn encode(out: &mut Vec<u8>, delivered: u32, received: u32, flags: IntervalFlags) {
    if received == 0 && flags.0 == 0 && delivered < 0x80 {
        out.push(delivered as u8);
        return;
    }
    let mut h = 0x80u8;
    if received != 0 {
        h |= 0x40;
    }
    if flags.0 != 0 {
        h |= 0x20;
    }
    if delivered < 0x1F {
        out.push(h | delivered as u8);
    } else {
        out.push(h | 0x1F);
        put_varint(out, delivered);
    }
    if received != 0 {
        put_varint(out, received);
    }
    if flags.0 != 0 {
        out.push(flags.0);
    }
}

fn decode(data: &[u8], start: u64, len: u8, seq: u32) -> Block {
    let mut intervals = Vec::with_capacity(usize::from(len));
    let mut pos = 0usize;
    for i in 0..u64::from(len) {
        let Some(&h) = data.get(pos) else { break };
        pos += 1;
        let (mut delivered, mut received, mut flags) = (u32::from(h), 0, IntervalFlags::NONE);
        if h & 0x80 != 0 {
            delivered = u32::from(h & 0x1F);
            if delivered == 0x1F {
                delivered = get_varint(data, &mut pos).unwrap_or(0);
            }
            if h & 0x40 != 0 {
                received = get_varint(data, &mut pos).unwrap_or(0);
            }
            if h & 0x20 != 0 {
                flags = IntervalFlags(data.get(pos).copied().unwrap_or(0));
                pos += 1;
            }
        }
        intervals.push(Interval {
            start: start.saturating_add(i * INTERVAL_S),
            delivered,
            received,
            flags,
        });
    }
    Block { seq, intervals }
}

impl LoadProfile {
    /// An empty profile.
    pub fn new() -> Self {
        LoadProfile::default()
    }

    /// Appends an interval starting at meter time `start` (taken down to its 15-minute
    /// boundary and to [`MAX_TIME`] at most).
    pub fn push(&mut self, start: u64, delivered: u32, received: u32, flags: IntervalFlags) {
        let start = start.min(MAX_TIME) / INTERVAL_S * INTERVAL_S;
        if self.cur_len > 0 {
            let follows = self.cur_start + u64::from(self.cur_len) * INTERVAL_S == start;
            if usize::from(self.cur_len) >= INTERVALS_PER_BLOCK || !follows {
                self.seal();
            }
        }
        if self.cur_len == 0 {
            self.cur_start = start;
            while self.sealed.len() >= BLOCKS {
                if let Some(oldest) = self.sealed.pop_front() {
                    self.data.drain(..usize::from(oldest.bytes));
                }
            }
            // Usually the new block takes the room of the one dropped; after many short
            // blocks (clock changes) the ring may hold far less than it once did.
            if self.data.capacity() - self.data.len() > 2 * GROWTH + self.data.len() / 4 {
                self.data.shrink_to(self.data.len() + GROWTH);
            }
        }
        if self.data.capacity() - self.data.len() < MAX_INTERVAL_BYTES {
            // Exact steps: doubling would leave a 30-day profile up to half empty.
            self.data
                .reserve_exact(GROWTH.max(self.data.len() / 32) + MAX_INTERVAL_BYTES);
        }
        encode(&mut self.data, delivered, received, flags);
        self.cur_len += 1;
        self.recorded = self.recorded.wrapping_add(1);
    }

    /// Intervals recorded since the profile began, those the ring has dropped included: a
    /// counter that a driver can keep to find the intervals closed since it last looked
    /// ([`LoadProfile::newest`]), whatever the clock did in between.
    pub fn recorded(&self) -> u64 {
        self.recorded
    }

    /// The newest `n` intervals held (fewer if the ring holds fewer), oldest first in ring
    /// order; only the blocks needed are decoded.
    pub fn newest(&self, n: usize) -> Vec<Interval> {
        let mut parts: Vec<Vec<Interval>> = Vec::new();
        let mut left = n;
        for (start, len, data) in self.stored().into_iter().rev() {
            if left == 0 {
                break;
            }
            let mut iv = decode(data, start, len, 0).intervals;
            let skip = iv.len().saturating_sub(left);
            left -= iv.len() - skip;
            parts.push(iv.split_off(skip));
        }
        parts.into_iter().rev().flatten().collect()
    }

    fn seal(&mut self) {
        let bytes = self.data.len() - self.sealed_bytes();
        if self.sealed.capacity() == 0 {
            self.sealed.reserve_exact(BLOCKS);
        }
        self.sealed.push_back(Head {
            slot: u32::try_from(self.cur_start / INTERVAL_S).unwrap_or(u32::MAX),
            bytes: u16::try_from(bytes).unwrap_or(u16::MAX),
            len: self.cur_len,
        });
        self.cur_len = 0;
        self.cur_seq = self.cur_seq.wrapping_add(1);
    }

    fn sealed_bytes(&self) -> usize {
        self.sealed.iter().map(|h| usize::from(h.bytes)).sum()
    }

    /// Every block held as (start, intervals, bytes), oldest first, the one being filled
    /// last.
    fn stored(&self) -> Vec<(u64, u8, &[u8])> {
        let mut out = Vec::with_capacity(self.sealed.len() + 1);
        let mut at = 0usize;
        for h in &self.sealed {
            let end = at + usize::from(h.bytes);
            out.push((h.start(), h.len, self.data.get(at..end).unwrap_or_default()));
            at = end;
        }
        if self.cur_len > 0 {
            let tail = self.data.get(at..).unwrap_or_default();
            out.push((self.cur_start, self.cur_len, tail));
        }
        out
    }

    /// Number of intervals held.
    pub fn len(&self) -> usize {
        self.sealed
            .iter()
            .map(|b| usize::from(b.len))
            .sum::<usize>()
            + usize::from(self.cur_len)
    }

    /// Whether no interval is held.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Number of blocks held, the one being filled included.
    pub fn block_count(&self) -> usize {
        self.sealed.len() + usize::from(self.cur_len > 0)
    }

    /// Sequence number of the newest block (the one being filled), if any.
    pub fn newest_seq(&self) -> Option<u32> {
        if self.cur_len > 0 {
            Some(self.cur_seq)
        } else if self.sealed.is_empty() {
            None
        } else {
            Some(self.cur_seq.wrapping_sub(1))
        }
    }

    /// The blocks, oldest first, the one being filled last.
    pub fn blocks(&self) -> Vec<Block> {
        let newest = self.newest_seq().unwrap_or(0);
        let n = self.block_count() as u32;
        self.stored()
            .into_iter()
            .enumerate()
            .map(|(i, (start, len, data))| {
                let seq = newest.wrapping_sub(n - 1).wrapping_add(i as u32);
                decode(data, start, len, seq)
            })
            .collect()
    }

    /// Every interval held, oldest first.
    pub fn intervals(&self) -> Vec<Interval> {
        self.blocks()
            .into_iter()
            .flat_map(|b| b.intervals)
            .collect()
    }

    /// The intervals held whose start lies in `[from, to)` (meter time), oldest first in
    /// ring order. Only the blocks that overlap the range are decoded. Within one block the
    /// intervals are consecutive; across blocks there is a gap after a forward clock change
    /// and an overlap (starts seen twice) after a backward one.
    pub fn intervals_between(&self, from: u64, to: u64) -> Vec<Interval> {
        let mut out = Vec::new();
        for (start, len, data) in self.stored() {
            let end = start.saturating_add(u64::from(len) * INTERVAL_S);
            if end <= from || start >= to {
                continue;
            }
            let block = decode(data, start, len, 0);
            out.extend(
                block
                    .intervals
                    .into_iter()
                    .filter(|i| (from..to).contains(&i.start)),
            );
        }
        out
    }

    /// Bytes of interval data held (the compact encoding only).
    pub fn data_bytes(&self) -> usize {
        self.data.len()
    }

    /// Heap bytes owned (capacities, block headers included; allocator overhead excluded).
    pub fn heap_bytes(&self) -> usize {
        self.sealed.capacity() * core::mem::size_of::<Head>() + self.data.capacity()
    }
}

/// Whether `data` holds exactly `len` well-formed intervals and nothing more.
fn well_formed(data: &[u8], len: u8) -> bool {
    let mut pos = 0usize;
    for _ in 0..len {
        let Some(&h) = data.get(pos) else {
            return false;
        };
        pos += 1;
        if h & 0x80 != 0 {
            if h & 0x1F == 0x1F && get_varint(data, &mut pos).is_none() {
                return false;
            }
            if h & 0x40 != 0 && get_varint(data, &mut pos).is_none() {
                return false;
            }
            if h & 0x20 != 0 {
                if data.get(pos).is_none() {
                    return false;
                }
                pos += 1;
            }
        }
    }
    pos == data.len()
}

impl LoadProfile {
    /// Appends the ring to saved meter state: the sequence number of the block being filled,
    /// the count of intervals recorded, the sealed blocks, then the block being filled, each as start (UINT64), number of
    /// intervals (UINT8), byte length (UINT16) and the compact bytes.
    pub(crate) fn save(&self, w: &mut Writer) {
        w.u32(self.cur_seq);
        w.u64(self.recorded);
        w.u8(self.sealed.len() as u8);
        let mut block = |start: u64, len: u8, data: &[u8]| {
            w.u64(start);
            w.u8(len);
            w.u16(data.len() as u16);
            w.bytes(data);
        };
        let mut at = 0usize;
        for h in &self.sealed {
            let end = at + usize::from(h.bytes);
            block(h.start(), h.len, self.data.get(at..end).unwrap_or_default());
            at = end;
        }
        block(
            self.cur_start,
            self.cur_len,
            self.data.get(at..).unwrap_or_default(),
        );
    }

    /// Reads what [`LoadProfile::save`] wrote, checking every block: at most 29 sealed blocks
    /// of 1..=96 intervals plus the one being filled, starts on interval boundaries no later
    /// than [`MAX_TIME`], and bytes that hold exactly the intervals announced.
    pub(crate) fn restore(r: &mut Reader<'_>) -> Result<LoadProfile, TableError> {
        let bad = |at: usize, what: &'static str| TableError::BadValue { at, what };
        let cur_seq = r.u32()?;
        let recorded_at = r.pos();
        let recorded = r.u64()?;
        let at = r.pos();
        let n = usize::from(r.u8()?);
        if n >= BLOCKS {
            return Err(bad(at, "load-profile block count"));
        }
        fn read_block<'a>(
            r: &mut Reader<'a>,
            sealed: bool,
        ) -> Result<(u64, u8, &'a [u8]), TableError> {
            let bad = |at: usize, what: &'static str| TableError::BadValue { at, what };
            let at = r.pos();
            let start = r.u64()?;
            let len = r.u8()?;
            let bytes = usize::from(r.u16()?);
            let data = r.take(bytes)?;
            let len_ok = if sealed {
                (1..=INTERVALS_PER_BLOCK).contains(&usize::from(len))
            } else {
                usize::from(len) <= INTERVALS_PER_BLOCK
            };
            if start > MAX_TIME || !start.is_multiple_of(INTERVAL_S) || !len_ok {
                return Err(bad(at, "load-profile block header"));
            }
            if !well_formed(data, len) {
                return Err(bad(at, "load-profile block data"));
            }
            Ok((start, len, data))
        }
        let mut sealed = VecDeque::with_capacity(BLOCKS);
        let mut data = Vec::new();
        for _ in 0..n {
            let (start, len, bytes) = read_block(r, true)?;
            sealed.push_back(Head {
                slot: u32::try_from(start / INTERVAL_S).unwrap_or(u32::MAX),
                bytes: u16::try_from(bytes.len()).unwrap_or(u16::MAX),
                len,
            });
            data.extend_from_slice(bytes);
        }
        let at = r.pos();
        let (cur_start, cur_len, cur) = read_block(r, false)?;
        if n > 0 && cur_len == 0 {
            return Err(bad(at, "empty block being filled after sealed blocks"));
        }
        data.extend_from_slice(cur);
        data.shrink_to_fit();
        let lp = LoadProfile {
            sealed,
            data,
            cur_start,
            cur_len,
            cur_seq,
            recorded,
        };
        if (lp.len() as u64) > recorded {
            return Err(bad(recorded_at, "intervals recorded (fewer than held)"));
        }
        Ok(lp)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encoding_round_trips_edge_values() {
        let cases = [
            (0, 0, 0),
            (127, 0, 0),
            (128, 0, 0),
            (30, 0, 1),
            (31, 0, 0),
            (0, 1, 0),
            (1_200, 1_200, 0x0F),
            (u32::MAX, u32::MAX, 0xFF),
        ];
        let mut lp = LoadProfile::new();
        for (i, &(d, r, f)) in cases.iter().enumerate() {
            lp.push(i as u64 * INTERVAL_S, d, r, IntervalFlags(f));
        }
        let got = lp.intervals();
        assert_eq!(got.len(), cases.len());
        for (g, &(d, r, f)) in got.iter().zip(cases.iter()) {
            assert_eq!((g.delivered, g.received, g.flags.0), (d, r, f));
        }
        // One byte for a plain small interval.
        let mut one = LoadProfile::new();
        one.push(0, 100, 0, IntervalFlags::NONE);
        assert_eq!(one.data_bytes(), 1);
    }

    #[test]
    fn ring_wraps_after_thirty_days() {
        let mut lp = LoadProfile::new();
        let days = 33u64;
        for i in 0..days * 96 {
            lp.push(i * INTERVAL_S, (i % 200) as u32, 0, IntervalFlags::NONE);
        }
        assert_eq!(lp.block_count(), BLOCKS);
        assert_eq!(lp.len(), 2_880);
        let iv = lp.intervals();
        let first = iv.first().unwrap();
        // The oldest block kept is day 3 (days 0, 1, 2 dropped).
        assert_eq!(first.start, 3 * 96 * INTERVAL_S);
        assert_eq!(first.delivered, ((3 * 96) % 200) as u32);
        assert_eq!(iv.last().unwrap().start, (days * 96 - 1) * INTERVAL_S);
        let blocks = lp.blocks();
        assert_eq!(blocks.first().unwrap().seq, 3);
        assert_eq!(blocks.last().unwrap().seq, 32);
        // One more interval starts block 33 and drops block 3.
        lp.push(days * 96 * INTERVAL_S, 1, 0, IntervalFlags::NONE);
        assert_eq!(lp.block_count(), BLOCKS);
        assert_eq!(lp.len(), 2_880 - 96 + 1);
        assert_eq!(lp.blocks().first().unwrap().seq, 4);
    }

    #[test]
    fn newest_is_the_tail_and_recorded_counts_dropped_intervals() {
        let mut lp = LoadProfile::new();
        assert!(lp.newest(3).is_empty());
        for i in 0..31 * 96 + 40u64 {
            // A clock change every 500 intervals starts a short block.
            let start = if i % 500 == 499 { i + 7 } else { i } * INTERVAL_S;
            lp.push(start, (i % 300) as u32, 0, IntervalFlags::NONE);
        }
        assert_eq!(lp.recorded(), 31 * 96 + 40);
        let all = lp.intervals();
        for n in [0, 1, 40, 41, 96, 97, 500, all.len(), all.len() + 5] {
            let tail = &all[all.len() - n.min(all.len())..];
            assert_eq!(lp.newest(n), tail, "n = {n}");
        }
    }

    /// The ring as a list of blocks of decoded intervals, by the rules of the module docs.
    fn model_push(blocks: &mut Vec<Vec<Interval>>, iv: Interval) {
        let new_block = blocks.last().is_none_or(|b| {
            b.len() >= INTERVALS_PER_BLOCK
                || b.last().map(|l| l.start + INTERVAL_S) != Some(iv.start)
        });
        if new_block {
            while blocks.len() >= BLOCKS {
                blocks.remove(0);
            }
            blocks.push(Vec::new());
        }
        if let Some(b) = blocks.last_mut() {
            b.push(iv);
        }
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(64))]
        #[test]
        fn the_shared_buffer_holds_what_a_list_of_blocks_holds(
            steps in proptest::collection::vec(
                (0u8..40, 0u32..300, proptest::prop_oneof![proptest::prelude::Just(0u32), 0u32..100_000], 0u8..3),
                1..4_000,
            ),
            query in (0usize..4_000, 0u64..5_000, 0u64..5_000),
        ) {
            let mut lp = LoadProfile::new();
            let mut model: Vec<Vec<Interval>> = Vec::new();
            let mut slot = 1_000u64;
            for &(jump, delivered, received, flag) in &steps {
                // Mostly consecutive; now and then a clock change forward or back.
                slot = match jump {
                    0 => slot.saturating_sub(5),
                    1 => slot + 9,
                    _ => slot + 1,
                };
                let flags = IntervalFlags(if flag == 0 { 0x01 } else { 0 });
                let iv = Interval { start: slot * INTERVAL_S, delivered, received, flags };
                lp.push(iv.start, delivered, received, flags);
                model_push(&mut model, iv);
            }
            let all: Vec<Interval> = model.iter().flatten().copied().collect();
            proptest::prop_assert_eq!(lp.intervals(), all.clone());
            proptest::prop_assert_eq!(lp.block_count(), model.len());
            proptest::prop_assert_eq!(lp.recorded(), steps.len() as u64);
            let lens: Vec<usize> = lp.blocks().iter().map(|b| b.intervals.len()).collect();
            let model_lens: Vec<usize> = model.iter().map(Vec::len).collect();
            proptest::prop_assert_eq!(lens, model_lens);
            let n = query.0.min(all.len());
            proptest::prop_assert_eq!(lp.newest(query.0), all[all.len() - n..].to_vec());
            let (from, to) = ((1_000 + query.1) * INTERVAL_S, (1_000 + query.2) * INTERVAL_S);
            let between: Vec<Interval> =
                all.iter().filter(|i| (from..to).contains(&i.start)).copied().collect();
            proptest::prop_assert_eq!(lp.intervals_between(from, to), between);
            // What is saved comes back the same; the buffer's slack is bounded.
            let mut w = crate::tables::codec::Writer::default();
            lp.save(&mut w);
            let back = LoadProfile::restore(&mut crate::tables::codec::Reader::new(&w.0));
            proptest::prop_assert_eq!(back.map(|b| b.blocks()).ok(), Some(lp.blocks()));
            let slack = lp.heap_bytes() - lp.data_bytes();
            let most = BLOCKS * core::mem::size_of::<Head>()
                + 3 * GROWTH
                + lp.data_bytes() / 4
                + lp.data_bytes() / 32
                + 2 * MAX_INTERVAL_BYTES;
            proptest::prop_assert!(slack <= most, "{} > {}", slack, most);
        }
    }

    #[test]
    fn a_time_gap_starts_a_new_block() {
        let mut lp = LoadProfile::new();
        lp.push(0, 1, 0, IntervalFlags::NONE);
        lp.push(INTERVAL_S, 2, 0, IntervalFlags::NONE);
        lp.push(10 * INTERVAL_S, 3, 0, IntervalFlags::CLOCK_FORWARD);
        let b = lp.blocks();
        assert_eq!(b.len(), 2);
        assert_eq!(b[0].end_time(), 2 * INTERVAL_S);
        assert_eq!(b[1].intervals[0].start, 10 * INTERVAL_S);
        assert_eq!(b[1].intervals[0].flags, IntervalFlags::CLOCK_FORWARD);
    }
}
