//! The C12.22 ACSE APDU (`[APPLICATION 0]`, tag 0x60): BER codec that re-emits every accepted
//! message byte for byte.
//!
//! Layout (each element an explicit context tag around a universal value, except the mechanism
//! name which is implicitly tagged):
//!
//! | tag  | element                        | inner value                                   |
//! |------|--------------------------------|-----------------------------------------------|
//! | 0xa1 | application context            | OID (06)                                      |
//! | 0xa2 | called AP title                | OID (06) or relative OID (0d, or 80)          |
//! | 0xa3 | called AE qualifier            | INTEGER (02)                                  |
//! | 0xa4 | called AP invocation id        | INTEGER                                       |
//! | 0xa5 | called AE invocation id        | INTEGER                                       |
//! | 0xa6 | calling AP title               | OID (06) or relative OID (0d, or 80)          |
//! | 0xa7 | calling AE qualifier           | INTEGER                                       |
//! | 0xa8 | calling AP invocation id       | INTEGER                                       |
//! | 0xa9 | calling AE invocation id       | INTEGER                                       |
//! | 0x8b | mechanism name                 | OID content (implicit)                        |
//! | 0xac | calling authentication value   | a2 { a0 { a1 { 80 01 key-id, 81 04 iv } } }   |
//! | 0xbe | user information               | 28 (EXTERNAL) { [06 ref] 81 octet-aligned EPSEM } |
//!
//! Only minimal definite lengths are accepted, so re-encoding is exact; the order in which
//! elements arrived is remembered and reproduced.

use crate::ber::{put_constructed, put_tlv, Reader};
use crate::oid::{ObjectId, RelativeOid};
use crate::Error;

/// APDU tag: `[APPLICATION 0]` constructed.
pub const TAG_APDU: u8 = 0x60;
/// Application context name.
pub const TAG_APPLICATION_CONTEXT: u8 = 0xa1;
/// Called AP title.
pub const TAG_CALLED_AP_TITLE: u8 = 0xa2;
/// Called AE qualifier.
pub const TAG_CALLED_AE_QUALIFIER: u8 = 0xa3;
/// Called AP invocation id.
pub const TAG_CALLED_AP_INVOCATION_ID: u8 = 0xa4;
/// Called AE invocation id.
pub const TAG_CALLED_AE_INVOCATION_ID: u8 = 0xa5;
/// Calling AP title.
pub const TAG_CALLING_AP_TITLE: u8 = 0xa6;
/// Calling AE qualifier.
pub const TAG_CALLING_AE_QUALIFIER: u8 = 0xa7;
/// Calling AP invocation id.
pub const TAG_CALLING_AP_INVOCATION_ID: u8 = 0xa8;
/// Calling AE invocation id.
pub const TAG_CALLING_AE_INVOCATION_ID: u8 = 0xa9;
/// Mechanism name.
pub const TAG_MECHANISM_NAME: u8 = 0x8b;
/// Calling authentication value.
pub const TAG_CALLING_AUTHENTICATION_VALUE: u8 = 0xac;
/// User information.
pub const TAG_USER_INFORMATION: u8 = 0xbe;

/// Tags in ascending (ASN.1 definition) order; used for elements with no recorded position.
const CANONICAL_ORDER: [u8; 12] = [
    TAG_APPLICATION_CONTEXT,
    TAG_CALLED_AP_TITLE,
    TAG_CALLED_AE_QUALIFIER,
    TAG_CALLED_AP_INVOCATION_ID,
    TAG_CALLED_AE_INVOCATION_ID,
    TAG_CALLING_AP_TITLE,
    TAG_CALLING_AE_QUALIFIER,
    TAG_CALLING_AP_INVOCATION_ID,
    TAG_CALLING_AE_INVOCATION_ID,
    TAG_MECHANISM_NAME,
    TAG_CALLING_AUTHENTICATION_VALUE,
    TAG_USER_INFORMATION,
];

