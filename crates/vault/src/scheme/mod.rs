//! Share arithmetic: how one reading becomes one share row per store, and how partial sums
//! returned by the stores become a total again.
//!
//! Every scheme is linear: the column-wise sum (mod 2^64 or mod p) of many readings' share rows
//! is a valid share row of the sum of those readings. That is what lets each store compute its
//! part of a bill with a plain SQL `SUM`.

mod additive;
mod replicated;
mod shamir;

pub use additive::Additive2of2;
pub use replicated::Replicated2of3;
pub use shamir::Shamir;

use std::fmt;
use std::str::FromStr;

use rand_core::CryptoRngCore;

/// The share columns one store holds for one reading (or one sum). Schemes with a single
/// column use only index 0 and leave index 1 at zero.
pub type ShareRow = [u64; 2];

/// How a store adds share values: what its SQL sums are reduced by.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Modulus {
    /// Sums wrap modulo 2^64 (values stored as the bit pattern of a signed 64-bit integer).
    Wrap64,
    /// Sums are reduced modulo the prime 2^61 − 1 (values stored in `0..p`).
    Prime61,
}

impl Modulus {
    /// Adds two share values under this modulus.
    pub fn add(self, a: u64, b: u64) -> u64 {
        match self {
            Modulus::Wrap64 => a.wrapping_add(b),
            Modulus::Prime61 => crate::field::add(a, b),
        }
    }

    /// Whether `v` is a valid stored share value under this modulus.
    pub fn contains(self, v: u64) -> bool {
        match self {
            Modulus::Wrap64 => true,
            Modulus::Prime61 => v < crate::field::P,
        }
    }
}

/// What the cross-store consistency check concluded for one reconstructed value.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// The shares present carry no redundancy (e.g. 2-of-2, or exactly `t` Shamir shares).
    Unchecked,
    /// Redundant shares were present and all agreed.
    Consistent,
    /// One store's share disagreed with the others and was identified; the value was
    /// reconstructed without it.
    Liar(usize),
}

/// A value reconstructed from shares, with the consistency verdict.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Reconstruction {
    /// The reconstructed value (mod 2^64, or mod p for Shamir).
    pub value: u64,
    /// What the consistency check found.
    pub verdict: Verdict,
}

/// How a lost store's share columns can be rebuilt from the other stores.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RepairPlan {
    /// Each column of the lost store is a copy of a column another store already holds:
    /// `(target column, source store, source column)`.
    Copy(Vec<(usize, usize, usize)>),
    /// The lost share is `Σ coeff · share(store)` (mod p) over the listed helper stores.
    Interpolate(Vec<(usize, u64)>),
}

/// Errors of the share arithmetic.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SchemeError {
    /// Fewer shares were available than the scheme needs to reconstruct.
    #[error("{have} share(s) available, {needed} needed")]
    NotEnoughShares {
        /// Shares the scheme needs.
        needed: usize,
        /// Shares that were present.
        have: usize,
    },
    /// The shares disagree and the store at fault could not be singled out.
    #[error("shares are inconsistent; one of stores {suspects:?} returned a wrong value")]
    Inconsistent {
        /// Stores that may have lied (one of them did).
        suspects: Vec<usize>,
    },
    /// The value does not fit the scheme's field (Shamir needs values below 2^61 − 1).
    #[error("value {0} does not fit the field (must be below 2^61-1)")]
    ValueOutOfField(u64),
    /// The output slice does not have one row per store.
    #[error("expected {expected} share rows, got {got}")]
    WrongShareCount {
        /// Stores of the scheme.
        expected: usize,
        /// Rows given.
        got: usize,
    },
}

