//! ST51 (actual time and TOU), ST52 (clock), ST54 (calendar), ST55 (clock state).
//!
//! **ST51** `ACT_TIME_TOU_TBL`, 9 bytes: `TIME_FUNC_FLAG1` 0, `TIME_FUNC_FLAG2` 0x0A
//! (`SEPARATE_WEEKDAYS_FLAG`, `SORT_TIER_SWITCHES_FLAG`), `CALENDAR_FUNC` 0x01 (one season,
//! no special schedules), `NBR_NON_RECURR_DATES` 0, `NBR_RECURR_DATES` 0,
//! `NBR_TIER_SWITCHES` UINT16, `CALENDAR_TBL_SIZE` UINT16 (bytes of ST54).
//!
//! **ST52** `CLOCK_TBL`, 7 bytes: `CLOCK_CALENDAR` LTIME_DATE, `TIME_DATE_QUAL` (bits 0–2
//! `DAY_OF_WEEK`, 0 = Sunday; no DST, local time: bits 3–7 zero).
//!
//! **ST54** `CALENDAR_TBL`: no recurring or non-recurring dates (this model has no holidays
//! or seasons), then `TIER_SWITCHES`, 3 bytes each: a UINT16 bit field (`NEW_TIER` bits 0–2,
//! `SWITCH_MIN` bits 3–8, `SWITCH_HOUR` bits 9–13) and `DAY_SCH_NUM` UINT8, sorted by
//! schedule then time; then one `DAILY_SCHEDULE_ID_MATRIX` record of seven UINT8 schedule
//! numbers, Sunday first.
//!
//! **ST55** `CLOCK_STATE_TBL`, 9 bytes: `CLOCK_CALENDAR` LTIME_DATE, `TIME_DATE_QUAL`,
//! `STATUS` UINT16 (`CURR_TIER` bits 0–2; `TIER_DRIVE`, `SPECIAL_SCHD_ACTIVE`, `SEASON` 0).

use crate::meter::Meter;
use crate::tables::codec::{Reader, Writer};
use crate::tables::TableError;
use crate::time::weekday;
use crate::tou::{SwitchPoint, Tier, TouCalendar, TouError};

/// ST51 bytes for `cal`.
pub fn actual_time_tou(cal: &TouCalendar) -> Vec<u8> {
    let t = CalendarTable::of(cal);
    let mut w = Writer::default();
    w.bytes(&[0, 0x0A, 0x01, 0, 0]);
    w.u16(u16::try_from(t.switches.len()).unwrap_or(u16::MAX));
    w.u16(u16::try_from(t.to_bytes().len()).unwrap_or(u16::MAX));
    w.0
}

/// ST52 bytes at meter time `t`.
pub fn clock(t: u64) -> Vec<u8> {
    let mut w = Writer::default();
    w.ltime(t);
    w.u8(weekday(t));
    w.0
}

/// Decodes ST52: the meter time it carries. `TIME_DATE_QUAL` must be what this meter writes:
/// the day of week of the date and no other flag (no DST, local time), so an accepted table
/// re-encodes byte for byte.
pub fn parse_clock(data: &[u8]) -> Result<u64, TableError> {
    let mut r = Reader::new(data);
    let t = r.ltime()?;
    let at = r.pos();
    let qual = r.u8()?;
    r.finish()?;
    if qual != weekday(t) {
        return Err(TableError::BadValue {
            at,
            what: "TIME_DATE_QUAL (day of week, no other flag)",
        });
    }
    Ok(t)
}

/// ST55 bytes.
pub fn clock_state(meter: &Meter) -> Vec<u8> {
    let mut w = Writer(clock(meter.meter_time()));
    w.u16(u16::from(meter.current_tier().get()));
    w.0
}

/// ST54, the calendar.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CalendarTable {
    /// (`DAY_SCH_NUM`, switch point), sorted.
    pub switches: Vec<(u8, SwitchPoint)>,
    /// Schedule per day of the week, Sunday first.
    pub week: [u8; 7],
}