const UNIVERSAL_OID: u8 = 0x06;
const UNIVERSAL_RELATIVE_OID: u8 = 0x0d;
const CONTEXT_RELATIVE_OID: u8 = 0x80;
const UNIVERSAL_INTEGER: u8 = 0x02;
const UNIVERSAL_EXTERNAL: u8 = 0x28;
const EXTERNAL_OCTET_ALIGNED: u8 = 0x81;

/// An AP title: absolute or relative object identifier.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ApTitle {
    /// Absolute form, universal OID (tag 0x06).
    Absolute(ObjectId),
    /// Relative form, universal RELATIVE-OID (tag 0x0d), as ANSI C12.22 writes it.
    Relative(RelativeOid),
    /// Relative form with a context tag `[0] IMPLICIT` (0x80), the encoding Wireshark's ASN.1
    /// module uses; kept so such messages re-encode exactly.
    RelativeContextTagged(RelativeOid),
}

impl ApTitle {
    pub(crate) fn parse(r: &mut Reader<'_>) -> Result<Self, Error> {
        let at = r.offset();
        let (tag, mut v) = r.any_tlv()?;
        let value_at = v.offset();
        let content = v.rest();
        let fix = |e: Error| match e {
            Error::InvalidValue { what, .. } => Error::InvalidValue {
                what,
                offset: value_at,
            },
            other => other,
        };
        match tag {
            UNIVERSAL_OID => Ok(ApTitle::Absolute(ObjectId::from_ber(content).map_err(fix)?)),
            UNIVERSAL_RELATIVE_OID => Ok(ApTitle::Relative(
                RelativeOid::from_ber(content).map_err(fix)?,
            )),
            CONTEXT_RELATIVE_OID => Ok(ApTitle::RelativeContextTagged(
                RelativeOid::from_ber(content).map_err(fix)?,
            )),
            found => Err(Error::UnexpectedTag { found, offset: at }),
        }
    }

    /// Appends the universal (or context) TLV of this title (without the a2/a6 wrapper).
    pub fn emit(&self, out: &mut Vec<u8>) -> Result<(), Error> {
        match self {
            ApTitle::Absolute(o) => put_tlv(out, UNIVERSAL_OID, o.as_bytes()),
            ApTitle::Relative(o) => put_tlv(out, UNIVERSAL_RELATIVE_OID, o.as_bytes()),
            ApTitle::RelativeContextTagged(o) => put_tlv(out, CONTEXT_RELATIVE_OID, o.as_bytes()),
        }
    }

    /// The absolute form: itself if absolute, else `base` joined with the relative arcs
    /// (`None` if relative and no base is given).
    pub fn to_absolute(&self, base: Option<&ObjectId>) -> Option<ObjectId> {
        match self {
            ApTitle::Absolute(o) => Some(o.clone()),
            ApTitle::Relative(r) | ApTitle::RelativeContextTagged(r) => base.map(|b| b.join(r)),
        }
    }
}

impl core::fmt::Display for ApTitle {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            ApTitle::Absolute(o) => write!(f, "{o}"),
            ApTitle::Relative(r) | ApTitle::RelativeContextTagged(r) => write!(f, "{r}"),
        }
    }
}

/// A BER INTEGER kept as its content octets (so it re-encodes exactly, including the unsigned
/// 4-byte form some devices send for invocation ids).
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Integer(Vec<u8>);

impl Integer {
    /// The minimal two's-complement encoding of a non-negative value.
    pub fn from_u32(v: u32) -> Self {
        let bytes = v.to_be_bytes();
        // Drop leading zero octets, keep at least one, then re-add one if the top bit is set.
        let skip = bytes.iter().take(3).take_while(|b| **b == 0).count();
        let mut out = Vec::with_capacity(5);
        let tail: Vec<u8> = bytes.iter().skip(skip).copied().collect();
        if tail.first().is_some_and(|b| b & 0x80 != 0) {
            out.push(0);
        }
        out.extend_from_slice(&tail);
        Integer(out)
    }

