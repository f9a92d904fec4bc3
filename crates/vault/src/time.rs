//! Time in the vault: 15-minute intervals named by their start in unix seconds (UTC), months
//! and days in UTC, and the time-of-use (TOU) calendar that gives each interval a tier.

/// Length of one metering interval, seconds.
pub const INTERVAL_SECS: i64 = 900;
/// Seconds per day.
pub const DAY_SECS: i64 = 86_400;
/// Number of TOU tiers.
pub const TIERS: usize = 6;
/// Switch points per day in a TOU calendar (one per half hour).
pub const SLOTS_PER_DAY: usize = 48;

/// A half-open range of interval starts `[start, end)`, unix seconds.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct TimeRange {
    /// First second included.
    pub start: i64,
    /// First second excluded.
    pub end: i64,
}

impl TimeRange {
    /// Everything from 1970 on.
    pub const ALL: TimeRange = TimeRange {
        start: 0,
        end: i64::MAX,
    };

    /// The range `[start, end)`.
    pub fn new(start: i64, end: i64) -> Self {
        TimeRange { start, end }
    }

    /// The UTC day containing `t`.
    pub fn day_of(t: i64) -> Self {
        let start = t - t.rem_euclid(DAY_SECS);
        TimeRange {
            start,
            end: start + DAY_SECS,
        }
    }

    /// Whether `t` lies in the range.
    pub fn contains(&self, t: i64) -> bool {
        self.start <= t && t < self.end
    }

    /// Splits the range into consecutive pieces of at most `len` seconds.
    pub fn chunks(&self, len: i64) -> impl Iterator<Item = TimeRange> + '_ {
        let len = len.max(1);
        let mut next = self.start;
        std::iter::from_fn(move || {
            if next >= self.end {
                return None;
            }
            let end = next.saturating_add(len).min(self.end);
            let r = TimeRange { start: next, end };
            next = end;
            Some(r)
        })
    }
}

/// A calendar month (UTC).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Month {
    /// Year, e.g. 2026.
    pub year: i32,
    /// Month 1..=12.
    pub month: u8,
}

/// Days from 1970-01-01 to the given civil date (proleptic Gregorian).
fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    // Count from March so the leap day is the last day of the counting year.
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let year_of_era = y - era * 400;
    let shifted_month = (month + 9) % 12; // March = 0
    let day_of_year = (153 * shifted_month + 2) / 5 + day - 1;
    let day_of_era = year_of_era * 365 + year_of_era / 4 - year_of_era / 100 + day_of_year;
    era * 146_097 + day_of_era - 719_468
}

/// The civil date `(year, month, day)` of a day count from 1970-01-01 (proleptic Gregorian).
fn civil_from_days(days: i64) -> (i64, u8, u8) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let day_of_era = z - era * 146_097;
    let year_of_era =
        (day_of_era - day_of_era / 1460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let shifted_month = (5 * day_of_year + 2) / 153; // March = 0
    let day = day_of_year - (153 * shifted_month + 2) / 5 + 1;
    let month = if shifted_month < 10 {
        shifted_month + 3
    } else {
        shifted_month - 9
    };
    let year = year_of_era + era * 400 + i64::from(month <= 2);
    // Both are in range by construction (1..=31, 1..=12).
    (year, month.clamp(1, 12) as u8, day.clamp(1, 31) as u8)
}

/// Formats a unix time (seconds) as `YYYY-MM-DD HH:MM` UTC.
pub fn format_utc(t: i64) -> String {
    let days = t.div_euclid(DAY_SECS);
    let secs = t.rem_euclid(DAY_SECS);
    let (y, m, d) = civil_from_days(days);
    format!(
        "{y:04}-{m:02}-{d:02} {:02}:{:02}",
        secs / 3600,
        secs % 3600 / 60
    )
}

/// Formats the UTC day of a unix time as `YYYY-MM-DD`.
pub fn format_day(t: i64) -> String {
    let (y, m, d) = civil_from_days(t.div_euclid(DAY_SECS));
    format!("{y:04}-{m:02}-{d:02}")
}

