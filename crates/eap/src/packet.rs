//! The EAP packet codec (RFC 3748 §4): Request, Response, Success and Failure, with the method type
//! carried by Requests and Responses.

use crate::error::DecodeError;

/// The EAP Code field. An open newtype: unknown values are kept so they can be reported.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct Code(pub u8);

impl Code {
    /// Request (1).
    pub const REQUEST: Code = Code(1);
    /// Response (2).
    pub const RESPONSE: Code = Code(2);
    /// Success (3).
    pub const SUCCESS: Code = Code(3);
    /// Failure (4).
    pub const FAILURE: Code = Code(4);

    fn name(self) -> Option<&'static str> {
        Some(match self {
            Code::REQUEST => "Request",
            Code::RESPONSE => "Response",
            Code::SUCCESS => "Success",
            Code::FAILURE => "Failure",
            _ => return None,
        })
    }
}

impl std::fmt::Debug for Code {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.name() {
            Some(n) => f.write_str(n),
            None => write!(f, "Code({})", self.0),
        }
    }
}

/// The EAP Type field of Requests and Responses (RFC 3748 §5, IANA "EAP Method Types").
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct MethodType(pub u8);

impl MethodType {
    /// Identity (1).
    pub const IDENTITY: MethodType = MethodType(1);
    /// Notification (2).
    pub const NOTIFICATION: MethodType = MethodType(2);
    /// Legacy Nak (3), only valid in Responses.
    pub const NAK: MethodType = MethodType(3);
    /// MD5-Challenge (4).
    pub const MD5_CHALLENGE: MethodType = MethodType(4);
    /// EAP-TLS (13).
    pub const TLS: MethodType = MethodType(13);
    /// EAP-PSK (47, RFC 4764).
    pub const PSK: MethodType = MethodType(47);
    /// Expanded Types (254).
    pub const EXPANDED: MethodType = MethodType(254);

    fn name(self) -> Option<&'static str> {
        Some(match self {
            MethodType::IDENTITY => "Identity",
            MethodType::NOTIFICATION => "Notification",
            MethodType::NAK => "Nak",
            MethodType::MD5_CHALLENGE => "MD5-Challenge",
            MethodType::TLS => "TLS",
            MethodType::PSK => "PSK",
            MethodType::EXPANDED => "Expanded",
            _ => return None,
        })
    }

    /// Whether this type is an authentication method rather than Identity, Notification or Nak.
    pub fn is_method(self) -> bool {
        self.0 >= 4
    }
}

impl std::fmt::Debug for MethodType {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.name() {
            Some(n) => f.write_str(n),
            None => write!(f, "MethodType({})", self.0),
        }
    }
}

/// Length of the EAP header (Code, Identifier, Length).
pub const HEADER_LEN: usize = 4;

/// Largest EAP packet this implementation accepts or builds (the Length field is 16 bits).
pub const MAX_PACKET_LEN: usize = u16::MAX as usize;

/// A parsed EAP packet borrowing its type data from the input.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Packet<'a> {
    /// The Code field.
    pub code: Code,
    /// The Identifier field.
    pub identifier: u8,
    /// For Requests and Responses, the Type and the bytes that follow it.
    pub body: Option<(MethodType, &'a [u8])>,
}

impl<'a> Packet<'a> {
    /// Parses one EAP packet. Bytes past the Length field are padding and ignored (RFC 3748 §4.1);
    /// a Length shorter than the header or longer than the input is an error.
    pub fn parse(bytes: &'a [u8]) -> Result<Packet<'a>, DecodeError> {
        let &[code, identifier, len_hi, len_lo] =
            bytes
                .first_chunk::<HEADER_LEN>()
                .ok_or(DecodeError::Truncated {
                    what: "EAP header",
                    need: HEADER_LEN,
                    have: bytes.len(),
                })?;
        let code = Code(code);
        let length = usize::from(u16::from_be_bytes([len_hi, len_lo]));
        if length < HEADER_LEN {
            return Err(DecodeError::BadLength {
                what: "EAP Length",
                value: length,
            });
        }
        let packet = bytes.get(..length).ok_or(DecodeError::Truncated {
            what: "EAP packet",
            need: length,
            have: bytes.len(),
        })?;
        let rest = packet.get(HEADER_LEN..).unwrap_or_default();
        let body = match code {
            Code::REQUEST | Code::RESPONSE => {
                let (&ty, data) = rest.split_first().ok_or(DecodeError::Truncated {
                    what: "EAP Type",
                    need: HEADER_LEN + 1,
                    have: length,
                })?;
                Some((MethodType(ty), data))
            }
            Code::SUCCESS | Code::FAILURE => {
                if !rest.is_empty() {
                    return Err(DecodeError::BadLength {
                        what: "EAP Success/Failure",
                        value: length,
                    });
                }
                None
            }
            other => return Err(DecodeError::UnknownCode(other.0)),
        };
        Ok(Packet {
            code,
            identifier,
            body,
        })
    }

    /// The method type for Requests and Responses.
    pub fn method_type(&self) -> Option<MethodType> {
        self.body.map(|(t, _)| t)
    }

    /// The bytes after the Type field for Requests and Responses (empty otherwise).
    pub fn type_data(&self) -> &'a [u8] {
        self.body.map(|(_, d)| d).unwrap_or_default()
    }

