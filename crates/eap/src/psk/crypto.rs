//! EAP-PSK cryptography (RFC 4764 §3): the key setup (AK, KDK), the key derivation by the modified
//! counter mode (TEK, MSK, EMSK), MAC_P and MAC_S with AES-CMAC, and the EAX protected channel.

use aes::cipher::{generic_array::GenericArray, BlockEncrypt, KeyInit};
use aes::Aes128;
use cmac::{Cmac, Mac};
use eax::aead::AeadInPlace;
use eax::Eax;
use zeroize::{Zeroize, ZeroizeOnDrop};

use crate::error::MethodError;
use crate::keys::{SessionKeys, MSK_LEN};
use crate::packet::MethodType;

/// Length of RAND_P, RAND_S, MACs, AK, KDK, TEK.
pub const BLOCK: usize = 16;

/// The long-term keys derived from the PSK (RFC 4764 §3.1).
#[derive(Clone, Zeroize, ZeroizeOnDrop)]
pub struct LongTermKeys {
    /// The authentication key.
    pub ak: [u8; BLOCK],
    /// The key-derivation key.
    pub kdk: [u8; BLOCK],
}

/// The session keys derived from KDK and RAND_P (RFC 4764 §3.2).
#[derive(Zeroize, ZeroizeOnDrop)]
pub struct DerivedKeys {
    /// The transient key for the protected channel.
    pub tek: [u8; BLOCK],
    /// The master session key.
    pub msk: [u8; MSK_LEN],
    /// The extended master session key.
    pub emsk: [u8; MSK_LEN],
}

fn counter_block(base: &[u8; BLOCK], counter: u8) -> GenericArray<u8, aes::cipher::consts::U16> {
    let mut block = GenericArray::from(*base);
    if let Some(last) = block.last_mut() {
        *last ^= counter;
    }
    block
}

/// AK = AES(PSK, AES(PSK, 0) ^ c1), KDK = AES(PSK, AES(PSK, 0) ^ c2) with c_i = i on the last byte.
pub fn key_setup(psk: &[u8; BLOCK]) -> LongTermKeys {
    let cipher = Aes128::new(GenericArray::from_slice(psk));
    let mut zero = GenericArray::from([0u8; BLOCK]);
    cipher.encrypt_block(&mut zero);
    let x: [u8; BLOCK] = zero.into();
    let mut ak = counter_block(&x, 1);
    cipher.encrypt_block(&mut ak);
    let mut kdk = counter_block(&x, 2);
    cipher.encrypt_block(&mut kdk);
    LongTermKeys {
        ak: ak.into(),
        kdk: kdk.into(),
    }
}

/// TEK, MSK and EMSK from KDK and RAND_P: with Y = AES(KDK, RAND_P), block i is AES(KDK, Y ^ c_i);
/// TEK is block 1, MSK blocks 2..=5, EMSK blocks 6..=9.
pub fn derive_session_keys(kdk: &[u8; BLOCK], rand_p: &[u8; BLOCK]) -> DerivedKeys {
    let cipher = Aes128::new(GenericArray::from_slice(kdk));
    let mut y = GenericArray::from(*rand_p);
    cipher.encrypt_block(&mut y);
    let y: [u8; BLOCK] = y.into();
    let mut blocks = [GenericArray::default(); 9];
    for (i, block) in (1u8..).zip(blocks.iter_mut()) {
        *block = counter_block(&y, i);
    }
    cipher.encrypt_blocks(&mut blocks);
    let mut out = DerivedKeys {
        tek: [0; BLOCK],
        msk: [0; MSK_LEN],
        emsk: [0; MSK_LEN],
    };
    let stream = blocks.iter().flatten();
    let destinations = out
        .tek
        .iter_mut()
        .chain(out.msk.iter_mut())
        .chain(out.emsk.iter_mut());
    for (dst, src) in destinations.zip(stream) {
        *dst = *src;
    }
    for block in blocks.iter_mut() {
        block.as_mut_slice().zeroize();
    }
    out
}

fn cmac(key: &[u8; BLOCK], parts: &[&[u8]]) -> Cmac<Aes128> {
    let mut mac = <Cmac<Aes128> as KeyInit>::new(GenericArray::from_slice(key));
    for part in parts {
        mac.update(part);
    }
    mac
}

