//! MS-MPPE-Send-Key and MS-MPPE-Recv-Key (RFC 2548 §2.4.2, §2.4.3): how the EAP MSK
//! travels from the RADIUS server to the authenticator in an Access-Accept.
//!
//! The vendor attribute value is `Salt (2) | String`, where String is the encryption of
//! `Key-Length (1) | Key | zero padding` (a multiple of 16 bytes) under
//! `b(1) = MD5(secret | Request Authenticator | Salt)`, `b(i) = MD5(secret | c(i-1))`.

use md5::{Digest, Md5};
use rand_core::{CryptoRng, RngCore};
use zeroize::Zeroizing;

use crate::attribute::{
    Attribute, VendorAttribute, VendorSpecific, MS_MPPE_RECV_KEY, MS_MPPE_SEND_KEY,
    VENDOR_MICROSOFT,
};
use crate::error::Error;
use crate::packet::{Packet, AUTHENTICATOR_LEN};

/// Longest key one attribute can carry: `1 + key` padded to 16 must fit in 253 − 4 − 2 − 2.
pub const MAX_MPPE_KEY_LEN: usize = 239;
const BLOCK: usize = 16;

/// The MPPE keys of an Access-Accept. No `Debug`; zeroized on drop.
#[derive(Clone)]
pub struct MppeKeys {
    /// MS-MPPE-Recv-Key: by RFC 3748/5216 convention the first 32 bytes of the MSK.
    pub recv: Zeroizing<Vec<u8>>,
    /// MS-MPPE-Send-Key: by convention the second 32 bytes of the MSK.
    pub send: Zeroizing<Vec<u8>>,
}

impl MppeKeys {
    /// Splits a 64-byte (or longer) MSK into Recv-Key = MSK[0..32] and
    /// Send-Key = MSK[32..64], as hostapd and RFC 5216 §2.3 do. `None` if `msk` is shorter.
    pub fn from_msk(msk: &[u8]) -> Option<Self> {
        Some(MppeKeys {
            recv: Zeroizing::new(msk.get(..32)?.to_vec()),
            send: Zeroizing::new(msk.get(32..64)?.to_vec()),
        })
    }

    /// `recv | send`: the 64-byte MSK when the server used the RFC 5216 split.
    pub fn msk(&self) -> Zeroizing<Vec<u8>> {
        let mut m = Zeroizing::new(Vec::with_capacity(self.recv.len() + self.send.len()));
        m.extend_from_slice(&self.recv);
        m.extend_from_slice(&self.send);
        m
    }
}

impl core::fmt::Debug for MppeKeys {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("MppeKeys")
            .field("recv_len", &self.recv.len())
            .field("send_len", &self.send.len())
            .finish()
    }
}

fn first_block(secret: &[u8], request_authenticator: &[u8; 16], salt: [u8; 2]) -> [u8; BLOCK] {
    let mut h = Md5::new();
    h.update(secret);
    h.update(request_authenticator);
    h.update(salt);
    h.finalize().into()
}

fn next_block(secret: &[u8], previous_cipher: &[u8]) -> [u8; BLOCK] {
    let mut h = Md5::new();
    h.update(secret);
    h.update(previous_cipher);
    h.finalize().into()
}

/// Encrypts `key` into an MS-MPPE key attribute value (`Salt | String`).
///
/// `salt` must have its high bit set and be unique among the key attributes of one packet;
/// it is checked for the high bit.
pub fn encrypt_key(
    key: &[u8],
    secret: &[u8],
    request_authenticator: &[u8; AUTHENTICATOR_LEN],
    salt: u16,
) -> Result<Vec<u8>, Error> {
    if key.len() > MAX_MPPE_KEY_LEN {
        return Err(Error::MppeKeyTooLong { len: key.len() });
    }
    if salt & 0x8000 == 0 {
        return Err(Error::BadMppeKey {
            reason: "salt high bit not set",
        });
    }
    let salt = salt.to_be_bytes();
    let mut plain = Zeroizing::new(Vec::with_capacity(key.len() + BLOCK));
    plain.push(key.len() as u8);
    plain.extend_from_slice(key);
    let padded = plain.len().div_ceil(BLOCK) * BLOCK;
    plain.resize(padded, 0);

    let mut out = Vec::with_capacity(2 + padded);
    out.extend_from_slice(&salt);
    let mut b = first_block(secret, request_authenticator, salt);
    let mut chunks = plain.chunks(BLOCK).peekable();
    while let Some(chunk) = chunks.next() {
        let start = out.len();
        out.extend(chunk.iter().zip(b.iter()).map(|(p, k)| p ^ k));
        // b(i+1) is needed only when another block follows.
        if chunks.peek().is_some() {
            b = next_block(secret, out.get(start..).unwrap_or_default());
        }
    }
    Ok(out)
}

