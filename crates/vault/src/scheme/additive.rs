//! 2-of-2 additive sharing over Z_2^64: `v = s0 + s1 (mod 2^64)`.

use rand_core::CryptoRngCore;

use super::{
    Modulus, Reconstruction, RepairPlan, SchemeError, SchemeSpec, ShareRow, ShareScheme, Verdict,
};

/// 2-of-2 additive sharing over Z_2^64. Minimal: either store alone learns nothing, but losing
/// either store loses the data, and a wrong sum cannot be detected.
#[derive(Clone, Copy, Debug, Default)]
pub struct Additive2of2;

impl ShareScheme for Additive2of2 {
    fn spec(&self) -> SchemeSpec {
        SchemeSpec::Additive2of2
    }
    fn stores(&self) -> usize {
        2
    }
    fn threshold(&self) -> usize {
        2
    }
    fn columns(&self) -> usize {
        1
    }
    fn modulus(&self) -> Modulus {
        Modulus::Wrap64
    }

    fn split(
        &self,
        value: u64,
        rng: &mut dyn CryptoRngCore,
        out: &mut [ShareRow],
    ) -> Result<(), SchemeError> {
        let [s0, s1] = out else {
            return Err(SchemeError::WrongShareCount {
                expected: 2,
                got: out.len(),
            });
        };
        let r = rng.next_u64();
        *s0 = [r, 0];
        *s1 = [value.wrapping_sub(r), 0];
        Ok(())
    }

    fn reconstruct(&self, shares: &[Option<ShareRow>]) -> Result<Reconstruction, SchemeError> {
        match shares {
            [Some(a), Some(b)] => Ok(Reconstruction {
                value: a[0].wrapping_add(b[0]),
                verdict: Verdict::Unchecked,
            }),
            _ => Err(SchemeError::NotEnoughShares {
                needed: 2,
                have: shares.iter().flatten().count(),
            }),
        }
    }

    fn repair_plan(&self, _lost: usize, _available: &[bool]) -> Option<RepairPlan> {
        None
    }
}
