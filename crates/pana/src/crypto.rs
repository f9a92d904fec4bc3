//! PANA key derivation and message integrity (RFC 5191 §5.3, §5.4).
//!
//! Algorithm numbers come from the IKEv2 registries that RFC 5191 reuses: PRF transform
//! type 2 (PRF_HMAC_SHA1 = 2, PRF_HMAC_SHA2_256 = 5) and integrity transform type 3
//! (AUTH_HMAC_SHA1_160 = 7, AUTH_HMAC_SHA2_256_128 = 12, RFC 4868: 32-byte key, HMAC
//! truncated to 16 bytes).

use std::fmt;

use hmac::{Hmac, Mac};
use sha1::Sha1;
use sha2::Sha256;
use subtle::ConstantTimeEq;
use zeroize::Zeroizing;

use crate::error::Error;
use crate::message::auth_value_range;

/// PRF-Algorithm value (IKEv2 transform type 2; open newtype).
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct PrfAlgorithm(pub u32);

impl PrfAlgorithm {
    /// PRF_HMAC_SHA1 (2), mandatory to implement.
    pub const HMAC_SHA1: Self = Self(2);
    /// PRF_HMAC_SHA2_256 (5).
    pub const HMAC_SHA2_256: Self = Self(5);

    /// Whether this crate implements the PRF.
    pub fn is_supported(self) -> bool {
        matches!(self, Self::HMAC_SHA1 | Self::HMAC_SHA2_256)
    }

    fn compute(self, key: &[u8], parts: &[&[u8]]) -> Result<Zeroizing<Vec<u8>>, Error> {
        match self {
            Self::HMAC_SHA1 => hmac_parts::<Hmac<Sha1>>(key, parts),
            Self::HMAC_SHA2_256 => hmac_parts::<Hmac<Sha256>>(key, parts),
            Self(other) => Err(Error::UnsupportedAlgorithm(other)),
        }
    }
}

impl fmt::Debug for PrfAlgorithm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            Self::HMAC_SHA1 => f.write_str("PRF_HMAC_SHA1"),
            Self::HMAC_SHA2_256 => f.write_str("PRF_HMAC_SHA2_256"),
            Self(v) => write!(f, "PrfAlgorithm({v})"),
        }
    }
}

/// Integrity-Algorithm value (IKEv2 transform type 3; open newtype).
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct IntegrityAlgorithm(pub u32);

impl IntegrityAlgorithm {
    /// AUTH_HMAC_SHA1_160 (7), mandatory to implement: 20-byte key, 20-byte AUTH.
    pub const HMAC_SHA1_160: Self = Self(7);
    /// AUTH_HMAC_SHA2_256_128 (12): 32-byte key, 16-byte AUTH.
    pub const HMAC_SHA2_256_128: Self = Self(12);

    /// Whether this crate implements the algorithm.
    pub fn is_supported(self) -> bool {
        matches!(self, Self::HMAC_SHA1_160 | Self::HMAC_SHA2_256_128)
    }

    /// Length of PANA_AUTH_KEY for this algorithm.
    pub fn key_len(self) -> Option<usize> {
        match self {
            Self::HMAC_SHA1_160 => Some(20),
            Self::HMAC_SHA2_256_128 => Some(32),
            _ => None,
        }
    }

    /// Length of the AUTH AVP value for this algorithm.
    pub fn tag_len(self) -> Option<usize> {
        match self {
            Self::HMAC_SHA1_160 => Some(20),
            Self::HMAC_SHA2_256_128 => Some(16),
            _ => None,
        }
    }
}

impl fmt::Debug for IntegrityAlgorithm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            Self::HMAC_SHA1_160 => f.write_str("AUTH_HMAC_SHA1_160"),
            Self::HMAC_SHA2_256_128 => f.write_str("AUTH_HMAC_SHA2_256_128"),
            Self(v) => write!(f, "IntegrityAlgorithm({v})"),
        }
    }
}

fn hmac_parts<M: Mac + hmac::digest::KeyInit>(
    key: &[u8],
    parts: &[&[u8]],
) -> Result<Zeroizing<Vec<u8>>, Error> {
    let mut mac = <M as hmac::digest::KeyInit>::new_from_slice(key)
        .map_err(|_| Error::KeyDerivation("hmac key"))?;
    for p in parts {
        mac.update(p);
    }
    Ok(Zeroizing::new(mac.finalize().into_bytes().to_vec()))
}

