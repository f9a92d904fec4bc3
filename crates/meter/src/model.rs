//! The measurement model: what the household behind the meter draws (and, with rooftop
//! solar, feeds back) at a given time.
//!
//! Power is piecewise constant over model steps (`step_s` seconds, one minute by default) and
//! is a pure function of the meter seed and the step index, so a meter is reproducible from its
//! seed and cheap to keep (no generator state). The shape: a weekday and a weekend hourly curve
//! (interpolated by minute), a seasonal heating/cooling factor, multiplicative noise, random
//! large appliances, and for some homes a solar array with a daily cloudiness draw.

use crate::noise::{draw, gaussish, unit, Stream};

/// Nominal service voltage (V).
pub const NOMINAL_VOLTS: f32 = 240.0;
/// Nominal frequency (Hz).
pub const NOMINAL_HZ: f32 = 60.0;
/// Meter class current (A): form 2S, class 200.
pub const CLASS_AMPS: f32 = 200.0;
/// The largest power the service can carry (W), 200 A at 240 V.
pub const MAX_WATTS: i32 = 48_000;

/// Relative hourly consumption on a weekday (evening peak), maximum 1.
const WEEKDAY: [f32; 24] = [
    0.35, 0.30, 0.28, 0.28, 0.30, 0.40, 0.65, 0.80, 0.60, 0.45, 0.40, 0.40, 0.42, 0.40, 0.40, 0.45,
    0.60, 0.85, 1.00, 0.95, 0.85, 0.70, 0.55, 0.42,
];
/// Relative hourly consumption on Saturday and Sunday (later, flatter morning).
const WEEKEND: [f32; 24] = [
    0.40, 0.33, 0.30, 0.28, 0.28, 0.30, 0.40, 0.55, 0.70, 0.75, 0.70, 0.65, 0.65, 0.60, 0.58, 0.60,
    0.70, 0.85, 0.95, 0.95, 0.85, 0.72, 0.58, 0.45,
];

/// Whether a household gets rooftop solar.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum Solar {
    /// Drawn from the seed (about one home in three).
    #[default]
    FromSeed,
    /// Always present.
    Yes,
    /// Never present.
    No,
}

/// Household parameters, all derived from the meter seed.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Household {
    /// Always-on base load (W).
    pub base_w: f32,
    /// Amplitude of the daily curve (W at curve value 1).
    pub curve_w: f32,
    /// Standard deviation of the multiplicative noise.
    pub noise: f32,
    /// Weekend multiplier.
    pub weekend: f32,
    /// Ratio reactive/active of the load (tan φ, lagging).
    pub tan_phi: f32,
    /// Solar array peak output (W), 0 without solar.
    pub solar_peak_w: f32,
    /// Probability per step that a large appliance runs.
    pub appliance_p: f32,
    /// Power of that appliance (W).
    pub appliance_w: f32,
}

impl Household {
    /// Draws a household from `seed`.
    pub fn from_seed(seed: u64, solar: Solar) -> Self {
        let u = |k: u64| unit(draw(seed, Stream::Household, k));
        let has_solar = match solar {
            Solar::FromSeed => u(5) < 0.33,
            Solar::Yes => true,
            Solar::No => false,
        };
        Household {
            base_w: 120.0 + 280.0 * u(0),
            curve_w: 700.0 + 2_300.0 * u(1),
            noise: 0.08 + 0.22 * u(2),
            weekend: 0.95 + 0.35 * u(3),
            tan_phi: 0.15 + 0.35 * u(4),
            solar_peak_w: if has_solar {
                2_500.0 + 5_500.0 * u(6)
            } else {
                0.0
            },
            appliance_p: 0.01 + 0.04 * u(7),
            appliance_w: 1_500.0 + 4_000.0 * u(8),
        }
    }

