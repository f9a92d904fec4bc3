//! ANSI C12.19 tables the meter exposes, for the C12.22 layer to serve Read and Write
//! requests.
//!
//! Formats in force (announced in ST0): little-endian data (`DATA_ORDER` 0), ISO 646
//! characters, `TM_FORMAT` 2 (dates as one `UINT8` per field, year counted from 2000),
//! `NI_FORMAT1` = 10 (`INT48`, used for energy, Wh), `NI_FORMAT2` = 8 (`INT32`, used for
//! demand, W), `ID_FORM` 0 (identification as characters).
//!
//! | table | content | module |
//! |---|---|---|
//! | ST0, ST1, ST3, ST5 | configuration, manufacturer identification, mode and status, device identification | [`ident`] |
//! | ST21, ST22, ST23, ST27, ST28 | register dimensions, selection, current register data, instantaneous values | [`registers`] |
//! | ST51, ST52, ST54, ST55 | TOU dimensions, clock, calendar (ST54 also writable), clock state | [`calendar`] |
//! | ST61, ST62, ST63, ST64 | load-profile dimensions, control, status, data set 1 | [`profile`] |
//! | ST7, ST8 | procedure initiate (write) and response (read) | [`procedures`] |
//! | ST64 segment | the interval upload a meter pushes (a Full Write of ST64 by our convention) | [`upload`] |
//!
//! Each module documents its layout field by field and where it departs from the standard.

pub mod calendar;
pub(crate) mod codec;
pub mod ident;
pub mod procedures;
pub mod profile;
pub mod registers;
pub mod upload;

use crate::meter::Meter;
use crate::optical::AccessLevel;

/// Table identifiers (standard tables, no pending or manufacturer flag).
pub mod id {
    /// General configuration.
    pub const ST0: u16 = 0;
    /// General manufacturer identification.
    pub const ST1: u16 = 1;
    /// End-device mode and status.
    pub const ST3: u16 = 3;
    /// Device identification.
    pub const ST5: u16 = 5;
    /// Procedure initiate.
    pub const ST7: u16 = 7;
    /// Procedure response.
    pub const ST8: u16 = 8;
    /// Actual register dimensions.
    pub const ST21: u16 = 21;
    /// Data selection.
    pub const ST22: u16 = 22;
    /// Current register data.
    pub const ST23: u16 = 23;
    /// Present register selection.
    pub const ST27: u16 = 27;
    /// Present register data (instantaneous values).
    pub const ST28: u16 = 28;
    /// Actual time and TOU dimensions.
    pub const ST51: u16 = 51;
    /// Clock.
    pub const ST52: u16 = 52;
    /// Calendar.
    pub const ST54: u16 = 54;
    /// Clock state.
    pub const ST55: u16 = 55;
    /// Actual load-profile dimensions.
    pub const ST61: u16 = 61;
    /// Load-profile control.
    pub const ST62: u16 = 62;
    /// Load-profile status.
    pub const ST63: u16 = 63;
    /// Load-profile data set 1.
    pub const ST64: u16 = 64;
    /// Every table [`super::read`] serves.
    pub const READABLE: [u16; 19] = [
        ST0, ST1, ST3, ST5, ST7, ST8, ST21, ST22, ST23, ST27, ST28, ST51, ST52, ST54, ST55, ST61,
        ST62, ST63, ST64,
    ];
}

/// Table read/write and table decoding errors.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum TableError {
    /// The meter has no such table.
    #[error("no table {0}")]
    UnknownTable(u16),
    /// Offset and count reach past the end of the table.
    #[error("table {table}: bytes {offset}..+{count} outside its {len} bytes")]
    OutOfRange {
        /// Table.
        table: u16,
        /// Requested offset.
        offset: u32,
        /// Requested count.
        count: u32,
        /// Table length.
        len: u32,
    },
    /// The table cannot be written (or not at that offset).
    #[error("table {0} cannot be written that way")]
    NotWritable(u16),
    /// No optical-port session is open, or its access level does not allow the request.
    #[error("insufficient security clearance for table {0}")]
    NotAuthorized(u16),
    /// Data ended early.
    #[error("data ends early at byte {at}")]
    Truncated {
        /// Offset at which more was needed.
        at: usize,
    },
    /// Bytes left over after a complete table.
    #[error("trailing bytes from {at}")]
    TrailingBytes {
        /// First unexpected byte.
        at: usize,
    },
    /// A field holds a value that is not allowed.
    #[error("bad {what} at byte {at}")]
    BadValue {
        /// Offset of the field.
        at: usize,
        /// Which field.
        what: &'static str,
    },
}

impl TableError {
    /// The C12.18/C12.22 response code a server should answer with: `isc` (0x03,
    /// insufficient security clearance) without the right optical session, `onp` (0x04,
    /// operation not possible) for a missing table or a range outside it, `iar` (0x05,
    /// inappropriate action requested) for a write that is not allowed or is malformed.
    pub fn response_code(&self) -> u8 {
        match self {
            TableError::NotAuthorized(_) => 0x03,
            TableError::UnknownTable(_) | TableError::OutOfRange { .. } => 0x04,
            _ => 0x05,
        }
    }
}

