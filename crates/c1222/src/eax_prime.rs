//! EAX′ (EAX-prime), the authenticated-encryption mode of ANSI C12.22-2008 / IEEE Std 1703
//! (A. Moise, E. Beroset, T. Phinney, M. Burns, "EAX' Cipher Mode", May 2011), with AES-128.
//!
//! Built from the RustCrypto AES block cipher (for the CMAC′ chain) and `ctr` (for the keystream).
//! The `cmac` crate cannot be used for CMAC′: its subkeys come from big-endian doubling and its
//! chain starts at zero, while EAX′ starts the chain at D or Q and doubles little-endian; only
//! that chaining (a few lines over `BlockEncrypt`) is written here, AES itself is RustCrypto's.
//! The per-key state — the AES key schedule and the two derived blocks D and Q — is computed once
//! in [`EaxPrime::new`].
//!
//! The construction, as reproduced by every published vector:
//! * `L = AES_K(0¹²⁸)`, `D = dbl(L)`, `Q = dbl(D)`, where `dbl` is GF(2¹²⁸) doubling with byte 0
//!   taken as the *least* significant byte (the convention of the reference C code; the RFC 4493
//!   big-endian doubling reproduces none of the vectors).
//! * `CMAC′_X(M)`: CBC-MAC whose chaining value starts at `X`; the last block is XORed with `D`
//!   when it is full, or padded with `80 00 ..` and XORed with `Q` when it is partial.
//! * `N′ = CMAC′_D(cleartext)`; the counter is `N′` with bit 7 of bytes 12 and 14 cleared,
//!   incremented as a 128-bit big-endian number; `C′ = CMAC′_Q(ciphertext)` (zero when empty);
//!   the MAC is bytes 12..16 of `N′ ⊕ C′`.
//!
//! Cleartexts of 16 bytes or less are refused: with a single-block cleartext EAX′ admits
//! key-independent forgeries (Minematsu, Lucks, Morita, Iwata, "Attacks and Security Proofs of
//! EAX-Prime", FSE 2013). Real C12.22 canonified headers are always longer.

use aes::cipher::{generic_array::GenericArray, BlockEncrypt, InnerIvInit, KeyInit, StreamCipher};
use aes::Aes128Enc;
use subtle::ConstantTimeEq;
use zeroize::{Zeroize, Zeroizing};

use crate::Error;

/// Length of the EAX′ MAC carried by C12.22 messages.
pub const MAC_LEN: usize = 4;
/// The smallest cleartext accepted by [`EaxPrime::seal`] and [`EaxPrime::open`].
pub const MIN_CLEARTEXT_LEN: usize = 17;

/// A 4-byte EAX′ message authentication code.
pub type Mac = [u8; MAC_LEN];

type Block = [u8; 16];

/// An AES-128 EAX′ instance bound to one key, with its per-key state precomputed.
///
/// The key schedule and D, Q are wiped when the value is dropped. `Debug` does not show them.
#[derive(Clone)]
pub struct EaxPrime {
    aes: Aes128Enc,
    d: Block,
    q: Block,
}

impl core::fmt::Debug for EaxPrime {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("EaxPrime").finish_non_exhaustive()
    }
}

impl Drop for EaxPrime {
    fn drop(&mut self) {
        self.d.zeroize();
        self.q.zeroize();
        // `Aes128Enc` zeroizes its round keys on drop (aes crate, `zeroize` feature).
    }
}

impl zeroize::ZeroizeOnDrop for EaxPrime {}

/// Doubling in GF(2¹²⁸) with byte 0 as the least significant byte (see the module docs).
fn dbl_le(block: &Block) -> Block {
    let v = u128::from_le_bytes(*block);
    let carry = v >> 127;
    let out = (v << 1) ^ (carry * 0x87);
    out.to_le_bytes()
}

fn xor_into(acc: &mut Block, other: &[u8]) {
    for (a, b) in acc.iter_mut().zip(other) {
        *a ^= b;
    }
}

impl EaxPrime {
    /// Expands `key` and precomputes `D` and `Q`.
    pub fn new(key: &[u8; 16]) -> Self {
        let aes = Aes128Enc::new(GenericArray::from_slice(key));
        let mut l = Zeroizing::new([0u8; 16]);
        aes.encrypt_block(GenericArray::from_mut_slice(&mut l[..]));
        let d = dbl_le(&l);
        let q = dbl_le(&d);
        EaxPrime { aes, d, q }
    }

    fn encrypt(&self, block: &mut Block) {
        self.aes
            .encrypt_block(GenericArray::from_mut_slice(&mut block[..]));
    }

