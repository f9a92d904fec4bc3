//! PANA AVPs (RFC 5191 §6.2, §8): header, value newtypes and the codec of one AVP.

use std::fmt;

use crate::error::Error;

/// An AVP code (open newtype: unknown codes round-trip).
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct AvpCode(pub u16);

impl AvpCode {
    /// AUTH (1): the integrity checksum of the message.
    pub const AUTH: Self = Self(1);
    /// EAP-Payload (2): one EAP packet.
    pub const EAP_PAYLOAD: Self = Self(2);
    /// Integrity-Algorithm (3).
    pub const INTEGRITY_ALGORITHM: Self = Self(3);
    /// Key-Id (4): names the MSK.
    pub const KEY_ID: Self = Self(4);
    /// Nonce (5).
    pub const NONCE: Self = Self(5);
    /// PRF-Algorithm (6).
    pub const PRF_ALGORITHM: Self = Self(6);
    /// Result-Code (7).
    pub const RESULT_CODE: Self = Self(7);
    /// Session-Lifetime (8), in seconds.
    pub const SESSION_LIFETIME: Self = Self(8);
    /// Termination-Cause (9).
    pub const TERMINATION_CAUSE: Self = Self(9);
    /// PaC-Information (10, RFC 6345): the PaC's address and port, in a PANA-Relay message.
    pub const PAC_INFORMATION: Self = Self(10);
    /// Relayed-Message (11, RFC 6345): the whole PANA message a PANA-Relay message carries.
    pub const RELAYED_MESSAGE: Self = Self(11);

    /// The RFC name of a code defined by RFC 5191 or RFC 6345.
    pub fn name(self) -> Option<&'static str> {
        Some(match self {
            Self::AUTH => "AUTH",
            Self::EAP_PAYLOAD => "EAP-Payload",
            Self::INTEGRITY_ALGORITHM => "Integrity-Algorithm",
            Self::KEY_ID => "Key-Id",
            Self::NONCE => "Nonce",
            Self::PRF_ALGORITHM => "PRF-Algorithm",
            Self::RESULT_CODE => "Result-Code",
            Self::SESSION_LIFETIME => "Session-Lifetime",
            Self::TERMINATION_CAUSE => "Termination-Cause",
            Self::PAC_INFORMATION => "PaC-Information",
            Self::RELAYED_MESSAGE => "Relayed-Message",
            _ => return None,
        })
    }

    /// Whether the code is one of the RFC 5191 / RFC 6345 AVPs this crate understands.
    pub fn is_known(self) -> bool {
        self.name().is_some()
    }

    /// Whether the value of this AVP is an Unsigned32 (exactly four bytes).
    pub fn is_unsigned32(self) -> bool {
        matches!(
            self,
            Self::INTEGRITY_ALGORITHM
                | Self::KEY_ID
                | Self::PRF_ALGORITHM
                | Self::RESULT_CODE
                | Self::SESSION_LIFETIME
                | Self::TERMINATION_CAUSE
        )
    }
}

impl fmt::Debug for AvpCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.name() {
            Some(n) => f.write_str(n),
            None => write!(f, "AvpCode({})", self.0),
        }
    }
}

/// The 16-bit AVP Flags field (open newtype: unassigned bits round-trip).
#[derive(Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct AvpFlags(pub u16);

impl AvpFlags {
    /// V (Vendor): a Vendor-Id field follows the header (RFC 5191 §6.2).
    pub const VENDOR: Self = Self(0x8000);
    /// M (Mandatory): the receiver must understand the AVP or discard the message.
    ///
    /// RFC 5191 itself assigns only the V bit; this is the Diameter-style M bit of the
    /// second flag position, which this crate honours for AVPs it does not know.
    pub const MANDATORY: Self = Self(0x4000);

    /// Whether every bit of `other` is set.
    pub fn contains(self, other: Self) -> bool {
        self.0 & other.0 == other.0
    }
}

