//! The demo end to end, small: PANA, keys, C12.22 uploads, an outage with backfill, a
//! demand-response event for one region and a disconnect/reconnect of one meter; every interval
//! stored once and equal to the meter's own profile; commands reached only their meters.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

use gridguard::demo::{run, DemoOptions};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_demo_runs_its_week_and_commands_reach_only_their_meters() {
    let dir = tempfile::tempdir().unwrap();
    let pcap = dir.path().join("demo.pcap");
    let keylog = dir.path().join("keys.log");
    let report = run(DemoOptions {
        meters: 100,
        days: 5,
        day_secs: 2.5,
        data: dir.path().join("data"),
        pcap: Some(pcap.clone()),
        keylog: Some(keylog.clone()),
        progress: false,
        ..DemoOptions::default()
    })
    .await
    .unwrap();

    assert_eq!(report.expected_intervals, 100 * 5 * 96);
    assert_eq!(
        report.stored_intervals, report.expected_intervals,
        "{}",
        report.summary
    );
    assert_eq!(report.verified_meters.0, report.verified_meters.1);
    assert_eq!(report.differing_readings, 0);
    assert_eq!(report.headend.sessions, 100);
    assert!(
        report.headend.reauthentications >= 100,
        "{}",
        report.summary
    );
    assert!(
        report.headend.intervals_filled > 0,
        "the outage left gaps for backfill: {}",
        report.summary
    );
    // 10 meters of region 1 got the demand-response event, meter 7 the disconnect and the
    // reconnect, meters 30-32 (clocks started off) a clock set; nobody got anything else.
    assert_eq!(report.headend.clocks_set, 3, "{}", report.summary);
    assert_eq!(report.headend.commands_acked, 15, "{}", report.summary);
    for agent in &report.agents {
        let s = agent.serial();
        let dr = u32::from(s % 10 == 1);
        let expected =
            u64::from(dr) + if s == 7 { 2 } else { 0 } + u64::from((30..33).contains(&s));
        assert_eq!(
            (
                agent.model().demand_response_events(),
                agent.stats().commands
            ),
            (dr, expected),
            "meter {s}"
        );
        assert_eq!(agent.stats().commands_refused, 0);
    }
    assert!(report.summary.contains("Bills of three households"));

    // The capture verifies with the key log the head-end wrote.
    let keys = std::fs::read_to_string(&keylog).unwrap();
    let inspection = gridguard::inspect::inspect_file_with(
        &pcap,
        gridguard::inspect::InspectKeys {
            c1222: gridguard::inspect::c1222::keylog_c1222_keys(&keys),
            ..Default::default()
        },
    )
    .unwrap();
    assert!(!inspection.c1222.is_empty());
    let bad = inspection.c1222_count(|m| *m != gridguard::inspect::c1222::MacCheck::Ok);
    assert_eq!(
        bad, 0,
        "every captured C12.22 message verifies with the key log"
    );
}