/// Decrypts an MS-MPPE key attribute value (`Salt | String`) into the key.
pub fn decrypt_key(
    value: &[u8],
    secret: &[u8],
    request_authenticator: &[u8; AUTHENTICATOR_LEN],
) -> Result<Zeroizing<Vec<u8>>, Error> {
    let (salt, cipher) = match value {
        [s0, s1, rest @ ..] => ([*s0, *s1], rest),
        _ => {
            return Err(Error::BadMppeKey {
                reason: "too short",
            })
        }
    };
    if salt[0] & 0x80 == 0 {
        return Err(Error::BadMppeKey {
            reason: "salt high bit not set",
        });
    }
    if cipher.is_empty() || cipher.len() % BLOCK != 0 {
        return Err(Error::BadMppeKey {
            reason: "string not a positive multiple of 16 bytes",
        });
    }
    let mut plain = Zeroizing::new(Vec::with_capacity(cipher.len()));
    let mut b = first_block(secret, request_authenticator, salt);
    let mut chunks = cipher.chunks(BLOCK).peekable();
    while let Some(chunk) = chunks.next() {
        plain.extend(chunk.iter().zip(b.iter()).map(|(c, k)| c ^ k));
        if chunks.peek().is_some() {
            b = next_block(secret, chunk);
        }
    }
    let key_len = usize::from(*plain.first().ok_or(Error::BadMppeKey {
        reason: "too short",
    })?);
    let key = plain.get(1..1 + key_len).ok_or(Error::BadMppeKey {
        reason: "key length beyond the data",
    })?;
    Ok(Zeroizing::new(key.to_vec()))
}

/// Two Vendor-Specific attributes, MS-MPPE-Send-Key then MS-MPPE-Recv-Key, each in its own
/// attribute as hostapd sends them, with distinct random salts.
pub fn mppe_attributes<R: RngCore + CryptoRng>(
    keys: &MppeKeys,
    secret: &[u8],
    request_authenticator: &[u8; AUTHENTICATOR_LEN],
    rng: &mut R,
) -> Result<Vec<Attribute>, Error> {
    let mut s = [0u8; 2];
    rng.fill_bytes(&mut s);
    let send_salt = u16::from_be_bytes(s) | 0x8000;
    // Flipping the low bit keeps the high bit and makes the two salts differ.
    let recv_salt = send_salt ^ 0x0001;
    let mut out = Vec::with_capacity(2);
    for (vendor_type, key, salt) in [
        (MS_MPPE_SEND_KEY, &keys.send, send_salt),
        (MS_MPPE_RECV_KEY, &keys.recv, recv_salt),
    ] {
        let value = encrypt_key(key, secret, request_authenticator, salt)?;
        out.push(
            VendorSpecific {
                vendor_id: VENDOR_MICROSOFT,
                attributes: vec![VendorAttribute { vendor_type, value }],
            }
            .to_attribute()?,
        );
    }
    Ok(out)
}

