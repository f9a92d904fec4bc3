//! The PANA message: header (RFC 5191 §6.1) and the AVPs that follow it.

use std::fmt;
use std::ops::Range;

use crate::avp::{be16, be32, Avp, AvpCode, ResultCode, TerminationCause, AVP_HEADER_LEN};
use crate::crypto::{IntegrityAlgorithm, PrfAlgorithm};
use crate::error::Error;

/// Length of the PANA header.
pub const HEADER_LEN: usize = 16;

/// The 16-bit header Flags field (open newtype: unassigned bits round-trip).
#[derive(Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct Flags(pub u16);

impl Flags {
    /// R (Request).
    pub const REQUEST: Self = Self(0x8000);
    /// S (Start).
    pub const START: Self = Self(0x4000);
    /// C (Complete).
    pub const COMPLETE: Self = Self(0x2000);
    /// A (re-Authentication).
    pub const REAUTH: Self = Self(0x1000);
    /// P (Ping).
    pub const PING: Self = Self(0x0800);
    /// I (IP Reconfiguration).
    pub const IP_RECONFIG: Self = Self(0x0400);
    /// No flag.
    pub const NONE: Self = Self(0);

    /// Whether every bit of `other` is set.
    pub fn contains(self, other: Self) -> bool {
        self.0 & other.0 == other.0
    }
}

impl std::ops::BitOr for Flags {
    type Output = Self;
    fn bitor(self, rhs: Self) -> Self {
        Self(self.0 | rhs.0)
    }
}

impl fmt::Debug for Flags {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Flags(")?;
        let names = [
            (Self::REQUEST, 'R'),
            (Self::START, 'S'),
            (Self::COMPLETE, 'C'),
            (Self::REAUTH, 'A'),
            (Self::PING, 'P'),
            (Self::IP_RECONFIG, 'I'),
        ];
        let mut known = 0u16;
        for (flag, name) in names {
            known |= flag.0;
            if self.contains(flag) {
                write!(f, "{name}")?;
            }
        }
        if self.0 & !known != 0 {
            write!(f, " {:#06x}", self.0 & !known)?;
        }
        f.write_str(")")
    }
}

/// Message Type (open newtype).
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct MessageType(pub u16);

impl MessageType {
    /// PANA-Client-Initiation (1).
    pub const CLIENT_INITIATION: Self = Self(1);
    /// PANA-Auth (2): PAR with R set, PAN without.
    pub const AUTH: Self = Self(2);
    /// PANA-Termination (3): PTR / PTA.
    pub const TERMINATION: Self = Self(3);
    /// PANA-Notification (4): PNR / PNA.
    pub const NOTIFICATION: Self = Self(4);
    /// PANA-Relay (PRY, RFC 6345).
    pub const RELAY: Self = Self(5);
}

impl fmt::Debug for MessageType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            Self::CLIENT_INITIATION => f.write_str("PANA-Client-Initiation"),
            Self::AUTH => f.write_str("PANA-Auth"),
            Self::TERMINATION => f.write_str("PANA-Termination"),
            Self::NOTIFICATION => f.write_str("PANA-Notification"),
            Self::RELAY => f.write_str("PANA-Relay"),
            Self(v) => write!(f, "MessageType({v})"),
        }
    }
}

/// A parsed PANA message (the `Repr` of the smoltcp style).
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct Message {
    /// The 16-bit Reserved field, kept for byte-exact re-encoding.
    pub reserved: u16,
    /// Header flags.
    pub flags: Flags,
    /// Message type.
    pub msg_type: MessageType,
    /// Session Identifier (0 in PCI).
    pub session_id: u32,
    /// Sequence Number.
    pub seq: u32,
    /// AVPs in wire order, unknown ones included.
    pub avps: Vec<Avp>,
}

impl Message {
    /// A message with no AVPs.
    pub fn new(msg_type: MessageType, flags: Flags, session_id: u32, seq: u32) -> Self {
        Self {
            reserved: 0,
            flags,
            msg_type,
            session_id,
            seq,
            avps: Vec::new(),
        }
    }

    /// Appends an AVP (builder style).
    pub fn with(mut self, avp: Avp) -> Self {
        self.avps.push(avp);
        self
    }

    /// Parses a whole datagram. The Message Length field must equal `buf.len()`. Unknown
    /// AVPs without the M bit are kept (and ignored by the state machines); an unknown AVP
    /// with the M bit makes the whole message an error.
    pub fn parse(buf: &[u8]) -> Result<Self, Error> {
        let head = buf.get(..HEADER_LEN).ok_or(Error::Truncated {
            offset: 0,
            needed: HEADER_LEN.saturating_sub(buf.len()),
        })?;
        let reserved = be16(head, 0);
        let length = usize::from(be16(head, 2));
        if length != buf.len() {
            return Err(Error::LengthMismatch {
                field: length,
                actual: buf.len(),
            });
        }
        let mut avps = Vec::new();
        let mut pos = HEADER_LEN;
        while let Some(rest) = buf.get(pos..).filter(|r| !r.is_empty()) {
            let (avp, used) = Avp::parse(rest, pos)?;
            avps.push(avp);
            pos += used;
        }
        Ok(Self {
            reserved,
            flags: Flags(be16(head, 4)),
            msg_type: MessageType(be16(head, 6)),
            session_id: be32(head, 8),
            seq: be32(head, 12),
            avps,
        })
    }