    /// The encoded length of this packet.
    pub fn len(&self) -> usize {
        HEADER_LEN + self.body.map_or(0, |(_, d)| 1 + d.len())
    }

    /// Whether the packet is only a header (Success or Failure).
    pub fn is_empty(&self) -> bool {
        self.body.is_none()
    }

    /// Encodes the packet.
    pub fn to_bytes(&self) -> Result<Vec<u8>, DecodeError> {
        match self.body {
            Some((ty, data)) => build(self.code, self.identifier, ty, data),
            None => Ok(build_status(self.code, self.identifier)),
        }
    }
}

/// Builds a Request or Response packet from its parts.
pub fn build(
    code: Code,
    identifier: u8,
    ty: MethodType,
    data: &[u8],
) -> Result<Vec<u8>, DecodeError> {
    let len = HEADER_LEN + 1 + data.len();
    let len16 = u16::try_from(len).map_err(|_| DecodeError::BadLength {
        what: "EAP packet",
        value: len,
    })?;
    let mut out = Vec::with_capacity(len);
    out.push(code.0);
    out.push(identifier);
    out.extend_from_slice(&len16.to_be_bytes());
    out.push(ty.0);
    out.extend_from_slice(data);
    Ok(out)
}

/// Builds a Success or Failure packet.
pub fn build_status(code: Code, identifier: u8) -> Vec<u8> {
    vec![code.0, identifier, 0, HEADER_LEN as u8]
}

/// The EAP header plus Type field that a packet with `data_len` type-data bytes will carry; methods that
/// authenticate their own header (EAP-PSK) need it before the packet exists.
pub fn header_for(
    code: Code,
    identifier: u8,
    ty: MethodType,
    data_len: usize,
) -> Result<[u8; HEADER_LEN + 1], DecodeError> {
    let len = HEADER_LEN + 1 + data_len;
    let len16 = u16::try_from(len).map_err(|_| DecodeError::BadLength {
        what: "EAP packet",
        value: len,
    })?;
    let [hi, lo] = len16.to_be_bytes();
    Ok([code.0, identifier, hi, lo, ty.0])
}

/// Parses the body of a legacy Nak: the list of method types the peer would accept instead.
pub fn nak_types(data: &[u8]) -> impl Iterator<Item = MethodType> + '_ {
    data.iter().map(|&t| MethodType(t))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_request_and_success() {
        let bytes = build(Code::REQUEST, 7, MethodType::IDENTITY, b"hello").unwrap();
        let p = Packet::parse(&bytes).unwrap();
        assert_eq!(p.code, Code::REQUEST);
        assert_eq!(p.identifier, 7);
        assert_eq!(p.method_type(), Some(MethodType::IDENTITY));
        assert_eq!(p.type_data(), b"hello");
        assert_eq!(p.to_bytes().unwrap(), bytes);
        let s = build_status(Code::SUCCESS, 9);
        assert_eq!(Packet::parse(&s).unwrap().body, None);
    }

    #[test]
    fn padding_past_length_is_ignored_and_short_input_rejected() {
        let mut bytes = build(Code::RESPONSE, 1, MethodType::NAK, &[47]).unwrap();
        bytes.extend_from_slice(&[0, 0, 0]);
        assert_eq!(Packet::parse(&bytes).unwrap().type_data(), &[47]);
        assert!(matches!(
            Packet::parse(&bytes[..5]),
            Err(DecodeError::Truncated { .. })
        ));
        assert!(matches!(
            Packet::parse(&[1, 1, 0, 3]),
            Err(DecodeError::BadLength { .. })
        ));
        assert!(matches!(
            Packet::parse(&[3, 1, 0, 5, 0]),
            Err(DecodeError::BadLength { .. })
        ));
        assert!(matches!(
            Packet::parse(&[9, 1, 0, 4]),
            Err(DecodeError::UnknownCode(9))
        ));
        assert!(matches!(
            Packet::parse(&[1, 1, 0, 4]),
            Err(DecodeError::Truncated { .. })
        ));
    }

    #[test]
    fn debug_names_known_codes_and_keeps_unknown() {
        assert_eq!(format!("{:?}", MethodType::PSK), "PSK");
        assert_eq!(format!("{:?}", MethodType(99)), "MethodType(99)");
        assert_eq!(format!("{:?}", Code(3)), "Success");
    }
}
