//! End to end over loopback: 1,000 simulated meters for a simulated week against the head-end
//! running as its own process (`gridguard headend`), with 5% datagram loss each way and one
//! `kill -9` of the head-end mid-week followed by a restart. Every interval of every meter
//! must end up in the vault exactly once, equal to the meter's own load profile, and every
//! interval a meter had acknowledged before the kill must already be in the vault when the
//! head-end dies.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

use std::collections::{BTreeSet, HashMap};
use std::net::{SocketAddr, UdpSocket};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use gridguard::datadir::DataDir;
use gridguard::demo::DEMO_START;
use gridguard::fleet::{build_fleet, run_fleet, FleetOptions, FleetProgress};
use gridguard::meter_agent::{AgentConfig, MeterAgent};
use gridguard::sim_clock::SimClock;
use gridguard_vault::{Caller, TimeRange};
use tokio::sync::watch;

const METERS: u64 = 1_000;
const DAYS: u64 = 7;
const DAY: u64 = 86_400;

fn free_port() -> SocketAddr {
    UdpSocket::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
}

struct Plan {
    data: std::path::PathBuf,
    paa: SocketAddr,
    host: SocketAddr,
    clock: SimClock,
    lifetime: Duration,
    grace: Duration,
}

fn start_headend(plan: &Plan, log: &Path) -> Child {
    let log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(log)
        .unwrap();
    Command::new(env!("CARGO_BIN_EXE_gridguard"))
        .args(["headend", "--data"])
        .arg(&plan.data)
        .args([
            "--paa",
            &plan.paa.to_string(),
            "--host",
            &plan.host.to_string(),
        ])
        .args(["--meters", &METERS.to_string(), "--seed", "1"])
        .args(["--lifetime", &plan.lifetime.as_secs_f64().to_string()])
        .args(["--grace", &plan.grace.as_secs_f64().to_string()])
        .args(["--sim-start", &plan.clock.sim_start.to_string()])
        .args(["--real-start-ms", &plan.clock.real_start_ms.to_string()])
        .args(["--speed", &plan.clock.speed.to_string()])
        .args(["--settle", "21600", "--status-every", "0.25"])
        .env("RUST_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .unwrap()
}

async fn wait_for_sim(clock: &SimClock, t: u64) {
    while clock.now() < t {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Every (meter, interval) the vault holds in `period`.
fn stored(data: &DataDir, period: TimeRange) -> HashMap<u64, BTreeSet<i64>> {
    let mut vault = data.open_vault().unwrap();
    vault
        .stored_intervals(period)
        .unwrap()
        .into_iter()
        .map(|(m, s)| (m, s.into_iter().collect()))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_week_with_loss_and_a_killed_headend_stores_every_interval_exactly_once() {
    let dir = tempfile::tempdir().unwrap();
    let data = DataDir::new(dir.path().join("data"));
    let headend_log = dir.path().join("headend.log");
    let day_secs: f64 = std::env::var("GRIDGUARD_E2E_DAY_SECS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(6.0);
    let mut clock = SimClock::starting_now(DEMO_START, DAY as f64 / day_secs);
    clock.real_start_ms += 3_000; // simulated time starts once the meters have registered
    let lifetime = clock.real(2 * DAY);
    let grace = lifetime / 4;
    let agent = AgentConfig::simulated(lifetime, grace);
    let unset = SocketAddr::from(([127, 0, 0, 1], 9));
    let mut options = FleetOptions::new(0..METERS, unset, unset, clock);
    options.agent = agent;
    options.loss = 0.05;
    options.publish_acked = true;
    options.start_spread = Duration::from_millis(1_500);
    // Five meters lose power on day 6 at noon for 45 minutes (profile kept in non-volatile
    // memory); three start with their clocks off (the head-end sets them).
    options.reboots = (100..105)
        .map(|m| (m, DEMO_START + 5 * DAY + DAY / 2, 2_700))
        .collect();
    options.clock_skew = vec![(30, 437), (31, -1_010), (32, 600)];
    // The meters' sockets first, so that the head-end's ports cannot be among them.
    let agents = build_fleet(&options).unwrap();
    let plan = Plan {
        data: data.root().to_path_buf(),
        paa: free_port(),
        host: free_port(),
        clock,
        lifetime,
        grace,
    };
    options.paa = plan.paa;
    options.host = plan.host;
    let mut headend = start_headend(&plan, &headend_log);
    let progress = FleetProgress::default();
    let (stop_tx, stop_rx) = watch::channel(false);
    let fleet = tokio::spawn(run_fleet(agents, options, progress.clone(), stop_rx));

    // Mid-week: kill -9, then check that everything acknowledged is already on disk.
    wait_for_sim(&clock, DEMO_START + 3 * DAY + DAY / 2).await;
    headend.kill().unwrap(); // SIGKILL
    headend.wait().unwrap();
    let acked = progress.acked();
    let acked_intervals: u64 = acked.values().flatten().map(|(a, b)| (b - a) / 900).sum();
    assert!(
        acked_intervals > METERS * 96 * 2,
        "meters had acknowledged only {acked_intervals} intervals before the kill"
    );
    let on_disk = stored(&data, TimeRange::new(0, i64::MAX));
    let mut lost = Vec::new();
    for (meter, ranges) in &acked {
        for &(a, b) in ranges {
            for t in (a..b).step_by(900) {
                let t = i64::try_from(t).unwrap();
                if t >= DEMO_START as i64 && !on_disk.get(meter).is_some_and(|s| s.contains(&t)) {
                    lost.push((*meter, t));
                }
            }
        }
    }
    assert!(
        lost.is_empty(),
        "{} acknowledged intervals missing after kill -9, e.g. {:?}",
        lost.len(),
        &lost[..lost.len().min(5)]
    );

    // Down for a simulated hour or two, then back.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let mut headend = start_headend(&plan, &headend_log);

    // The week, then time for the last intervals to arrive or be backfilled.
    let end = DEMO_START + DAYS * DAY;
    // Then until the head-end reports nothing missing among the intervals old enough to be
    // (settle time 6 h), at most three more simulated days.
    wait_for_sim(&clock, end + DAY / 2).await;
    while clock.now() < end + 3 * DAY {
        let log = std::fs::read_to_string(&headend_log).unwrap_or_default();
        let last = log.lines().rev().find(|l| l.starts_with("status "));
        if last.is_some_and(|l| l.contains(" missing=0 ")) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    stop_tx.send(true).unwrap();
    let agents = fleet.await.unwrap().unwrap();
    let interrupted = Command::new("kill")
        .args(["-INT", &headend.id().to_string()])
        .status()
        .unwrap();
    assert!(interrupted.success());
    let status = headend.wait().unwrap();
    let log = std::fs::read_to_string(&headend_log).unwrap_or_default();
    assert!(status.success(), "head-end exit {status}; log:\n{log}");

    let period = TimeRange::new(DEMO_START as i64, end as i64);
    let all = stored(&data, period);
    let expected: BTreeSet<i64> = (DEMO_START..end).step_by(900).map(|t| t as i64).collect();
    let incomplete: Vec<(u64, usize)> = (0..METERS)
        .filter_map(|m| {
            let got = all.get(&m).map_or(0, |s| s.intersection(&expected).count());
            (got != expected.len()).then_some((m, got))
        })
        .collect();
    let mut states: std::collections::BTreeMap<String, usize> = Default::default();
    for a in &agents {
        *states.entry(a.state()).or_default() += 1;
    }
    assert!(
        incomplete.is_empty(),
        "{} meters incomplete (meter, intervals of {}): {:?}; meter states {states:?}; head-end log:\n{}",
        incomplete.len(),
        expected.len(),
        &incomplete[..incomplete.len().min(10)],
        log.lines().take(40).collect::<Vec<_>>().join("\n")
    );
    assert!(
        all.values().flatten().all(|t| expected.contains(t)),
        "an interval outside the 15-minute grid of the week was stored"
    );

    // Exactly once, and the right values: the readings rebuilt from the shares equal the
    // meter's own load profile (every tenth meter: each rebuild queries all three stores).
    let mut vault = data.open_vault().unwrap();
    let counts = vault.count_intervals(period).unwrap();
    assert_eq!(counts.values().sum::<u64>(), METERS * expected.len() as u64);
    for agent in agents.iter().step_by(10) {
        let own: Vec<(i64, u64)> = agent
            .model()
            .intervals_between(DEMO_START, end)
            .iter()
            .map(|iv| (iv.start as i64, u64::from(iv.delivered) * 10))
            .collect();
        // A clock set backwards repeats an interval start; the vault keeps the first.
        let mut seen = BTreeSet::new();
        let own: Vec<(i64, u64)> = own.into_iter().filter(|(t, _)| seen.insert(*t)).collect();
        let from_shares: Vec<(i64, u64)> = vault
            .readings(agent.serial(), period, &Caller::with_household_data())
            .unwrap()
            .readings
            .iter()
            .map(|r| (r.interval_start, r.wh))
            .collect();
        assert_eq!(from_shares, own, "meter {}", agent.serial());
    }
    assert_eq!(agents.iter().map(|a| a.stats().reboots).sum::<u64>(), 5);
    // The new head-end knew no session: every meter noticed (through its C12.22 requests
    // and a ping, or through its PANA re-authentication) and authenticated again.
    let unaware: Vec<u64> = agents
        .iter()
        .filter(|a| a.stats().sessions < 2)
        .map(MeterAgent::serial)
        .collect();
    assert!(
        unaware.is_empty(),
        "meters that never authenticated again after the head-end's death: {unaware:?}"
    );
}
