//! ChaCha12 (the generator behind `rand`'s `StdRng`) without the 256-byte block buffer that
//! `StdRng` keeps beside its 48-byte state. A simulated meter holds four generators (PaC,
//! EAP peer, C12.22 link, re-seeding), so the buffers alone would cost a kilobyte per meter;
//! this one generates a block for each draw and discards what the draw does not use, which
//! costs a little time on the rare draws a meter makes (nonces, IVs) and no memory.

use rand_chacha::ChaCha12Core;
use rand_core::block::BlockRngCore;
use rand_core::{CryptoRng, Error, RngCore, SeedableRng};

/// A ChaCha12 generator that keeps only its state.
#[derive(Clone, Debug)]
pub struct CompactRng {
    core: ChaCha12Core,
}

impl RngCore for CompactRng {
    fn next_u32(&mut self) -> u32 {
        let mut b = [0u8; 4];
        self.fill_bytes(&mut b);
        u32::from_le_bytes(b)
    }

    fn next_u64(&mut self) -> u64 {
        let mut b = [0u8; 8];
        self.fill_bytes(&mut b);
        u64::from_le_bytes(b)
    }

    fn fill_bytes(&mut self, dest: &mut [u8]) {
        let mut block = <ChaCha12Core as BlockRngCore>::Results::default();
        for chunk in dest.chunks_mut(4 * block.as_ref().len()) {
            self.core.generate(&mut block);
            for (out, word) in chunk.chunks_mut(4).zip(block.as_ref()) {
                let bytes = word.to_le_bytes();
                out.copy_from_slice(bytes.get(..out.len()).unwrap_or_default());
            }
        }
    }

    fn try_fill_bytes(&mut self, dest: &mut [u8]) -> Result<(), Error> {
        self.fill_bytes(dest);
        Ok(())
    }
}

impl CryptoRng for CompactRng {}

impl SeedableRng for CompactRng {
    type Seed = [u8; 32];

    fn from_seed(seed: Self::Seed) -> Self {
        CompactRng {
            core: ChaCha12Core::from_seed(seed),
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use rand_chacha::ChaCha12Rng;

    #[test]
    fn a_draw_begins_where_chacha12_begins_and_the_state_is_small() {
        let seed = [7u8; 32];
        let mut reference = ChaCha12Rng::from_seed(seed);
        let mut expected = [0u8; 300];
        reference.fill_bytes(&mut expected);
        let mut got = [0u8; 300];
        CompactRng::from_seed(seed).fill_bytes(&mut got);
        assert_eq!(got, expected, "one draw is ChaCha12's keystream");
        // Each draw starts a fresh block: the second draw is the keystream after 256 bytes.
        let mut rng = CompactRng::from_seed(seed);
        let first = rng.next_u32();
        let second = rng.next_u32();
        assert_eq!(first.to_le_bytes(), expected[..4]);
        assert_eq!(second.to_le_bytes(), expected[256..260]);
        assert!(std::mem::size_of::<CompactRng>() <= 64);
    }
}