/// prf+ of IKEv2 (RFC 4306 §2.13): `T1 = prf(K, S | 0x01)`, `Tn = prf(K, Tn-1 | S | n)`,
/// concatenated and cut to `len` bytes.
pub fn prf_plus(
    prf: PrfAlgorithm,
    key: &[u8],
    seed: &[u8],
    len: usize,
) -> Result<Zeroizing<Vec<u8>>, Error> {
    let mut out = Zeroizing::new(Vec::with_capacity(len + 32));
    let mut prev: Zeroizing<Vec<u8>> = Zeroizing::new(Vec::new());
    let mut counter: u8 = 1;
    while out.len() < len {
        let t = prf.compute(key, &[&prev, seed, &[counter]])?;
        out.extend_from_slice(&t);
        prev = t;
        counter = counter
            .checked_add(1)
            .ok_or(Error::KeyDerivation("prf+ output too long"))?;
    }
    out.truncate(len);
    Ok(out)
}

/// The inputs of PANA_AUTH_KEY besides the MSK (RFC 5191 §5.3).
#[derive(Clone, Copy)]
pub struct KeyInputs<'a> {
    /// The initial PAR (S flag), as sent.
    pub i_par: &'a [u8],
    /// The initial PAN (S flag), as sent.
    pub i_pan: &'a [u8],
    /// The PaC's nonce of this EAP run.
    pub pac_nonce: &'a [u8],
    /// The PAA's nonce of this EAP run.
    pub paa_nonce: &'a [u8],
    /// The Key-Id the PAA assigned to this MSK.
    pub key_id: u32,
}

/// PANA_AUTH_KEY with the algorithm and Key-Id it belongs to. Zeroized on drop; no Debug.
#[derive(Clone)]
pub struct AuthKey {
    key: Zeroizing<[u8; 32]>,
    alg: IntegrityAlgorithm,
    key_id: u32,
}

/// Proof that an AUTH AVP verified: only [`AuthKey::verify`] makes one.
#[derive(Debug)]
pub struct AuthVerified(());

/// Derives PANA_AUTH_KEY = prf+(MSK, "IETF PANA" | I_PAR | I_PAN | PaC_nonce | PAA_nonce |
/// Key_ID), with the key length of the integrity algorithm.
pub fn derive_auth_key(
    prf: PrfAlgorithm,
    integrity: IntegrityAlgorithm,
    msk: &[u8],
    inputs: &KeyInputs<'_>,
) -> Result<AuthKey, Error> {
    let len = integrity
        .key_len()
        .ok_or(Error::UnsupportedAlgorithm(integrity.0))?;
    if msk.is_empty() {
        return Err(Error::KeyDerivation("empty MSK"));
    }
    let mut seed = Zeroizing::new(Vec::with_capacity(
        9 + inputs.i_par.len()
            + inputs.i_pan.len()
            + inputs.pac_nonce.len()
            + inputs.paa_nonce.len()
            + 4,
    ));
    seed.extend_from_slice(b"IETF PANA");
    seed.extend_from_slice(inputs.i_par);
    seed.extend_from_slice(inputs.i_pan);
    seed.extend_from_slice(inputs.pac_nonce);
    seed.extend_from_slice(inputs.paa_nonce);
    seed.extend_from_slice(&inputs.key_id.to_be_bytes());
    let okm = prf_plus(prf, msk, &seed, len)?;
    let mut key = Zeroizing::new([0u8; 32]);
    key.get_mut(..len)
        .ok_or(Error::KeyDerivation("key length"))?
        .copy_from_slice(&okm);
    Ok(AuthKey {
        key,
        alg: integrity,
        key_id: inputs.key_id,
    })
}

impl AuthKey {
    /// The Key-Id naming the MSK this key comes from.
    pub fn key_id(&self) -> u32 {
        self.key_id
    }

    /// The integrity algorithm.
    pub fn algorithm(&self) -> IntegrityAlgorithm {
        self.alg
    }

    /// The secret key bytes (for known-answer tests; never log them).
    pub fn secret_bytes(&self) -> &[u8] {
        let len = self.alg.key_len().unwrap_or(0);
        self.key.get(..len).unwrap_or(&[])
    }

    /// Length of the AUTH value this key produces.
    pub fn tag_len(&self) -> usize {
        self.alg.tag_len().unwrap_or(0)
    }

