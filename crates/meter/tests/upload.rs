//! The interval upload (a pushed segment of ST64): round trips, garbage in, and agreement
//! with the meter's own load profile and with the ST63/ST64 backfill decoder.
#![allow(clippy::unwrap_used, clippy::indexing_slicing)]

use std::sync::Arc;

use gridguard_meter::tables::upload::{profile_intervals, IntervalUpload, HEADER_LEN};
use gridguard_meter::tables::{id, profile};
use gridguard_meter::{Interval, IntervalFlags, Meter, MeterConfig, TouCalendar};
use proptest::prelude::*;

/// 2026-11-23 00:00:00, a Monday.
const MONDAY: u64 = 1_795_392_000;
/// 2000-01-01 00:00:00.
const Y2000: u64 = 946_684_800;

fn busy_meter(seed: u64) -> Meter {
    let mut m = Meter::new(
        MeterConfig::new(9, seed),
        Arc::new(TouCalendar::residential()),
        MONDAY,
    );
    m.advance(MONDAY + 86_400 + 1_234).unwrap();
    m.power_off(MONDAY + 86_400 + 2_000).unwrap();
    m.power_on(MONDAY + 86_400 + 5_000).unwrap();
    // Forward 2 h, then back 1 h: a gap and an overlap in the ring.
    m.set_clock(MONDAY + 86_400 + 6_000, MONDAY + 86_400 + 13_200)
        .unwrap();
    m.advance(MONDAY + 86_400 + 20_000).unwrap();
    let mt = m.meter_time();
    m.set_clock(MONDAY + 86_400 + 20_000, mt - 3_600).unwrap();
    m.advance(MONDAY + 2 * 86_400).unwrap();
    m
}

fn arb_value() -> impl Strategy<Value = u32> {
    prop_oneof![0u32..2_000, 0u32..=65_535, 65_536u32..=u32::MAX]
}

fn arb_interval() -> impl Strategy<Value = Interval> {
    (arb_value(), arb_value(), 0u8..16).prop_map(|(delivered, received, f)| Interval {
        start: 0,
        delivered,
        received,
        flags: IntervalFlags(f),
    })
}

/// What an interval reads back as: a channel above 65,535 units is "overflow" (65,536), and
/// the partial status rides on the channels, so it is lost when both overflow.
fn as_carried(iv: &Interval, start: u64) -> Interval {
    let big = |v: u32| v > 65_535;
    let mut flags = iv.flags;
    if big(iv.delivered) && big(iv.received) {
        flags = IntervalFlags(flags.0 & !IntervalFlags::PARTIAL.0);
    }
    Interval {
        start,
        delivered: iv.delivered.min(65_536),
        received: iv.received.min(65_536),
        flags,
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn round_trip(slot in 0u64..8_000_000, ivs in proptest::collection::vec(arb_interval(), 0..200)) {
        let first_start = Y2000 + slot * 900;
        let u = IntervalUpload { first_start, intervals: ivs.clone() };
        let bytes = u.to_bytes();
        prop_assert_eq!(bytes.len(), HEADER_LEN + 6 * ivs.len());
        let back = IntervalUpload::parse(&bytes).unwrap();
        prop_assert_eq!(back.first_start, first_start);
        let expected: Vec<Interval> = ivs
            .iter()
            .enumerate()
            .map(|(i, iv)| as_carried(iv, first_start + 900 * i as u64))
            .collect();
        prop_assert_eq!(&back.intervals, &expected);
        prop_assert_eq!(back.to_bytes(), bytes);
        prop_assert_eq!(back.end(), first_start + 900 * ivs.len() as u64);
    }

    /// Random bytes (half of them behind a valid `START`): an error or an upload that
    /// re-encodes to exactly those bytes.
    #[test]
    fn random_bytes_never_panic(mut data in proptest::collection::vec(any::<u8>(), 0..120), header in any::<bool>()) {
        if header && data.len() >= 5 {
            data[..5].copy_from_slice(&[26, 11, 25, 15, 45]);
        }
        if let Ok(u) = IntervalUpload::parse(&data) {
            prop_assert_eq!(u.to_bytes(), data);
        }
    }

    /// Mutated and truncated valid uploads: an error or a byte-exact re-encoding.
    #[test]
    fn mutated_uploads_never_panic(
        flips in proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..6),
        cut in any::<prop::sample::Index>(),
        truncate in any::<bool>(),
    ) {
        thread_local!(static B: Vec<u8> = {
            let m = busy_meter(3);
            let from = m.meter_time() - 6 * 3_600;
            m.upload_between(from, m.meter_time())[0].to_bytes()
        });
        let mut data = B.with(Clone::clone);
        for (i, b) in flips {
            let i = i.index(data.len());
            data[i] ^= b;
        }
        if truncate {
            data.truncate(cut.index(data.len()));
        }
        if let Ok(u) = IntervalUpload::parse(&data) {
            prop_assert_eq!(u.to_bytes(), data);
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 24, ..ProptestConfig::default() })]

    /// `intervals_between` is the profile filtered by start, and its uploads carry exactly
    /// those intervals (all values of a household fit in a UINT16).
    #[test]
    fn intervals_between_matches_the_profile(seed in any::<u64>(), a in 0u64..200_000, len in 0u64..100_000) {
        let m = busy_meter(seed);
        let from = MONDAY + a;
        let to = from + len;
        let all = m.load_profile().intervals();
        let expected: Vec<Interval> = all.iter().copied().filter(|i| (from..to).contains(&i.start)).collect();
        let got = m.intervals_between(from, to);
        prop_assert_eq!(&got, &expected);
        let uploads = m.upload_between(from, to);
        let mut carried = Vec::new();
        for u in &uploads {
            let back = IntervalUpload::parse(&u.to_bytes()).unwrap();
            prop_assert_eq!(&back, u);
            carried.extend(back.intervals);
        }
        prop_assert_eq!(carried, expected);
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 24, ..ProptestConfig::default() })]

    /// The intervals closed after a count was taken are the tail of the profile, also
    /// across clock changes both ways.
    #[test]
    fn intervals_since_a_count_survive_clock_changes(
        seed in any::<u64>(),
        steps in proptest::collection::vec((1u64..20_000, -7_200i64..7_200), 1..12),
    ) {
        let mut m = busy_meter(seed);
        let mut t = m.now();
        for (gap, clock) in steps {
            let count = m.intervals_recorded();
            t += gap;
            m.advance(t).unwrap();
            if clock != 0 {
                let mt = (m.meter_time() as i64 + clock) as u64;
                m.set_clock(t, mt).unwrap();
            }
            let new = m.intervals_since(count);
            let all = m.load_profile().intervals();
            prop_assert_eq!(new.len() as u64, m.intervals_recorded() - count);
            prop_assert_eq!(&new[..], &all[all.len() - new.len()..]);
        }
    }
}