/// The whole of table `table` as the meter holds it now.
pub fn read(meter: &Meter, table: u16) -> Result<Vec<u8>, TableError> {
    Ok(match table {
        id::ST0 => ident::general_config(),
        id::ST1 => ident::GeneralMfgId::of(meter).to_bytes(),
        id::ST3 => ident::mode_status(meter),
        id::ST5 => ident::device_ident(meter),
        id::ST7 => Vec::new(),
        id::ST8 => meter.proc_response.to_vec(),
        id::ST21 => registers::actual_registers(),
        id::ST22 => registers::data_selection(),
        id::ST23 => registers::CurrentRegisterData::of(meter).to_bytes(),
        id::ST27 => registers::present_select(),
        id::ST28 => registers::PresentValues::of(meter).to_bytes(),
        id::ST51 => calendar::actual_time_tou(meter.calendar()),
        id::ST52 => calendar::clock(meter.meter_time()),
        id::ST54 => calendar::CalendarTable::of(meter.calendar()).to_bytes(),
        id::ST55 => calendar::clock_state(meter),
        id::ST61 => profile::actual_lp(),
        id::ST62 => profile::lp_control(),
        id::ST63 => profile::LpStatus::of(meter).to_bytes(),
        id::ST64 => profile::data_set(meter),
        other => return Err(TableError::UnknownTable(other)),
    })
}

impl Meter {
    /// Partial read by offset: `count` bytes of table `table` from `offset` (a full read is
    /// offset 0 with the table's length; see [`Meter::read_table_full`]).
    pub fn read_table(&self, table: u16, offset: u32, count: u16) -> Result<Vec<u8>, TableError> {
        let all = read(self, table)?;
        let len = u32::try_from(all.len()).unwrap_or(u32::MAX);
        let range_err = TableError::OutOfRange {
            table,
            offset,
            count: u32::from(count),
            len,
        };
        let start = usize::try_from(offset).map_err(|_| range_err)?;
        let end = start.checked_add(usize::from(count)).ok_or(range_err)?;
        all.get(start..end).map(<[u8]>::to_vec).ok_or(range_err)
    }

    /// Full read of table `table`.
    pub fn read_table_full(&self, table: u16) -> Result<Vec<u8>, TableError> {
        read(self, table)
    }

    /// Writes table `table` at the meter's current time (full writes, or offset 0). ST7
    /// (procedure initiate) runs a procedure whose outcome is then in ST8 (the procedures are
    /// listed in [`procedures`]); ST54 replaces the TOU calendar (its switch count is taken
    /// from the data length, ST51 follows). Nothing else is writable.
    pub fn write_table(&mut self, table: u16, offset: u32, data: &[u8]) -> Result<(), TableError> {
        match (table, offset) {
            (id::ST7, 0) => {
                let req = procedures::ProcedureRequest::parse(data)?;
                procedures::execute(self, &req);
                Ok(())
            }
            (id::ST54, 0) => {
                let n = data
                    .len()
                    .checked_sub(7)
                    .filter(|n| n % 3 == 0)
                    .map(|n| n / 3);
                let n = n
                    .and_then(|n| u16::try_from(n).ok())
                    .ok_or(TableError::BadValue {
                        at: 0,
                        what: "calendar length",
                    })?;
                let cal = calendar::CalendarTable::parse(data, n)?
                    .to_calendar()
                    .map_err(|_| TableError::BadValue {
                        at: 0,
                        what: "calendar",
                    })?;
                self.set_calendar(std::sync::Arc::new(cal));
                Ok(())
            }
            _ if read(self, table).is_ok() => Err(TableError::NotWritable(table)),
            _ => Err(TableError::UnknownTable(table)),
        }
    }
}

impl Meter {
    /// A read through the optical port at simulated time `now`: needs an open session (any
    /// level), which the read keeps alive.
    pub fn optical_read_table(
        &mut self,
        now: u64,
        table: u16,
        offset: u32,
        count: u16,
    ) -> Result<Vec<u8>, TableError> {
        self.optical_session(now, table, AccessLevel::Reader)?;
        self.read_table(table, offset, count)
    }

    /// A write through the optical port at simulated time `now`: procedures (ST7) need an
    /// `Operator` session, the calendar (ST54) a `Master` session. The meter is advanced to
    /// `now` first.
    pub fn optical_write_table(
        &mut self,
        now: u64,
        table: u16,
        offset: u32,
        data: &[u8],
    ) -> Result<(), TableError> {
        let need = if table == id::ST54 {
            AccessLevel::Master
        } else {
            AccessLevel::Operator
        };
        self.optical_session(now, table, need)?;
        if self.advance(now).is_err() {
            return Err(TableError::BadValue {
                at: 0,
                what: "time before the meter's last time",
            });
        }
        self.write_table(table, offset, data)
    }

    fn optical_session(
        &mut self,
        now: u64,
        table: u16,
        need: AccessLevel,
    ) -> Result<(), TableError> {
        let port = self.optical();
        match port.session(now) {
            Some(s) if s.level >= need => {
                port.touch(now);
                Ok(())
            }
            _ => Err(TableError::NotAuthorized(table)),
        }
    }
}
