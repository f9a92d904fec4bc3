//! The RADIUS packet (RFC 2865 §3): header, authenticator and attributes.

use crate::attribute::{parse_attributes, Attribute, VendorSpecific, MAX_VALUE_LEN};
use crate::code::{AttributeType, Code};
use crate::error::Error;

/// Length of the fixed header: code, identifier, length and the 16-byte authenticator.
pub const HEADER_LEN: usize = 20;
/// Largest RADIUS packet (RFC 2865 §3).
pub const MAX_PACKET_LEN: usize = 4096;
/// Length of the Authenticator field.
pub const AUTHENTICATOR_LEN: usize = 16;

/// A parsed RADIUS packet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Packet {
    /// The packet code.
    pub code: Code,
    /// The identifier that matches responses to requests.
    pub identifier: u8,
    /// The Request or Response Authenticator, as on the wire.
    pub authenticator: [u8; AUTHENTICATOR_LEN],
    /// The attributes, in wire order.
    pub attributes: Vec<Attribute>,
}

/// The bytes of a datagram that belong to the packet (up to its Length field), after the
/// header and length checks of RFC 2865 §3. Bytes past Length are padding and ignored.
pub(crate) fn framed(bytes: &[u8]) -> Result<&[u8], Error> {
    if bytes.len() < HEADER_LEN {
        return Err(Error::TooShort { len: bytes.len() });
    }
    let length = match bytes.get(2..4) {
        Some(&[hi, lo]) => usize::from(u16::from_be_bytes([hi, lo])),
        _ => return Err(Error::TooShort { len: bytes.len() }),
    };
    if !(HEADER_LEN..=MAX_PACKET_LEN).contains(&length) {
        return Err(Error::BadLength { length });
    }
    bytes.get(..length).ok_or(Error::Truncated {
        length,
        actual: bytes.len(),
    })
}

impl Packet {
    /// A packet with no attributes and an all-zero authenticator.
    pub fn new(code: Code, identifier: u8) -> Self {
        Packet {
            code,
            identifier,
            authenticator: [0; AUTHENTICATOR_LEN],
            attributes: Vec::new(),
        }
    }

    /// Parses a datagram. Bytes past the Length field are ignored (RFC 2865 §3); a datagram
    /// shorter than Length, a Length outside 20..=4096 or a malformed attribute is an error.
    /// No cryptographic check is made here.
    pub fn parse(bytes: &[u8]) -> Result<Self, Error> {
        let bytes = framed(bytes)?;
        let (code, identifier) = match bytes {
            [c, i, ..] => (Code(*c), *i),
            _ => return Err(Error::TooShort { len: bytes.len() }),
        };
        let authenticator: [u8; AUTHENTICATOR_LEN] = bytes
            .get(4..HEADER_LEN)
            .and_then(|s| s.try_into().ok())
            .ok_or(Error::TooShort { len: bytes.len() })?;
        let attributes = parse_attributes(bytes.get(HEADER_LEN..).unwrap_or_default(), HEADER_LEN)?;
        Ok(Packet {
            code,
            identifier,
            authenticator,
            attributes,
        })
    }

    /// Encoded length.
    pub fn buffer_len(&self) -> usize {
        self.attributes
            .iter()
            .fold(HEADER_LEN, |n, a| n.saturating_add(a.buffer_len()))
    }

    /// Appends the encoded packet to `out`, exactly as the fields say (no authenticator is
    /// computed here; see [`crate::auth`]).
    pub fn emit(&self, out: &mut Vec<u8>) -> Result<(), Error> {
        let len = self.buffer_len();
        if len > MAX_PACKET_LEN {
            return Err(Error::PacketTooLong { len });
        }
        out.reserve(len);
        out.push(self.code.0);
        out.push(self.identifier);
        out.extend_from_slice(&(len as u16).to_be_bytes());
        out.extend_from_slice(&self.authenticator);
        for a in &self.attributes {
            a.emit(out)?;
        }
        Ok(())
    }

    /// The encoded packet.
    pub fn to_bytes(&self) -> Result<Vec<u8>, Error> {
        let mut out = Vec::new();
        self.emit(&mut out)?;
        Ok(out)
    }

