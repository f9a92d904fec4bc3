//! ST7 (procedure initiate) and ST8 (procedure response).
//!
//! **ST7** `PROC_INITIATE_TBL`: `TBL_PROC_NBR` UINT16 (bits 0–10 procedure number, bit 11
//! `STD_VS_MFG_FLAG`, bits 12–15 `SELECTOR`), `SEQ_NBR` UINT8, `PARM_DATA`.
//! **ST8** `PROC_RESPONSE_TBL`, 4 bytes: `TBL_PROC_NBR`, `SEQ_NBR` of the last procedure and
//! its `RESULT_CODE` (0 completed, 2 invalid parameter, 4 timing constraint, 6 unrecognised
//! procedure); no response data. Procedures run at once, whatever the selector asks.
//!
//! | procedure | parameters | effect |
//! |---|---|---|
//! | SP9 remote reset | `ACTION_FLAG` UINT8 (bit 0 demand reset) | demand reset |
//! | SP10 set date/time | `SET_MASK` UINT8 (bit 0 time, bit 1 date), `DATE_TIME` LTIME_DATE, `TIME_DATE_QUAL` UINT8 | [`Meter::set_clock`] |
//! | MP0 (manufacturer 0) remote switch | UINT8: 0 open (disconnect), 1 close (connect) | [`Meter::disconnect`] / [`Meter::connect`] |
//! | MP1 (manufacturer 1) load control event | `START` LTIME_DATE (meter time; all zero = at once), `DURATION` UINT16 (minutes), `REDUCTION` UINT8 (percent, ≤ 100): 9 bytes | [`Meter::load_control`]: the household's load is cut by `REDUCTION` % during the window; duration 0 or reduction 0 cancels the event in force; result 2 for a reduction above 100 or a bad date, 4 (timing constraint) for a window already closed |
//!
//! The switch is a manufacturer procedure because the standard procedures of C12.19-2008
//! that could carry it (load control) do not say "service disconnect" exactly; that choice is
//! ours and is documented here. Demand response is a manufacturer procedure for the same
//! reason: the standard load-control tables (ST110–ST117) describe relay and pricing set-ups
//! a residential meter without load relays does not have, while one event (window and
//! percentage) is what a head-end dispatches; its parameters are [`LoadControlParams`].

use crate::demand_response::LoadControl;
use crate::meter::{Meter, MeterError};
use crate::tables::codec::{Reader, Writer};
use crate::tables::TableError;
use crate::time::{civil, from_civil};

/// Standard procedure 9, remote reset.
pub const SP_REMOTE_RESET: u16 = 9;
/// Standard procedure 10, set date and/or time.
pub const SP_SET_DATE_TIME: u16 = 10;
/// Manufacturer procedure 0, remote connect/disconnect.
pub const MP_REMOTE_SWITCH: u16 = 0;
/// Manufacturer procedure 1, demand-response load-control event.
pub const MP_LOAD_CONTROL: u16 = 1;
/// `STD_VS_MFG_FLAG`.
pub const MFG_FLAG: u16 = 0x0800;

/// `RESULT_CODE` values.
pub mod result {
    /// Procedure completed.
    pub const COMPLETED: u8 = 0;
    /// Invalid parameter for a known procedure.
    pub const INVALID_PARAMETER: u8 = 2;
    /// Timing constraint (a load-control window that has already closed).
    pub const TIMING_CONSTRAINT: u8 = 4;
    /// Unrecognised procedure.
    pub const UNRECOGNISED: u8 = 6;
}

/// A decoded ST7 write.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ProcedureRequest {
    /// Procedure number (bits 0–10).
    pub number: u16,
    /// Manufacturer procedure.
    pub manufacturer: bool,
    /// `SELECTOR` (bits 12–15).
    pub selector: u8,
    /// `SEQ_NBR`.
    pub seq: u8,
    /// `PARM_DATA`.
    pub params: Vec<u8>,
}

impl ProcedureRequest {
    /// Decodes ST7 data.
    pub fn parse(data: &[u8]) -> Result<Self, TableError> {
        let mut r = Reader::new(data);
        let nbr = r.u16()?;
        let seq = r.u8()?;
        let params = r.take(data.len().saturating_sub(3))?.to_vec();
        Ok(ProcedureRequest {
            number: nbr & 0x07FF,
            manufacturer: nbr & MFG_FLAG != 0,
            selector: (nbr >> 12) as u8,
            seq,
            params,
        })
    }