/// MAC_P = CMAC-AES-128(AK, ID_P || ID_S || RAND_S || RAND_P).
pub fn mac_p(
    ak: &[u8; BLOCK],
    id_p: &[u8],
    id_s: &[u8],
    rand_s: &[u8; BLOCK],
    rand_p: &[u8; BLOCK],
) -> [u8; BLOCK] {
    cmac(ak, &[id_p, id_s, rand_s, rand_p])
        .finalize()
        .into_bytes()
        .into()
}

/// Verifies MAC_P in constant time.
pub fn verify_mac_p(
    ak: &[u8; BLOCK],
    id_p: &[u8],
    id_s: &[u8],
    rand_s: &[u8; BLOCK],
    rand_p: &[u8; BLOCK],
    received: &[u8; BLOCK],
) -> bool {
    cmac(ak, &[id_p, id_s, rand_s, rand_p])
        .verify_slice(received)
        .is_ok()
}

/// MAC_S = CMAC-AES-128(AK, ID_S || RAND_P).
pub fn mac_s(ak: &[u8; BLOCK], id_s: &[u8], rand_p: &[u8; BLOCK]) -> [u8; BLOCK] {
    cmac(ak, &[id_s, rand_p]).finalize().into_bytes().into()
}

/// Verifies MAC_S in constant time.
pub fn verify_mac_s(
    ak: &[u8; BLOCK],
    id_s: &[u8],
    rand_p: &[u8; BLOCK],
    received: &[u8; BLOCK],
) -> bool {
    cmac(ak, &[id_s, rand_p]).verify_slice(received).is_ok()
}

/// The EAP Session-Id of EAP-PSK: Type (47) || RAND_P || RAND_S (RFC 5247 Appendix).
pub fn session_id(rand_p: &[u8; BLOCK], rand_s: &[u8; BLOCK]) -> Vec<u8> {
    let mut id = Vec::with_capacity(1 + 2 * BLOCK);
    id.push(MethodType::PSK.0);
    id.extend_from_slice(rand_p);
    id.extend_from_slice(rand_s);
    id
}

/// Packs the derived MSK and EMSK with the Session-Id.
pub fn export(keys: &DerivedKeys, rand_p: &[u8; BLOCK], rand_s: &[u8; BLOCK]) -> SessionKeys {
    SessionKeys::new(keys.msk, keys.emsk, session_id(rand_p, rand_s))
}

/// The EAX nonce of the protected channel: 96 zero bits followed by the 32-bit nonce N.
fn channel_nonce(n: u32) -> GenericArray<u8, aes::cipher::consts::U16> {
    let [a, b, c, d] = n.to_be_bytes();
    GenericArray::from([0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, a, b, c, d])
}

/// The 22 bytes the protected channel authenticates: the EAP header and Type, the EAP-PSK Flags and
/// RAND_S.
pub fn channel_aad(eap_header: &[u8; 5], flags: u8, rand_s: &[u8; BLOCK]) -> [u8; 22] {
    let mut aad = [0u8; 22];
    let source = eap_header
        .iter()
        .chain(std::iter::once(&flags))
        .chain(rand_s.iter());
    for (dst, src) in aad.iter_mut().zip(source) {
        *dst = *src;
    }
    aad
}

/// Encrypts the protected-channel payload in place with TEK, returning the 16-byte tag. `header` is
/// the first 22 bytes of the EAP packet (header, Type, Flags, RAND_S).
pub fn channel_seal(
    tek: &[u8; BLOCK],
    n: u32,
    header: &[u8],
    payload: &mut [u8],
) -> Result<[u8; BLOCK], MethodError> {
    let eax = <Eax<Aes128> as KeyInit>::new(GenericArray::from_slice(tek));
    eax.encrypt_in_place_detached(&channel_nonce(n), header, payload)
        .map(Into::into)
        .map_err(|_| MethodError::BadProtectedChannel)
}

/// Verifies and decrypts a protected-channel payload in place.
pub fn channel_open(
    tek: &[u8; BLOCK],
    n: u32,
    header: &[u8],
    tag: &[u8; BLOCK],
    payload: &mut [u8],
) -> Result<(), MethodError> {
    let eax = <Eax<Aes128> as KeyInit>::new(GenericArray::from_slice(tek));
    eax.decrypt_in_place_detached(
        &channel_nonce(n),
        header,
        payload,
        GenericArray::from_slice(tag),
    )
    .map_err(|_| MethodError::BadProtectedChannel)
}
