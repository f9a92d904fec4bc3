//! RFC 5295 key derivation: usage-specific root keys (USRKs) from the EAP EMSK.
//!
//! RFC 5295 §3 defines
//!
//! ```text
//! USRK = KDF(EMSK, key label, optional data, length)
//! ```
//!
//! and its default KDF (§3.1.2, cryptographic suite / `prf_id` 1) as the IKEv2 `PRF+`
//! construction over HMAC-SHA-256:
//!
//! ```text
//! S    = key label | 0x00 | optional data | length (2 octets, network order)
//! T1   = HMAC-SHA-256(EMSK, S | 0x01)
//! Tn   = HMAC-SHA-256(EMSK, Tn-1 | S | n)        n = 2 .. 255
//! USRK = first `length` octets of T1 | T2 | ...
//! ```
//!
//! That is exactly HKDF-Expand (RFC 5869 §2.3) with the EMSK as PRK and `S` as `info`, so the
//! computation is delegated to the RustCrypto `hkdf` crate rather than written here.
//!
//! # Labels used by gridguard
//!
//! RFC 5295 §3.2 asks for labels that are either IANA-registered or of the form
//! `label@domain` under the control of the domain owner. gridguard uses one label per
//! application (see [`Application::label`]):
//!
//! | application | label |
//! | --- | --- |
//! | C12.22 data | `C12.22-data@gridguard.dev` ([`C1222_DATA_LABEL`]) |
//! | demand response | `demand-response@gridguard.dev` ([`DEMAND_RESPONSE_LABEL`]) |
//! | link layer | `link-layer@gridguard.dev` ([`LINK_LAYER_LABEL`]) |
//! | key-id derivation | `key-id@gridguard.dev` ([`KEY_ID_LABEL`]) |
//!
//! # Optional data: the session binding
//!
//! Every application key binds the PANA session it came from ([`SessionFacts::optional_data`]):
//!
//! ```text
//! optional data = PANA Session Identifier (4 octets, network order)
//!               | PANA Key-Id             (4 octets, network order)
//!               | length of peer identity (2 octets, network order)
//!               | peer identity           (EAP-PSK ID_P, as sent)
//! ```
//!
//! The two fixed-size fields need no prefix; the one variable field is length-prefixed, so the
//! encoding is injective (two different fact sets never give the same octets).

use hkdf::Hkdf;
use sha2::Sha256;
use zeroize::Zeroizing;

use crate::error::Error;
use crate::key::{AppKey, Application};

/// RFC 5295 key label of the C12.22 data key ([`Application::C1222Data`]).
pub const C1222_DATA_LABEL: &str = "C12.22-data@gridguard.dev";
/// RFC 5295 key label of the demand-response key ([`Application::DemandResponse`]).
pub const DEMAND_RESPONSE_LABEL: &str = "demand-response@gridguard.dev";
/// RFC 5295 key label of the link-layer key ([`Application::LinkLayer`]).
pub const LINK_LAYER_LABEL: &str = "link-layer@gridguard.dev";
/// RFC 5295 key label used to derive the one-octet key ids (see [`crate::KeyId`]).
pub const KEY_ID_LABEL: &str = "key-id@gridguard.dev";

/// Smallest EMSK accepted, in octets (RFC 3748 §7.10: the EMSK is at least 64 octets).
pub const MIN_EMSK_LEN: usize = 64;

/// Largest output of the RFC 5295 default KDF: 255 HMAC-SHA-256 blocks.
pub const MAX_USRK_LEN: usize = 255 * 32;

/// The facts of the PANA session an EMSK came from; bound into every derived key.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct SessionFacts {
    /// PANA Session Identifier (RFC 5191 §6.1, 32 bits).
    pub pana_session_id: u32,
    /// PANA Key-Id AVP value naming the MSK/EMSK of this (re-)authentication (RFC 5191 §8.5).
    pub pana_key_id: u32,
    /// Peer identity of the EAP method (EAP-PSK `ID_P`), at most 65535 octets.
    pub peer_identity: Vec<u8>,
}

impl SessionFacts {
    /// Collects the session facts.
    pub fn new(pana_session_id: u32, pana_key_id: u32, peer_identity: impl Into<Vec<u8>>) -> Self {
        Self {
            pana_session_id,
            pana_key_id,
            peer_identity: peer_identity.into(),
        }
    }

    /// The RFC 5295 "optional data" octets binding these facts (layout in the module docs).
    ///
    /// # Errors
    /// [`Error::PeerIdentityTooLong`] when the identity does not fit its 2-octet length.
    pub fn optional_data(&self) -> Result<Vec<u8>, Error> {
        let id_len = u16::try_from(self.peer_identity.len())
            .map_err(|_| Error::PeerIdentityTooLong(self.peer_identity.len()))?;
        let mut out = Vec::with_capacity(10 + self.peer_identity.len());
        out.extend_from_slice(&self.pana_session_id.to_be_bytes());
        out.extend_from_slice(&self.pana_key_id.to_be_bytes());
        out.extend_from_slice(&id_len.to_be_bytes());
        out.extend_from_slice(&self.peer_identity);
        Ok(out)
    }
}

