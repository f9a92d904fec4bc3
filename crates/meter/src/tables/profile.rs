//! ST61 (actual load profile), ST62 (load-profile control), ST63 (load-profile status), ST64
//! (load-profile data set 1).
//!
//! **ST61** `ACT_LP_TBL`, 13 bytes: `LP_MEMORY_LEN` UINT32 (bytes of ST64), `LP_FLAGS`
//! UINT16 = 0x0450 (bit 4 `BLK_END_READ_FLAG`, bit 6 `SCALAR_DIVISOR_FLAG_SET1`, bit 10
//! `EXTENDED_INT_STATUS_FLAG`), `LP_FMATS` = 0x02 (`INV_UINT16`), `NBR_BLKS_SET1` 30,
//! `NBR_BLK_INTS_SET1` 96, `NBR_CHNS_SET1` 2, `MAX_INT_TIME_SET1` 15 (minutes).
//!
//! **ST62** `LP_CTRL_TBL`, 15 bytes: per channel `CHNL_FLAG` 0x01 (`END_RDG_FLAG`),
//! `LP_SOURCE_SELECT` and `END_BLK_RDG_SOURCE_SELECT` (0 = delivered, 1 = received, the ST22
//! summation order); `INT_FMT_CDE1` 2 (UINT16); `SCALARS_SET1` 10, 10; `DIVISOR_SET1` 1, 1:
//! an interval value times 10 is Wh.
//!
//! **ST63** `LP_STATUS_TBL`, 13 bytes: `LP_SET_STATUS_FLAGS` (bit 1 `OVERFLOW_FLAG` once a
//! block was overwritten, bit 2 `LIST_TYPE` circular, bit 5 `ACTIVE_MODE_FLAG`; ascending
//! block and interval order), `NBR_VALID_BLOCKS` UINT16, `LAST_BLOCK_ELEMENT` UINT16,
//! `LAST_BLOCK_SEQ_NBR` UINT32, `NBR_UNREAD_BLOCKS` UINT16 (= valid blocks: reads are not
//! tracked), `NBR_VALID_INT` UINT16 (intervals in the newest block).
//!
//! **ST64** `LP_DATA_SET1_TBL`, 30 blocks of 593 bytes; block number *s* lives in array
//! element *s* mod 30. A block: `BLK_END_TIME` STIME_DATE (end of its last interval),
//! `END_READINGS` two INT48 (the delivered and received registers at the block end in Wh,
//! truncated to 10 Wh, i.e. the quantised registers the intervals are cut from), then 96
//! `LP_INT` records of `EXTENDED_INT_STATUS` (2 bytes) and two UINT16 values (10 Wh units).
//! Extended status: the high nibble of the first byte holds the common flags (0x2 power
//! fail, 0x4 clock set forward, 0x8 clock set backward; 0x1 DST never set); the second byte
//! holds channel 0 in its low and channel 1 in its high nibble (0 no status, 1 overflow, 2
//! partial interval, 4 skipped interval); the low nibble of the first byte is 0.
//! The newest block fills from element 0 (`NBR_VALID_INT` valid); an older block cut short
//! by a clock change is right-aligned, its unused leading records marked skipped. Unused
//! blocks are zero.

use crate::load_profile::{Interval, IntervalFlags, BLOCKS, INTERVALS_PER_BLOCK, UNIT_WH};
use crate::meter::Meter;
use crate::tables::codec::{Reader, Writer};
use crate::tables::TableError;
use crate::time::INTERVAL_S;

/// Channels in data set 1.
pub const CHANNELS: usize = 2;
/// Bytes of one interval record.
pub const INT_RECORD_LEN: usize = 2 + 2 * CHANNELS;
/// Bytes of one block.
pub const BLOCK_LEN: usize = 5 + 6 * CHANNELS + INTERVALS_PER_BLOCK * INT_RECORD_LEN;
/// Bytes of ST64.
pub const DATA_SET_LEN: usize = BLOCKS * BLOCK_LEN;