    /// The first attribute of type `typ`.
    pub fn attribute(&self, typ: AttributeType) -> Option<&Attribute> {
        self.attributes.iter().find(|a| a.typ == typ)
    }

    /// All attributes of type `typ`, in order.
    pub fn attributes_of(&self, typ: AttributeType) -> impl Iterator<Item = &Attribute> + '_ {
        self.attributes.iter().filter(move |a| a.typ == typ)
    }

    /// The EAP packet carried in the EAP-Message attributes, concatenated in order
    /// (RFC 3579 §3.1), or `None` when there is no EAP-Message.
    pub fn eap_message(&self) -> Option<Vec<u8>> {
        let mut parts = self.attributes_of(AttributeType::EAP_MESSAGE).peekable();
        parts.peek()?;
        let len = self
            .attributes_of(AttributeType::EAP_MESSAGE)
            .fold(0usize, |n, a| n.saturating_add(a.value.len()));
        let mut eap = Vec::with_capacity(len);
        for part in parts {
            eap.extend_from_slice(&part.value);
        }
        Some(eap)
    }

    /// Whether the packet carries at least one EAP-Message attribute.
    pub fn has_eap_message(&self) -> bool {
        self.attribute(AttributeType::EAP_MESSAGE).is_some()
    }

    /// The value of the State attribute.
    pub fn state(&self) -> Option<&[u8]> {
        self.attribute(AttributeType::STATE)
            .map(|a| a.value.as_slice())
    }

    /// The value of the User-Name attribute.
    pub fn user_name(&self) -> Option<&[u8]> {
        self.attribute(AttributeType::USER_NAME)
            .map(|a| a.value.as_slice())
    }

    /// The Vendor-Specific attributes that follow the recommended format, parsed.
    /// Vendor-Specific attributes in another format are skipped.
    pub fn vendor_specific(&self) -> impl Iterator<Item = VendorSpecific> + '_ {
        self.attributes
            .iter()
            .filter_map(|a| VendorSpecific::from_attribute(a)?.ok())
    }
}

/// Splits an EAP packet into EAP-Message attributes of at most 253 bytes each
/// (RFC 3579 §3.1). An empty `eap` gives one empty EAP-Message (the EAP-Start of §2.1).
pub fn eap_message_attributes(eap: &[u8]) -> Vec<Attribute> {
    if eap.is_empty() {
        return vec![Attribute::new(AttributeType::EAP_MESSAGE, Vec::new())];
    }
    eap.chunks(MAX_VALUE_LEN)
        .map(|c| Attribute::new(AttributeType::EAP_MESSAGE, c))
        .collect()
}

/// The attributes of an EAP pass-through Access-Request (RFC 3579 §2.1): User-Name if
/// given, the State of the previous Access-Challenge if any, then the EAP packet split into
/// EAP-Message attributes. The Message-Authenticator is added by [`Client::start`](crate::Client::start).
pub fn eap_request_attributes(
    eap: &[u8],
    user_name: Option<&[u8]>,
    state: Option<&[u8]>,
) -> Vec<Attribute> {
    let mut attributes = Vec::new();
    if let Some(u) = user_name {
        attributes.push(Attribute::new(AttributeType::USER_NAME, u));
    }
    if let Some(s) = state {
        attributes.push(Attribute::new(AttributeType::STATE, s));
    }
    attributes.extend(eap_message_attributes(eap));
    attributes
}

#[cfg(test)]
mod tests {
    use super::*;

    /// RFC 2865 §7.1, the Access-Request of "User Telnet to Specified Host".
    fn rfc2865_7_1_request() -> Vec<u8> {
        hex::decode(
            "01000038 0f403f9473978057bd83d5cb98f4227a 01066e656d6f \
             02120dbe708d93d413ce3196e43f782a0aee 0406c0a80110 050600000003"
                .replace(' ', ""),
        )
        .unwrap()
    }