#[test]
fn backfill_decoder_gives_the_profile() {
    let m = busy_meter(17);
    let st63 = m.read_table_full(id::ST63).unwrap();
    let st64 = m.read_table_full(id::ST64).unwrap();
    let got = profile_intervals(&st63, &st64).unwrap();
    assert_eq!(got, m.load_profile().intervals());
    // The clock changes in busy_meter cut the ring into runs.
    let runs = IntervalUpload::runs(&got);
    assert_eq!(runs.len(), 3);
    assert!(runs[1].intervals[0]
        .flags
        .contains(IntervalFlags::CLOCK_FORWARD));
    assert!(runs[2].intervals[0]
        .flags
        .contains(IntervalFlags::CLOCK_BACKWARD));
    assert!(
        runs[2].first_start < runs[1].end(),
        "a backward change repeats starts"
    );
    assert!(profile_intervals(&st63[..12], &st64).is_err());
    assert!(profile_intervals(&st63, &st64[1..]).is_err());
    // An upload of the newest hour is the tail of the profile in ST64's record format.
    let to = m.meter_time() - m.meter_time() % 900;
    let u = &m.upload_between(to - 3_600, to)[0];
    assert_eq!(u.intervals.len(), 4);
    assert_eq!(u.intervals[..], got[got.len() - 4..]);
    let st64d = profile::LpDataSet::parse(&st64).unwrap();
    let st63d = profile::LpStatus::parse(&st63).unwrap();
    let newest = &st64d.blocks[st63d.last_block_element as usize];
    let n = usize::from(st63d.valid_intervals);
    let bytes = u.to_bytes();
    for (k, rec) in newest.intervals[n - 4..n].iter().enumerate() {
        let b = &bytes[HEADER_LEN + 6 * k..HEADER_LEN + 6 * k + 6];
        assert_eq!(b[0] >> 4, rec.common);
        assert_eq!(b[1], rec.status[0] | (rec.status[1] << 4));
        assert_eq!(u16::from_le_bytes([b[2], b[3]]), rec.values[0]);
        assert_eq!(u16::from_le_bytes([b[4], b[5]]), rec.values[1]);
    }
}