    fn tag(&self, msg: &[u8]) -> Result<Zeroizing<Vec<u8>>, Error> {
        let mut t = match self.alg {
            IntegrityAlgorithm::HMAC_SHA1_160 => {
                hmac_parts::<Hmac<Sha1>>(self.secret_bytes(), &[msg])?
            }
            IntegrityAlgorithm::HMAC_SHA2_256_128 => {
                hmac_parts::<Hmac<Sha256>>(self.secret_bytes(), &[msg])?
            }
            IntegrityAlgorithm(other) => return Err(Error::UnsupportedAlgorithm(other)),
        };
        t.truncate(self.tag_len());
        Ok(t)
    }

    /// Fills the AUTH AVP value of an encoded message (whose AUTH value has the right length)
    /// with the checksum over the whole message with that value zeroed.
    pub fn sign(&self, msg: &mut [u8]) -> Result<(), Error> {
        let range = auth_value_range(msg).ok_or(Error::MissingAuth)?;
        if range.len() != self.tag_len() {
            return Err(Error::MissingAuth);
        }
        let slot = msg.get_mut(range.clone()).ok_or(Error::MissingAuth)?;
        slot.fill(0);
        let tag = self.tag(msg)?;
        msg.get_mut(range)
            .ok_or(Error::MissingAuth)?
            .copy_from_slice(&tag);
        Ok(())
    }

    /// Verifies the AUTH AVP of an encoded message in constant time.
    pub fn verify(&self, msg: &[u8]) -> Result<AuthVerified, Error> {
        let range = auth_value_range(msg).ok_or(Error::MissingAuth)?;
        if range.len() != self.tag_len() {
            return Err(Error::MissingAuth);
        }
        let received = msg.get(range.clone()).ok_or(Error::MissingAuth)?;
        let mut copy = msg.to_vec();
        copy.get_mut(range).ok_or(Error::MissingAuth)?.fill(0);
        let tag = self.tag(&copy)?;
        if bool::from(tag.as_slice().ct_eq(received)) {
            Ok(AuthVerified(()))
        } else {
            Err(Error::AuthMismatch)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prf_plus_first_block_is_plain_hmac_of_seed_and_counter() {
        let key = b"key";
        let seed = b"seed";
        let out = prf_plus(PrfAlgorithm::HMAC_SHA1, key, seed, 40).unwrap();
        let t1 = hmac_parts::<Hmac<Sha1>>(key, &[seed, &[1]]).unwrap();
        let t2 = hmac_parts::<Hmac<Sha1>>(key, &[&t1, seed, &[2]]).unwrap();
        assert_eq!(&out[..20], &t1[..]);
        assert_eq!(&out[20..40], &t2[..20]);
    }

    #[test]
    fn sha256_pair_gives_32_byte_key_and_16_byte_tag() {
        let inputs = KeyInputs {
            i_par: b"par",
            i_pan: b"pan",
            pac_nonce: b"n1",
            paa_nonce: b"n2",
            key_id: 7,
        };
        let k = derive_auth_key(
            PrfAlgorithm::HMAC_SHA2_256,
            IntegrityAlgorithm::HMAC_SHA2_256_128,
            &[1u8; 64],
            &inputs,
        )
        .unwrap();
        assert_eq!(k.secret_bytes().len(), 32);
        assert_eq!(k.tag_len(), 16);
        let expect = prf_plus(
            PrfAlgorithm::HMAC_SHA2_256,
            &[1u8; 64],
            b"IETF PANAparpann1n2\0\0\0\x07",
            32,
        )
        .unwrap();
        assert_eq!(k.secret_bytes(), &expect[..]);
    }

    #[test]
    fn unsupported_algorithms_are_errors() {
        let inputs = KeyInputs {
            i_par: b"",
            i_pan: b"",
            pac_nonce: b"",
            paa_nonce: b"",
            key_id: 0,
        };
        assert!(matches!(
            derive_auth_key(
                PrfAlgorithm(99),
                IntegrityAlgorithm::HMAC_SHA1_160,
                b"m",
                &inputs
            ),
            Err(Error::UnsupportedAlgorithm(99))
        ));
        assert!(derive_auth_key(
            PrfAlgorithm::HMAC_SHA1,
            IntegrityAlgorithm(1),
            b"m",
            &inputs
        )
        .is_err());
    }
}