/// A date or month that does not parse.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{text:?} is not a valid {expected}")]
pub struct ParseDateError {
    /// The text given.
    pub text: String,
    /// What was expected (`YYYY-MM` or `YYYY-MM-DD`).
    pub expected: &'static str,
}

/// Splits `YYYY-MM[-DD]` into numbers: exactly `parts` fields, a 4-digit year then 2-digit
/// fields.
fn parse_parts(s: &str, parts: usize, expected: &'static str) -> Result<Vec<i64>, ParseDateError> {
    let err = || ParseDateError {
        text: s.to_string(),
        expected,
    };
    let v: Vec<i64> = s
        .split('-')
        .enumerate()
        .map(|(i, p)| {
            let width = if i == 0 { 4 } else { 2 };
            if p.len() != width || !p.bytes().all(|b| b.is_ascii_digit()) {
                Err(err())
            } else {
                p.parse().map_err(|_| err())
            }
        })
        .collect::<Result<_, _>>()?;
    if v.len() == parts {
        Ok(v)
    } else {
        Err(err())
    }
}

impl std::str::FromStr for Month {
    type Err = ParseDateError;

    /// Parses `YYYY-MM`.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        const EXPECTED: &str = "month (YYYY-MM)";
        let v = parse_parts(s, 2, EXPECTED)?;
        let (year, month) = match v.as_slice() {
            [y, m] => (*y, *m),
            _ => (0, 0),
        };
        i32::try_from(year)
            .ok()
            .zip(u8::try_from(month).ok())
            .and_then(|(y, m)| Month::new(y, m))
            .ok_or(ParseDateError {
                text: s.to_string(),
                expected: EXPECTED,
            })
    }
}

impl std::fmt::Display for Month {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:04}-{:02}", self.year, self.month)
    }
}

impl TimeRange {
    /// The UTC day `YYYY-MM-DD`.
    pub fn parse_day(s: &str) -> Result<TimeRange, ParseDateError> {
        const EXPECTED: &str = "day (YYYY-MM-DD)";
        let v = parse_parts(s, 3, EXPECTED)?;
        let err = || ParseDateError {
            text: s.to_string(),
            expected: EXPECTED,
        };
        let [y, m, d] = v.as_slice() else {
            return Err(err());
        };
        if !(1..=12).contains(m) || *d < 1 {
            return Err(err());
        }
        let days = days_from_civil(*y, *m, *d);
        // Reject days past the end of the month (2026-02-30).
        if civil_from_days(days) != (*y, *m as u8, *d as u8) {
            return Err(err());
        }
        Ok(TimeRange::day_of(days * DAY_SECS))
    }
}

impl Month {
    /// The month `year-month`; `None` unless `month` is 1..=12.
    pub fn new(year: i32, month: u8) -> Option<Self> {
        (1..=12).contains(&month).then_some(Month { year, month })
    }

    /// The intervals of this month, UTC.
    pub fn range(&self) -> TimeRange {
        let start = days_from_civil(i64::from(self.year), i64::from(self.month), 1);
        let (ny, nm) = if self.month == 12 {
            (i64::from(self.year) + 1, 1)
        } else {
            (i64::from(self.year), i64::from(self.month) + 1)
        };
        let end = days_from_civil(ny, nm, 1);
        TimeRange {
            start: start * DAY_SECS,
            end: end * DAY_SECS,
        }
    }
}

/// A daily time-of-use calendar: the tier (0..6) of each half hour of the day, in local time
/// given by a fixed offset from UTC.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TouCalendar {
    /// Tier of each half-hour slot, slot 0 starting at local midnight.
    pub slots: [u8; SLOTS_PER_DAY],
    /// Local time minus UTC, seconds (e.g. 32400 for JST).
    pub utc_offset_secs: i32,
}

impl TouCalendar {
    /// A calendar with every slot in tier 0.
    pub fn flat(utc_offset_secs: i32) -> Self {
        TouCalendar {
            slots: [0; SLOTS_PER_DAY],
            utc_offset_secs,
        }
    }

    /// The tier of the interval starting at `t`.
    pub fn tier_at(&self, t: i64) -> u8 {
        let local = t + i64::from(self.utc_offset_secs);
        let slot = (local.rem_euclid(DAY_SECS) / 1800) as usize;
        self.slots.get(slot).copied().unwrap_or(0)
    }