/// RFC 5295 `KDF(EMSK, key label, optional data, length)` with the default PRF+ over
/// HMAC-SHA-256, writing `out.len()` octets into `out`.
///
/// # Errors
/// [`Error::EmskTooShort`] for an EMSK under [`MIN_EMSK_LEN`] octets,
/// [`Error::LabelContainsNul`] when the label has a NUL octet (it is NUL-terminated in `S`),
/// [`Error::OutputLength`] for an empty output or one over [`MAX_USRK_LEN`] octets.
pub fn usrk_into(
    emsk: &[u8],
    label: &str,
    optional_data: &[u8],
    out: &mut [u8],
) -> Result<(), Error> {
    if emsk.len() < MIN_EMSK_LEN {
        return Err(Error::EmskTooShort(emsk.len()));
    }
    if label.as_bytes().contains(&0) {
        return Err(Error::LabelContainsNul);
    }
    if out.is_empty() || out.len() > MAX_USRK_LEN {
        return Err(Error::OutputLength(out.len()));
    }
    // Checked above: out.len() <= 8160 < 65536.
    let length = u16::try_from(out.len()).map_err(|_| Error::OutputLength(out.len()))?;
    let length = length.to_be_bytes();
    let prf = Hkdf::<Sha256>::from_prk(emsk).map_err(|_| Error::EmskTooShort(emsk.len()))?;
    prf.expand_multi_info(&[label.as_bytes(), &[0u8], optional_data, &length], out)
        .map_err(|_| Error::OutputLength(out.len()))
}

/// RFC 5295 USRK of `len` octets, returned in a buffer that is zeroized on drop.
///
/// # Errors
/// As [`usrk_into`].
pub fn usrk(
    emsk: &[u8],
    label: &str,
    optional_data: &[u8],
    len: usize,
) -> Result<Zeroizing<Vec<u8>>, Error> {
    if len == 0 || len > MAX_USRK_LEN {
        return Err(Error::OutputLength(len));
    }
    let mut out = Zeroizing::new(vec![0u8; len]);
    usrk_into(emsk, label, optional_data, &mut out)?;
    Ok(out)
}

/// Derives the 128-bit key of `app` for a session:
/// `KDF(EMSK, app.label(), facts.optional_data(), 16)`.
///
/// # Errors
/// As [`usrk_into`] and [`SessionFacts::optional_data`].
pub fn derive_app_key(
    emsk: &[u8],
    facts: &SessionFacts,
    app: Application,
) -> Result<AppKey, Error> {
    let data = facts.optional_data()?;
    let mut key = AppKey::zeroed();
    usrk_into(emsk, app.label(), &data, key.bytes_mut())?;
    Ok(key)
}