impl std::ops::BitOr for AvpFlags {
    type Output = Self;
    fn bitor(self, rhs: Self) -> Self {
        Self(self.0 | rhs.0)
    }
}

impl fmt::Debug for AvpFlags {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "AvpFlags({:#06x}", self.0)?;
        if self.contains(Self::VENDOR) {
            f.write_str(" V")?;
        }
        if self.contains(Self::MANDATORY) {
            f.write_str(" M")?;
        }
        f.write_str(")")
    }
}

/// Result-Code AVP values (RFC 5191 §8.7; open newtype).
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct ResultCode(pub u32);

impl ResultCode {
    /// PANA_SUCCESS (0).
    pub const SUCCESS: Self = Self(0);
    /// PANA_AUTHENTICATION_REJECTED (1).
    pub const AUTHENTICATION_REJECTED: Self = Self(1);
    /// PANA_AUTHORIZATION_REJECTED (2).
    pub const AUTHORIZATION_REJECTED: Self = Self(2);
}

impl fmt::Debug for ResultCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            Self::SUCCESS => f.write_str("PANA_SUCCESS"),
            Self::AUTHENTICATION_REJECTED => f.write_str("PANA_AUTHENTICATION_REJECTED"),
            Self::AUTHORIZATION_REJECTED => f.write_str("PANA_AUTHORIZATION_REJECTED"),
            Self(v) => write!(f, "ResultCode({v})"),
        }
    }
}

/// Termination-Cause AVP values (RFC 5191 §8.9, Diameter numbering; open newtype).
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct TerminationCause(pub u32);

impl TerminationCause {
    /// LOGOUT (1): the PaC leaves.
    pub const LOGOUT: Self = Self(1);
    /// ADMINISTRATIVE (4): the PAA ends the session.
    pub const ADMINISTRATIVE: Self = Self(4);
    /// SESSION_TIMEOUT (8): the session lifetime ran out.
    pub const SESSION_TIMEOUT: Self = Self(8);
}

impl fmt::Debug for TerminationCause {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            Self::LOGOUT => f.write_str("LOGOUT"),
            Self::ADMINISTRATIVE => f.write_str("ADMINISTRATIVE"),
            Self::SESSION_TIMEOUT => f.write_str("SESSION_TIMEOUT"),
            Self(v) => write!(f, "TerminationCause({v})"),
        }
    }
}

/// Length of the AVP header without the Vendor-Id.
pub const AVP_HEADER_LEN: usize = 8;

/// One AVP. The AVP Length field counts the value only; padding to four bytes follows the
/// value and is not counted (RFC 5191 §6.2).
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct Avp {
    /// AVP code.
    pub code: AvpCode,
    /// AVP flags. On emit the V bit is taken from `vendor_id`, so the two never disagree.
    pub flags: AvpFlags,
    /// The 16-bit Reserved field, kept so that re-encoding gives the same bytes.
    pub reserved: u16,
    /// Vendor-Id, present exactly when the V bit is set.
    pub vendor_id: Option<u32>,
    /// The value, without padding.
    pub value: Vec<u8>,
}

impl Avp {
    /// An IETF AVP with an octet-string value and no flags.
    pub fn octets(code: AvpCode, value: &[u8]) -> Self {
        Self {
            code,
            flags: AvpFlags::default(),
            reserved: 0,
            vendor_id: None,
            value: value.to_vec(),
        }
    }

    /// An IETF AVP with an Unsigned32 value and no flags.
    pub fn u32(code: AvpCode, value: u32) -> Self {
        Self::octets(code, &value.to_be_bytes())
    }

    /// Whether this is an RFC 5191 AVP this crate understands (known code, no vendor).
    pub fn is_known(&self) -> bool {
        self.vendor_id.is_none() && self.code.is_known()
    }

    /// The value as an Unsigned32, when it is exactly four bytes.
    pub fn value_u32(&self) -> Option<u32> {
        let b: [u8; 4] = self.value.as_slice().try_into().ok()?;
        Some(u32::from_be_bytes(b))
    }