/// Channel status: numeric overflow.
pub const STATUS_OVERFLOW: u8 = 1;
/// Channel status: partial interval.
pub const STATUS_PARTIAL: u8 = 2;
/// Channel status: skipped interval.
pub const STATUS_SKIPPED: u8 = 4;

/// ST61 bytes.
pub fn actual_lp() -> Vec<u8> {
    let mut w = Writer::default();
    w.u32(DATA_SET_LEN as u32);
    w.u16(0x0450);
    w.u8(0x02);
    w.u16(BLOCKS as u16);
    w.u16(INTERVALS_PER_BLOCK as u16);
    w.u8(CHANNELS as u8);
    w.u8((INTERVAL_S / 60) as u8);
    w.0
}

/// ST62 bytes.
pub fn lp_control() -> Vec<u8> {
    let mut w = Writer::default();
    w.bytes(&[0x01, 0, 0, 0x01, 1, 1, 2]);
    for _ in 0..CHANNELS {
        w.u16(UNIT_WH as u16);
    }
    for _ in 0..CHANNELS {
        w.u16(1);
    }
    w.0
}

/// ST63, load-profile status.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LpStatus {
    /// `LP_SET_STATUS_FLAGS`.
    pub flags: u8,
    /// `NBR_VALID_BLOCKS`.
    pub valid_blocks: u16,
    /// `LAST_BLOCK_ELEMENT`.
    pub last_block_element: u16,
    /// `LAST_BLOCK_SEQ_NBR`.
    pub last_block_seq: u32,
    /// `NBR_UNREAD_BLOCKS`.
    pub unread_blocks: u16,
    /// `NBR_VALID_INT`.
    pub valid_intervals: u16,
}

impl LpStatus {
    /// ST63 of `meter`.
    pub fn of(meter: &Meter) -> Self {
        let lp = meter.load_profile();
        let blocks = lp.block_count() as u16;
        let seq = lp.newest_seq().unwrap_or(0);
        let newest_len = lp.blocks().last().map_or(0, |b| b.intervals.len()) as u16;
        let mut flags = 0x24;
        if seq as usize >= BLOCKS {
            flags |= 0x02;
        }
        LpStatus {
            flags,
            valid_blocks: blocks,
            last_block_element: (seq % BLOCKS as u32) as u16,
            last_block_seq: seq,
            unread_blocks: blocks,
            valid_intervals: newest_len,
        }
    }
    /// Encodes the table.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut w = Writer::default();
        w.u8(self.flags);
        w.u16(self.valid_blocks);
        w.u16(self.last_block_element);
        w.u32(self.last_block_seq);
        w.u16(self.unread_blocks);
        w.u16(self.valid_intervals);
        w.0
    }
    /// Decodes the table.
    pub fn parse(data: &[u8]) -> Result<Self, TableError> {
        let mut r = Reader::new(data);
        let s = LpStatus {
            flags: r.u8()?,
            valid_blocks: r.u16()?,
            last_block_element: r.u16()?,
            last_block_seq: r.u32()?,
            unread_blocks: r.u16()?,
            valid_intervals: r.u16()?,
        };
        r.finish()?;
        if usize::from(s.valid_blocks) > BLOCKS
            || usize::from(s.last_block_element) >= BLOCKS
            || usize::from(s.valid_intervals) > INTERVALS_PER_BLOCK
        {
            return Err(TableError::BadValue {
                at: 1,
                what: "load-profile status count",
            });
        }
        Ok(s)
    }
}

/// One `LP_INT` record.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct IntRecord {
    /// Common status nibble (power fail 0x2, clock forward 0x4, clock backward 0x8).
    pub common: u8,
    /// Channel status nibbles.
    pub status: [u8; CHANNELS],
    /// Channel values (10 Wh units).
    pub values: [u16; CHANNELS],
}

/// One `LP_BLK1_DAT_RCD`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BlockRecord {
    /// `BLK_END_TIME` (meter time, 0 for an unused block).
    pub end_time: u64,
    /// `END_READINGS` (Wh).
    pub end_readings: [i64; CHANNELS],
    /// The 96 interval records.
    pub intervals: Vec<IntRecord>,
}

