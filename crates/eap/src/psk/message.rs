//! The four EAP-PSK messages (RFC 4764 §5), as the Type-Data that follows the EAP Type byte.

use crate::error::DecodeError;

use super::crypto::BLOCK;

/// Length of the protected channel's nonce N.
pub const NONCE_LEN: usize = 4;
/// Length of the protected channel's EAX tag.
pub const TAG_LEN: usize = 16;
/// Longest ID_P or ID_S: the 1020-byte minimum EAP MTU less everything else message 2 carries
/// (RFC 4764 §5.2).
pub const MAX_ID_LEN: usize = 966;

/// The EAP-PSK result indication carried in the protected channel (the R flag).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ResultFlag {
    /// CONT (1): more protected messages follow.
    Continue,
    /// DONE_SUCCESS (2).
    DoneSuccess,
    /// DONE_FAILURE (3).
    DoneFailure,
}

impl ResultFlag {
    /// Decodes the two top bits of the protected flags byte; 0 is reserved.
    pub fn from_bits(bits: u8) -> Result<Self, DecodeError> {
        match bits >> 6 {
            1 => Ok(ResultFlag::Continue),
            2 => Ok(ResultFlag::DoneSuccess),
            3 => Ok(ResultFlag::DoneFailure),
            other => Err(DecodeError::BadField {
                what: "EAP-PSK R flag",
                value: other.into(),
            }),
        }
    }

    /// The protected flags byte carrying this result, with E (extension) clear.
    pub fn to_bits(self) -> u8 {
        match self {
            ResultFlag::Continue => 0x40,
            ResultFlag::DoneSuccess => 0x80,
            ResultFlag::DoneFailure => 0xc0,
        }
    }
}

/// The protected channel as carried on the wire: nonce, tag, and the encrypted payload (the R/E flags
/// byte and any extension).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pchannel<'a> {
    /// The 32-bit nonce N.
    pub nonce: u32,
    /// The EAX tag.
    pub tag: [u8; TAG_LEN],
    /// The encrypted payload, at least one byte.
    pub encrypted: &'a [u8],
}

/// One decoded EAP-PSK message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Message<'a> {
    /// Message 1, server to peer: RAND_S and ID_S.
    First {
        /// The server's random.
        rand_s: [u8; BLOCK],
        /// The server's identity.
        id_s: &'a [u8],
    },
    /// Message 2, peer to server: RAND_S echoed, RAND_P, MAC_P and ID_P.
    Second {
        /// RAND_S echoed.
        rand_s: [u8; BLOCK],
        /// The peer's random.
        rand_p: [u8; BLOCK],
        /// The peer's MAC.
        mac_p: [u8; BLOCK],
        /// The peer's identity.
        id_p: &'a [u8],
    },
    /// Message 3, server to peer: RAND_S, MAC_S and the protected channel.
    Third {
        /// RAND_S.
        rand_s: [u8; BLOCK],
        /// The server's MAC.
        mac_s: [u8; BLOCK],
        /// The protected channel.
        pchannel: Pchannel<'a>,
    },
    /// Message 4, peer to server: RAND_S and the protected channel.
    Fourth {
        /// RAND_S.
        rand_s: [u8; BLOCK],
        /// The protected channel.
        pchannel: Pchannel<'a>,
    },
}

impl Message<'_> {
    /// The message number, 1 to 4 (the T field plus one).
    pub fn number(&self) -> u8 {
        match self {
            Message::First { .. } => 1,
            Message::Second { .. } => 2,
            Message::Third { .. } => 3,
            Message::Fourth { .. } => 4,
        }
    }
}

struct Reader<'a> {
    rest: &'a [u8],
}

impl<'a> Reader<'a> {
    fn array<const N: usize>(&mut self, what: &'static str) -> Result<[u8; N], DecodeError> {
        let (head, rest) = self
            .rest
            .split_first_chunk::<N>()
            .ok_or(DecodeError::Truncated {
                what,
                need: N,
                have: self.rest.len(),
            })?;
        self.rest = rest;
        Ok(*head)
    }