    /// CMAC′ with chaining value starting at `start`, over the concatenation of `parts`.
    /// The concatenation must not be empty.
    fn cmac_prime(&self, start: &Block, parts: &[&[u8]]) -> Block {
        let total: usize = parts.iter().map(|p| p.len()).sum();
        let mut state = *start;
        let mut buf = [0u8; 16];
        let mut fill = 0usize;
        let mut consumed = 0usize;
        for part in parts {
            let mut p: &[u8] = part;
            while !p.is_empty() {
                let n = (16 - fill).min(p.len());
                let (head, tail) = p.split_at(n);
                if let Some(dst) = buf.get_mut(fill..fill + n) {
                    dst.copy_from_slice(head);
                }
                fill += n;
                consumed += n;
                p = tail;
                if fill == 16 && consumed < total {
                    xor_into(&mut state, &buf);
                    self.encrypt(&mut state);
                    fill = 0;
                }
            }
        }
        // Final block: `fill` bytes in `buf` (1..=16 when total > 0).
        if fill == 16 {
            xor_into(&mut state, &buf);
            xor_into(&mut state, &self.d);
        } else {
            if let Some(pad) = buf.get_mut(fill) {
                *pad = 0x80;
            }
            for b in buf.iter_mut().skip(fill + 1) {
                *b = 0;
            }
            xor_into(&mut state, &buf);
            xor_into(&mut state, &self.q);
        }
        self.encrypt(&mut state);
        buf.zeroize();
        state
    }

    fn apply_ctr(&self, n_prime: &Block, data: &mut [u8]) {
        if data.is_empty() {
            return;
        }
        let mut iv = *n_prime;
        iv[12] &= 0x7f;
        iv[14] &= 0x7f;
        let core = ctr::CtrCore::<Aes128Enc, ctr::flavors::Ctr128BE>::inner_iv_init(
            self.aes.clone(),
            GenericArray::from_slice(&iv),
        );
        let mut stream = ctr::Ctr128BE::<Aes128Enc>::from_core(core);
        stream.apply_keystream(data);
    }

    fn tag(n_prime: &Block, c_prime: &Block) -> Mac {
        let mut mac = [0u8; MAC_LEN];
        for ((m, n), c) in mac
            .iter_mut()
            .zip(n_prime.iter().skip(12))
            .zip(c_prime.iter().skip(12))
        {
            *m = n ^ c;
        }
        mac
    }

    fn c_prime(&self, ciphertext: &[u8]) -> Block {
        if ciphertext.is_empty() {
            [0u8; 16]
        } else {
            self.cmac_prime(&self.q, &[ciphertext])
        }
    }

    /// Authenticates `cleartext`, encrypts `plaintext` in place and returns the MAC.
    /// For C12.22 security mode 1 (authentication only) `plaintext` is empty.
    pub fn seal(&self, cleartext: &[u8], plaintext: &mut [u8]) -> Result<Mac, Error> {
        self.seal_parts(&[cleartext], plaintext)
    }

    /// As [`seal`](Self::seal), with the cleartext given as the concatenation of `cleartext`
    /// (so a canonified header and an appended EPSEM need not be copied together).
    pub fn seal_parts(&self, cleartext: &[&[u8]], plaintext: &mut [u8]) -> Result<Mac, Error> {
        check_cleartext(cleartext)?;
        let n_prime = self.cmac_prime(&self.d, cleartext);
        self.apply_ctr(&n_prime, plaintext);
        let c_prime = self.c_prime(plaintext);
        Ok(Self::tag(&n_prime, &c_prime))
    }

    /// Verifies `mac` over `cleartext` and `ciphertext` (constant-time compare) and, only if it
    /// verifies, decrypts `ciphertext` in place. On failure the buffer is left untouched.
    pub fn open(&self, cleartext: &[u8], ciphertext: &mut [u8], mac: &Mac) -> Result<(), Error> {
        self.open_parts(&[cleartext], ciphertext, mac)
    }

    /// As [`open`](Self::open), with the cleartext given as a concatenation of slices.
    pub fn open_parts(
        &self,
        cleartext: &[&[u8]],
        ciphertext: &mut [u8],
        mac: &Mac,
    ) -> Result<(), Error> {
        check_cleartext(cleartext)?;
        let n_prime = self.cmac_prime(&self.d, cleartext);
        let c_prime = self.c_prime(ciphertext);
        let expected = Self::tag(&n_prime, &c_prime);
        if bool::from(expected.ct_eq(mac)) {
            self.apply_ctr(&n_prime, ciphertext);
            Ok(())
        } else {
            Err(Error::AuthenticationFailed)
        }
    }
}

fn check_cleartext(parts: &[&[u8]]) -> Result<(), Error> {
    let total: usize = parts.iter().map(|p| p.len()).sum();
    if total < MIN_CLEARTEXT_LEN {
        Err(Error::CleartextTooShort)
    } else {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn doubling_is_little_endian() {
        let mut one = [0u8; 16];
        one[0] = 0x80;
        let d = dbl_le(&one);
        assert_eq!(d[0], 0x00);
        assert_eq!(d[1], 0x01);
        let mut top = [0u8; 16];
        top[15] = 0x80;
        let d = dbl_le(&top);
        assert_eq!(d[0], 0x87);
        assert_eq!(d[15], 0x00);
    }

    #[test]
    fn split_cleartext_equals_joined() {
        let e = EaxPrime::new(&[7u8; 16]);
        let clear: Vec<u8> = (0u8..53).collect();
        for cut in [0usize, 1, 15, 16, 17, 32, 52, 53] {
            let (a, b) = clear.split_at(cut);
            let mut p1 = *b"some plaintext!!x";
            let mut p2 = p1;
            let m1 = e.seal(&clear, &mut p1).unwrap();
            let m2 = e.seal_parts(&[a, b], &mut p2).unwrap();
            assert_eq!(m1, m2);
            assert_eq!(p1, p2);
        }
    }
}