    /// Encodes ST7 data.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut w = Writer::default();
        w.u16(self.tbl_proc_nbr());
        w.u8(self.seq);
        w.bytes(&self.params);
        w.0
    }

    /// The SP10 request setting date and time to meter time `t` (`SET_MASK` date and time,
    /// `DATE_TIME` as LTIME_DATE, `TIME_DATE_QUAL` as ST52 writes it).
    pub fn set_date_time(seq: u8, t: u64) -> Self {
        let mut params = vec![0x03];
        params.extend(super::calendar::clock(t).iter().take(7));
        ProcedureRequest {
            number: SP_SET_DATE_TIME,
            manufacturer: false,
            selector: 0,
            seq,
            params,
        }
    }

    /// The MP1 request carrying `event` with sequence number `seq`.
    pub fn load_control(seq: u8, event: &LoadControl) -> Self {
        ProcedureRequest {
            number: MP_LOAD_CONTROL,
            manufacturer: true,
            selector: 0,
            seq,
            params: LoadControlParams(*event).to_bytes(),
        }
    }

    fn tbl_proc_nbr(&self) -> u16 {
        (self.number & 0x07FF)
            | if self.manufacturer { MFG_FLAG } else { 0 }
            | (u16::from(self.selector & 0x0F) << 12)
    }
}

/// MP1 parameters: a [`LoadControl`] event (start 0 = at once, written as an all-zero
/// LTIME_DATE).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LoadControlParams(pub LoadControl);

/// Bytes of the MP1 parameters.
pub const LOAD_CONTROL_PARAMS_LEN: usize = 9;

impl LoadControlParams {
    /// Encodes the parameters (a start outside 2000..=2255 is written as "at once").
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut w = Writer::default();
        w.ltime(self.0.start);
        w.u16(self.0.duration_min);
        w.u8(self.0.reduction_pct);
        w.0
    }

    /// Decodes the parameters; a reduction above 100 % is refused.
    pub fn parse(data: &[u8]) -> Result<Self, TableError> {
        let mut r = Reader::new(data);
        let start = r.ltime()?;
        let duration_min = r.u16()?;
        let at = r.pos();
        let reduction_pct = r.u8()?;
        r.finish()?;
        if reduction_pct > 100 {
            return Err(TableError::BadValue {
                at,
                what: "load-control reduction above 100 %",
            });
        }
        Ok(LoadControlParams(LoadControl {
            start,
            duration_min,
            reduction_pct,
        }))
    }
}

fn load_control(meter: &mut Meter, p: &[u8]) -> u8 {
    let Ok(LoadControlParams(event)) = LoadControlParams::parse(p) else {
        return result::INVALID_PARAMETER;
    };
    match meter.load_control(meter.now(), event) {
        Ok(()) => result::COMPLETED,
        Err(MeterError::WindowClosed { .. }) => result::TIMING_CONSTRAINT,
        Err(_) => result::INVALID_PARAMETER,
    }
}

fn set_date_time(meter: &mut Meter, p: &[u8]) -> u8 {
    let mut r = Reader::new(p);
    let (Ok(mask), Ok(_), Ok(_), Ok(())) = (r.u8(), r.take(6), r.u8(), r.finish()) else {
        return result::INVALID_PARAMETER;
    };
    let f = |i: usize| p.get(i).copied().unwrap_or(0);
    let now = civil(meter.meter_time());
    let mut c = now;
    if mask & 0x02 != 0 {
        c.year = 2000 + i64::from(f(1));
        c.month = f(2);
        c.day = f(3);
    }
    if mask & 0x01 != 0 {
        c.hour = f(4);
        c.minute = f(5);
        c.second = f(6);
    }
    if mask & 0x03 == 0 {
        return result::INVALID_PARAMETER;
    }
    let Some(t) = from_civil(&c) else {
        return result::INVALID_PARAMETER;
    };
    match meter.set_clock(meter.now(), t) {
        Ok(()) => result::COMPLETED,
        Err(_) => result::INVALID_PARAMETER,
    }
}

/// Runs `req` on `meter` at its current time and stores the ST8 response.
pub fn execute(meter: &mut Meter, req: &ProcedureRequest) {
    let now = meter.now();
    let code = match (req.manufacturer, req.number, req.params.as_slice()) {
        (false, SP_REMOTE_RESET, [flags]) => {
            if flags & 0x01 != 0 && meter.demand_reset(now).is_err() {
                result::INVALID_PARAMETER
            } else {
                result::COMPLETED
            }
        }
        (false, SP_REMOTE_RESET, _) => result::INVALID_PARAMETER,
        (false, SP_SET_DATE_TIME, p) => set_date_time(meter, p),
        (true, MP_REMOTE_SWITCH, [0]) => meter
            .disconnect(now)
            .map_or(result::INVALID_PARAMETER, |_| 0),
        (true, MP_REMOTE_SWITCH, [1]) => {
            meter.connect(now).map_or(result::INVALID_PARAMETER, |_| 0)
        }
        (true, MP_REMOTE_SWITCH, _) => result::INVALID_PARAMETER,
        (true, MP_LOAD_CONTROL, p) => load_control(meter, p),
        _ => result::UNRECOGNISED,
    };
    let [lo, hi] = req.tbl_proc_nbr().to_le_bytes();
    meter.proc_response = [lo, hi, req.seq, code];
}
