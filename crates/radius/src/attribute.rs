//! Attributes (RFC 2865 §5) and Vendor-Specific attributes (RFC 2865 §5.26).

use std::net::Ipv4Addr;

use crate::code::AttributeType;
use crate::error::Error;

/// Largest value one attribute can carry (the length byte covers type and length too).
pub const MAX_VALUE_LEN: usize = 253;

/// IANA enterprise number of Microsoft, owner of the MS-MPPE attributes (RFC 2548).
pub const VENDOR_MICROSOFT: u32 = 311;
/// Microsoft vendor type of MS-MPPE-Send-Key (RFC 2548 §2.4.2).
pub const MS_MPPE_SEND_KEY: u8 = 16;
/// Microsoft vendor type of MS-MPPE-Recv-Key (RFC 2548 §2.4.3).
pub const MS_MPPE_RECV_KEY: u8 = 17;

/// One attribute: a type and its raw value (0..=253 bytes).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Attribute {
    /// The attribute type.
    pub typ: AttributeType,
    /// The raw value, without type and length bytes.
    pub value: Vec<u8>,
}

impl Attribute {
    /// An attribute with a raw value.
    pub fn new(typ: AttributeType, value: impl Into<Vec<u8>>) -> Self {
        Attribute {
            typ,
            value: value.into(),
        }
    }

    /// An attribute holding a 32-bit integer (RFC 2865 `integer`, big-endian).
    pub fn integer(typ: AttributeType, value: u32) -> Self {
        Attribute::new(typ, value.to_be_bytes().to_vec())
    }

    /// An attribute holding an IPv4 address (RFC 2865 `address`).
    pub fn ipv4(typ: AttributeType, addr: Ipv4Addr) -> Self {
        Attribute::new(typ, addr.octets().to_vec())
    }

    /// The value read as a 32-bit integer, if it is exactly 4 bytes.
    pub fn as_integer(&self) -> Option<u32> {
        let bytes: [u8; 4] = self.value.as_slice().try_into().ok()?;
        Some(u32::from_be_bytes(bytes))
    }

    /// The value read as an IPv4 address, if it is exactly 4 bytes.
    pub fn as_ipv4(&self) -> Option<Ipv4Addr> {
        let bytes: [u8; 4] = self.value.as_slice().try_into().ok()?;
        Some(Ipv4Addr::from(bytes))
    }

    /// Encoded length: type byte, length byte and value.
    pub fn buffer_len(&self) -> usize {
        self.value.len().saturating_add(2)
    }

    /// Appends the encoded attribute to `out`.
    pub fn emit(&self, out: &mut Vec<u8>) -> Result<(), Error> {
        let len = self.value.len();
        if len > MAX_VALUE_LEN {
            return Err(Error::AttributeTooLong { len });
        }
        out.push(self.typ.0);
        out.push((len + 2) as u8);
        out.extend_from_slice(&self.value);
        Ok(())
    }
}

/// Parses a run of attributes. `base` is the offset of `bytes` inside the packet, used only
/// in error values.
pub(crate) fn parse_attributes(bytes: &[u8], base: usize) -> Result<Vec<Attribute>, Error> {
    let mut attributes = Vec::with_capacity(count_attributes(bytes));
    let mut pos = 0usize;
    while pos < bytes.len() {
        let offset = base.saturating_add(pos);
        let typ = *bytes.get(pos).ok_or(Error::BadAttribute { offset })?;
        let len = usize::from(*bytes.get(pos + 1).ok_or(Error::BadAttribute { offset })?);
        if len < 2 {
            return Err(Error::BadAttribute { offset });
        }
        let value = bytes
            .get(pos + 2..pos + len)
            .ok_or(Error::BadAttribute { offset })?;
        attributes.push(Attribute::new(AttributeType(typ), value));
        pos += len;
    }
    Ok(attributes)
}

/// How many attributes the run holds, walking only the length bytes (a malformed tail stops
/// the count; [`parse_attributes`] reports it). Used to size the vector once.
fn count_attributes(bytes: &[u8]) -> usize {
    let mut n = 0usize;
    let mut pos = 0usize;
    while let Some(&len) = bytes.get(pos.saturating_add(1)) {
        if len < 2 {
            break;
        }
        n += 1;
        pos = pos.saturating_add(usize::from(len));
    }
    n
}

/// One sub-attribute inside a Vendor-Specific attribute.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct VendorAttribute {
    /// The vendor's type number.
    pub vendor_type: u8,
    /// The raw value.
    pub value: Vec<u8>,
}

impl core::fmt::Debug for VendorAttribute {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        // Values may be (encrypted) key material: print only their length.
        f.debug_struct("VendorAttribute")
            .field("vendor_type", &self.vendor_type)
            .field("value_len", &self.value.len())
            .finish()
    }
}

/// A Vendor-Specific attribute in the format RFC 2865 §5.26 recommends: a 4-byte vendor id
/// followed by `vendor-type | vendor-length | value` sub-attributes.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct VendorSpecific {
    /// The vendor's IANA enterprise number (the high byte must be zero).
    pub vendor_id: u32,
    /// The sub-attributes, in order.
    pub attributes: Vec<VendorAttribute>,
}

