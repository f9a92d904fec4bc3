//! Minimal BER reader and writer for the subset C12.22 uses: single-byte tags, definite lengths
//! in their shortest form (also used for the EPSEM `<service-length>`), and a sub-reader that
//! rejects trailing bytes.

use crate::Error;

/// A cursor over a byte slice that never panics; offsets are reported relative to `base`.
#[derive(Debug, Clone)]
pub(crate) struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
    base: usize,
}

impl<'a> Reader<'a> {
    /// A reader over `buf` whose reported offsets start at `base`.
    pub(crate) fn new(buf: &'a [u8], base: usize) -> Self {
        Reader { buf, pos: 0, base }
    }

    /// Absolute offset of the next byte.
    pub(crate) fn offset(&self) -> usize {
        self.base.saturating_add(self.pos)
    }

    /// Bytes not yet consumed.
    pub(crate) fn remaining(&self) -> usize {
        self.buf.len().saturating_sub(self.pos)
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.remaining() == 0
    }

    /// Next byte without consuming it.
    pub(crate) fn peek(&self) -> Option<u8> {
        self.buf.get(self.pos).copied()
    }

    pub(crate) fn u8(&mut self) -> Result<u8, Error> {
        let b = self.peek().ok_or(Error::Truncated {
            offset: self.offset(),
        })?;
        self.pos += 1;
        Ok(b)
    }

    pub(crate) fn take(&mut self, n: usize) -> Result<&'a [u8], Error> {
        let end = self.pos.checked_add(n).ok_or(Error::Truncated {
            offset: self.offset(),
        })?;
        let s = self.buf.get(self.pos..end).ok_or(Error::Truncated {
            offset: self.offset(),
        })?;
        self.pos = end;
        Ok(s)
    }

    pub(crate) fn rest(&mut self) -> &'a [u8] {
        let s = self.buf.get(self.pos..).unwrap_or(&[]);
        self.pos = self.buf.len();
        s
    }

    pub(crate) fn u16(&mut self) -> Result<u16, Error> {
        let s = self.take(2)?;
        Ok(s.iter().fold(0u16, |a, &b| (a << 8) | u16::from(b)))
    }

    pub(crate) fn u24(&mut self) -> Result<u32, Error> {
        let s = self.take(3)?;
        Ok(s.iter().fold(0u32, |a, &b| (a << 8) | u32::from(b)))
    }

    /// A definite BER length in minimal form (short form, or 0x81..0x84 long form).
    pub(crate) fn length(&mut self) -> Result<usize, Error> {
        let at = self.offset();
        let first = self.u8()?;
        if first < 0x80 {
            return Ok(usize::from(first));
        }
        let n = usize::from(first & 0x7f);
        if n == 0 || n > 4 {
            return Err(Error::BadLength { offset: at });
        }
        let bytes = self.take(n)?;
        let mut v: usize = 0;
        for &b in bytes {
            v = (v << 8) | usize::from(b);
        }
        // Minimal: long form only for >= 0x80 and no leading zero octet.
        if v < 0x80 || bytes.first() == Some(&0) {
            return Err(Error::BadLength { offset: at });
        }
        Ok(v)
    }

    /// A TLV with the given tag; returns a sub-reader over its value.
    pub(crate) fn expect_tlv(&mut self, tag: u8) -> Result<Reader<'a>, Error> {
        let at = self.offset();
        let found = self.u8()?;
        if found != tag {
            return Err(Error::UnexpectedTag { found, offset: at });
        }
        self.value()
    }

    /// A TLV with any tag: `(tag, sub-reader over value)`.
    pub(crate) fn any_tlv(&mut self) -> Result<(u8, Reader<'a>), Error> {
        let tag = self.u8()?;
        Ok((tag, self.value()?))
    }

    fn value(&mut self) -> Result<Reader<'a>, Error> {
        let len = self.length()?;
        let base = self.offset();
        let v = self.take(len)?;
        Ok(Reader::new(v, base))
    }

    /// Fails if anything is left.
    pub(crate) fn finish(&self) -> Result<(), Error> {
        if self.is_empty() {
            Ok(())
        } else {
            Err(Error::TrailingBytes {
                offset: self.offset(),
                count: self.remaining(),
            })
        }
    }
}

/// Number of octets the minimal definite BER length encoding of `n` takes.
pub(crate) fn length_size(n: usize) -> usize {
    match n {
        0..=0x7f => 1,
        0x80..=0xff => 2,
        0x100..=0xffff => 3,
        0x1_0000..=0xff_ffff => 4,
        _ => 5,
    }
}

/// Appends the minimal definite BER length of `n`.
pub(crate) fn put_length(out: &mut Vec<u8>, n: usize) -> Result<(), Error> {
    if n > 0xffff_ffff {
        return Err(Error::TooLarge("BER length"));
    }
    let size = length_size(n);
    if size == 1 {
        out.push(n as u8);
    } else {
        let k = size - 1;
        out.push(0x80 | k as u8);
        for i in (0..k).rev() {
            out.push((n >> (8 * i)) as u8);
        }
    }
    Ok(())
}

/// Appends `tag`, the minimal length of `value`, and `value`.
pub(crate) fn put_tlv(out: &mut Vec<u8>, tag: u8, value: &[u8]) -> Result<(), Error> {
    out.push(tag);
    put_length(out, value.len())?;
    out.extend_from_slice(value);
    Ok(())
}

/// Appends `tag`, then the bytes produced by `f` with their length in front. The content is
/// written straight into `out` and the length octets are inserted before it afterwards (a
/// short move of the content, no temporary buffer).
pub(crate) fn put_constructed(
    out: &mut Vec<u8>,
    tag: u8,
    f: impl FnOnce(&mut Vec<u8>) -> Result<(), Error>,
) -> Result<(), Error> {
    out.push(tag);
    let start = out.len();
    f(out)?;
    let len = out.len().saturating_sub(start);
    let mut header = Vec::new();
    if len < 0x80 {
        // The common case: one length octet.
        out.insert(start, len as u8);
        return Ok(());
    }
    put_length(&mut header, len)?;
    out.splice(start..start, header);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lengths_round_trip_and_reject_non_minimal() {
        for n in [
            0usize, 1, 0x7f, 0x80, 0xff, 0x100, 0xffff, 0x10000, 0xff_ffff, 0x100_0000,
        ] {
            let mut v = Vec::new();
            put_length(&mut v, n).unwrap();
            assert_eq!(v.len(), length_size(n));
            let mut r = Reader::new(&v, 0);
            assert_eq!(r.length().unwrap(), n);
            assert!(r.is_empty());
        }
        // Constructed elements get their minimal length in front of the content.
        for n in [0usize, 5, 0x7f, 0x80, 0x1234] {
            let mut out = vec![0xee];
            put_constructed(&mut out, 0x30, |o| {
                o.extend(std::iter::repeat_n(0xab, n));
                Ok(())
            })
            .unwrap();
            let mut expected = vec![0xee];
            put_tlv(&mut expected, 0x30, &vec![0xab; n]).unwrap();
            assert_eq!(out, expected);
        }
        for bad in [
            &[0x80u8][..],
            &[0x81, 0x05],
            &[0x82, 0x00, 0x90],
            &[0x85, 1, 1, 1, 1, 1],
        ] {
            assert!(matches!(
                Reader::new(bad, 0).length(),
                Err(Error::BadLength { offset: 0 })
            ));
        }
    }
}
