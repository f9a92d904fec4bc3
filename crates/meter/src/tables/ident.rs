//! ST0 (general configuration), ST1 (general manufacturer identification), ST3 (end-device
//! mode and status) and ST5 (device identification).
//!
//! **ST0** `GEN_CONFIG_TBL`, 31 bytes:
//! `FORMAT_CONTROL_1` = 0x02 (`DATA_ORDER` 0 little-endian, `CHAR_FORMAT` 1 ISO 646),
//! `FORMAT_CONTROL_2` = 0x0A (`TM_FORMAT` 2, `DATA_ACCESS_METHOD` 1, `ID_FORM` 0, `INT_FORMAT` 0),
//! `FORMAT_CONTROL_3` = 0x8A (`NI_FORMAT1` 10 = INT48 in the low nibble, `NI_FORMAT2` 8 = INT32),
//! `DEVICE_CLASS` "GGRD", `NAMEPLATE_TYPE` 2 (electric), `DEFAULT_SET_USED` 0,
//! `MAX_PROC_PARM_LENGTH` 9, `MAX_RESP_DATA_LEN` 0, `STD_VERSION_NO` 2, `STD_REVISION_NO` 0,
//! `DIM_STD_TBLS_USED` 9, `DIM_MFG_TBLS_USED` 0, `DIM_STD_PROC_USED` 2, `DIM_MFG_PROC_USED` 1,
//! `DIM_MFG_STATUS_USED` 1, `NBR_PENDING` 0, then the sets `STD_TBLS_USED` (9 bytes),
//! `STD_PROC_USED` (2: SP9, SP10), `MFG_PROC_USED` (1: MP0, MP1), `STD_TBLS_WRITE` (9). Bit *n* of a set is bit
//! *n* mod 8 of byte *n* / 8.
//!
//! **ST1** `GENERAL_MFG_ID_TBL`, 32 bytes: `MANUFACTURER` char(4) "GGRD", `ED_MODEL` char(8)
//! "GG2S200 ", `HW_VERSION_NUMBER`, `HW_REVISION_NUMBER`, `FW_VERSION_NUMBER`,
//! `FW_REVISION_NUMBER` (UINT8 each), `MFG_SERIAL_NUMBER` char(16): the serial in 16
//! upper-case hex digits.
//!
//! **ST3** `ED_MODE_STATUS_TBL`, 4 bytes: `ED_MODE` (bit 0 metering), `ED_STD_STATUS1` UINT16
//! (bit 11 power failure, bit 13 reverse rotation = energy flowing back now), `ED_STD_STATUS2`
//! 0, `ED_MFG_STATUS` one byte: bit 0 = remote switch open (a manufacturer choice).
//!
//! **ST5** `DEVICE_IDENT_TBL`, 20 bytes: `IDENTIFICATION` char(20), the serial in decimal,
//! zero-padded on the left.

use crate::meter::{Meter, SwitchState};
use crate::tables::codec::{Reader, Writer};
use crate::tables::{id, TableError};

/// Manufacturer code in ST1 and device class in ST0.
pub const MANUFACTURER: [u8; 4] = *b"GGRD";
/// Model in ST1.
pub const MODEL: [u8; 8] = *b"GG2S200 ";

fn set(bits: &[u16], bytes: usize) -> Vec<u8> {
    let mut out = vec![0u8; bytes];
    for &b in bits {
        if let Some(x) = out.get_mut(usize::from(b / 8)) {
            *x |= 1 << (b % 8);
        }
    }
    out
}

/// ST0 bytes.
pub fn general_config() -> Vec<u8> {
    let mut w = Writer::default();
    w.bytes(&[0x02, 0x0A, 0x8A]);
    w.bytes(&MANUFACTURER);
    w.bytes(&[2, 0, 9, 0, 2, 0, 9, 0, 2, 1, 1, 0]);
    w.bytes(&set(&id::READABLE, 9));
    w.bytes(&set(&[9, 10], 2));
    w.bytes(&set(&[0, 1], 1));
    w.bytes(&set(&[id::ST7, id::ST54], 9));
    w.0
}