/// ST64, load-profile data set 1: the 30 block records in array order.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LpDataSet {
    /// Block records, array element 0 first.
    pub blocks: Vec<BlockRecord>,
}

/// The `LP_INT` record of an interval: power fail and clock changes in the common nibble,
/// partial interval in both channel nibbles, a value above 65,535 units as overflow
/// (0xFFFF). The inverse is [`interval_of`].
pub fn record(iv: &Interval) -> IntRecord {
    let f = iv.flags;
    let mut common = 0;
    if f.contains(IntervalFlags::OUTAGE) {
        common |= 0x2;
    }
    if f.contains(IntervalFlags::CLOCK_FORWARD) {
        common |= 0x4;
    }
    if f.contains(IntervalFlags::CLOCK_BACKWARD) {
        common |= 0x8;
    }
    let ch = |v: u32| -> (u8, u16) {
        match u16::try_from(v) {
            Ok(x) if f.contains(IntervalFlags::PARTIAL) => (STATUS_PARTIAL, x),
            Ok(x) => (0, x),
            Err(_) => (STATUS_OVERFLOW, u16::MAX),
        }
    };
    let (s0, v0) = ch(iv.delivered);
    let (s1, v1) = ch(iv.received);
    IntRecord {
        common,
        status: [s0, s1],
        values: [v0, v1],
    }
}

/// The interval an `LP_INT` record describes, starting at `start`. A channel in overflow
/// reads as 65,536 units ("more than 65,535"), so that [`record`] gives the record back.
pub fn interval_of(r: &IntRecord, start: u64) -> Interval {
    let mut flags = IntervalFlags::NONE;
    if r.common & 0x2 != 0 {
        flags |= IntervalFlags::OUTAGE;
    }
    if r.common & 0x4 != 0 {
        flags |= IntervalFlags::CLOCK_FORWARD;
    }
    if r.common & 0x8 != 0 {
        flags |= IntervalFlags::CLOCK_BACKWARD;
    }
    if r.status.contains(&STATUS_PARTIAL) {
        flags |= IntervalFlags::PARTIAL;
    }
    let value = |i: usize| {
        let v = u32::from(r.values.get(i).copied().unwrap_or(0));
        if r.status.get(i) == Some(&STATUS_OVERFLOW) {
            v.saturating_add(1)
        } else {
            v
        }
    };
    Interval {
        start,
        delivered: value(0),
        received: value(1),
        flags,
    }
}

impl IntRecord {
    /// Appends the 6-byte encoding (`EXTENDED_INT_STATUS`, then the two values).
    pub(crate) fn emit(&self, w: &mut Writer) {
        w.u8(self.common << 4);
        let s0 = self.status.first().copied().unwrap_or(0);
        let s1 = self.status.get(1).copied().unwrap_or(0);
        w.u8((s0 & 0x0F) | (s1 << 4));
        for &v in &self.values {
            w.u16(v);
        }
    }

    /// Reads one record; the low nibble of the first status byte must be zero.
    pub(crate) fn read(r: &mut Reader<'_>) -> Result<Self, TableError> {
        let at = r.pos();
        let c = r.u8()?;
        if c & 0x0F != 0 {
            return Err(TableError::BadValue {
                at,
                what: "extended interval status",
            });
        }
        let s = r.u8()?;
        Ok(IntRecord {
            common: c >> 4,
            status: [s & 0x0F, s >> 4],
            values: [r.u16()?, r.u16()?],
        })
    }
}

/// The intervals of a meter's load profile from the bytes of full reads of ST63 and ST64
/// (what a head-end reads for backfill), oldest first, in meter time; a channel in overflow
/// reads as 65,536 units.
pub fn profile_intervals(st63: &[u8], st64: &[u8]) -> Result<Vec<Interval>, TableError> {
    let status = LpStatus::parse(st63)?;
    Ok(LpDataSet::parse(st64)?.intervals(&status))
}

/// ST64 bytes of `meter`.
pub fn data_set(meter: &Meter) -> Vec<u8> {
    LpDataSet::of(meter).to_bytes()
}

