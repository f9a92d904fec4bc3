//! Object identifiers (absolute and relative) as C12.22 uses them for AP titles, application
//! contexts and mechanism names. Stored as their BER content octets so they re-encode exactly.

use core::fmt;

use crate::Error;

fn validate_subids(content: &[u8]) -> bool {
    if content.is_empty() {
        return false;
    }
    // The last octet ends a sub-identifier; no sub-identifier starts with the padding octet 0x80.
    if content.last().is_some_and(|b| b & 0x80 != 0) {
        return false;
    }
    let mut at_start = true;
    for &b in content {
        if at_start && b == 0x80 {
            return false;
        }
        at_start = b & 0x80 == 0;
    }
    true
}

fn decode_subids(content: &[u8]) -> Option<Vec<u64>> {
    let mut out = Vec::new();
    let mut v: u64 = 0;
    for &b in content {
        v = v.checked_mul(128)?.checked_add(u64::from(b & 0x7f))?;
        if b & 0x80 == 0 {
            out.push(v);
            v = 0;
        }
    }
    Some(out)
}

fn encode_subid(out: &mut Vec<u8>, v: u64) {
    let mut groups = Vec::with_capacity(10);
    let mut x = v;
    loop {
        groups.push((x & 0x7f) as u8);
        x >>= 7;
        if x == 0 {
            break;
        }
    }
    let last = groups.len() - 1;
    for (i, g) in groups.iter().rev().enumerate() {
        out.push(if i == last { *g } else { g | 0x80 });
    }
}

fn write_dotted(f: &mut fmt::Formatter<'_>, arcs: Option<Vec<u64>>, raw: &[u8]) -> fmt::Result {
    match arcs {
        Some(a) => {
            for (i, x) in a.iter().enumerate() {
                if i > 0 {
                    f.write_str(".")?;
                }
                write!(f, "{x}")?;
            }
            Ok(())
        }
        None => {
            f.write_str("0x")?;
            for b in raw {
                write!(f, "{b:02x}")?;
            }
            Ok(())
        }
    }
}

/// An absolute OBJECT IDENTIFIER (universal tag 0x06), held as its BER content octets.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ObjectId(Vec<u8>);

impl ObjectId {
    /// Wraps BER content octets after checking they form valid sub-identifiers.
    pub fn from_ber(content: &[u8]) -> Result<Self, Error> {
        if validate_subids(content) {
            Ok(ObjectId(content.to_vec()))
        } else {
            Err(Error::InvalidValue {
                what: "object identifier",
                offset: 0,
            })
        }
    }

    /// Encodes dotted arcs, e.g. `[2, 16, 124, 113620, 1, 22]`.
    pub fn from_arcs(arcs: &[u64]) -> Result<Self, Error> {
        let bad = Error::InvalidValue {
            what: "object identifier arcs",
            offset: 0,
        };
        let (a, b) = match arcs {
            [a, b, ..] => (*a, *b),
            _ => return Err(bad),
        };
        if a > 2 || (a < 2 && b >= 40) {
            return Err(bad);
        }
        let first = a
            .checked_mul(40)
            .and_then(|x| x.checked_add(b))
            .ok_or(bad)?;
        let mut out = Vec::new();
        encode_subid(&mut out, first);
        for &x in arcs.iter().skip(2) {
            encode_subid(&mut out, x);
        }
        Ok(ObjectId(out))
    }

    /// The BER content octets.
    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }

    /// The arcs, or `None` if one does not fit in a `u64`.
    pub fn arcs(&self) -> Option<Vec<u64>> {
        let subids = decode_subids(&self.0)?;
        let (&first, rest) = subids.split_first()?;
        let (a, b) = match first {
            0..=39 => (0, first),
            40..=79 => (1, first - 40),
            _ => (2, first - 80),
        };
        let mut out = vec![a, b];
        out.extend_from_slice(rest);
        Some(out)
    }

    /// Appends the arcs of a relative OID (used to expand a relative AP title against a base).
    pub fn join(&self, rel: &RelativeOid) -> ObjectId {
        let mut v = self.0.clone();
        v.extend_from_slice(&rel.0);
        ObjectId(v)
    }
}

impl fmt::Display for ObjectId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write_dotted(f, self.arcs(), &self.0)
    }
}

impl fmt::Debug for ObjectId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ObjectId({self})")
    }
}

/// A RELATIVE-OID, held as its BER content octets.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct RelativeOid(Vec<u8>);

impl RelativeOid {
    /// Wraps BER content octets after checking they form valid sub-identifiers.
    pub fn from_ber(content: &[u8]) -> Result<Self, Error> {
        if validate_subids(content) {
            Ok(RelativeOid(content.to_vec()))
        } else {
            Err(Error::InvalidValue {
                what: "relative object identifier",
                offset: 0,
            })
        }
    }

    /// Encodes the given arcs (at least one).
    pub fn from_arcs(arcs: &[u64]) -> Result<Self, Error> {
        if arcs.is_empty() {
            return Err(Error::InvalidValue {
                what: "relative object identifier arcs",
                offset: 0,
            });
        }
        let mut out = Vec::new();
        for &x in arcs {
            encode_subid(&mut out, x);
        }
        Ok(RelativeOid(out))
    }

    /// The BER content octets.
    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }

    /// The arcs, or `None` if one does not fit in a `u64`.
    pub fn arcs(&self) -> Option<Vec<u64>> {
        decode_subids(&self.0)
    }
}

impl fmt::Display for RelativeOid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(".")?;
        write_dotted(f, self.arcs(), &self.0)
    }
}

impl fmt::Debug for RelativeOid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "RelativeOid({self})")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn c1222_root_oid() {
        // 2.16.124.113620.1.22 is the ANSI C12.22 root.
        let o = ObjectId::from_arcs(&[2, 16, 124, 113620, 1, 22, 0, 123]).unwrap();
        assert_eq!(hex::encode(o.as_bytes()), "607c86f7540116007b");
        assert_eq!(o.to_string(), "2.16.124.113620.1.22.0.123");
        let r = RelativeOid::from_arcs(&[273]).unwrap();
        assert_eq!(r.as_bytes(), &[0x82, 0x11]);
        assert!(ObjectId::from_ber(&[0x80, 0x01]).is_err());
        assert!(ObjectId::from_ber(&[0x86]).is_err());
        assert!(ObjectId::from_ber(&[]).is_err());
    }
}
