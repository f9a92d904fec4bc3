//! Counter-based pseudo-random numbers for the measurement model.
//!
//! The model draws its noise as a pure function of (meter seed, stream, counter) rather than
//! from a stateful generator, so the energy a meter records does not depend on how a driver
//! chunks its calls to [`crate::Meter::advance`], and a meter needs no generator state. The
//! mixing function is SplitMix64's finaliser (a statistical mixer, not a cryptographic one:
//! nothing secret depends on it).

/// Streams keep independent draws apart.
#[derive(Clone, Copy, Debug)]
#[repr(u64)]
pub enum Stream {
    /// Household parameters drawn once per meter.
    Household = 1,
    /// Per-step load noise.
    Load = 2,
    /// Per-day cloudiness for rooftop solar.
    Cloud = 3,
    /// Per-step reactive noise.
    Reactive = 4,
    /// Grid voltage and frequency wander.
    Grid = 5,
}

/// SplitMix64 finaliser of `x`.
pub fn mix(mut x: u64) -> u64 {
    x = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    x = (x ^ (x >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    x ^ (x >> 31)
}

/// A 64-bit draw for (`seed`, `stream`, `counter`).
pub fn draw(seed: u64, stream: Stream, counter: u64) -> u64 {
    mix(mix(seed ^ (stream as u64).wrapping_mul(0xD6E8_FEB8_6659_FD93)) ^ counter)
}

/// A uniform draw in `[0, 1)` from the top 24 bits of `x`.
pub fn unit(x: u64) -> f32 {
    (x >> 40) as f32 / (1u64 << 24) as f32
}

/// An approximately normal draw (mean 0, standard deviation 1) from the sum of four uniforms
/// taken out of one 64-bit word (Irwin–Hall, bounded to ±3.46).
pub fn gaussish(x: u64) -> f32 {
    let mut s = 0.0f32;
    for k in 0..4 {
        s += ((x >> (16 * k)) & 0xFFFF) as f32 / 65_536.0;
    }
    // Sum of 4 U(0,1): mean 2, variance 4/12.
    (s - 2.0) * 1.732_050_8
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn draws_are_deterministic_and_spread() {
        assert_eq!(draw(7, Stream::Load, 3), draw(7, Stream::Load, 3));
        assert_ne!(draw(7, Stream::Load, 3), draw(7, Stream::Load, 4));
        assert_ne!(draw(7, Stream::Load, 3), draw(7, Stream::Cloud, 3));
        let n = 20_000;
        let (mut sum, mut sq) = (0.0f64, 0.0f64);
        for i in 0..n {
            let g = f64::from(gaussish(draw(1, Stream::Load, i)));
            sum += g;
            sq += g * g;
            let u = unit(draw(1, Stream::Cloud, i));
            assert!((0.0..1.0).contains(&u));
        }
        let mean = sum / n as f64;
        let var = sq / n as f64 - mean * mean;
        assert!(mean.abs() < 0.05, "mean {mean}");
        assert!((var - 1.0).abs() < 0.08, "variance {var}");
    }
}
