//! ST21 (actual registers), ST22 (data selection), ST23 (current register data), ST27
//! (present register selection), ST28 (present register data).
//!
//! **ST21** `ACT_REGS_TBL`, 10 bytes: `REG_FUNC1_FLAGS` = 0x06 (`DATE_TIME_FIELD_FLAG`,
//! `DEMAND_RESET_CTR_FLAG`), `REG_FUNC2_FLAGS` = 0, `NBR_SELF_READS` 0, `NBR_SUMMATIONS` 6,
//! `NBR_DEMANDS` 1, `NBR_COIN_VALUES` 0, `NBR_OCCUR` 1, `NBR_TIERS` 6, `NBR_PRESENT_DEMANDS` 0,
//! `NBR_PRESENT_VALUES` 6.
//!
//! **ST22** `DATA_SELECTION_TBL`, 8 bytes: `SUMMATION_SELECT` = 0..=5 (the summation order
//! below; this meter has no ST16 source list, so the indices name the summations
//! themselves), `DEMAND_SELECT` = 0 (delivered), `MIN_OR_MAX_FLAGS` = 0x01 (maximum).
//!
//! **ST23** `CURRENT_REG_DATA_TBL`, 316 bytes: `NBR_DEMAND_RESETS` UINT8, then
//! `TOT_DATA_BLOCK` and six `TIER_DATA_BLOCK`s, each a `DATA_BLK_RCD` of 45 bytes: six
//! `SUMMATIONS` (INT48, Wh or varh) in the order delivered, received, delivered + received,
//! delivered − received, reactive lagging, reactive leading; one `DEMANDS_RCD`:
//! `EVENT_TIME` (STIME_DATE, end of the 30-minute block) and `DEMAND` (INT32, W).
//!
//! **ST27** `PRESENT_REGISTER_SELECT_TBL`, 6 bytes: `PRESENT_VALUE_SELECT` 0..=5 for the
//! ST28 order. **ST28** `PRESENT_REGISTER_DATA_TBL`, 36 bytes: six INT48: active power W,
//! reactive power var, apparent power VA, voltage mV, current mA, frequency mHz (scaled by
//! 1000 so that INT48 keeps three decimals: a documented deviation, the standard leaves the
//! scaling to ST12/ST15 which this meter does not provide).

use crate::meter::Meter;
use crate::tables::codec::{Reader, Writer};
use crate::tables::TableError;
use crate::tou::TIERS;

/// Summations per data block.
pub const NBR_SUMMATIONS: usize = 6;

/// ST21 bytes.
pub fn actual_registers() -> Vec<u8> {
    vec![
        0x06,
        0x00,
        0,
        NBR_SUMMATIONS as u8,
        1,
        0,
        1,
        TIERS as u8,
        0,
        6,
    ]
}

/// ST22 bytes.
pub fn data_selection() -> Vec<u8> {
    vec![0, 1, 2, 3, 4, 5, 0, 0x01]
}

/// ST27 bytes.
pub fn present_select() -> Vec<u8> {
    vec![0, 1, 2, 3, 4, 5]
}

/// One `DATA_BLK_RCD`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct DataBlock {
    /// Delivered, received, delivered + received, delivered − received, lagging, leading.
    pub summations: [i64; NBR_SUMMATIONS],
    /// Meter time of the maximum demand (0 if none).
    pub demand_time: u64,
    /// Maximum demand (W).
    pub demand_w: i32,
}

/// ST23, current register data.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CurrentRegisterData {
    /// `NBR_DEMAND_RESETS`.
    pub demand_resets: u8,
    /// `TOT_DATA_BLOCK`.
    pub total: DataBlock,
    /// `TIER_DATA_BLOCK`s, tier A first.
    pub tiers: [DataBlock; TIERS],
}

fn clamp_i64(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

fn block(r: &crate::registers::Registers, p: &crate::registers::Peak) -> DataBlock {
    DataBlock {
        summations: [
            clamp_i64(r.delivered_wh),
            clamp_i64(r.received_wh),
            clamp_i64(r.total_wh()),
            r.net_wh(),
            clamp_i64(r.lagging_varh),
            clamp_i64(r.leading_varh),
        ],
        demand_time: p.at,
        demand_w: i32::try_from(p.watts).unwrap_or(i32::MAX),
    }
}

impl CurrentRegisterData {
    /// ST23 of `meter`.
    pub fn of(meter: &Meter) -> Self {
        let d = meter.demand();
        let t = meter.tier_registers();
        let mut tiers = [DataBlock::default(); TIERS];
        for (i, out) in tiers.iter_mut().enumerate() {
            if let (Some(r), Some(p)) = (t.get(i), d.tier_max.get(i)) {
                *out = block(r, p);
            }
        }
        CurrentRegisterData {
            demand_resets: d.resets,
            total: block(meter.registers(), &d.max),
            tiers,
        }
    }

    /// Encodes the table.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut w = Writer::default();
        w.u8(self.demand_resets);
        for b in core::iter::once(&self.total).chain(self.tiers.iter()) {
            for &s in &b.summations {
                w.i48(s);
            }
            w.stime(b.demand_time);
            w.i32(b.demand_w);
        }
        w.0
    }

    /// Decodes the table (with this meter's ST21 dimensions).
    pub fn parse(data: &[u8]) -> Result<Self, TableError> {
        let mut r = Reader::new(data);
        let demand_resets = r.u8()?;
        let read_block = |r: &mut Reader<'_>| -> Result<DataBlock, TableError> {
            let mut b = DataBlock::default();
            for s in b.summations.iter_mut() {
                *s = r.i48()?;
            }
            b.demand_time = r.stime()?;
            b.demand_w = r.i32()?;
            Ok(b)
        };
        let total = read_block(&mut r)?;
        let mut tiers = [DataBlock::default(); TIERS];
        for t in tiers.iter_mut() {
            *t = read_block(&mut r)?;
        }
        r.finish()?;
        Ok(CurrentRegisterData {
            demand_resets,
            total,
            tiers,
        })
    }
}

/// ST28, instantaneous values in the scaled integers the table carries.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PresentValues {
    /// W, var, VA, mV, mA, mHz.
    pub values: [i64; 6],
}

impl PresentValues {
    /// ST28 of `meter`.
    pub fn of(meter: &Meter) -> Self {
        let i = meter.instantaneous();
        let r = |x: f32| x.round() as i64;
        PresentValues {
            values: [
                r(i.active_w),
                r(i.reactive_var),
                r(i.apparent_va),
                r(i.voltage_v * 1_000.0),
                r(i.current_a * 1_000.0),
                r(i.frequency_hz * 1_000.0),
            ],
        }
    }
    /// Encodes the table.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut w = Writer::default();
        for &v in &self.values {
            w.i48(v);
        }
        w.0
    }
    /// Decodes the table.
    pub fn parse(data: &[u8]) -> Result<Self, TableError> {
        let mut r = Reader::new(data);
        let mut values = [0i64; 6];
        for v in values.iter_mut() {
            *v = r.i48()?;
        }
        r.finish()?;
        Ok(PresentValues { values })
    }
}