/// Finds and decrypts the MS-MPPE-Recv-Key and MS-MPPE-Send-Key of a response.
///
/// `Ok(None)` when neither is present; an error when only one is present, one is repeated,
/// or one does not decrypt.
pub fn extract_mppe_keys(
    packet: &Packet,
    secret: &[u8],
    request_authenticator: &[u8; AUTHENTICATOR_LEN],
) -> Result<Option<MppeKeys>, Error> {
    let mut recv = None;
    let mut send = None;
    for vsa in packet
        .vendor_specific()
        .filter(|v| v.vendor_id == VENDOR_MICROSOFT)
    {
        for sub in &vsa.attributes {
            let slot = match sub.vendor_type {
                MS_MPPE_RECV_KEY => &mut recv,
                MS_MPPE_SEND_KEY => &mut send,
                _ => continue,
            };
            if slot.is_some() {
                return Err(Error::BadMppeKey {
                    reason: "key attribute repeated",
                });
            }
            *slot = Some(decrypt_key(&sub.value, secret, request_authenticator)?);
        }
    }
    match (recv, send) {
        (Some(recv), Some(send)) => Ok(Some(MppeKeys { recv, send })),
        (None, None) => Ok(None),
        _ => Err(Error::BadMppeKey {
            reason: "only one of Send-Key and Recv-Key present",
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::{rngs::StdRng, SeedableRng};

    #[test]
    fn encrypt_layout_and_round_trip() {
        let ra = [0x11u8; 16];
        let key: Vec<u8> = (0..32u8).collect();
        let v = encrypt_key(&key, b"secret", &ra, 0x8123).unwrap();
        // Salt, then 1 + 32 bytes padded to 48.
        assert_eq!(v.len(), 2 + 48);
        assert_eq!(&v[..2], &[0x81, 0x23]);
        assert_eq!(&*decrypt_key(&v, b"secret", &ra).unwrap(), &key[..]);
        // First block by hand: c(1) = (len | key[..15]) xor MD5(S | R | A).
        let b1: [u8; 16] = Md5::new()
            .chain_update(b"secret")
            .chain_update(ra)
            .chain_update([0x81, 0x23])
            .finalize()
            .into();
        assert_eq!(v[2] ^ b1[0], 32);
        assert_eq!(v[3] ^ b1[1], 0);
        // Wrong secret or authenticator gives a different key (or an error).
        let other = decrypt_key(&v, b"secreT", &ra);
        assert!(other.map(|k| *k != key).unwrap_or(true));
    }

    #[test]
    fn key_lengths_and_limits() {
        let ra = [3u8; 16];
        for len in [0usize, 1, 15, 16, 31, 32, 64, MAX_MPPE_KEY_LEN] {
            let key = vec![0xa5; len];
            let v = encrypt_key(&key, b"s", &ra, 0xffff).unwrap();
            assert_eq!((v.len() - 2) % 16, 0);
            assert_eq!(&*decrypt_key(&v, b"s", &ra).unwrap(), &key[..]);
        }
        assert_eq!(
            encrypt_key(&[0; 240], b"s", &ra, 0x8000),
            Err(Error::MppeKeyTooLong { len: 240 })
        );
        assert!(encrypt_key(&[0; 16], b"s", &ra, 0x7fff).is_err());
    }

    #[test]
    fn decrypt_rejects_malformed() {
        let ra = [0u8; 16];
        assert!(decrypt_key(&[], b"s", &ra).is_err());
        assert!(decrypt_key(&[0x80, 0], b"s", &ra).is_err());
        assert!(decrypt_key(&[0x00, 0, 1, 2], b"s", &ra).is_err());
        assert!(decrypt_key(&[0x80; 2 + 15], b"s", &ra).is_err());
        // A key-length byte pointing past the data.
        let mut v = encrypt_key(&[1; 14], b"s", &ra, 0x8001).unwrap();
        let b1: [u8; 16] = Md5::new()
            .chain_update(b"s")
            .chain_update(ra)
            .chain_update([0x80, 0x01])
            .finalize()
            .into();
        v[2] = 200 ^ b1[0];
        assert!(decrypt_key(&v, b"s", &ra).is_err());
    }

    #[test]
    fn attributes_in_packet_round_trip() {
        let mut rng = StdRng::seed_from_u64(7);
        let msk: Vec<u8> = (100..164u8).collect();
        let keys = MppeKeys::from_msk(&msk).unwrap();
        let ra = [9u8; 16];
        let attrs = mppe_attributes(&keys, b"shh", &ra, &mut rng).unwrap();
        assert_eq!(attrs.len(), 2);
        let salts: Vec<_> = attrs.iter().map(|a| [a.value[6], a.value[7]]).collect();
        assert_ne!(salts[0], salts[1]);
        assert!(salts.iter().all(|s| s[0] & 0x80 != 0));
        let mut p = Packet::new(crate::Code::ACCESS_ACCEPT, 1);
        p.attributes = attrs;
        let mut p = Packet::parse(&p.to_bytes().unwrap()).unwrap();
        let back = extract_mppe_keys(&p, b"shh", &ra).unwrap().unwrap();
        assert_eq!(&*back.msk(), &msk[..]);
        assert_eq!(&*back.recv, &msk[..32]);
        assert_eq!(
            format!("{back:?}"),
            "MppeKeys { recv_len: 32, send_len: 32 }"
        );
        // Only one key present is an error; none is None.
        p.attributes.truncate(1);
        assert!(extract_mppe_keys(&p, b"shh", &ra).is_err());
        p.attributes.clear();
        assert!(extract_mppe_keys(&p, b"shh", &ra).unwrap().is_none());
        assert!(MppeKeys::from_msk(&[0; 63]).is_none());
    }
}
