//! Shamir t-of-n sharing over GF(2^61 − 1).
//!
//! A reading `v < p` is the constant term of a random polynomial `f` of degree `t − 1`; store
//! `k` (0-based) holds `f(k + 1)`. Any `t − 1` stores learn nothing; any `t` reconstruct. With
//! `t + 1` stores answering a wrong share is detected; with `t + 2` or more it is identified.

use rand_core::CryptoRngCore;

use super::{
    Modulus, ParseSchemeError, Reconstruction, RepairPlan, SchemeError, SchemeSpec, ShareRow,
    ShareScheme, Verdict, MAX_SHAMIR_STORES,
};
use crate::field;

/// Shamir `t`-of-`n` sharing over the prime field 2^61 − 1.
#[derive(Clone, Copy, Debug)]
pub struct Shamir {
    t: u8,
    n: u8,
}

impl Shamir {
    /// A `t`-of-`n` scheme; needs `2 ≤ t ≤ n ≤ 32`.
    pub fn new(t: u8, n: u8) -> Result<Self, ParseSchemeError> {
        let text = format!("shamir-{t}-of-{n}");
        if t < 2 {
            return Err(ParseSchemeError::new(&text, "T must be at least 2"));
        }
        if n < t {
            return Err(ParseSchemeError::new(&text, "N must be at least T"));
        }
        if n > MAX_SHAMIR_STORES {
            return Err(ParseSchemeError::new(&text, "N must be at most 32"));
        }
        Ok(Shamir { t, n })
    }

    fn x(store: usize) -> u64 {
        store as u64 + 1
    }

    /// Interpolates at 0 from `points` (exactly `t` of them).
    fn interpolate(points: &[(usize, u64)], at: u64) -> u64 {
        let xs: Vec<u64> = points.iter().map(|&(s, _)| Self::x(s)).collect();
        let coeffs = field::lagrange_coefficients(&xs, at);
        points
            .iter()
            .zip(coeffs)
            .fold(0, |acc, (&(_, y), c)| field::add(acc, field::mul(c, y)))
    }

    /// Whether all points lie on the polynomial through the first `t`.
    fn consistent(&self, points: &[(usize, u64)]) -> bool {
        let t = usize::from(self.t);
        let (base, extra) = points.split_at(t.min(points.len()));
        extra
            .iter()
            .all(|&(s, y)| Self::interpolate(base, Self::x(s)) == y)
    }
}

impl ShareScheme for Shamir {
    fn spec(&self) -> SchemeSpec {
        SchemeSpec::Shamir {
            t: self.t,
            n: self.n,
        }
    }
    fn stores(&self) -> usize {
        usize::from(self.n)
    }
    fn threshold(&self) -> usize {
        usize::from(self.t)
    }
    fn columns(&self) -> usize {
        1
    }
    fn modulus(&self) -> Modulus {
        Modulus::Prime61
    }

    fn split(
        &self,
        value: u64,
        rng: &mut dyn CryptoRngCore,
        out: &mut [ShareRow],
    ) -> Result<(), SchemeError> {
        if out.len() != self.stores() {
            return Err(SchemeError::WrongShareCount {
                expected: self.stores(),
                got: out.len(),
            });
        }
        if value >= field::P {
            return Err(SchemeError::ValueOutOfField(value));
        }
        // f(x) = value + c1 x + ... + c_{t-1} x^{t-1}; at most 31 random coefficients.
        let mut coeffs = [0u64; MAX_SHAMIR_STORES as usize];
        let degree = usize::from(self.t) - 1;
        for c in coeffs.iter_mut().take(degree) {
            *c = field::random(rng);
        }
        for (k, row) in out.iter_mut().enumerate() {
            let x = Self::x(k);
            let mut acc = 0;
            for &c in coeffs.iter().take(degree).rev() {
                acc = field::add(field::mul(acc, x), c);
            }
            *row = [field::add(field::mul(acc, x), value), 0];
        }
        Ok(())
    }

    fn reconstruct(&self, shares: &[Option<ShareRow>]) -> Result<Reconstruction, SchemeError> {
        if shares.len() != self.stores() {
            return Err(SchemeError::WrongShareCount {
                expected: self.stores(),
                got: shares.len(),
            });
        }
        let t = self.threshold();
        let points: Vec<(usize, u64)> = shares
            .iter()
            .enumerate()
            .filter_map(|(s, row)| row.map(|r| (s, r[0])))
            .collect();
        if points.len() < t {
            return Err(SchemeError::NotEnoughShares {
                needed: t,
                have: points.len(),
            });
        }
        if points.len() == t {
            return Ok(Reconstruction {
                value: Self::interpolate(&points, 0),
                verdict: Verdict::Unchecked,
            });
        }
        // A share outside the field cannot be honest.
        if let Some(&(bad, _)) = points.iter().find(|&&(_, y)| y >= field::P) {
            if points.len() > t {
                let rest: Vec<_> = points.iter().copied().filter(|&(s, _)| s != bad).collect();
                if self.consistent(&rest) {
                    return Ok(Reconstruction {
                        value: Self::interpolate(rest.get(..t).unwrap_or(&rest), 0),
                        verdict: Verdict::Liar(bad),
                    });
                }
            }
        }
        if self.consistent(&points) {
            return Ok(Reconstruction {
                value: Self::interpolate(points.get(..t).unwrap_or(&points), 0),
                verdict: Verdict::Consistent,
            });
        }
        let all: Vec<usize> = points.iter().map(|&(s, _)| s).collect();
        if points.len() >= t + 2 {
            let fits: Vec<usize> = all
                .iter()
                .copied()
                .filter(|&cand| {
                    let rest: Vec<_> = points.iter().copied().filter(|&(s, _)| s != cand).collect();
                    self.consistent(&rest)
                })
                .collect();
            if let [liar] = fits.as_slice() {
                let rest: Vec<_> = points
                    .iter()
                    .copied()
                    .filter(|&(s, _)| s != *liar)
                    .collect();
                return Ok(Reconstruction {
                    value: Self::interpolate(rest.get(..t).unwrap_or(&rest), 0),
                    verdict: Verdict::Liar(*liar),
                });
            }
        }
        Err(SchemeError::Inconsistent { suspects: all })
    }

    fn repair_plan(&self, lost: usize, available: &[bool]) -> Option<RepairPlan> {
        if lost >= self.stores() {
            return None;
        }
        let helpers: Vec<usize> = (0..self.stores())
            .filter(|&s| s != lost && available.get(s).copied().unwrap_or(false))
            .take(self.threshold())
            .collect();
        if helpers.len() < self.threshold() {
            return None;
        }
        let xs: Vec<u64> = helpers.iter().map(|&s| Self::x(s)).collect();
        let coeffs = field::lagrange_coefficients(&xs, Self::x(lost));
        Some(RepairPlan::Interpolate(
            helpers.into_iter().zip(coeffs).collect(),
        ))
    }
}