/// A secret-sharing scheme over a fixed set of `stores()` stores.
///
/// Implementations are pure arithmetic: no I/O, randomness injected by the caller.
pub trait ShareScheme: Send + Sync + fmt::Debug {
    /// The scheme's name and parameters.
    fn spec(&self) -> SchemeSpec;
    /// Number of stores (shares per reading).
    fn stores(&self) -> usize;
    /// Number of stores needed to reconstruct.
    fn threshold(&self) -> usize;
    /// Number of share columns each store holds (1 or 2).
    fn columns(&self) -> usize;
    /// How stores sum their share columns.
    fn modulus(&self) -> Modulus;
    /// Splits `value` into one share row per store, written into `out` (length `stores()`).
    fn split(
        &self,
        value: u64,
        rng: &mut dyn CryptoRngCore,
        out: &mut [ShareRow],
    ) -> Result<(), SchemeError>;
    /// Reconstructs a value (or a sum) from the share rows of the stores that answered
    /// (`None` for a store that is missing), checking consistency where redundancy allows.
    fn reconstruct(&self, shares: &[Option<ShareRow>]) -> Result<Reconstruction, SchemeError>;
    /// How to rebuild store `lost` from the stores marked available, if the scheme allows it.
    fn repair_plan(&self, lost: usize, available: &[bool]) -> Option<RepairPlan>;
}

/// The choice of scheme, as written in configuration and in every store's metadata.
///
/// Text form: `replicated-2-of-3`, `additive-2-of-2`, `shamir-T-of-N`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
pub enum SchemeSpec {
    /// 2-of-3 replicated sharing over Z_2^64 (the default).
    #[default]
    Replicated2of3,
    /// 2-of-2 additive sharing over Z_2^64.
    Additive2of2,
    /// Shamir `t`-of-`n` over GF(2^61 − 1).
    Shamir {
        /// Shares needed to reconstruct (2 ≤ t ≤ n).
        t: u8,
        /// Number of stores (n ≤ 32).
        n: u8,
    },
}

/// Largest number of stores a Shamir deployment may have.
pub const MAX_SHAMIR_STORES: u8 = 32;

impl SchemeSpec {
    /// Builds the arithmetic for this spec.
    pub fn build(self) -> Result<Box<dyn ShareScheme>, ParseSchemeError> {
        Ok(match self {
            SchemeSpec::Replicated2of3 => Box::new(Replicated2of3),
            SchemeSpec::Additive2of2 => Box::new(Additive2of2),
            SchemeSpec::Shamir { t, n } => Box::new(Shamir::new(t, n)?),
        })
    }
}

impl fmt::Display for SchemeSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SchemeSpec::Replicated2of3 => f.write_str("replicated-2-of-3"),
            SchemeSpec::Additive2of2 => f.write_str("additive-2-of-2"),
            SchemeSpec::Shamir { t, n } => write!(f, "shamir-{t}-of-{n}"),
        }
    }
}

/// A scheme name that could not be parsed or has impossible parameters.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid scheme {text:?}: {reason}")]
pub struct ParseSchemeError {
    /// The text given (truncated to 64 characters).
    pub text: String,
    /// What was wrong.
    pub reason: &'static str,
}

impl ParseSchemeError {
    pub(crate) fn new(text: &str, reason: &'static str) -> Self {
        ParseSchemeError {
            text: text.chars().take(64).collect(),
            reason,
        }
    }
}

impl FromStr for SchemeSpec {
    type Err = ParseSchemeError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "replicated-2-of-3" => return Ok(SchemeSpec::Replicated2of3),
            "additive-2-of-2" => return Ok(SchemeSpec::Additive2of2),
            _ => {}
        }
        let rest = s
            .strip_prefix("shamir-")
            .ok_or_else(|| ParseSchemeError::new(s, "unknown scheme name"))?;
        let (t, n) = rest
            .split_once("-of-")
            .ok_or_else(|| ParseSchemeError::new(s, "expected shamir-T-of-N"))?;
        let digits =
            |x: &str| !x.is_empty() && x.len() <= 3 && x.bytes().all(|b| b.is_ascii_digit());
        if !digits(t) || !digits(n) {
            return Err(ParseSchemeError::new(
                s,
                "T and N must be small decimal numbers",
            ));
        }
        let t: u8 = t
            .parse()
            .map_err(|_| ParseSchemeError::new(s, "T out of range"))?;
        let n: u8 = n
            .parse()
            .map_err(|_| ParseSchemeError::new(s, "N out of range"))?;
        Shamir::new(t, n).map_err(|e| ParseSchemeError::new(s, e.reason))?;
        Ok(SchemeSpec::Shamir { t, n })
    }
}

#[cfg(test)]
mod tests;