    /// Wraps raw content octets (1 to 8 bytes).
    pub fn from_bytes(content: &[u8]) -> Result<Self, Error> {
        if content.is_empty() || content.len() > 8 {
            return Err(Error::InvalidValue {
                what: "integer",
                offset: 0,
            });
        }
        Ok(Integer(content.to_vec()))
    }

    /// The content octets.
    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }

    /// The octets read as an unsigned big-endian number, as C12.22 uses invocation ids.
    pub fn value(&self) -> u64 {
        self.0.iter().fold(0u64, |a, &b| (a << 8) | u64::from(b))
    }

    fn parse(r: &mut Reader<'_>) -> Result<Self, Error> {
        let mut v = r.expect_tlv(UNIVERSAL_INTEGER)?;
        let at = v.offset();
        Integer::from_bytes(v.rest()).map_err(|_| Error::InvalidValue {
            what: "integer",
            offset: at,
        })
    }

    fn emit(&self, out: &mut Vec<u8>) -> Result<(), Error> {
        put_tlv(out, UNIVERSAL_INTEGER, &self.0)
    }
}

/// The calling-authentication-value element.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum AuthenticationValue {
    /// The C12.22 form carrying the key id and the 4-byte initialization vector.
    C1222 {
        /// Key id (`[0] IMPLICIT OCTET STRING (SIZE(1))`).
        key_id: Option<u8>,
        /// Initialization vector (`[1] IMPLICIT OCTET STRING (SIZE(4))`).
        iv: Option<[u8; 4]>,
    },
    /// Any other form (C12.21 authentication, octet-aligned, ...): the content of the 0xac
    /// element, verbatim.
    Other(Vec<u8>),
}

impl AuthenticationValue {
    fn parse_c1222(content: &[u8], base: usize) -> Result<Self, Error> {
        let mut r = Reader::new(content, base);
        let mut seq = r.expect_tlv(0xa2)?;
        r.finish()?;
        let mut single = seq.expect_tlv(0xa0)?;
        seq.finish()?;
        let mut c1222 = single.expect_tlv(0xa1)?;
        single.finish()?;
        let mut key_id = None;
        let mut iv = None;
        if c1222.peek() == Some(0x80) {
            let mut k = c1222.expect_tlv(0x80)?;
            key_id = Some(k.u8()?);
            k.finish()?;
        }
        if c1222.peek() == Some(0x81) {
            let mut v = c1222.expect_tlv(0x81)?;
            let b = v.take(4)?;
            v.finish()?;
            let mut a = [0u8; 4];
            a.copy_from_slice(b);
            iv = Some(a);
        }
        c1222.finish()?;
        Ok(AuthenticationValue::C1222 { key_id, iv })
    }

    fn parse(content: &[u8], base: usize) -> Self {
        Self::parse_c1222(content, base)
            .unwrap_or_else(|_| AuthenticationValue::Other(content.to_vec()))
    }

    fn emit_content(&self, out: &mut Vec<u8>) -> Result<(), Error> {
        match self {
            AuthenticationValue::C1222 { key_id, iv } => put_constructed(out, 0xa2, |o| {
                put_constructed(o, 0xa0, |o| {
                    put_constructed(o, 0xa1, |o| {
                        if let Some(k) = key_id {
                            put_tlv(o, 0x80, &[*k])?;
                        }
                        if let Some(iv) = iv {
                            put_tlv(o, 0x81, iv)?;
                        }
                        Ok(())
                    })
                })
            }),
            AuthenticationValue::Other(raw) => {
                out.extend_from_slice(raw);
                Ok(())
            }
        }
    }
}

/// The user-information element: an EXTERNAL carrying the EPSEM as octet-aligned data.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UserInformation {
    /// Optional direct-reference OID inside the EXTERNAL.
    pub direct_reference: Option<ObjectId>,
    /// The EPSEM octets as on the wire: control byte, then (possibly encrypted) body, then the
    /// MAC when the security mode is 1 or 2.
    pub epsem: Vec<u8>,
}

impl UserInformation {
    /// User information with no direct reference.
    pub fn new(epsem: Vec<u8>) -> Self {
        UserInformation {
            direct_reference: None,
            epsem,
        }
    }