    /// `(interval start, tier)` for every interval of `range`.
    pub fn intervals(&self, range: TimeRange) -> Vec<(i64, u8)> {
        let first = range.start + (-range.start).rem_euclid(INTERVAL_SECS);
        let mut out = Vec::new();
        let mut t = first;
        while t < range.end {
            out.push((t, self.tier_at(t)));
            t += INTERVAL_SECS;
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn month_ranges() {
        // 2024-02-01T00:00:00Z = 1706745600, 2024-03-01 = 1709251200 (leap year: 29 days).
        let feb = Month::new(2024, 2).unwrap().range();
        assert_eq!(feb, TimeRange::new(1_706_745_600, 1_709_251_200));
        assert_eq!((feb.end - feb.start) / DAY_SECS, 29);
        // 2026-12-01 = 1796083200, 2027-01-01 = 1798761600.
        let dec = Month::new(2026, 12).unwrap().range();
        assert_eq!(dec, TimeRange::new(1_796_083_200, 1_798_761_600));
        assert_eq!(Month::new(1970, 1).unwrap().range().start, 0);
        assert!(Month::new(2026, 13).is_none());
    }

    #[test]
    fn tou_slots_follow_the_offset() {
        let mut cal = TouCalendar::flat(9 * 3600);
        cal.slots[0] = 5; // local 00:00-00:30
                          // 15:00 UTC is midnight JST.
        assert_eq!(cal.tier_at(15 * 3600), 5);
        assert_eq!(cal.tier_at(15 * 3600 + 900), 5);
        assert_eq!(cal.tier_at(15 * 3600 + 1800), 0);
        assert_eq!(cal.intervals(TimeRange::new(0, DAY_SECS)).len(), 96);
    }

    #[test]
    fn dates_parse_and_format() {
        let m: Month = "2026-10".parse().unwrap();
        assert_eq!(m, Month::new(2026, 10).unwrap());
        assert_eq!(m.to_string(), "2026-10");
        assert!("2026-13".parse::<Month>().is_err());
        assert!("2026-1x".parse::<Month>().is_err());
        assert!("2026".parse::<Month>().is_err());
        assert!("2026-1".parse::<Month>().is_err());
        assert!("-2026-01".parse::<Month>().is_err());
        // 2026-10-05T00:00:00Z = 1791158400.
        let d = TimeRange::parse_day("2026-10-05").unwrap();
        assert_eq!(d, TimeRange::new(1_791_158_400, 1_791_158_400 + DAY_SECS));
        assert_eq!(format_utc(d.start + 13 * 3600 + 900), "2026-10-05 13:15");
        assert_eq!(format_day(d.start + 5), "2026-10-05");
        assert!(TimeRange::parse_day("2026-02-29").is_err());
        assert!(TimeRange::parse_day("2024-02-29").is_ok());
        assert!(TimeRange::parse_day("2026-10-00").is_err());
        assert!(TimeRange::parse_day("2026-10-05-1").is_err());
        for days in [-800_000i64, -1, 0, 59, 10_957, 20_000, 2_000_000] {
            let (y, m, d) = civil_from_days(days);
            assert_eq!(days_from_civil(y, i64::from(m), i64::from(d)), days);
        }
    }

    proptest::proptest! {
        /// Any text either parses to a date that formats back to itself, or is refused.
        #[test]
        fn date_parsing_never_panics(text in "[0-9-]{0,14}|\\PC{0,12}") {
            if let Ok(d) = TimeRange::parse_day(&text) {
                proptest::prop_assert_eq!(format_day(d.start), text.clone());
            }
            if let Ok(m) = text.parse::<Month>() {
                proptest::prop_assert_eq!(m.to_string(), text);
            }
        }
    }

    #[test]
    fn chunks_cover_the_range() {
        let r = TimeRange::new(100, 1000);
        let parts: Vec<_> = r.chunks(300).collect();
        assert_eq!(parts.first().unwrap().start, 100);
        assert_eq!(parts.last().unwrap().end, 1000);
        assert!(parts.windows(2).all(|w| w[0].end == w[1].start));
    }
}
