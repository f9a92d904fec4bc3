//! A head-end whose C12.22 host stalls while its PAA still answers is slow, not gone: the
//! meters ping the PAA after their unanswered uploads, hold back until their next upload
//! slot, and keep their sessions. None of them authenticates again, and once the host
//! answers again the next uploads carry every interval held back (the kill -9 in
//! `amso_week` is the other case: there the ping goes unanswered and the meters start over).
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

use std::net::SocketAddr;
use std::time::Duration;

use gridguard::datadir::DataDir;
use gridguard::demo::DEMO_START;
use gridguard::fleet::{build_fleet, run_fleet, FleetOptions, FleetProgress, Outage};
use gridguard::headend_service::{run_headend_on, HeadendOptions, HeadendProgress};
use gridguard::meter_agent::AgentConfig;
use gridguard::pana_paa::bind_udp;
use gridguard::sim_clock::SimClock;
use tokio::sync::watch;

const METERS: u64 = 40;
const DAY: u64 = 86_400;
const HOUR: u64 = 3_600;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn meters_hold_back_for_a_stalled_host_and_keep_their_sessions() {
    let dir = tempfile::tempdir().unwrap();
    let data = DataDir::new(dir.path().join("data"));
    data.create().unwrap();
    let day_secs = 8.0;
    let mut clock = SimClock::starting_now(DEMO_START, DAY as f64 / day_secs);
    clock.real_start_ms += 1_500;
    // Sessions outlive the run: any authentication after the first is a start-over.
    let lifetime = clock.real(10 * DAY);
    let grace = Duration::from_secs(2);
    let loopback = SocketAddr::from(([127, 0, 0, 1], 0));
    let paa_socket = bind_udp(loopback, 1 << 20).unwrap();
    let host_socket = bind_udp(loopback, 1 << 20).unwrap();
    let (paa, host) = (
        paa_socket.local_addr().unwrap(),
        host_socket.local_addr().unwrap(),
    );
    let end = DEMO_START + 2 * DAY;
    let headend_options = HeadendOptions {
        data: data.clone(),
        paa,
        host,
        meters: 0..METERS,
        seed: 1,
        regions: 2,
        session_lifetime: lifetime,
        grace,
        clock,
        epoch: i64::try_from(DEMO_START).unwrap(),
        settle_s: 6 * 3_600,
        commands: Vec::new(),
        batch: 1_024,
        busy_after: gridguard::headend_service::DEFAULT_BUSY_AFTER,
        keylog: None,
    };
    let mut agent = AgentConfig::simulated(lifetime, grace);
    agent.reply_timeout = Duration::from_millis(200);
    agent.max_unanswered = 3;
    let mut options = FleetOptions::new(0..METERS, paa, host, clock);
    options.agent = agent;
    options.lanes = 2;
    options.relays = true;
    // The host hears nothing and says nothing from 03:00 to 15:00 on the first day (4 s
    // real, many reply timeouts); the PAA goes on answering.
    options.outage = Some(Outage {
        serials: 0..METERS,
        from: DEMO_START + 3 * HOUR,
        to: DEMO_START + 15 * HOUR,
        host_only: true,
    });

    let (stop_tx, stop_rx) = watch::channel(false);
    let head_progress = HeadendProgress::default();
    let headend = tokio::spawn(run_headend_on(
        paa_socket,
        host_socket,
        headend_options,
        head_progress.clone(),
        stop_rx.clone(),
    ));
    let fleet = build_fleet(&options).unwrap();
    let progress = FleetProgress::default();
    let fleet = tokio::spawn(run_fleet(fleet, options, progress.clone(), stop_rx));

    // To the end of the second day, then until the head-end misses nothing older than its
    // settle time (at most a day more).
    while clock.now() < end + DAY {
        tokio::time::sleep(Duration::from_millis(100)).await;
        if clock.now() >= end + 7 * HOUR && head_progress.get().missing == 0 {
            break;
        }
    }
    stop_tx.send(true).unwrap();
    let stats = headend.await.unwrap().unwrap();
    let agents = fleet.await.unwrap().unwrap();

    let held: Vec<u64> = agents.iter().map(|a| a.stats().held_back).collect();
    let restarts: u64 = agents.iter().map(|a| a.stats().restarts).sum();
    let sessions: u64 = agents.iter().map(|a| a.stats().sessions).sum();
    assert!(
        held.iter().all(|&h| h >= 1),
        "every meter found the host stalled and held back: {held:?}"
    );
    assert_eq!(restarts, 0, "no meter took the stalled head-end for gone");
    assert_eq!(
        sessions, METERS,
        "one PANA session per meter, kept throughout"
    );
    assert_eq!(stats.sessions, METERS);

    let mut vault = data.open_vault().unwrap();
    let period = gridguard_vault::TimeRange::new(
        i64::try_from(DEMO_START).unwrap(),
        i64::try_from(end).unwrap(),
    );
    let counts = vault.count_intervals(period).unwrap();
    assert_eq!(counts.len(), METERS as usize);
    assert!(
        counts.values().all(|&c| c == 2 * 96),
        "every interval of both days stored once: {counts:?}"
    );
}
