//! Byte-level helpers for C12.19 table data: little-endian integers (`DATA_ORDER` = 0),
//! `INT48` non-integer values, and `TM_FORMAT` = 2 dates (one `UINT8` per field).

use crate::tables::TableError;
use crate::time::{civil, from_civil, Civil};

/// Builds table bytes.
#[derive(Default)]
pub(crate) struct Writer(pub Vec<u8>);

impl Writer {
    pub fn u8(&mut self, v: u8) {
        self.0.push(v);
    }
    pub fn u16(&mut self, v: u16) {
        self.0.extend_from_slice(&v.to_le_bytes());
    }
    pub fn u32(&mut self, v: u32) {
        self.0.extend_from_slice(&v.to_le_bytes());
    }
    pub fn i32(&mut self, v: i32) {
        self.0.extend_from_slice(&v.to_le_bytes());
    }
    pub fn u64(&mut self, v: u64) {
        self.0.extend_from_slice(&v.to_le_bytes());
    }
    pub fn i64(&mut self, v: i64) {
        self.0.extend_from_slice(&v.to_le_bytes());
    }
    /// `INT48`: low six bytes of the two's complement, little-endian; saturates.
    pub fn i48(&mut self, v: i64) {
        let v = v.clamp(-(1 << 47), (1 << 47) - 1);
        self.0
            .extend_from_slice(v.to_le_bytes().get(..6).unwrap_or(&[0; 6]));
    }
    pub fn bytes(&mut self, b: &[u8]) {
        self.0.extend_from_slice(b);
    }
    /// `STIME_DATE`: YY MM DD hh mm, YY = year − 2000; all zero for "no time" (0) or a time
    /// outside 2000..=2255.
    pub fn stime(&mut self, t: u64) {
        match ymd(t) {
            Some((y, c)) => self.bytes(&[y, c.month, c.day, c.hour, c.minute]),
            None => self.bytes(&[0; 5]),
        }
    }
    /// `LTIME_DATE`: `STIME_DATE` followed by seconds.
    pub fn ltime(&mut self, t: u64) {
        match ymd(t) {
            Some((y, c)) => self.bytes(&[y, c.month, c.day, c.hour, c.minute, c.second]),
            None => self.bytes(&[0; 6]),
        }
    }
}

fn ymd(t: u64) -> Option<(u8, Civil)> {
    let c = civil(t);
    let y = u8::try_from(c.year.checked_sub(2000)?).ok()?;
    (t != 0).then_some((y, c))
}

/// Reads table bytes; every read is bounds-checked.
pub(crate) struct Reader<'a> {
    data: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    pub fn new(data: &'a [u8]) -> Self {
        Reader { data, pos: 0 }
    }
    pub fn take(&mut self, n: usize) -> Result<&'a [u8], TableError> {
        let end = self
            .pos
            .checked_add(n)
            .ok_or(TableError::Truncated { at: self.pos })?;
        let s = self
            .data
            .get(self.pos..end)
            .ok_or(TableError::Truncated { at: self.pos })?;
        self.pos = end;
        Ok(s)
    }
    pub fn array<const N: usize>(&mut self) -> Result<[u8; N], TableError> {
        let mut out = [0u8; N];
        out.copy_from_slice(self.take(N)?);
        Ok(out)
    }
    pub fn u8(&mut self) -> Result<u8, TableError> {
        Ok(u8::from_le_bytes(self.array()?))
    }
    pub fn u16(&mut self) -> Result<u16, TableError> {
        Ok(u16::from_le_bytes(self.array()?))
    }
    pub fn u32(&mut self) -> Result<u32, TableError> {
        Ok(u32::from_le_bytes(self.array()?))
    }
    pub fn i32(&mut self) -> Result<i32, TableError> {
        Ok(i32::from_le_bytes(self.array()?))
    }
    pub fn u64(&mut self) -> Result<u64, TableError> {
        Ok(u64::from_le_bytes(self.array()?))
    }
    pub fn i64(&mut self) -> Result<i64, TableError> {
        Ok(i64::from_le_bytes(self.array()?))
    }
    pub fn i48(&mut self) -> Result<i64, TableError> {
        let b: [u8; 6] = self.array()?;
        let mut x = [0u8; 8];
        x.get_mut(..6)
            .ok_or(TableError::Truncated { at: self.pos })?
            .copy_from_slice(&b);
        Ok(i64::from_le_bytes(x) << 16 >> 16)
    }
    fn time(&mut self, with_seconds: bool) -> Result<u64, TableError> {
        let at = self.pos;
        let b = self.take(if with_seconds { 6 } else { 5 })?;
        if b.iter().all(|&x| x == 0) {
            return Ok(0);
        }
        let f = |i: usize| b.get(i).copied().unwrap_or(0);
        let c = Civil {
            year: 2000 + i64::from(f(0)),
            month: f(1),
            day: f(2),
            hour: f(3),
            minute: f(4),
            second: f(5),
        };
        from_civil(&c).ok_or(TableError::BadValue {
            at,
            what: "date or time field",
        })
    }
    pub fn stime(&mut self) -> Result<u64, TableError> {
        self.time(false)
    }
    pub fn ltime(&mut self) -> Result<u64, TableError> {
        self.time(true)
    }
    pub fn pos(&self) -> usize {
        self.pos
    }
    /// Refuses trailing bytes.
    pub fn finish(&self) -> Result<(), TableError> {
        if self.pos == self.data.len() {
            Ok(())
        } else {
            Err(TableError::TrailingBytes { at: self.pos })
        }
    }
}