impl CalendarTable {
    /// ST54 of `cal`.
    pub fn of(cal: &TouCalendar) -> Self {
        let mut switches = Vec::new();
        for (i, s) in cal.schedules().iter().enumerate() {
            for p in s {
                switches.push((i as u8, *p));
            }
        }
        CalendarTable {
            switches,
            week: cal.week(),
        }
    }

    /// Encodes the table.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut w = Writer::default();
        for (sched, p) in &self.switches {
            let hour = p.minute / 60;
            let min = p.minute % 60;
            w.u16(u16::from(p.tier.get()) | (min << 3) | (hour << 9));
            w.u8(*sched);
        }
        w.bytes(&self.week);
        w.0
    }

    /// Decodes the table; `nbr_tier_switches` comes from ST51.
    pub fn parse(data: &[u8], nbr_tier_switches: u16) -> Result<Self, TableError> {
        let mut r = Reader::new(data);
        let mut switches = Vec::new();
        for _ in 0..nbr_tier_switches {
            let at = r.pos();
            let bf = r.u16()?;
            let sched = r.u8()?;
            let tier = Tier::new((bf & 0x7) as u8).ok_or(TableError::BadValue {
                at,
                what: "NEW_TIER",
            })?;
            let min = (bf >> 3) & 0x3F;
            let hour = (bf >> 9) & 0x1F;
            if min > 59 || hour > 23 || bf >> 14 != 0 {
                return Err(TableError::BadValue {
                    at,
                    what: "tier switch time",
                });
            }
            switches.push((
                sched,
                SwitchPoint {
                    minute: hour * 60 + min,
                    tier,
                },
            ));
        }
        let week = r.array()?;
        r.finish()?;
        Ok(CalendarTable { switches, week })
    }

    /// The calendar this table describes.
    pub fn to_calendar(&self) -> Result<TouCalendar, TouError> {
        let n = self
            .switches
            .iter()
            .map(|(s, _)| *s)
            .chain(self.week.iter().copied())
            .max()
            .map_or(1, |m| usize::from(m) + 1);
        if n > crate::tou::MAX_SCHEDULES {
            return Err(TouError::TooManySchedules);
        }
        let mut schedules = vec![Vec::new(); n];
        for (s, p) in &self.switches {
            if let Some(v) = schedules.get_mut(usize::from(*s)) {
                v.push(*p);
            }
        }
        TouCalendar::new(schedules, self.week)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn st54_hand_computed() {
        let cal = TouCalendar::residential();
        let b = CalendarTable::of(&cal).to_bytes();
        // 07:00 tier B: hour 7 << 9 | 0 << 3 | 1 = 0x0E01, schedule 0.
        assert_eq!(&b[3..6], &[0x01, 0x0E, 0x00]);
        // 21:00 tier A: 21 << 9 = 0x2A00.
        assert_eq!(&b[9..12], &[0x00, 0x2A, 0x00]);
        // Weekend schedule 1 at midnight: tier A, schedule 1.
        assert_eq!(&b[12..15], &[0x00, 0x00, 0x01]);
        assert_eq!(&b[15..], &[1, 0, 0, 0, 0, 0, 1]);
        let st51 = actual_time_tou(&cal);
        assert_eq!(st51, vec![0, 0x0A, 0x01, 0, 0, 5, 0, 22, 0]);
        let back = CalendarTable::parse(&b, 5).unwrap();
        assert_eq!(back.to_calendar().unwrap(), cal);
        assert!(CalendarTable::parse(&b, 6).is_err());
        assert!(CalendarTable::parse(&b, 4).is_err());
    }

    #[test]
    fn st52_clock() {
        // 2026-11-25 15:20:07, Wednesday.
        assert_eq!(clock(1_795_620_007), vec![26, 11, 25, 15, 20, 7, 3]);
        assert_eq!(parse_clock(&clock(1_795_620_007)), Ok(1_795_620_007));
        assert!(parse_clock(&[26, 11, 25, 15, 20, 7, 4]).is_err());
        assert!(parse_clock(&[26, 13, 25, 15, 20, 7, 3]).is_err());
    }
}
