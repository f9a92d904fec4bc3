#![no_main]
//! Meter C12.19 tables: every decoder survives arbitrary bytes and whatever it accepts
//! re-encodes byte for byte; table reads and ST7 procedure writes never panic.

use std::sync::{Arc, OnceLock};

use gridguard_meter::tables::{calendar, id, ident, procedures, profile, registers};
use gridguard_meter::{Meter, MeterConfig, TouCalendar};
use libfuzzer_sys::fuzz_target;

fn meter() -> Meter {
    static M: OnceLock<Meter> = OnceLock::new();
    M.get_or_init(|| {
        let start = 1_795_392_000;
        let mut m = Meter::new(MeterConfig::new(1, 2), Arc::new(TouCalendar::residential()), start);
        m.advance(start + 86_400).expect("time moves forward");
        m
    })
    .clone()
}

fuzz_target!(|data: &[u8]| {
    let Some((&selector, rest)) = data.split_first() else { return };
    match selector % 10 {
        0 => {
            if let Ok(t) = ident::GeneralMfgId::parse(rest) {
                assert_eq!(t.to_bytes(), rest);
            }
        }
        1 => {
            if let Ok(t) = registers::CurrentRegisterData::parse(rest) {
                assert_eq!(t.to_bytes(), rest);
            }
        }
        2 => {
            if let Ok(t) = registers::PresentValues::parse(rest) {
                assert_eq!(t.to_bytes(), rest);
            }
        }
        3 => {
            if let Ok(t) = calendar::parse_clock(rest) {
                assert_eq!(calendar::clock(t), rest);
            }
        }
        4 => {
            let n = (rest.len().saturating_sub(7) / 3) as u16;
            if let Ok(t) = calendar::CalendarTable::parse(rest, n) {
                assert_eq!(t.to_bytes(), rest);
                let _ = t.to_calendar();
            }
        }
        5 => {
            if let Ok(t) = profile::LpStatus::parse(rest) {
                assert_eq!(t.to_bytes(), rest);
            }
        }
        6 => {
            // ST64 is 17,790 bytes: pad short inputs with the meter's own table.
            let mut table = meter().read_table_full(id::ST64).expect("ST64 reads");
            for (t, b) in table.iter_mut().zip(rest) {
                *t ^= b;
            }
            if let Ok(t) = profile::LpDataSet::parse(&table) {
                assert_eq!(t.to_bytes(), table);
                if let Ok(s) = profile::LpStatus::parse(&meter().read_table_full(id::ST63).expect("ST63")) {
                    let _ = t.intervals(&s);
                }
            }
        }
        7 => {
            if let Ok(p) = procedures::ProcedureRequest::parse(rest) {
                assert_eq!(p.to_bytes(), rest);
            }
            let mut m = meter();
            let _ = m.write_table(id::ST7, 0, rest);
            assert_eq!(m.read_table_full(id::ST8).map(|b| b.len()), Ok(4));
        }
        _ => {
            if rest.len() >= 8 {
                let table = u16::from_le_bytes([rest[0], rest[1]]);
                let offset = u32::from_le_bytes([rest[2], rest[3], rest[4], rest[5]]);
                let count = u16::from_le_bytes([rest[6], rest[7]]);
                let mut m = meter();
                if let Ok(b) = m.read_table(table, offset, count) {
                    assert_eq!(b.len(), usize::from(count));
                }
                let _ = m.write_table(table, offset, rest.get(8..).unwrap_or(&[]));
            }
        }
    }
});
