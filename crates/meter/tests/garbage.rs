//! Every table decoder and the table read/write entry points survive garbage: random bytes
//! and mutated valid tables give an error or a value that re-encodes to the same bytes, never
//! a panic.
#![allow(clippy::unwrap_used, clippy::indexing_slicing)]

use std::sync::Arc;

use gridguard_meter::tables::{calendar, id, ident, procedures, profile, registers};
use gridguard_meter::{Meter, MeterConfig, TouCalendar};
use proptest::prelude::*;

const START: u64 = 1_795_392_000;

fn busy_meter() -> Meter {
    let mut m = Meter::new(
        MeterConfig::new(77, 5),
        Arc::new(TouCalendar::residential()),
        START,
    );
    m.advance(START + 2 * 86_400 + 1_234).unwrap();
    m.power_off(START + 2 * 86_400 + 2_000).unwrap();
    m.power_on(START + 2 * 86_400 + 5_000).unwrap();
    m.set_clock(START + 2 * 86_400 + 6_000, START + 2 * 86_400 + 7_777)
        .unwrap();
    m.advance(START + 3 * 86_400).unwrap();
    m
}

/// Decodes `data` as table `table`; when it decodes, it must re-encode to exactly `data`.
fn decode_round_trip(table: u16, data: &[u8]) -> bool {
    match table {
        id::ST1 => ident::GeneralMfgId::parse(data)
            .map(|t| assert_eq!(t.to_bytes(), data))
            .is_ok(),
        id::ST23 => registers::CurrentRegisterData::parse(data)
            .map(|t| assert_eq!(t.to_bytes(), data))
            .is_ok(),
        id::ST28 => registers::PresentValues::parse(data)
            .map(|t| assert_eq!(t.to_bytes(), data))
            .is_ok(),
        id::ST52 => calendar::parse_clock(data)
            .map(|t| assert_eq!(calendar::clock(t), data))
            .is_ok(),
        id::ST54 => {
            let n = (data.len().saturating_sub(7) / 3) as u16;
            calendar::CalendarTable::parse(data, n)
                .map(|t| assert_eq!(t.to_bytes(), data))
                .is_ok()
        }
        id::ST63 => profile::LpStatus::parse(data)
            .map(|t| assert_eq!(t.to_bytes(), data))
            .is_ok(),
        id::ST64 => profile::LpDataSet::parse(data)
            .map(|t| assert_eq!(t.to_bytes(), data))
            .is_ok(),
        id::ST7 => procedures::ProcedureRequest::parse(data)
            .map(|t| assert_eq!(t.to_bytes(), data))
            .is_ok(),
        _ => false,
    }
}

const DECODED: [u16; 8] = [
    id::ST1,
    id::ST23,
    id::ST28,
    id::ST52,
    id::ST54,
    id::ST63,
    id::ST64,
    id::ST7,
];

#[test]
fn valid_tables_decode_and_round_trip() {
    let m = busy_meter();
    for t in DECODED {
        if t == id::ST7 {
            continue;
        }
        let data = m.read_table_full(t).unwrap();
        assert!(decode_round_trip(t, &data), "table {t}");
        // Every strict prefix is refused.
        for cut in [0, 1, data.len() / 2, data.len() - 1] {
            let short = &data[..cut];
            let ok = decode_round_trip(t, short);
            assert!(
                !ok || t == id::ST54,
                "table {t} accepted a {cut}-byte prefix"
            );
        }
        let mut long = data.clone();
        long.push(0);
        assert!(
            !decode_round_trip(t, &long) || t == id::ST54,
            "table {t} accepted a trailing byte"
        );
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn random_bytes_never_panic(table in proptest::sample::select(DECODED.to_vec()), data in proptest::collection::vec(any::<u8>(), 0..400)) {
        let _ = decode_round_trip(table, &data);
    }

    #[test]
    fn mutated_tables_never_panic(
        table in proptest::sample::select(DECODED[..7].to_vec()),
        flips in proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..8),
        cut in any::<prop::sample::Index>(),
        truncate in any::<bool>(),
    ) {
        thread_local!(static M: Meter = busy_meter());
        let mut data = M.with(|m| m.read_table_full(table).unwrap());
        for (i, b) in flips {
            let i = i.index(data.len());
            data[i] ^= b;
        }
        if truncate {
            data.truncate(cut.index(data.len()));
        }
        let _ = decode_round_trip(table, &data);
    }

    #[test]
    fn table_requests_never_panic(
        table in any::<u16>(),
        offset in any::<u32>(),
        count in any::<u16>(),
        write in proptest::collection::vec(any::<u8>(), 0..40),
    ) {
        thread_local!(static M: std::cell::RefCell<Meter> = std::cell::RefCell::new(busy_meter()));
        M.with(|m| {
            let mut m = m.borrow_mut();
            let t = if table % 2 == 0 { id::READABLE[usize::from(table / 2) % id::READABLE.len()] } else { table };
            if let Ok(b) = m.read_table(t, offset % 20_000, count % 20_000) {
                assert_eq!(b.len(), usize::from(count % 20_000));
            }
            let _ = m.write_table(t, offset % 3, &write);
            let _ = m.write_table(id::ST7, 0, &write);
            assert_eq!(m.read_table_full(id::ST8).unwrap().len(), 4);
        });
    }
}
