//! Test helpers: the EAX′ vector file parser and the rebuilding of a vector's canonified
//! cleartext into a full C12.22 APDU.
#![allow(
    dead_code,
    clippy::panic,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing
)]

use gridguard_c1222::security::{CanonOptions, CanonicalForm};

/// Path of the project's shared vector file (may be absent).
pub const SHARED: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../../../shared/vectors/eaxprime.txt"
);
/// The repository's copy of the vectors (`tests/vectors/eaxprime.txt` at the workspace root),
/// the file the tests run on.
pub const REPOSITORY: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../../tests/vectors/eaxprime.txt"
);

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Vector {
    pub name: String,
    pub reject: bool,
    pub key: Option<[u8; 16]>,
    pub cleartext: Vec<u8>,
    pub plaintext: Vec<u8>,
    pub ciphertext: Vec<u8>,
    pub mac: Vec<u8>,
    pub apdu: Vec<u8>,
}

fn hexval(v: &str) -> Vec<u8> {
    if v.starts_with('(') {
        Vec::new()
    } else {
        hex::decode(v).unwrap()
    }
}

pub fn parse_vectors(text: &str) -> Vec<Vector> {
    let mut out: Vec<Vector> = Vec::new();
    for line in text.lines() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        if let Some(rest) = line.strip_prefix('[') {
            let (name, tail) = rest.split_once(']').unwrap();
            out.push(Vector {
                name: name.to_string(),
                reject: tail.contains("expect=REJECT"),
                key: None,
                cleartext: vec![],
                plaintext: vec![],
                ciphertext: vec![],
                mac: vec![],
                apdu: vec![],
            });
            continue;
        }
        let (field, value) = line.split_once(char::is_whitespace).unwrap();
        let value = value.trim();
        let v = out.last_mut().expect("field before first section");
        match field {
            "KEY" => {
                if !value.starts_with('(') {
                    v.key = Some(hexval(value).try_into().unwrap());
                }
            }
            "CLEARTEXT" => v.cleartext = hexval(value),
            "PLAINTEXT" => v.plaintext = hexval(value),
            "CIPHERTEXT" => v.ciphertext = hexval(value),
            "MAC" => v.mac = hexval(value),
            "APDU" => v.apdu = hexval(value),
            other => panic!("unknown field {other}"),
        }
    }
    out
}

/// The vectors of the repository's `tests/vectors/eaxprime.txt`.
pub fn repository() -> Vec<Vector> {
    let text =
        std::fs::read_to_string(REPOSITORY).unwrap_or_else(|e| panic!("reading {REPOSITORY}: {e}"));
    parse_vectors(&text)
}

pub fn shared() -> Option<Vec<Vector>> {
    std::fs::read_to_string(SHARED)
        .ok()
        .map(|t| parse_vectors(&t))
}

fn ber_len(out: &mut Vec<u8>, n: usize) {
    if n < 0x80 {
        out.push(n as u8);
    } else if n < 0x100 {
        out.extend_from_slice(&[0x81, n as u8]);
    } else {
        out.extend_from_slice(&[0x82, (n >> 8) as u8, n as u8]);
    }
}

fn tlv(tag: u8, value: &[u8]) -> Vec<u8> {
    let mut v = vec![tag];
    ber_len(&mut v, value.len());
    v.extend_from_slice(value);
    v
}

fn read_len(c: &[u8], i: &mut usize) -> usize {
    let b = c[*i];
    *i += 1;
    if b < 0x80 {
        return b as usize;
    }
    let n = (b & 0x7f) as usize;
    let mut v = 0;
    for _ in 0..n {
        v = (v << 8) | c[*i] as usize;
        *i += 1;
    }
    v
}

/// A vector's canonified cleartext turned back into a complete APDU.
pub struct Rebuilt {
    /// Encoded APDU (EPSEM encrypted / MAC appended, as on the wire).
    pub apdu: Vec<u8>,
    /// The plaintext EPSEM (control byte + body).
    pub plain_epsem: Vec<u8>,
    /// Options under which the canonical cleartext equals the vector's.
    pub opts: CanonOptions,
    /// The canonified header part of the vector's cleartext (mode 1's EPSEM removed).
    pub canonical: Vec<u8>,
    /// Key id from the cleartext.
    pub key_id: u8,
}

/// Splits a vector's cleartext (`a1.. a2 a4 a7 a8 8b ac be-truncated a6 key-id iv [epsem]`)
/// and assembles the APDU it authenticates.
pub fn rebuild(v: &Vector) -> Rebuilt {
    let c = &v.cleartext;
    let mut i = 0;
    let mut elements: Vec<(u8, Vec<u8>)> = Vec::new();
    let mut ctrl = None;
    let mut wire_epsem_len = 0;
    let mut have_ac = false;
    loop {
        let tag = c[i];
        match tag {
            0xbe => {
                let mut j = i + 1;
                let _ui = read_len(c, &mut j);
                assert_eq!(c[j], 0x28);
                j += 1;
                let _ext = read_len(c, &mut j);
                assert_eq!(c[j], 0x81);
                j += 1;
                wire_epsem_len = read_len(c, &mut j);
                ctrl = Some(c[j]);
                i = j + 1;
            }
            0xa1 | 0xa2 | 0xa4 | 0xa6 | 0xa7 | 0xa8 | 0x8b | 0xac => {
                let start = i;
                let mut j = i + 1;
                let n = read_len(c, &mut j);
                let end = j + n;
                elements.push((tag, c[start..end].to_vec()));
                have_ac |= tag == 0xac;
                i = end;
                if tag == 0xa6 {
                    break;
                }
            }
            _ => break,
        }
    }
    let ctrl = ctrl.expect("no user-information in cleartext");
    let key_id = c[i];
    let iv = &c[i + 1..i + 5];
    let appended = &c[i + 5..];
    let canonical = c[..i + 5].to_vec();
    let mode = (ctrl >> 2) & 3;
    let (plain_body, wire_body) = if mode == 1 {
        (appended.to_vec(), appended.to_vec())
    } else {
        assert!(appended.is_empty());
        (v.plaintext.clone(), v.ciphertext.clone())
    };
    let mut wire_epsem = vec![ctrl];
    wire_epsem.extend_from_slice(&wire_body);
    wire_epsem.extend_from_slice(&v.mac);
    assert_eq!(wire_epsem.len(), wire_epsem_len, "{}: EPSEM length", v.name);
    let mut plain_epsem = vec![ctrl];
    plain_epsem.extend_from_slice(&plain_body);

    let form = if have_ac {
        CanonicalForm::C1222_2008
    } else {
        // No ac element in the cleartext (IEEE 1703 Annex G): carry key id and IV in one anyway.
        let mut kv = tlv(0x80, &[key_id]);
        kv.extend(tlv(0x81, iv));
        let ac = tlv(0xac, &tlv(0xa2, &tlv(0xa0, &tlv(0xa1, &kv))));
        elements.push((0xac, ac));
        CanonicalForm::OmitAuthenticationValue
    };
    elements.sort_by_key(|(t, _)| match t {
        0x8b => 0xaa, // mechanism name sits between a9 and ac
        t => *t,
    });
    let mut content: Vec<u8> = elements.into_iter().flat_map(|(_, e)| e).collect();
    content.extend(tlv(0xbe, &tlv(0x28, &tlv(0x81, &wire_epsem))));
    Rebuilt {
        apdu: tlv(0x60, &content),
        plain_epsem,
        opts: CanonOptions {
            base_oid: None,
            form,
        },
        canonical,
        key_id,
    }
}