    #[test]
    fn parses_and_re_emits_rfc2865_7_1_request() {
        let bytes = rfc2865_7_1_request();
        let p = Packet::parse(&bytes).unwrap();
        assert_eq!(p.code, Code::ACCESS_REQUEST);
        assert_eq!(p.identifier, 0);
        assert_eq!(p.attributes.len(), 4);
        assert_eq!(p.user_name(), Some(&b"nemo"[..]));
        assert_eq!(
            p.attribute(AttributeType::NAS_IP_ADDRESS)
                .unwrap()
                .as_ipv4()
                .unwrap()
                .octets(),
            [192, 168, 1, 16]
        );
        assert_eq!(
            p.attribute(AttributeType::NAS_PORT).unwrap().as_integer(),
            Some(3)
        );
        assert_eq!(p.to_bytes().unwrap(), bytes);
    }

    #[test]
    fn trailing_bytes_are_ignored_and_short_datagrams_refused() {
        let bytes = rfc2865_7_1_request();
        let mut padded = bytes.clone();
        padded.extend_from_slice(&[0xde, 0xad]);
        assert_eq!(
            Packet::parse(&padded).unwrap(),
            Packet::parse(&bytes).unwrap()
        );
        for n in 0..bytes.len() {
            let err = Packet::parse(&bytes[..n]).unwrap_err();
            if n < HEADER_LEN {
                assert_eq!(err, Error::TooShort { len: n });
            } else {
                assert_eq!(
                    err,
                    Error::Truncated {
                        length: bytes.len(),
                        actual: n
                    }
                );
            }
        }
    }

    #[test]
    fn length_field_bounds() {
        let mut b = vec![1, 0, 0, 19];
        b.extend_from_slice(&[0; 16]);
        assert_eq!(Packet::parse(&b), Err(Error::BadLength { length: 19 }));
        b[2..4].copy_from_slice(&4097u16.to_be_bytes());
        b.resize(4097, 0);
        assert_eq!(Packet::parse(&b), Err(Error::BadLength { length: 4097 }));
        // An attribute running past Length is an error even if the datagram has the bytes.
        let mut b = vec![1, 0, 0, 22];
        b.extend_from_slice(&[0; 16]);
        b.extend_from_slice(&[1, 4, 0, 0]);
        assert_eq!(Packet::parse(&b), Err(Error::BadAttribute { offset: 20 }));
    }

    #[test]
    fn emit_refuses_oversized_packets() {
        let mut p = Packet::new(Code::ACCESS_REQUEST, 1);
        p.attributes = eap_message_attributes(&[0u8; 4076]);
        assert_eq!(p.buffer_len(), 20 + 4076 + 2 * 17);
        assert!(matches!(p.to_bytes(), Err(Error::PacketTooLong { .. })));
        p.attributes = eap_message_attributes(&[0u8; 4000]);
        assert_eq!(p.to_bytes().unwrap().len(), 20 + 4000 + 2 * 16);
    }

    #[test]
    fn eap_message_split_and_reassembled() {
        let eap: Vec<u8> = (0..700u32).map(|i| i as u8).collect();
        let attrs = eap_message_attributes(&eap);
        assert_eq!(
            attrs.iter().map(|a| a.value.len()).collect::<Vec<_>>(),
            [253, 253, 194]
        );
        let mut p = Packet::new(Code::ACCESS_CHALLENGE, 9);
        p.attributes
            .push(Attribute::new(AttributeType::STATE, b"s1".to_vec()));
        // Interleave another attribute: reassembly keeps EAP-Message order.
        p.attributes.push(attrs[0].clone());
        p.attributes
            .push(Attribute::integer(AttributeType::SESSION_TIMEOUT, 30));
        p.attributes.extend(attrs[1..].iter().cloned());
        let back = Packet::parse(&p.to_bytes().unwrap()).unwrap();
        assert_eq!(back.eap_message().unwrap(), eap);
        assert_eq!(back.state(), Some(&b"s1"[..]));
        assert_eq!(Packet::new(Code::ACCESS_ACCEPT, 0).eap_message(), None);
        let mut q = Packet::new(Code::ACCESS_REQUEST, 1);
        q.attributes = eap_request_attributes(&eap, Some(b"meter1"), Some(b"s1"));
        assert_eq!(q.user_name(), Some(&b"meter1"[..]));
        assert_eq!(q.state(), Some(&b"s1"[..]));
        assert_eq!(q.eap_message().unwrap(), eap);
        assert_eq!(eap_request_attributes(&[], None, None).len(), 1);
        assert_eq!(eap_message_attributes(&[]).len(), 1);
    }
}
