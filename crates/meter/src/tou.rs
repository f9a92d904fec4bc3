//! Time-of-use calendar: six tiers, daily schedules of up to 48 switch points, one schedule
//! per day of the week.
//!
//! A switch point makes its tier active from its minute of the day until the next switch
//! point, which may lie on a later day: the active tier carries over midnight unless the new
//! day's schedule has a switch point at minute 0. Before any switch point has ever taken
//! effect (a calendar with no points at all), tier 0 (tier A) is active. A calendar is
//! immutable and meant to be shared (`Arc`) by every meter on the same tariff.

use crate::time::{weekday, DAY_S};

/// Number of TOU tiers (A–F).
pub const TIERS: usize = 6;
/// Most switch points a daily schedule may hold.
pub const MAX_SWITCHES_PER_DAY: usize = 48;
/// Most daily schedules a calendar may hold.
pub const MAX_SCHEDULES: usize = 16;

/// A TOU tier, 0..=5 (A–F).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Tier(u8);

impl Tier {
    /// Tier `n` (0-based), `None` unless `n < 6`.
    pub fn new(n: u8) -> Option<Tier> {
        (usize::from(n) < TIERS).then_some(Tier(n))
    }
    /// Zero-based index.
    pub fn index(self) -> usize {
        usize::from(self.0)
    }
    /// Zero-based number.
    pub fn get(self) -> u8 {
        self.0
    }
}

/// A tier switch at a minute of the day.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SwitchPoint {
    /// Minute of the day, 0..1440.
    pub minute: u16,
    /// Tier active from that minute.
    pub tier: Tier,
}

/// Errors building a calendar.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum TouError {
    /// A schedule has more than 48 switch points.
    #[error("schedule {0} has more than 48 switch points")]
    TooManySwitches(usize),
    /// More than 16 schedules.
    #[error("more than 16 daily schedules")]
    TooManySchedules,
    /// A switch point minute is 1440 or more.
    #[error("switch minute {0} is not within a day")]
    BadMinute(u16),
    /// Two switch points of one schedule at the same minute.
    #[error("two switch points at minute {0}")]
    DuplicateMinute(u16),
    /// A day of the week names a schedule that does not exist.
    #[error("day {day} uses schedule {schedule}, which does not exist")]
    NoSuchSchedule {
        /// Day of week (0 = Sunday).
        day: usize,
        /// Schedule index.
        schedule: u8,
    },
}

/// A TOU calendar: daily schedules and the schedule used on each day of the week.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TouCalendar {
    schedules: Vec<Vec<SwitchPoint>>,
    week: [u8; 7],
}

impl TouCalendar {
    /// Builds a calendar; each schedule's points are sorted by minute. `week[d]` is the
    /// schedule for day `d` (0 = Sunday).
    pub fn new(mut schedules: Vec<Vec<SwitchPoint>>, week: [u8; 7]) -> Result<Self, TouError> {
        if schedules.len() > MAX_SCHEDULES {
            return Err(TouError::TooManySchedules);
        }
        for (i, s) in schedules.iter_mut().enumerate() {
            if s.len() > MAX_SWITCHES_PER_DAY {
                return Err(TouError::TooManySwitches(i));
            }
            s.sort_by_key(|p| p.minute);
            for p in s.iter() {
                if p.minute >= 1_440 {
                    return Err(TouError::BadMinute(p.minute));
                }
            }
            for w in s.windows(2) {
                if let [a, b] = w {
                    if a.minute == b.minute {
                        return Err(TouError::DuplicateMinute(a.minute));
                    }
                }
            }
        }
        for (day, &schedule) in week.iter().enumerate() {
            if usize::from(schedule) >= schedules.len() {
                return Err(TouError::NoSuchSchedule { day, schedule });
            }
        }
        Ok(TouCalendar { schedules, week })
    }

    /// A flat calendar: tier A all the time.
    pub fn flat() -> Self {
        TouCalendar {
            schedules: vec![vec![SwitchPoint {
                minute: 0,
                tier: Tier(0),
            }]],
            week: [0; 7],
        }
    }

    /// A common residential tariff: weekdays off-peak (A) 21:00–07:00, shoulder (B)
    /// 07:00–14:00, peak (C) 14:00–21:00; weekends off-peak all day.
    pub fn residential() -> Self {
        let p = |minute: u16, tier: u8| SwitchPoint {
            minute,
            tier: Tier(tier),
        };
        TouCalendar {
            schedules: vec![
                vec![p(0, 0), p(420, 1), p(840, 2), p(1260, 0)],
                vec![p(0, 0)],
            ],
            week: [1, 0, 0, 0, 0, 0, 1],
        }
    }

    /// The daily schedules.
    pub fn schedules(&self) -> &[Vec<SwitchPoint>] {
        &self.schedules
    }