impl VendorSpecific {
    /// Parses the value of a Vendor-Specific attribute.
    ///
    /// Vendors that do not follow the recommended sub-attribute format give
    /// [`Error::BadVendorSpecific`]; their raw [`Attribute`] still round-trips.
    pub fn parse(value: &[u8]) -> Result<Self, Error> {
        let id: [u8; 4] = value
            .get(..4)
            .and_then(|s| s.try_into().ok())
            .ok_or(Error::BadVendorSpecific)?;
        let vendor_id = u32::from_be_bytes(id);
        if vendor_id > 0x00ff_ffff {
            return Err(Error::BadVendorSpecific);
        }
        let rest = value.get(4..).unwrap_or_default();
        if rest.is_empty() {
            return Err(Error::BadVendorSpecific);
        }
        let mut attributes = Vec::new();
        let mut pos = 0usize;
        while pos < rest.len() {
            let vendor_type = *rest.get(pos).ok_or(Error::BadVendorSpecific)?;
            let len = usize::from(*rest.get(pos + 1).ok_or(Error::BadVendorSpecific)?);
            if len < 2 {
                return Err(Error::BadVendorSpecific);
            }
            let v = rest
                .get(pos + 2..pos + len)
                .ok_or(Error::BadVendorSpecific)?;
            attributes.push(VendorAttribute {
                vendor_type,
                value: v.to_vec(),
            });
            pos += len;
        }
        Ok(VendorSpecific {
            vendor_id,
            attributes,
        })
    }

    /// Parses `attribute` if it is a Vendor-Specific attribute.
    pub fn from_attribute(attribute: &Attribute) -> Option<Result<Self, Error>> {
        (attribute.typ == AttributeType::VENDOR_SPECIFIC)
            .then(|| VendorSpecific::parse(&attribute.value))
    }

    /// Encodes this as a Vendor-Specific [`Attribute`].
    pub fn to_attribute(&self) -> Result<Attribute, Error> {
        if self.vendor_id > 0x00ff_ffff || self.attributes.is_empty() {
            return Err(Error::BadVendorSpecific);
        }
        let mut value = self.vendor_id.to_be_bytes().to_vec();
        for sub in &self.attributes {
            let len = sub.value.len();
            if len > MAX_VALUE_LEN {
                return Err(Error::AttributeTooLong { len });
            }
            value.push(sub.vendor_type);
            value.push((len + 2) as u8);
            value.extend_from_slice(&sub.value);
        }
        if value.len() > MAX_VALUE_LEN {
            return Err(Error::AttributeTooLong { len: value.len() });
        }
        Ok(Attribute::new(AttributeType::VENDOR_SPECIFIC, value))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn attribute_round_trip_and_limits() {
        let a = Attribute::integer(AttributeType::NAS_PORT, 3);
        let mut out = Vec::new();
        a.emit(&mut out).unwrap();
        assert_eq!(out, [5, 6, 0, 0, 0, 3]);
        assert_eq!(parse_attributes(&out, 20).unwrap(), vec![a.clone()]);
        assert_eq!(a.as_integer(), Some(3));
        let long = Attribute::new(AttributeType::STATE, vec![0; 254]);
        assert_eq!(
            long.emit(&mut out),
            Err(Error::AttributeTooLong { len: 254 })
        );
        let max = Attribute::new(AttributeType::STATE, vec![7; 253]);
        let mut out = Vec::new();
        max.emit(&mut out).unwrap();
        assert_eq!(out.len(), 255);
        assert_eq!(parse_attributes(&out, 0).unwrap(), vec![max]);
    }

    #[test]
    fn attribute_errors_report_offset() {
        assert_eq!(
            parse_attributes(&[1, 1], 20),
            Err(Error::BadAttribute { offset: 20 })
        );
        assert_eq!(
            parse_attributes(&[1, 2, 1, 4, 0], 20),
            Err(Error::BadAttribute { offset: 22 })
        );
        assert_eq!(
            parse_attributes(&[1], 20),
            Err(Error::BadAttribute { offset: 20 })
        );
        // A zero-length value (length byte 2) is accepted.
        assert_eq!(
            parse_attributes(&[79, 2], 20).unwrap(),
            vec![Attribute::new(AttributeType::EAP_MESSAGE, vec![])]
        );
    }

    #[test]
    fn vendor_specific_round_trip() {
        let vsa = VendorSpecific {
            vendor_id: VENDOR_MICROSOFT,
            attributes: vec![
                VendorAttribute {
                    vendor_type: MS_MPPE_SEND_KEY,
                    value: vec![0x80, 1, 2, 3],
                },
                VendorAttribute {
                    vendor_type: MS_MPPE_RECV_KEY,
                    value: vec![],
                },
            ],
        };
        let attr = vsa.to_attribute().unwrap();
        assert_eq!(attr.value, [0, 0, 1, 0x37, 16, 6, 0x80, 1, 2, 3, 17, 2]);
        assert_eq!(VendorSpecific::from_attribute(&attr), Some(Ok(vsa)));
        assert_eq!(
            VendorSpecific::from_attribute(&Attribute::new(AttributeType::STATE, vec![])),
            None
        );
    }

    #[test]
    fn vendor_specific_rejects_malformed() {
        for bad in [
            &[][..],
            &[0, 0, 1],
            &[0, 0, 1, 0x37],
            &[1, 0, 1, 0x37, 16, 2],
            &[0, 0, 1, 0x37, 16, 1],
            &[0, 0, 1, 0x37, 16, 5, 0],
            &[0, 0, 1, 0x37, 16],
        ] {
            assert_eq!(
                VendorSpecific::parse(bad),
                Err(Error::BadVendorSpecific),
                "{bad:?}"
            );
        }
    }
}
