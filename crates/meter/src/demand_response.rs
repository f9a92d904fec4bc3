//! Demand response: a load-control event and how it changes what the household draws.
//!
//! An event names a window of meter time and a reduction in percent. While the window is
//! open, every model step in which the household draws power (active power delivered to the
//! premises, `p > 0`) has its active and reactive power scaled by `(100 − percent) / 100`
//! (the household sheds that share of its load: thermostats set back, water heater off);
//! steps in which the home exports (solar) are left as they are. The registers, TOU tiers,
//! block demand and load profile then integrate the reduced power as usual, so the reduction
//! shows in all of them and their arithmetic stays consistent.
//!
//! A meter holds one event at a time: a new event replaces the one pending or in force; an
//! event with zero duration or zero percent cancels it. The window is in meter time, so a
//! clock change moves it with the meter's clock.

/// A load-control event as the head-end sends it (manufacturer procedure 1, see
/// [`crate::tables::procedures`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LoadControl {
    /// Meter time at which the window opens; 0 means "at once".
    pub start: u64,
    /// Length of the window in minutes.
    pub duration_min: u16,
    /// Share of the household's load shed during the window, 0..=100.
    pub reduction_pct: u8,
}

impl LoadControl {
    /// Meter time at which the window closes (exclusive).
    pub fn end(&self) -> u64 {
        self.start.saturating_add(u64::from(self.duration_min) * 60)
    }

    /// Whether this event cancels the one in force instead of starting one.
    pub fn is_cancel(&self) -> bool {
        self.duration_min == 0 || self.reduction_pct == 0
    }

    /// Whether the window is open at meter time `t`.
    pub fn covers(&self, t: u64) -> bool {
        (self.start..self.end()).contains(&t)
    }
}

/// The event a meter holds and whether its start has been announced.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct DrState {
    pub event: LoadControl,
    pub started: bool,
}

impl DrState {
    /// The first window edge after meter time `t` (`u64::MAX` if none).
    pub fn next_edge(&self, t: u64) -> u64 {
        if t < self.event.start {
            self.event.start
        } else if t < self.event.end() {
            self.event.end()
        } else {
            u64::MAX
        }
    }
}

/// Active and reactive power `(p, q)` with `reduction_pct` of a drawing household's load
/// shed (an exporting step is left as it is).
pub(crate) fn reduce(p: i32, q: i32, reduction_pct: u8) -> (i32, i32) {
    if p <= 0 || reduction_pct == 0 {
        return (p, q);
    }
    let keep = 100 - i64::from(reduction_pct.min(100));
    let scale = |x: i32| (i64::from(x) * keep / 100) as i32;
    (scale(p), scale(q))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reduction_scales_drawing_steps_only() {
        assert_eq!(reduce(1_000, 300, 40), (600, 180));
        assert_eq!(reduce(1_000, -300, 100), (0, 0));
        assert_eq!(reduce(-2_000, 100, 50), (-2_000, 100));
        assert_eq!(reduce(999, 1, 0), (999, 1));
        let e = LoadControl {
            start: 1_000,
            duration_min: 2,
            reduction_pct: 10,
        };
        assert_eq!(e.end(), 1_120);
        assert!(e.covers(1_000) && e.covers(1_119) && !e.covers(1_120) && !e.covers(999));
        let s = DrState {
            event: e,
            started: false,
        };
        assert_eq!(
            (s.next_edge(0), s.next_edge(1_000), s.next_edge(1_120)),
            (1_000, 1_120, u64::MAX)
        );
    }
}