    /// Number of bytes [`Message::emit`] produces.
    pub fn buffer_len(&self) -> usize {
        HEADER_LEN + self.avps.iter().map(Avp::wire_len).sum::<usize>()
    }

    /// Encodes the message.
    pub fn emit(&self) -> Result<Vec<u8>, Error> {
        let len = u16::try_from(self.buffer_len()).map_err(|_| Error::TooLong)?;
        let mut out = Vec::with_capacity(usize::from(len));
        out.extend_from_slice(&self.reserved.to_be_bytes());
        out.extend_from_slice(&len.to_be_bytes());
        out.extend_from_slice(&self.flags.0.to_be_bytes());
        out.extend_from_slice(&self.msg_type.0.to_be_bytes());
        out.extend_from_slice(&self.session_id.to_be_bytes());
        out.extend_from_slice(&self.seq.to_be_bytes());
        for avp in &self.avps {
            avp.emit(&mut out)?;
        }
        Ok(out)
    }

    /// Whether the R flag is set.
    pub fn is_request(&self) -> bool {
        self.flags.contains(Flags::REQUEST)
    }

    /// The first known (IETF, non-vendor) AVP with this code.
    pub fn find(&self, code: AvpCode) -> Option<&Avp> {
        self.avps.iter().find(|a| a.code == code && a.is_known())
    }

    /// Every known AVP with this code.
    pub fn find_all(&self, code: AvpCode) -> impl Iterator<Item = &Avp> {
        self.avps
            .iter()
            .filter(move |a| a.code == code && a.is_known())
    }

    fn find_u32(&self, code: AvpCode) -> Option<u32> {
        self.find(code).and_then(Avp::value_u32)
    }

    /// The EAP-Payload value.
    pub fn eap_payload(&self) -> Option<&[u8]> {
        self.find(AvpCode::EAP_PAYLOAD).map(|a| a.value.as_slice())
    }

    /// The Nonce value.
    pub fn nonce(&self) -> Option<&[u8]> {
        self.find(AvpCode::NONCE).map(|a| a.value.as_slice())
    }

    /// The AUTH value.
    pub fn auth(&self) -> Option<&[u8]> {
        self.find(AvpCode::AUTH).map(|a| a.value.as_slice())
    }

    /// The Key-Id value.
    pub fn key_id(&self) -> Option<u32> {
        self.find_u32(AvpCode::KEY_ID)
    }

    /// The Result-Code value.
    pub fn result_code(&self) -> Option<ResultCode> {
        self.find_u32(AvpCode::RESULT_CODE).map(ResultCode)
    }

    /// The Session-Lifetime value, in seconds.
    pub fn session_lifetime(&self) -> Option<u32> {
        self.find_u32(AvpCode::SESSION_LIFETIME)
    }

    /// The Termination-Cause value.
    pub fn termination_cause(&self) -> Option<TerminationCause> {
        self.find_u32(AvpCode::TERMINATION_CAUSE)
            .map(TerminationCause)
    }

    /// Every PRF-Algorithm value, in message order.
    pub fn prf_algorithms(&self) -> impl Iterator<Item = PrfAlgorithm> + '_ {
        self.find_all(AvpCode::PRF_ALGORITHM)
            .filter_map(Avp::value_u32)
            .map(PrfAlgorithm)
    }

    /// Every Integrity-Algorithm value, in message order.
    pub fn integrity_algorithms(&self) -> impl Iterator<Item = IntegrityAlgorithm> + '_ {
        self.find_all(AvpCode::INTEGRITY_ALGORITHM)
            .filter_map(Avp::value_u32)
            .map(IntegrityAlgorithm)
    }
}

/// Where the value of the first known AUTH AVP lies in an encoded message, found by walking
/// the raw bytes (so the AUTH computation covers exactly the bytes received).
pub fn auth_value_range(buf: &[u8]) -> Option<Range<usize>> {
    let mut pos = HEADER_LEN;
    while pos < buf.len() {
        let rest = buf.get(pos..)?;
        let head = rest.get(..AVP_HEADER_LEN)?;
        let code = be16(head, 0);
        let vendor = be16(head, 2) & 0x8000 != 0;
        let len = usize::from(be16(head, 4));
        let start = pos + AVP_HEADER_LEN + if vendor { 4 } else { 0 };
        let end = start.checked_add(len)?;
        if end > buf.len() {
            return None;
        }
        if !vendor && AvpCode(code) == AvpCode::AUTH {
            return Some(start..end);
        }
        pos = start + crate::avp::padded(len);
    }
    None
}
