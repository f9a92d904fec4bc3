//! Arithmetic in the prime field GF(p), p = 2^61 − 1 (a Mersenne prime), used by Shamir sharing.
//!
//! Elements are `u64` values in `0..P`. Reduction uses the Mersenne identity
//! `2^61 ≡ 1 (mod p)`, so no division is needed.

/// The field modulus, 2^61 − 1.
pub const P: u64 = (1 << 61) - 1;

/// Reduces any `u128` below 2^122 (a product of two field elements, or a sum of such) modulo `P`.
fn reduce128(x: u128) -> u64 {
    // Fold twice: x = hi·2^61 + lo ≡ hi + lo.
    let folded = (x & P as u128) + (x >> 61);
    let folded = (folded & P as u128) + (folded >> 61);
    let v = folded as u64;
    if v >= P {
        v - P
    } else {
        v
    }
}

/// Reduces any `u64` modulo `P`.
pub fn reduce(x: u64) -> u64 {
    reduce128(u128::from(x))
}

/// `(a + b) mod P` for `a, b < P`.
pub fn add(a: u64, b: u64) -> u64 {
    let s = a + b; // < 2^62, no overflow
    if s >= P {
        s - P
    } else {
        s
    }
}

/// `(a − b) mod P` for `a, b < P`.
pub fn sub(a: u64, b: u64) -> u64 {
    if a >= b {
        a - b
    } else {
        a + P - b
    }
}

/// `(a · b) mod P` for `a, b < P`.
pub fn mul(a: u64, b: u64) -> u64 {
    reduce128(u128::from(a) * u128::from(b))
}

/// `a^e mod P`.
pub fn pow(mut a: u64, mut e: u64) -> u64 {
    let mut r = 1;
    while e > 0 {
        if e & 1 == 1 {
            r = mul(r, a);
        }
        a = mul(a, a);
        e >>= 1;
    }
    r
}

/// The multiplicative inverse of a non-zero `a` (Fermat: a^(p−2)). Returns 0 for 0.
pub fn inv(a: u64) -> u64 {
    pow(a, P - 2)
}

/// Lagrange coefficients for evaluating at `at` the polynomial through the points with the
/// given distinct x-coordinates: `f(at) = Σ coeff[j] · f(xs[j])`.
pub fn lagrange_coefficients(xs: &[u64], at: u64) -> Vec<u64> {
    xs.iter()
        .enumerate()
        .map(|(j, &xj)| {
            let mut num = 1;
            let mut den = 1;
            for (m, &xm) in xs.iter().enumerate() {
                if m != j {
                    num = mul(num, sub(at, xm));
                    den = mul(den, sub(xj, xm));
                }
            }
            mul(num, inv(den))
        })
        .collect()
}

/// Draws a uniform field element by rejection sampling 61-bit values.
pub fn random<R: rand_core::RngCore + ?Sized>(rng: &mut R) -> u64 {
    loop {
        let v = rng.next_u64() >> 3;
        if v < P {
            return v;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn reduce_edges() {
        assert_eq!(reduce(P), 0);
        assert_eq!(reduce(P + 1), 1);
        assert_eq!(reduce(u64::MAX), (u64::MAX % P));
    }

    #[test]
    fn inverse_of_small_numbers() {
        for a in 1..200u64 {
            assert_eq!(mul(a, inv(a)), 1);
        }
        assert_eq!(mul(P - 1, inv(P - 1)), 1);
    }

    proptest! {
        #[test]
        fn matches_u128_reference(a in 0..P, b in 0..P) {
            let p = u128::from(P);
            prop_assert_eq!(u128::from(add(a, b)), (u128::from(a) + u128::from(b)) % p);
            prop_assert_eq!(u128::from(sub(a, b)), (u128::from(a) + p - u128::from(b)) % p);
            prop_assert_eq!(u128::from(mul(a, b)), (u128::from(a) * u128::from(b)) % p);
        }

        #[test]
        fn lagrange_interpolates_a_line(c0 in 0..P, c1 in 0..P, at in 0..P) {
            let f = |x: u64| add(c0, mul(c1, x));
            let xs = [3u64, 9];
            let k = lagrange_coefficients(&xs, at);
            let got = add(mul(k[0], f(3)), mul(k[1], f(9)));
            prop_assert_eq!(got, f(at));
        }
    }
}