    /// Number of bytes this AVP takes on the wire, padding included.
    pub fn wire_len(&self) -> usize {
        let head = AVP_HEADER_LEN + if self.vendor_id.is_some() { 4 } else { 0 };
        head + padded(self.value.len())
    }

    /// Parses one AVP from the start of `buf`; `offset` is the position of `buf` in the
    /// message (for error reports). Returns the AVP and the number of bytes consumed,
    /// padding included. Applies the value-size rules of the known AVPs and the M-bit rule.
    pub fn parse(buf: &[u8], offset: usize) -> Result<(Self, usize), Error> {
        let head = buf.get(..AVP_HEADER_LEN).ok_or(Error::Truncated {
            offset,
            needed: AVP_HEADER_LEN.saturating_sub(buf.len()),
        })?;
        let code = AvpCode(be16(head, 0));
        let flags = AvpFlags(be16(head, 2));
        let len = usize::from(be16(head, 4));
        let reserved = be16(head, 6);
        let mut pos = AVP_HEADER_LEN;
        let vendor_id = if flags.contains(AvpFlags::VENDOR) {
            let v = buf.get(pos..pos + 4).ok_or(Error::Truncated {
                offset: offset + pos,
                needed: (pos + 4).saturating_sub(buf.len()),
            })?;
            pos += 4;
            Some(be32(v, 0))
        } else {
            None
        };
        let end = pos + padded(len);
        let value = buf.get(pos..pos + len).ok_or(Error::Truncated {
            offset: offset + pos,
            needed: (pos + len).saturating_sub(buf.len()),
        })?;
        if buf.len() < end {
            return Err(Error::Truncated {
                offset: offset + pos + len,
                needed: end - buf.len(),
            });
        }
        let avp = Self {
            code,
            flags,
            reserved,
            vendor_id,
            value: value.to_vec(),
        };
        if avp.is_known() {
            if code.is_unsigned32() && len != 4 {
                return Err(Error::InvalidAvpLength { code, offset, len });
            }
        } else if flags.contains(AvpFlags::MANDATORY) {
            return Err(Error::UnsupportedMandatoryAvp {
                code: code.0,
                vendor_id,
                offset,
            });
        }
        Ok((avp, end))
    }

    /// Appends the AVP, with zero padding, to `out`.
    pub fn emit(&self, out: &mut Vec<u8>) -> Result<(), Error> {
        let len = u16::try_from(self.value.len()).map_err(|_| Error::TooLong)?;
        let mut flags = self.flags.0 & !AvpFlags::VENDOR.0;
        if self.vendor_id.is_some() {
            flags |= AvpFlags::VENDOR.0;
        }
        out.extend_from_slice(&self.code.0.to_be_bytes());
        out.extend_from_slice(&flags.to_be_bytes());
        out.extend_from_slice(&len.to_be_bytes());
        out.extend_from_slice(&self.reserved.to_be_bytes());
        if let Some(v) = self.vendor_id {
            out.extend_from_slice(&v.to_be_bytes());
        }
        out.extend_from_slice(&self.value);
        out.resize(out.len() + padded(self.value.len()) - self.value.len(), 0);
        Ok(())
    }
}

/// `len` rounded up to a multiple of four.
pub(crate) fn padded(len: usize) -> usize {
    len.div_ceil(4) * 4
}

/// Reads a big-endian u16 at `at` from a slice the caller has length-checked (returns 0
/// rather than panicking if it has not).
pub(crate) fn be16(b: &[u8], at: usize) -> u16 {
    match b.get(at..at + 2) {
        Some(&[x, y]) => u16::from_be_bytes([x, y]),
        _ => 0,
    }
}

/// Reads a big-endian u32 at `at`, like [`be16`].
pub(crate) fn be32(b: &[u8], at: usize) -> u32 {
    match b.get(at..at + 4) {
        Some(&[w, x, y, z]) => u32::from_be_bytes([w, x, y, z]),
        _ => 0,
    }
}