    /// Schedule index per day of the week (0 = Sunday).
    pub fn week(&self) -> [u8; 7] {
        self.week
    }

    fn schedule_for_day(&self, day: u64) -> &[SwitchPoint] {
        let wd = usize::from(weekday(day * DAY_S));
        let idx = self.week.get(wd).copied().unwrap_or(0);
        self.schedules
            .get(usize::from(idx))
            .map_or(&[], |s| s.as_slice())
    }

    /// The tier active at `t` and the time (exclusive) until which it is known to stay
    /// active: the next switch point of the day or the next midnight, whichever is first.
    pub fn tier_at(&self, t: u64) -> (Tier, u64) {
        let day = t / DAY_S;
        let minute = ((t % DAY_S) / 60) as u16;
        let today = self.schedule_for_day(day);
        let midnight = (day + 1).saturating_mul(DAY_S);
        let until = today
            .iter()
            .find(|p| p.minute > minute)
            .map_or(midnight, |p| {
                (day * DAY_S).saturating_add(u64::from(p.minute) * 60)
            });
        if let Some(p) = today.iter().rev().find(|p| p.minute <= minute) {
            return (p.tier, until);
        }
        // Carry the last tier over midnight from earlier days (a week back at most).
        for back in 1..=7u64 {
            let Some(d) = day.checked_sub(back) else {
                break;
            };
            if let Some(p) = self.schedule_for_day(d).last() {
                return (p.tier, until);
            }
        }
        (Tier(0), until)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sp(minute: u16, tier: u8) -> SwitchPoint {
        SwitchPoint {
            minute,
            tier: Tier(tier),
        }
    }

    // 2026-11-23 is a Monday.
    const MONDAY: u64 = 1_795_392_000;

    #[test]
    fn switch_at_midnight_takes_effect_at_midnight() {
        let cal = TouCalendar::new(vec![vec![sp(0, 3), sp(720, 1)]], [0; 7]).unwrap();
        assert_eq!(cal.tier_at(MONDAY), (Tier(3), MONDAY + 720 * 60));
        assert_eq!(cal.tier_at(MONDAY - 1).0, Tier(1));
        assert_eq!(cal.tier_at(MONDAY + 720 * 60).0, Tier(1));
        assert_eq!(cal.tier_at(MONDAY + 720 * 60 - 1).0, Tier(3));
    }

    #[test]
    fn tier_carries_over_midnight_without_a_midnight_point() {
        // Weekday schedule 0 ends in tier 4 at 22:00; Tuesday starts with no point at 0.
        let cal = TouCalendar::new(vec![vec![sp(360, 2), sp(1320, 4)]], [0; 7]).unwrap();
        let tue = MONDAY + DAY_S;
        assert_eq!(cal.tier_at(tue + 60), (Tier(4), tue + 360 * 60));
        assert_eq!(cal.tier_at(tue - 60).0, Tier(4));
        assert_eq!(cal.tier_at(tue + 360 * 60).0, Tier(2));
    }

    #[test]
    fn forty_eight_switch_points() {
        let pts: Vec<_> = (0..48u16).map(|i| sp(i * 30, (i % 6) as u8)).collect();
        let cal = TouCalendar::new(vec![pts], [0; 7]).unwrap();
        for i in 0..48u64 {
            let (tier, until) = cal.tier_at(MONDAY + i * 1_800 + 59);
            assert_eq!(tier, Tier((i % 6) as u8));
            assert_eq!(until, MONDAY + (i + 1) * 1_800);
        }
        let too_many: Vec<_> = (0..49u16).map(|i| sp(i * 29, 0)).collect();
        assert_eq!(
            TouCalendar::new(vec![too_many], [0; 7]),
            Err(TouError::TooManySwitches(0))
        );
    }

    #[test]
    fn invalid_calendars_are_refused() {
        assert_eq!(
            TouCalendar::new(vec![vec![sp(1_440, 0)]], [0; 7]),
            Err(TouError::BadMinute(1_440))
        );
        assert_eq!(
            TouCalendar::new(vec![vec![sp(5, 0), sp(5, 1)]], [0; 7]),
            Err(TouError::DuplicateMinute(5))
        );
        assert_eq!(
            TouCalendar::new(vec![vec![]], [0, 0, 0, 1, 0, 0, 0]),
            Err(TouError::NoSuchSchedule {
                day: 3,
                schedule: 1
            })
        );
        assert!(Tier::new(6).is_none());
    }

    #[test]
    fn residential_weekend_is_off_peak() {
        let cal = TouCalendar::residential();
        let sat = MONDAY + 5 * DAY_S;
        assert_eq!(cal.tier_at(sat + 15 * 3_600).0, Tier(0));
        assert_eq!(cal.tier_at(MONDAY + 15 * 3_600).0, Tier(2));
        assert_eq!(cal.tier_at(MONDAY + 8 * 3_600).0, Tier(1));
    }
}