    fn parse(r: &mut Reader<'_>) -> Result<Self, Error> {
        let at = r.offset();
        let (tag, mut ext) = r.any_tlv()?;
        if tag != UNIVERSAL_EXTERNAL {
            return Err(Error::UnexpectedTag {
                found: tag,
                offset: at,
            });
        }
        r.finish()?;
        let mut direct_reference = None;
        if ext.peek() == Some(UNIVERSAL_OID) {
            let mut o = ext.expect_tlv(UNIVERSAL_OID)?;
            let oat = o.offset();
            direct_reference =
                Some(
                    ObjectId::from_ber(o.rest()).map_err(|_| Error::InvalidValue {
                        what: "direct reference",
                        offset: oat,
                    })?,
                );
        }
        match ext.peek() {
            Some(EXTERNAL_OCTET_ALIGNED) => {}
            Some(_) => return Err(Error::UnsupportedUserInformation),
            None => {
                return Err(Error::Truncated {
                    offset: ext.offset(),
                })
            }
        }
        let mut data = ext.expect_tlv(EXTERNAL_OCTET_ALIGNED)?;
        ext.finish()?;
        let epsem = data.rest().to_vec();
        if epsem.is_empty() {
            return Err(Error::MissingElement("EPSEM control byte"));
        }
        Ok(UserInformation {
            direct_reference,
            epsem,
        })
    }

    /// Appends the content of the 0xbe element (the EXTERNAL TLV).
    fn emit_content(&self, out: &mut Vec<u8>) -> Result<(), Error> {
        put_constructed(out, UNIVERSAL_EXTERNAL, |o| {
            if let Some(d) = &self.direct_reference {
                put_tlv(o, UNIVERSAL_OID, d.as_bytes())?;
            }
            put_tlv(o, EXTERNAL_OCTET_ALIGNED, &self.epsem)
        })
    }
}

/// A C12.22 ACSE APDU.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AcseApdu {
    /// 0xa1 application context (the C12.22 context is 2.16.124.113620.1.22).
    pub application_context: Option<ObjectId>,
    /// 0xa2 called AP title.
    pub called_ap_title: Option<ApTitle>,
    /// 0xa3 called AE qualifier.
    pub called_ae_qualifier: Option<Integer>,
    /// 0xa4 called AP invocation id.
    pub called_ap_invocation_id: Option<Integer>,
    /// 0xa5 called AE invocation id.
    pub called_ae_invocation_id: Option<Integer>,
    /// 0xa6 calling AP title.
    pub calling_ap_title: Option<ApTitle>,
    /// 0xa7 calling AE qualifier.
    pub calling_ae_qualifier: Option<Integer>,
    /// 0xa8 calling AP invocation id.
    pub calling_ap_invocation_id: Option<Integer>,
    /// 0xa9 calling AE invocation id.
    pub calling_ae_invocation_id: Option<Integer>,
    /// 0x8b mechanism name.
    pub mechanism_name: Option<ObjectId>,
    /// 0xac calling authentication value.
    pub calling_authentication_value: Option<AuthenticationValue>,
    /// 0xbe user information (mandatory).
    pub user_information: UserInformation,
    /// Tags in the order they were parsed, for exact re-emission.
    order: Vec<u8>,
}

impl AcseApdu {
    /// An APDU with only the user information set; the other fields are filled in by the caller.
    pub fn new(epsem: Vec<u8>) -> Self {
        AcseApdu {
            application_context: None,
            called_ap_title: None,
            called_ae_qualifier: None,
            called_ap_invocation_id: None,
            called_ae_invocation_id: None,
            calling_ap_title: None,
            calling_ae_qualifier: None,
            calling_ap_invocation_id: None,
            calling_ae_invocation_id: None,
            mechanism_name: None,
            calling_authentication_value: None,
            user_information: UserInformation::new(epsem),
            order: Vec::new(),
        }
    }