    fn pchannel(&mut self) -> Result<Pchannel<'a>, DecodeError> {
        let nonce = u32::from_be_bytes(self.array::<NONCE_LEN>("EAP-PSK nonce")?);
        let tag = self.array::<TAG_LEN>("EAP-PSK tag")?;
        if self.rest.is_empty() {
            return Err(DecodeError::Truncated {
                what: "EAP-PSK protected flags",
                need: 1,
                have: 0,
            });
        }
        Ok(Pchannel {
            nonce,
            tag,
            encrypted: self.rest,
        })
    }

    fn identity(&self, what: &'static str) -> Result<&'a [u8], DecodeError> {
        if self.rest.is_empty() || self.rest.len() > MAX_ID_LEN {
            return Err(DecodeError::BadLength {
                what,
                value: self.rest.len(),
            });
        }
        Ok(self.rest)
    }
}

/// Decodes the Type-Data of an EAP-PSK packet. The T field selects the message; the reserved flag
/// bits are ignored on receipt as the RFC asks.
pub fn parse(type_data: &[u8]) -> Result<Message<'_>, DecodeError> {
    let (&flags, rest) = type_data.split_first().ok_or(DecodeError::Truncated {
        what: "EAP-PSK flags",
        need: 1,
        have: 0,
    })?;
    let mut r = Reader { rest };
    let rand_s = r.array::<BLOCK>("RAND_S")?;
    Ok(match flags >> 6 {
        0 => Message::First {
            rand_s,
            id_s: r.identity("ID_S")?,
        },
        1 => {
            let rand_p = r.array::<BLOCK>("RAND_P")?;
            let mac_p = r.array::<BLOCK>("MAC_P")?;
            Message::Second {
                rand_s,
                rand_p,
                mac_p,
                id_p: r.identity("ID_P")?,
            }
        }
        2 => {
            let mac_s = r.array::<BLOCK>("MAC_S")?;
            Message::Third {
                rand_s,
                mac_s,
                pchannel: r.pchannel()?,
            }
        }
        _ => Message::Fourth {
            rand_s,
            pchannel: r.pchannel()?,
        },
    })
}

/// Encodes a message as EAP Type-Data.
pub fn emit(message: &Message<'_>) -> Vec<u8> {
    let mut out = Vec::with_capacity(1 + 3 * BLOCK + MAX_ID_LEN.min(64));
    out.push((message.number() - 1) << 6);
    match message {
        Message::First { rand_s, id_s } => {
            out.extend_from_slice(rand_s);
            out.extend_from_slice(id_s);
        }
        Message::Second {
            rand_s,
            rand_p,
            mac_p,
            id_p,
        } => {
            out.extend_from_slice(rand_s);
            out.extend_from_slice(rand_p);
            out.extend_from_slice(mac_p);
            out.extend_from_slice(id_p);
        }
        Message::Third {
            rand_s,
            mac_s,
            pchannel,
        } => {
            out.extend_from_slice(rand_s);
            out.extend_from_slice(mac_s);
            emit_pchannel(&mut out, pchannel);
        }
        Message::Fourth { rand_s, pchannel } => {
            out.extend_from_slice(rand_s);
            emit_pchannel(&mut out, pchannel);
        }
    }
    out
}

fn emit_pchannel(out: &mut Vec<u8>, p: &Pchannel<'_>) {
    out.extend_from_slice(&p.nonce.to_be_bytes());
    out.extend_from_slice(&p.tag);
    out.extend_from_slice(p.encrypted);
}

/// Length of the Type-Data of message 3 or 4 carrying `payload_len` protected bytes, so the EAP header
/// (authenticated by the channel) can be built before the tag exists.
pub fn protected_len(number: u8, payload_len: usize) -> usize {
    let fixed = if number == 3 {
        1 + 2 * BLOCK
    } else {
        1 + BLOCK
    };
    fixed + NONCE_LEN + TAG_LEN + payload_len
}