/// Derives the six variable bits of the key id of `app` for a session:
/// the first octet of `KDF(EMSK, KEY_ID_LABEL, u16 len | app.label() | facts.optional_data(), 1)`
/// masked with `0x3f`. See [`crate::KeyId`] for how the full one-octet id is formed.
///
/// # Errors
/// As [`usrk_into`] and [`SessionFacts::optional_data`].
pub fn derive_key_id_bits(
    emsk: &[u8],
    facts: &SessionFacts,
    app: Application,
) -> Result<u8, Error> {
    let label = app.label().as_bytes();
    let label_len = u16::try_from(label.len()).map_err(|_| Error::OutputLength(label.len()))?;
    let mut data = Vec::with_capacity(2 + label.len() + 10 + facts.peer_identity.len());
    data.extend_from_slice(&label_len.to_be_bytes());
    data.extend_from_slice(label);
    data.extend_from_slice(&facts.optional_data()?);
    let mut out = [0u8; 1];
    usrk_into(emsk, KEY_ID_LABEL, &data, &mut out)?;
    let [octet] = out;
    Ok(octet & crate::key::KEY_ID_DERIVED_MASK)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// EMSK 00 01 02 .. 3f.
    fn emsk() -> Vec<u8> {
        (0u8..64).collect()
    }

    fn facts() -> SessionFacts {
        SessionFacts::new(0x0102_0304, 1, b"meter-0042@gridguard.dev".to_vec())
    }

    fn hex(s: &str) -> Vec<u8> {
        hex::decode(s).expect("valid hex in test")
    }

    // Expected values below were computed once, independently of this crate, with Python's
    // `hmac`/`hashlib` following RFC 5295 §3.1.2 literally:
    //   S = label + b"\0" + optional_data + struct.pack(">H", length)
    //   T1 = HMAC-SHA256(EMSK, S + b"\x01"); Tn = HMAC-SHA256(EMSK, T(n-1) + S + bytes([n]))
    // with EMSK = bytes(range(64)) and the facts above
    // (optional data = struct.pack(">IIH", 0x01020304, 1, 24) + b"meter-0042@gridguard.dev").
    // The C12.22 data key was also reproduced with OpenSSL 3.0 as HKDF-Expand:
    //   openssl kdf -keylen 16 -kdfopt digest:SHA256 -kdfopt mode:EXPAND_ONLY \
    //     -kdfopt hexkey:<EMSK> -kdfopt hexinfo:<S> HKDF

    #[test]
    fn optional_data_layout() {
        assert_eq!(
            facts().optional_data().unwrap(),
            hex("010203040000000100186d657465722d30303432406772696467756172642e646576")
        );
    }

    #[test]
    fn application_keys_match_independent_computation() {
        let cases = [
            (Application::C1222Data, "80a955a1b0dad45e7d8181a4ea933ed9"),
            (
                Application::DemandResponse,
                "763f421c63385146f70e87ab38c6a91d",
            ),
            (Application::LinkLayer, "9775eea598c28b9ec1b1c43bb8ef4406"),
        ];
        for (app, expected) in cases {
            let key = derive_app_key(&emsk(), &facts(), app).unwrap();
            assert_eq!(key.as_bytes().as_slice(), hex(expected).as_slice(), "{app}");
        }
    }

    #[test]
    fn multi_block_output_matches_independent_computation() {
        // 80 octets = T1 | T2 | first 16 octets of T3, empty optional data.
        let out = usrk(&emsk(), DEMAND_RESPONSE_LABEL, &[], 80).unwrap();
        assert_eq!(
            out.as_slice(),
            hex(
                "321e371c2f907b66b3e129e613f7310c73560ef05bb246869a70761fc301a708\
                 2523dd572cef54b2695887a8fdbc1ef7642dbfc2f760a44dd51f505290722b3d\
                 29f84ddfd93d6d564f673dce7ca45d01"
            )
            .as_slice()
        );
    }

    #[test]
    fn key_id_bits_match_independent_computation() {
        // Python: KDF(EMSK, "key-id@gridguard.dev", pack(">H", len(label)) + label + facts, 1)
        // gave 0x72, 0x9e, 0xb9; the low six bits are kept.
        let cases = [
            (Application::C1222Data, 0x32),
            (Application::DemandResponse, 0x1e),
            (Application::LinkLayer, 0x39),
        ];
        for (app, expected) in cases {
            assert_eq!(
                derive_key_id_bits(&emsk(), &facts(), app).unwrap(),
                expected,
                "{app}"
            );
        }
    }

    #[test]
    fn length_is_part_of_the_input() {
        // RFC 5295: the length is in S, so a shorter key is not a prefix of a longer one.
        let short = usrk(&emsk(), C1222_DATA_LABEL, b"x", 16).unwrap();
        let long = usrk(&emsk(), C1222_DATA_LABEL, b"x", 32).unwrap();
        assert_ne!(short.as_slice(), long.get(..16).unwrap());
    }

    #[test]
    fn labels_and_optional_data_separate_keys() {
        let e = emsk();
        let f = facts();
        let keys: Vec<[u8; 16]> = Application::ALL
            .iter()
            .map(|&a| *derive_app_key(&e, &f, a).unwrap().as_bytes())
            .collect();
        assert_ne!(keys[0], keys[1]);
        assert_ne!(keys[0], keys[2]);
        assert_ne!(keys[1], keys[2]);

        let variants = [
            SessionFacts::new(0x0102_0305, 1, f.peer_identity.clone()),
            SessionFacts::new(0x0102_0304, 2, f.peer_identity.clone()),
            SessionFacts::new(0x0102_0304, 1, b"meter-0043@gridguard.dev".to_vec()),
        ];
        for v in &variants {
            let k = derive_app_key(&e, v, Application::C1222Data).unwrap();
            assert_ne!(*k.as_bytes(), keys[0]);
        }
        let mut other_emsk = e.clone();
        other_emsk[63] ^= 1;
        let k = derive_app_key(&other_emsk, &f, Application::C1222Data).unwrap();
        assert_ne!(*k.as_bytes(), keys[0]);
        // Same inputs, same key: both ends agree without an exchange.
        let again = derive_app_key(&e, &f, Application::C1222Data).unwrap();
        assert_eq!(*again.as_bytes(), keys[0]);
    }

    #[test]
    fn rejects_bad_inputs() {
        assert!(matches!(
            derive_app_key(&[0u8; 63], &facts(), Application::C1222Data),
            Err(Error::EmskTooShort(63))
        ));
        assert!(matches!(
            usrk(&emsk(), "bad\0label", &[], 16),
            Err(Error::LabelContainsNul)
        ));
        assert!(matches!(
            usrk(&emsk(), "l@x", &[], 0),
            Err(Error::OutputLength(0))
        ));
        assert!(matches!(
            usrk(&emsk(), "l@x", &[], MAX_USRK_LEN + 1),
            Err(Error::OutputLength(_))
        ));
        assert_eq!(
            usrk(&emsk(), "l@x", &[], MAX_USRK_LEN).unwrap().len(),
            MAX_USRK_LEN
        );
        let long_id = SessionFacts::new(1, 1, vec![b'a'; 65_536]);
        assert!(matches!(
            derive_app_key(&emsk(), &long_id, Application::LinkLayer),
            Err(Error::PeerIdentityTooLong(65_536))
        ));
    }
}