    /// Length of the APDU at the start of a stream buffer (TCP framing): `Ok(Some(n))` once the
    /// tag and length octets are readable (the APDU is complete when `buf.len() >= n`),
    /// `Ok(None)` if more bytes are needed to tell, an error if it cannot be a C12.22 APDU.
    pub fn frame_len(buf: &[u8]) -> Result<Option<usize>, Error> {
        let mut r = Reader::new(buf, 0);
        match r.u8() {
            Ok(TAG_APDU) => {}
            Ok(found) => return Err(Error::UnexpectedTag { found, offset: 0 }),
            Err(_) => return Ok(None),
        }
        match r.length() {
            Ok(n) => Ok(r.offset().checked_add(n)),
            Err(Error::Truncated { .. }) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Parses a complete APDU; the buffer must hold exactly one APDU.
    pub fn parse(buf: &[u8]) -> Result<Self, Error> {
        let mut outer = Reader::new(buf, 0);
        let mut r = outer.expect_tlv(TAG_APDU)?;
        outer.finish()?;
        let mut apdu = AcseApdu::new(Vec::new());
        apdu.order.reserve_exact(CANONICAL_ORDER.len());
        let mut have_user_info = false;
        while !r.is_empty() {
            let at = r.offset();
            let (tag, mut v) = r.any_tlv()?;
            if apdu.order.contains(&tag) {
                return Err(Error::DuplicateElement { tag });
            }
            match tag {
                TAG_APPLICATION_CONTEXT => {
                    let mut o = v.expect_tlv(UNIVERSAL_OID)?;
                    let oat = o.offset();
                    apdu.application_context = Some(ObjectId::from_ber(o.rest()).map_err(
                        |_| Error::InvalidValue {
                            what: "application context",
                            offset: oat,
                        },
                    )?);
                }
                TAG_CALLED_AP_TITLE => apdu.called_ap_title = Some(ApTitle::parse(&mut v)?),
                TAG_CALLING_AP_TITLE => apdu.calling_ap_title = Some(ApTitle::parse(&mut v)?),
                TAG_CALLED_AE_QUALIFIER => apdu.called_ae_qualifier = Some(Integer::parse(&mut v)?),
                TAG_CALLED_AP_INVOCATION_ID => {
                    apdu.called_ap_invocation_id = Some(Integer::parse(&mut v)?)
                }
                TAG_CALLED_AE_INVOCATION_ID => {
                    apdu.called_ae_invocation_id = Some(Integer::parse(&mut v)?)
                }
                TAG_CALLING_AE_QUALIFIER => {
                    apdu.calling_ae_qualifier = Some(Integer::parse(&mut v)?)
                }
                TAG_CALLING_AP_INVOCATION_ID => {
                    apdu.calling_ap_invocation_id = Some(Integer::parse(&mut v)?)
                }
                TAG_CALLING_AE_INVOCATION_ID => {
                    apdu.calling_ae_invocation_id = Some(Integer::parse(&mut v)?)
                }
                TAG_MECHANISM_NAME => {
                    let oat = v.offset();
                    apdu.mechanism_name =
                        Some(
                            ObjectId::from_ber(v.rest()).map_err(|_| Error::InvalidValue {
                                what: "mechanism name",
                                offset: oat,
                            })?,
                        );
                }
                TAG_CALLING_AUTHENTICATION_VALUE => {
                    let base = v.offset();
                    apdu.calling_authentication_value =
                        Some(AuthenticationValue::parse(v.rest(), base));
                }
                TAG_USER_INFORMATION => {
                    apdu.user_information = UserInformation::parse(&mut v)?;
                    have_user_info = true;
                }
                found => return Err(Error::UnexpectedTag { found, offset: at }),
            }
            v.finish()?;
            apdu.order.push(tag);
        }
        if !have_user_info {
            return Err(Error::MissingElement("user-information"));
        }
        Ok(apdu)
    }

    /// Whether the element `tag` is present.
    pub(crate) fn has(&self, tag: u8) -> bool {
        match tag {
            TAG_APPLICATION_CONTEXT => self.application_context.is_some(),
            TAG_CALLED_AP_TITLE => self.called_ap_title.is_some(),
            TAG_CALLED_AE_QUALIFIER => self.called_ae_qualifier.is_some(),
            TAG_CALLED_AP_INVOCATION_ID => self.called_ap_invocation_id.is_some(),
            TAG_CALLED_AE_INVOCATION_ID => self.called_ae_invocation_id.is_some(),
            TAG_CALLING_AP_TITLE => self.calling_ap_title.is_some(),
            TAG_CALLING_AE_QUALIFIER => self.calling_ae_qualifier.is_some(),
            TAG_CALLING_AP_INVOCATION_ID => self.calling_ap_invocation_id.is_some(),
            TAG_CALLING_AE_INVOCATION_ID => self.calling_ae_invocation_id.is_some(),
            TAG_MECHANISM_NAME => self.mechanism_name.is_some(),
            TAG_CALLING_AUTHENTICATION_VALUE => self.calling_authentication_value.is_some(),
            TAG_USER_INFORMATION => true,
            _ => false,
        }
    }

    /// Tags of the present elements in emission order (recorded order first, then the rest in
    /// ascending order).
    pub fn element_tags(&self) -> Vec<u8> {
        let mut tags: Vec<u8> = self
            .order
            .iter()
            .copied()
            .filter(|t| self.has(*t))
            .collect();
        for t in CANONICAL_ORDER {
            if self.has(t) && !tags.contains(&t) {
                tags.push(t);
            }
        }
        tags
    }

    /// Appends the complete TLV of one element (tag, length, value); nothing if absent.
    pub fn emit_element(&self, tag: u8, out: &mut Vec<u8>) -> Result<(), Error> {
        let body = |f: &dyn Fn(&mut Vec<u8>) -> Result<(), Error>, out: &mut Vec<u8>| {
            put_constructed(out, tag, |o| f(o))
        };
        match tag {
            TAG_APPLICATION_CONTEXT => {
                if let Some(o) = &self.application_context {
                    body(&|v| put_tlv(v, UNIVERSAL_OID, o.as_bytes()), out)?;
                }
            }
            TAG_CALLED_AP_TITLE => {
                if let Some(t) = &self.called_ap_title {
                    body(&|v| t.emit(v), out)?;
                }
            }
            TAG_CALLING_AP_TITLE => {
                if let Some(t) = &self.calling_ap_title {
                    body(&|v| t.emit(v), out)?;
                }
            }
            TAG_CALLED_AE_QUALIFIER
            | TAG_CALLED_AP_INVOCATION_ID
            | TAG_CALLED_AE_INVOCATION_ID
            | TAG_CALLING_AE_QUALIFIER
            | TAG_CALLING_AP_INVOCATION_ID
            | TAG_CALLING_AE_INVOCATION_ID => {
                let i = match tag {
                    TAG_CALLED_AE_QUALIFIER => &self.called_ae_qualifier,
                    TAG_CALLED_AP_INVOCATION_ID => &self.called_ap_invocation_id,
                    TAG_CALLED_AE_INVOCATION_ID => &self.called_ae_invocation_id,
                    TAG_CALLING_AE_QUALIFIER => &self.calling_ae_qualifier,
                    TAG_CALLING_AP_INVOCATION_ID => &self.calling_ap_invocation_id,
                    _ => &self.calling_ae_invocation_id,
                };
                if let Some(i) = i {
                    body(&|v| i.emit(v), out)?;
                }
            }
            TAG_MECHANISM_NAME => {
                if let Some(o) = &self.mechanism_name {
                    put_tlv(out, TAG_MECHANISM_NAME, o.as_bytes())?;
                }
            }
            TAG_CALLING_AUTHENTICATION_VALUE => {
                if let Some(a) = &self.calling_authentication_value {
                    body(&|v| a.emit_content(v), out)?;
                }
            }
            TAG_USER_INFORMATION => body(&|v| self.user_information.emit_content(v), out)?,
            _ => {}
        }
        Ok(())
    }

    /// Appends the encoded APDU to `out`.
    pub fn emit(&self, out: &mut Vec<u8>) -> Result<(), Error> {
        put_constructed(out, TAG_APDU, |o| {
            for t in self.element_tags() {
                self.emit_element(t, o)?;
            }
            Ok(())
        })
    }

    /// The encoded APDU.
    pub fn to_bytes(&self) -> Result<Vec<u8>, Error> {
        let mut v = Vec::new();
        self.emit(&mut v)?;
        Ok(v)
    }

    /// Key id and IV from a C12.22 calling-authentication-value, if present.
    pub fn key_id_and_iv(&self) -> (Option<u8>, Option<[u8; 4]>) {
        match &self.calling_authentication_value {
            Some(AuthenticationValue::C1222 { key_id, iv }) => (*key_id, *iv),
            _ => (None, None),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // C12Adapter-generated request (shared vectors, "c12adapter-request").
    const C12ADAPTER: &str = "6051a20b0609607c86f7540116007ba80602049edbc018ac0fa20da00ba10980010081046b052198be292827812584175130303030303030303030303030303030303030300000033000010330000519e91819";

    #[test]
    fn parses_and_reemits_c12adapter_request() {
        let bytes = hex::decode(C12ADAPTER).unwrap();
        let apdu = AcseApdu::parse(&bytes).unwrap();
        assert_eq!(
            apdu.called_ap_title,
            Some(ApTitle::Absolute(
                ObjectId::from_arcs(&[2, 16, 124, 113620, 1, 22, 0, 123]).unwrap()
            ))
        );
        assert_eq!(
            apdu.calling_ap_invocation_id.as_ref().map(Integer::value),
            Some(0x9edb_c018)
        );
        assert_eq!(
            apdu.key_id_and_iv(),
            (Some(0), Some([0x6b, 0x05, 0x21, 0x98]))
        );
        assert_eq!(apdu.user_information.epsem.first(), Some(&0x84));
        assert_eq!(apdu.to_bytes().unwrap(), bytes);
    }

    #[test]
    fn frame_len_for_stream_framing() {
        let bytes = hex::decode(C12ADAPTER).unwrap();
        assert_eq!(AcseApdu::frame_len(&bytes), Ok(Some(bytes.len())));
        assert_eq!(AcseApdu::frame_len(&bytes[..2]), Ok(Some(bytes.len())));
        assert_eq!(AcseApdu::frame_len(&bytes[..1]), Ok(None));
        assert_eq!(AcseApdu::frame_len(&[]), Ok(None));
        assert_eq!(AcseApdu::frame_len(&[0x60, 0x82, 0x01]), Ok(None));
        assert_eq!(
            AcseApdu::frame_len(&[0x61, 0x00]),
            Err(Error::UnexpectedTag {
                found: 0x61,
                offset: 0
            })
        );
    }

    #[test]
    fn integer_encoding() {
        assert_eq!(Integer::from_u32(0).as_bytes(), &[0]);
        assert_eq!(Integer::from_u32(0x7f).as_bytes(), &[0x7f]);
        assert_eq!(Integer::from_u32(0x80).as_bytes(), &[0, 0x80]);
        assert_eq!(Integer::from_u32(0x1234).as_bytes(), &[0x12, 0x34]);
        assert_eq!(
            Integer::from_u32(0x9edb_c018).as_bytes(),
            &[0, 0x9e, 0xdb, 0xc0, 0x18]
        );
    }

    #[test]
    fn rejects_duplicates_and_unknown() {
        let dup = hex::decode("600aa803020101a803020102").unwrap();
        assert_eq!(
            AcseApdu::parse(&dup),
            Err(Error::DuplicateElement { tag: 0xa8 })
        );
        let unknown = hex::decode("6005bf03020101").unwrap();
        assert!(matches!(
            AcseApdu::parse(&unknown),
            Err(Error::UnexpectedTag { found: 0xbf, .. })
        ));
        let no_ui = hex::decode("6005a803020101").unwrap();
        assert_eq!(
            AcseApdu::parse(&no_ui),
            Err(Error::MissingElement("user-information"))
        );
    }
}
