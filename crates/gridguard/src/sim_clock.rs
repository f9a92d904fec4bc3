//! Simulated time for demos and tests: the meters' clock runs `speed` times faster than real
//! time from an agreed origin, so that processes that share the origin (a head-end and a
//! fleet of simulated meters) agree on the simulated time without talking to each other.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// A simulated clock: `sim_start + speed × (real now − real_start)`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct SimClock {
    /// Real time (milliseconds since 1970) at which the simulated time was `sim_start`.
    pub real_start_ms: u64,
    /// Simulated seconds since 1970 at `real_start_ms`.
    pub sim_start: u64,
    /// Simulated seconds per real second.
    pub speed: f64,
}

impl SimClock {
    /// A clock that reads `sim_start` now.
    pub fn starting_now(sim_start: u64, speed: f64) -> Self {
        SimClock {
            real_start_ms: real_now_ms(),
            sim_start,
            speed,
        }
    }

    /// The simulated time now, seconds since 1970.
    pub fn now(&self) -> u64 {
        self.at_real_ms(real_now_ms())
    }

    /// The simulated time at real time `ms` (milliseconds since 1970).
    pub fn at_real_ms(&self, ms: u64) -> u64 {
        let elapsed = ms.saturating_sub(self.real_start_ms) as f64 / 1_000.0;
        self.sim_start + (elapsed * self.speed) as u64
    }

    /// Real time that `sim` simulated seconds take.
    pub fn real(&self, sim: u64) -> Duration {
        Duration::from_secs_f64(sim as f64 / self.speed.max(1e-9))
    }
}

/// Milliseconds since 1970, real time.
pub fn real_now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn simulated_time_runs_at_the_given_speed_from_the_origin() {
        let c = SimClock {
            real_start_ms: 10_000,
            sim_start: 1_000_000,
            speed: 21_600.0,
        };
        assert_eq!(c.at_real_ms(10_000), 1_000_000);
        assert_eq!(c.at_real_ms(14_000), 1_000_000 + 86_400);
        assert_eq!(c.at_real_ms(5_000), 1_000_000);
        assert_eq!(c.real(86_400), Duration::from_secs(4));
    }
}