    /// Active (W, positive = delivered to the home) and reactive (var, positive = lagging)
    /// power during model step `step` of `step_s` seconds.
    pub fn power(&self, seed: u64, step: u64, step_s: u32) -> (i32, i32) {
        let t = step * u64::from(step_s.max(1));
        let day = t / 86_400;
        let sod = (t % 86_400) as f32;
        let hour = sod / 3_600.0;
        let weekend = matches!(crate::time::weekday(t), 0 | 6);
        let curve = if weekend { &WEEKEND } else { &WEEKDAY };
        let h0 = (hour as usize).min(23);
        let frac = hour - h0 as f32;
        let a = curve.get(h0).copied().unwrap_or(0.5);
        let b = curve.get((h0 + 1) % 24).copied().unwrap_or(0.5);
        let shape = a + (b - a) * frac;
        let doy = (day % 365) as f32;
        // Heating in winter and cooling in summer both raise the load; spring and autumn low.
        let season = 1.0 + 0.25 * (core::f32::consts::TAU * doy / 365.0 * 2.0).cos();
        let wk = if weekend { self.weekend } else { 1.0 };
        let n = draw(seed, Stream::Load, step);
        let mut load = self.base_w + self.curve_w * shape * season * wk;
        load *= (1.0 + self.noise * gaussish(n)).max(0.05);
        if unit(n.rotate_left(17)) < self.appliance_p {
            load += self.appliance_w;
        }
        let mut solar = 0.0;
        if self.solar_peak_w > 0.0 {
            let daylen = 12.0 + 2.5 * (core::f32::consts::TAU * (doy - 172.0) / 365.0).cos();
            let sunrise = 12.5 - daylen / 2.0;
            let x = (hour - sunrise) / daylen;
            if (0.0..1.0).contains(&x) {
                let cloud = 0.3 + 0.7 * unit(draw(seed, Stream::Cloud, day));
                let sun_season = 0.8 + 0.2 * (daylen - 9.5) / 5.0;
                solar = self.solar_peak_w * (core::f32::consts::PI * x).sin() * cloud * sun_season;
            }
        }
        let q_noise = gaussish(draw(seed, Stream::Reactive, step));
        let p = (load - solar).clamp(-(MAX_WATTS as f32), MAX_WATTS as f32);
        let q = (load * self.tan_phi - 0.12 * solar + 40.0 * q_noise)
            .clamp(-(MAX_WATTS as f32), MAX_WATTS as f32);
        (p as i32, q as i32)
    }
}

/// Grid voltage (V) and frequency (Hz) at `t`: small wander around nominal.
pub fn grid(seed: u64, t: u64) -> (f32, f32) {
    let minute = t / 60;
    let v = NOMINAL_VOLTS + 2.5 * gaussish(draw(seed, Stream::Grid, minute));
    let f = NOMINAL_HZ + 0.01 * gaussish(draw(seed, Stream::Grid, minute ^ (1 << 63)));
    (v, f)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn evening_exceeds_night_and_solar_exports_at_noon() {
        let mut evening = 0i64;
        let mut night = 0i64;
        let mut exported_steps = 0;
        for seed in 0..200u64 {
            let h = Household::from_seed(seed, Solar::Yes);
            assert!(h.solar_peak_w > 0.0);
            // A weekday in May 2026 (2026-05-13, Wednesday), one-minute steps.
            let day0 = 1_778_630_400 / 60;
            for m in 0..1_440u64 {
                let (p, q) = h.power(seed, day0 + m, 60);
                assert!(p.abs() <= MAX_WATTS && q.abs() <= MAX_WATTS);
                if (18 * 60..20 * 60).contains(&m) {
                    evening += i64::from(p);
                }
                if (2 * 60..4 * 60).contains(&m) {
                    night += i64::from(p);
                }
                if p < 0 {
                    exported_steps += 1;
                }
            }
        }
        assert!(evening * 2 > night * 3, "evening {evening} night {night}");
        assert!(exported_steps > 0);
        let none = Household::from_seed(3, Solar::No);
        assert_eq!(none.solar_peak_w, 0.0);
        assert_eq!(
            Household::from_seed(9, Solar::FromSeed),
            Household::from_seed(9, Solar::FromSeed)
        );
    }
}
