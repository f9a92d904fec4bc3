//! 2-of-3 replicated sharing over Z_2^64.
//!
//! A reading `v` is split into three additive parts `x0 + x1 + x2 = v (mod 2^64)`. Store `i`
//! holds parts `x_i` (column 0) and `x_{i+1 mod 3}` (column 1). Any single store sees two
//! independent uniform values; any two stores together hold all three parts; every part is
//! held by exactly two stores, which is what lets a wrong sum be caught.

use rand_core::CryptoRngCore;

use super::{
    Modulus, Reconstruction, RepairPlan, SchemeError, SchemeSpec, ShareRow, ShareScheme, Verdict,
};

/// 2-of-3 replicated sharing over Z_2^64 (the default scheme).
#[derive(Clone, Copy, Debug, Default)]
pub struct Replicated2of3;

/// The two `(store, column)` places where additive part `j` is held.
fn holders(part: usize) -> [(usize, usize); 2] {
    [(part, 0), ((part + 2) % 3, 1)]
}

impl ShareScheme for Replicated2of3 {
    fn spec(&self) -> SchemeSpec {
        SchemeSpec::Replicated2of3
    }
    fn stores(&self) -> usize {
        3
    }
    fn threshold(&self) -> usize {
        2
    }
    fn columns(&self) -> usize {
        2
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
        let [s0, s1, s2] = out else {
            return Err(SchemeError::WrongShareCount {
                expected: 3,
                got: out.len(),
            });
        };
        let x0 = rng.next_u64();
        let x1 = rng.next_u64();
        let x2 = value.wrapping_sub(x0).wrapping_sub(x1);
        *s0 = [x0, x1];
        *s1 = [x1, x2];
        *s2 = [x2, x0];
        Ok(())
    }

    fn reconstruct(&self, shares: &[Option<ShareRow>]) -> Result<Reconstruction, SchemeError> {
        if shares.len() != 3 {
            return Err(SchemeError::WrongShareCount {
                expected: 3,
                got: shares.len(),
            });
        }
        let have = shares.iter().flatten().count();
        if have < 2 {
            return Err(SchemeError::NotEnoughShares { needed: 2, have });
        }
        // For each part, the copies present: (store, value), at most two.
        let mut copies = [[None::<(usize, u64)>; 2]; 3];
        for (part, slots) in copies.iter_mut().enumerate() {
            for (slot, (store, col)) in slots.iter_mut().zip(holders(part)) {
                *slot = shares
                    .get(store)
                    .copied()
                    .flatten()
                    .and_then(|row| row.get(col).map(|&v| (store, v)));
            }
        }
        // Parts whose two copies disagree, and the pair of stores involved.
        let mut disagreeing = [[0usize; 2]; 3];
        let mut n_dis = 0;
        let mut checked = false;
        for c in &copies {
            if let [Some((sa, va)), Some((sb, vb))] = c {
                checked = true;
                if va != vb {
                    if let Some(d) = disagreeing.get_mut(n_dis) {
                        *d = [*sa, *sb];
                    }
                    n_dis += 1;
                }
            }
        }
        let liar = match disagreeing.get(..n_dis).unwrap_or(&[]) {
            [] => None,
            // A store lying on both its columns spoils the two parts it holds: it is the one
            // store common to both disagreements, and all three stores must be present to see
            // two disagreements.
            [p, q] => {
                let mut common = p.iter().copied().filter(|s| q.contains(s));
                match (common.next(), common.next()) {
                    (Some(one), None) => Some(one),
                    _ => {
                        return Err(SchemeError::Inconsistent {
                            suspects: vec![0, 1, 2],
                        })
                    }
                }
            }
            [p] => {
                let mut suspects = p.to_vec();
                suspects.sort_unstable();
                return Err(SchemeError::Inconsistent { suspects });
            }
            _ => {
                return Err(SchemeError::Inconsistent {
                    suspects: vec![0, 1, 2],
                })
            }
        };
        let mut value = 0u64;
        for c in &copies {
            let part = c
                .iter()
                .flatten()
                .find(|(store, _)| Some(*store) != liar)
                .map(|&(_, v)| v)
                .ok_or(SchemeError::NotEnoughShares { needed: 2, have })?;
            value = value.wrapping_add(part);
        }
        let verdict = match (liar, checked) {
            (Some(l), _) => Verdict::Liar(l),
            (None, true) => Verdict::Consistent,
            (None, false) => Verdict::Unchecked,
        };
        Ok(Reconstruction { value, verdict })
    }

    fn repair_plan(&self, lost: usize, available: &[bool]) -> Option<RepairPlan> {
        if lost >= 3 {
            return None;
        }
        // Store `lost` holds parts `lost` (col 0) and `lost+1` (col 1); copy each from its
        // other holder.
        let mut copies = Vec::with_capacity(2);
        for (col, part) in [(0, lost), (1, (lost + 1) % 3)] {
            let (src, src_col) = holders(part)
                .into_iter()
                .find(|&(store, _)| store != lost)?;
            if !available.get(src).copied().unwrap_or(false) {
                return None;
            }
            copies.push((col, src, src_col));
        }
        Some(RepairPlan::Copy(copies))
    }
}