impl LpDataSet {
    /// ST64 of `meter`.
    pub fn of(meter: &Meter) -> Self {
        let lp = meter.load_profile();
        let blocks = lp.blocks();
        let newest = lp.newest_seq();
        let mut out: Vec<BlockRecord> = (0..BLOCKS)
            .map(|_| BlockRecord {
                end_time: 0,
                end_readings: [0; CHANNELS],
                intervals: vec![IntRecord::default(); INTERVALS_PER_BLOCK],
            })
            .collect();
        // Register readings at each block end, walking back from the last closed interval.
        let mut reading = meter.lp_base();
        for b in blocks.iter().rev() {
            let slot = b.seq as usize % BLOCKS;
            let Some(rec) = out.get_mut(slot) else {
                continue;
            };
            rec.end_time = b.end_time();
            rec.end_readings = [
                i64::try_from(reading[0].saturating_mul(UNIT_WH)).unwrap_or(i64::MAX),
                i64::try_from(reading[1].saturating_mul(UNIT_WH)).unwrap_or(i64::MAX),
            ];
            let n = b.intervals.len().min(INTERVALS_PER_BLOCK);
            let pad = if Some(b.seq) == newest {
                0
            } else {
                INTERVALS_PER_BLOCK - n
            };
            for r in rec.intervals.iter_mut().take(pad) {
                *r = IntRecord {
                    common: 0,
                    status: [STATUS_SKIPPED; CHANNELS],
                    values: [0; CHANNELS],
                };
            }
            for (iv, r) in b.intervals.iter().zip(rec.intervals.iter_mut().skip(pad)) {
                *r = record(iv);
            }
            for iv in &b.intervals {
                reading[0] = reading[0].saturating_sub(u64::from(iv.delivered));
                reading[1] = reading[1].saturating_sub(u64::from(iv.received));
            }
        }
        LpDataSet { blocks: out }
    }

    /// Encodes the table.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut w = Writer(Vec::with_capacity(DATA_SET_LEN));
        for b in &self.blocks {
            w.stime(b.end_time);
            for &r in &b.end_readings {
                w.i48(r);
            }
            for iv in &b.intervals {
                iv.emit(&mut w);
            }
        }
        w.0
    }

    /// Decodes the table (this meter's ST61 dimensions: 30 blocks, 96 intervals, 2
    /// channels, extended status, block end readings).
    pub fn parse(data: &[u8]) -> Result<Self, TableError> {
        let mut r = Reader::new(data);
        let mut blocks = Vec::with_capacity(BLOCKS);
        for _ in 0..BLOCKS {
            let end_time = r.stime()?;
            let end_readings = [r.i48()?, r.i48()?];
            let mut intervals = Vec::with_capacity(INTERVALS_PER_BLOCK);
            for _ in 0..INTERVALS_PER_BLOCK {
                intervals.push(IntRecord::read(&mut r)?);
            }
            blocks.push(BlockRecord {
                end_time,
                end_readings,
                intervals,
            });
        }
        r.finish()?;
        Ok(LpDataSet { blocks })
    }

    /// The intervals the table holds, oldest first, as the meter recorded them (values in 10
    /// Wh units), using ST63 to find the newest block and how many blocks are valid.
    pub fn intervals(&self, status: &LpStatus) -> Vec<Interval> {
        let mut out = Vec::new();
        let n = u32::from(status.valid_blocks);
        for k in 0..n {
            let seq = status.last_block_seq.wrapping_sub(n - 1 - k);
            let Some(b) = self.blocks.get(seq as usize % BLOCKS) else {
                continue;
            };
            let newest = k + 1 == n;
            let used: Vec<&IntRecord> = if newest {
                b.intervals
                    .iter()
                    .take(usize::from(status.valid_intervals))
                    .collect()
            } else {
                b.intervals
                    .iter()
                    .filter(|r| r.status.first() != Some(&STATUS_SKIPPED))
                    .collect()
            };
            let count = used.len() as u64;
            let first_start = b.end_time.saturating_sub(count * INTERVAL_S);
            for (j, r) in used.into_iter().enumerate() {
                out.push(interval_of(r, first_start + j as u64 * INTERVAL_S));
            }
        }
        out
    }
}
