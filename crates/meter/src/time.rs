//! Simulated time: seconds since 1970-01-01T00:00:00 in the meter's local standard time.
//!
//! The meter model never reads a clock; every call carries the simulated time. Calendar
//! arithmetic (for TOU day types and the C12.19 date fields) is done here with the proleptic
//! Gregorian calendar; there is no time zone and no daylight saving time in the model.

/// Seconds in a day.
pub const DAY_S: u64 = 86_400;
/// Load-profile interval length in seconds (15 minutes).
pub const INTERVAL_S: u64 = 900;
/// Demand block length in seconds (30 minutes).
pub const DEMAND_BLOCK_S: u64 = 1_800;

/// A civil date and time of day.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Civil {
    /// Full year (e.g. 2026).
    pub year: i64,
    /// Month 1..=12.
    pub month: u8,
    /// Day of month 1..=31.
    pub day: u8,
    /// Hour 0..=23.
    pub hour: u8,
    /// Minute 0..=59.
    pub minute: u8,
    /// Second 0..=59.
    pub second: u8,
}

/// Day of the week of `t`, 0 = Sunday … 6 = Saturday (the C12.19 `DAY_OF_WEEK` numbering).
pub fn weekday(t: u64) -> u8 {
    // 1970-01-01 was a Thursday (4).
    ((t / DAY_S + 4) % 7) as u8
}

/// Civil date and time of `t` (seconds since the epoch).
pub fn civil(t: u64) -> Civil {
    let days = (t / DAY_S) as i64;
    let secs = t % DAY_S;
    // Days-to-civil conversion on 400-year eras, with March as the first month of the year.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = (doy - (153 * mp + 2) / 5 + 1) as u8;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u8;
    let year = yoe + era * 400 + i64::from(month <= 2);
    Civil {
        year,
        month,
        day,
        hour: (secs / 3_600) as u8,
        minute: (secs % 3_600 / 60) as u8,
        second: (secs % 60) as u8,
    }
}

/// Seconds since the epoch of a civil date and time; `None` when a field is out of range or
/// the date lies before 1970.
pub fn from_civil(c: &Civil) -> Option<u64> {
    if !(1..=12).contains(&c.month) || c.day == 0 || c.hour > 23 || c.minute > 59 || c.second > 59 {
        return None;
    }
    if c.day > days_in_month(c.year, c.month) {
        return None;
    }
    let y = c.year - i64::from(c.month <= 2);
    let era = y.div_euclid(400);
    let yoe = y.rem_euclid(400);
    let m = i64::from(c.month);
    let mp = if m > 2 { m - 3 } else { m + 9 };
    let doy = (153 * mp + 2) / 5 + i64::from(c.day) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    let days = u64::try_from(days).ok()?;
    Some(days * DAY_S + u64::from(c.hour) * 3_600 + u64::from(c.minute) * 60 + u64::from(c.second))
}

fn days_in_month(year: i64, month: u8) -> u8 {
    match month {
        2 if (year % 4 == 0 && year % 100 != 0) || year % 400 == 0 => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// The first multiple of `step` strictly after `t`.
pub fn next_boundary(t: u64, step: u64) -> u64 {
    let step = step.max(1);
    (t / step).saturating_add(1).saturating_mul(step)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_dates() {
        // 2026-11-25T15:20:00Z is 1_795_620_000 seconds after the epoch (a Wednesday).
        let t = 1_795_620_000;
        let c = civil(t);
        assert_eq!(
            (c.year, c.month, c.day, c.hour, c.minute, c.second),
            (2026, 11, 25, 15, 20, 0)
        );
        assert_eq!(weekday(t), 3);
        assert_eq!(from_civil(&c), Some(t));
        // Leap day.
        let leap = Civil {
            year: 2024,
            month: 2,
            day: 29,
            hour: 0,
            minute: 0,
            second: 0,
        };
        assert_eq!(civil(from_civil(&leap).unwrap_or(0)), leap);
        assert_eq!(from_civil(&Civil { day: 30, ..leap }), None);
        assert_eq!(weekday(0), 4);
    }

    #[test]
    fn round_trip_every_day_for_years() {
        let mut t = 0;
        while t < 100 * 366 * DAY_S {
            assert_eq!(from_civil(&civil(t)), Some(t));
            t += DAY_S + 3_601;
        }
    }
}