/// ST1, general manufacturer identification.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct GeneralMfgId {
    /// `MANUFACTURER`.
    pub manufacturer: [u8; 4],
    /// `ED_MODEL`.
    pub model: [u8; 8],
    /// Hardware version and revision.
    pub hw: (u8, u8),
    /// Firmware version and revision.
    pub fw: (u8, u8),
    /// `MFG_SERIAL_NUMBER`.
    pub serial: [u8; 16],
}

impl GeneralMfgId {
    /// ST1 of `meter`.
    pub fn of(meter: &Meter) -> Self {
        let mut serial = [b'0'; 16];
        serial.copy_from_slice(
            format!("{:016X}", meter.serial())
                .as_bytes()
                .get(..16)
                .unwrap_or(&[b'0'; 16]),
        );
        GeneralMfgId {
            manufacturer: MANUFACTURER,
            model: MODEL,
            hw: (1, 0),
            fw: (0, 1),
            serial,
        }
    }
    /// Encodes the table (32 bytes).
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut w = Writer::default();
        w.bytes(&self.manufacturer);
        w.bytes(&self.model);
        w.bytes(&[self.hw.0, self.hw.1, self.fw.0, self.fw.1]);
        w.bytes(&self.serial);
        w.0
    }
    /// Decodes the table.
    pub fn parse(data: &[u8]) -> Result<Self, TableError> {
        let mut r = Reader::new(data);
        let t = GeneralMfgId {
            manufacturer: r.array()?,
            model: r.array()?,
            hw: (r.u8()?, r.u8()?),
            fw: (r.u8()?, r.u8()?),
            serial: r.array()?,
        };
        r.finish()?;
        Ok(t)
    }
}

/// ST3 bytes.
pub fn mode_status(meter: &Meter) -> Vec<u8> {
    let mut status1 = 0u16;
    if !meter.powered() {
        status1 |= 1 << 11;
    }
    if meter.instantaneous().active_w < 0.0 {
        status1 |= 1 << 13;
    }
    let mut w = Writer::default();
    w.u8(0x01);
    w.u16(status1);
    w.u8(0);
    w.u8(u8::from(meter.switch_state() == SwitchState::Disconnected));
    w.0
}

/// ST5 bytes.
pub fn device_ident(meter: &Meter) -> Vec<u8> {
    format!("{:020}", meter.serial()).into_bytes()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{MeterConfig, TouCalendar};
    use std::sync::Arc;

    #[test]
    fn st1_hand_computed_and_round_trip() {
        let m = Meter::new(
            MeterConfig::new(0x0123_4567_89AB_CDEF, 1),
            Arc::new(TouCalendar::flat()),
            0,
        );
        let b = m.read_table_full(id::ST1).unwrap();
        let mut expected = b"GGRDGG2S200 ".to_vec();
        expected.extend_from_slice(&[1, 0, 0, 1]);
        expected.extend_from_slice(b"0123456789ABCDEF");
        assert_eq!(b, expected);
        assert_eq!(GeneralMfgId::parse(&b).unwrap(), GeneralMfgId::of(&m));
        assert!(GeneralMfgId::parse(&b[..31]).is_err());
        assert_eq!(
            m.read_table_full(id::ST5).unwrap(),
            b"00081985529216486895".to_vec()
        );
    }

    #[test]
    fn st0_announces_formats_and_tables() {
        let b = general_config();
        assert_eq!(b.len(), 3 + 4 + 12 + 9 + 2 + 1 + 9);
        assert_eq!(&b[..3], &[0x02, 0x0A, 0x8A]);
        // STD_TBLS_USED: tables 0,1,3,5,7 in byte 0; 64 in byte 8.
        assert_eq!(b[19], 0b1010_1011);
        assert_eq!(b[27], 0x01);
        // STD_TBLS_WRITE: ST7 and ST54.
        assert_eq!(&b[31..], &[0x80, 0, 0, 0, 0, 0, 0x40, 0, 0]);
    }
}
