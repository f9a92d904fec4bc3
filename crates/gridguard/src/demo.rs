//! `gridguard demo`: a head-end and a fleet of simulated meters in one process on loopback,
//! running a simulated week in accelerated time: PANA authentication with EAP-PSK, UKMF keys,
//! C12.22 registration and interval uploads protected with EAX′, re-authentication with key
//! rollover, a network outage whose gap the head-end backfills from the meters' load
//! profiles, a demand-response event and a remote disconnect and reconnect. Every reading is
//! stored as secret shares in three SQLite stores; the summary recomputes bills and regional
//! totals from the shares.

use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use gridguard_c1222::pcap::PcapWriter;
use gridguard_vault::{Caller, Month, TimeRange};
use indicatif::{MultiProgress, ProgressBar, ProgressStyle};
use tokio::sync::watch;

use crate::datadir::DataDir;
use crate::fleet::{build_fleet, run_fleet, FleetOptions, FleetProgress, Outage};
use crate::headend_service::{
    run_headend_on, CommandKind, HeadendOptions, HeadendProgress, HeadendStats, ScheduledCommand,
};
use crate::meter_agent::{AgentConfig, AgentStats, MeterAgent};
use crate::sim_clock::SimClock;

/// 2026-10-01T00:00:00 (meter time), the first simulated day.
pub const DEMO_START: u64 = 1_790_812_800;
const DAY: u64 = 86_400;

/// How the demo runs.
#[derive(Clone, Debug)]
pub struct DemoOptions {
    /// Number of meters.
    pub meters: u64,
    /// Simulated days.
    pub days: u64,
    /// Real seconds per simulated day.
    pub day_secs: f64,
    /// Data directory (emptied first).
    pub data: PathBuf,
    /// Datagram loss, each direction.
    pub loss: f64,
    /// Regions the meters are spread over.
    pub regions: u32,
    /// Write the traffic to this pcap file.
    pub pcap: Option<PathBuf>,
    /// Append the C12.22 keys to this key log (for Wireshark).
    pub keylog: Option<PathBuf>,
    /// Show progress bars.
    pub progress: bool,
    /// After the run, time a bare vault ingest of as many readings into fresh stores (the
    /// benchmark anchor for the end-to-end ingest rate).
    pub ingest_anchor: bool,
    /// Seed of the meters' PSKs and the loss.
    pub seed: u64,
    /// Meters reach the head-end through this many neighbourhood collectors (PANA relays,
    /// one socket each) instead of a socket each; 0: a socket each.
    pub relays: usize,
    /// Simulated seconds between two uploads of a meter.
    pub upload_every_s: u64,
    /// Simulated days a PANA session lives; meters re-authenticate a quarter before.
    pub session_days: f64,
}

impl Default for DemoOptions {
    fn default() -> Self {
        DemoOptions {
            meters: 1_000,
            days: 7,
            day_secs: 4.0,
            data: PathBuf::from(crate::vault_cli::DEFAULT_DATA_DIR),
            loss: 0.0,
            regions: 10,
            pcap: None,
            keylog: None,
            progress: true,
            ingest_anchor: false,
            seed: 1,
            relays: 0,
            upload_every_s: 3_600,
            session_days: 2.0,
        }
    }
}

/// What the demo did.
#[derive(Debug)]
pub struct DemoReport {
    /// The head-end's counters.
    pub headend: HeadendStats,
    /// The meters' counters, summed.
    pub meters: AgentStats,
    /// Meters simulated.
    pub meter_count: u64,
    /// Intervals every meter had to deliver in the simulated period.
    pub expected_intervals: u64,
    /// (meter, interval) rows the vault holds for the period (counted in a store).
    pub stored_intervals: u64,
    /// Meters whose readings, rebuilt from the shares, equal the meter's own load profile,
    /// out of those checked.
    pub verified_meters: (usize, usize),
    /// Readings of the checked meters, rebuilt from the shares, whose value differs from the
    /// meter's own for that interval (a meter can fail the check above only by missing
    /// intervals while this stays 0).
    pub differing_readings: usize,
    /// Simulated period `[start, end)`.
    pub period: (u64, u64),
    /// The data directory.
    pub data: PathBuf,
    /// Real time the run took.
    pub elapsed: Duration,
    /// The summary text (table, bills, totals).
    pub summary: String,
    /// Intervals committed per real second while the simulated period runs (from its second
    /// hour, when every meter has intervals to upload, to its end).
    pub ingest_rate: f64,
    /// Uploads (C12.22 writes of intervals) acknowledged per second over the same window.
    pub upload_rate: f64,
    /// Bare vault ingest rate of as many readings, measured after the run (when asked).
    pub anchor_rate: Option<f64>,
    /// Cores busy over the same window: the whole process, and of it the simulated meters'
    /// runtime (Linux; None elsewhere).
    pub cpu: Option<CpuSplit>,
    /// The meters at the end (for tests).
    pub agents: Vec<MeterAgent>,
}

fn loopback() -> std::net::SocketAddr {
    std::net::SocketAddr::from(([127, 0, 0, 1], 0))
}

/// The events of the simulated week: an outage of the first tenth of the meters from day 2
/// 00:00 to day 3 06:00 (longer than a meter's upload window, so the head-end must backfill), a
/// demand-response event for region 1 on day 3 at 17:00, meter 7 disconnected on day 4 at
/// 10:00 and reconnected at 16:00.
fn schedule(o: &DemoOptions, start: u64) -> (Option<Outage>, Vec<ScheduledCommand>) {
    let at = |day: u64, hour: u64| start + day * DAY + hour * 3_600;
    let outage = (o.days > 2).then(|| Outage {
        serials: 0..(o.meters / 10).max(1),
        from: at(1, 0),
        to: at(2, 6),
        host_only: false,
    });
    let regions = u64::from(o.regions.max(1));
    let mut commands = Vec::new();
    if o.days > 3 {
        commands.push(ScheduledCommand {
            at: at(2, 17),
            kind: CommandKind::LoadControl {
                duration_min: 120,
                reduction_pct: 30,
            },
            meters: (0..o.meters).filter(|m| m % regions == 1).collect(),
        });
    }
    if o.days > 4 {
        let m = 7.min(o.meters.saturating_sub(1));
        commands.push(ScheduledCommand {
            at: at(3, 10),
            kind: CommandKind::Disconnect,
            meters: vec![m],
        });
        commands.push(ScheduledCommand {
            at: at(3, 16),
            kind: CommandKind::Reconnect,
            meters: vec![m],
        });
    }
    (outage, commands)
}

/// Runs the demo.
///
/// # Errors
/// When sockets or the data directory cannot be set up, or the vault cannot be read.
pub async fn run(options: DemoOptions) -> anyhow::Result<DemoReport> {
    let t0 = Instant::now();
    let data = DataDir::new(&options.data);
    clear_data_dir(&data)?;
    data.create()?;
    std::fs::write(data.root().join(DEMO_MARKER), "written by gridguard demo\n")?;
    let speed = DAY as f64 / options.day_secs.max(0.01);
    // Simulated time stands at the start for a moment while the meters authenticate and
    // register, then runs.
    let warmup = Duration::from_millis(1_500 + options.meters);
    let mut clock = SimClock::starting_now(DEMO_START, speed);
    clock.real_start_ms += u64::try_from(warmup.as_millis()).unwrap_or(0);
    let end = DEMO_START + options.days * DAY;
    let (outage, commands) = schedule(&options, DEMO_START);

    // Sessions live two simulated days (by default), and the meters re-authenticate a
    // quarter before.
    let lifetime = clock
        .real((options.session_days.max(0.01) * DAY as f64) as u64)
        .max(Duration::from_secs(4));
    let grace = (lifetime / 4).max(Duration::from_secs(1));
    // The head-end runs on a runtime of its own, as it would on its own machine: the
    // simulated meters' work cannot hold its sockets unread while they are busy.
    let headend_runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .thread_name("headend")
        .enable_all()
        .build()?;
    let (paa_socket, host_socket) = {
        let _inside = headend_runtime.enter();
        (
            crate::pana_paa::bind_udp(loopback(), 8 << 20)?,
            crate::pana_paa::bind_udp(loopback(), 8 << 20)?,
        )
    };
    let (paa, host) = (paa_socket.local_addr()?, host_socket.local_addr()?);
    tracing::debug!(%paa, %host, "head-end sockets");

    let headend_options = HeadendOptions {
        data: data.clone(),
        paa,
        host,
        meters: 0..options.meters,
        seed: options.seed,
        regions: options.regions,
        session_lifetime: lifetime,
        grace,
        clock,
        epoch: i64::try_from(DEMO_START).unwrap_or(0),
        // An interval waits up to an upload period for its upload, and a period more when the
        // head-end answered `bsy`: backfill only what is older than three periods.
        settle_s: (6 * 3_600)
            .max(3 * i64::try_from(options.upload_every_s).unwrap_or(i64::MAX / 4)),
        commands,
        batch: 4_096,
        busy_after: crate::headend_service::DEFAULT_BUSY_AFTER,
        keylog: options.keylog.clone(),
    };
    let mut agent = AgentConfig::simulated(lifetime, grace);
    agent.upload_every_s = options.upload_every_s.max(1);
    let mut fleet_options = FleetOptions::new(0..options.meters, paa, host, clock);
    fleet_options.seed = options.seed;
    fleet_options.agent = agent;
    fleet_options.loss = options.loss;
    fleet_options.outage = outage;
    // Three meters start with their clocks off (the head-end reads ST52 at registration and
    // sets them with SP10); five reboot on day 5 at noon for 45 minutes, keeping their
    // profiles in non-volatile memory.
    let skewed: [(u64, i64); 3] = [(30, 437), (31, -1_010), (32, 600)];
    fleet_options.clock_skew = skewed
        .into_iter()
        .filter(|(m, _)| *m < options.meters)
        .collect();
    if options.days > 5 {
        let at = DEMO_START + 4 * DAY + 12 * 3_600;
        fleet_options.reboots = (40..45)
            .filter(|m| *m < options.meters)
            .map(|m| (m, at, 2_700))
            .collect();
    }
    fleet_options.start_spread = warmup / 2;
    if options.relays > 0 {
        fleet_options.relays = true;
        fleet_options.lanes = options.relays;
    }
    let capture = options
        .pcap
        .as_ref()
        .map(|_| Arc::new(Mutex::new(PcapWriter::new())));
    fleet_options.capture = capture.clone();

    let (stop_tx, stop_rx) = watch::channel(false);
    let head_progress = HeadendProgress::default();
    let headend = headend_runtime.spawn(run_headend_on(
        paa_socket,
        host_socket,
        headend_options.clone(),
        head_progress.clone(),
        stop_rx.clone(),
    ));
    let prepared = build_fleet(&fleet_options)?;
    let fleet_progress = FleetProgress::default();
    let fleet = tokio::spawn(run_fleet(
        prepared,
        fleet_options,
        fleet_progress.clone(),
        stop_rx,
    ));

    let bars = Bars::new(options.progress, options.days, options.meters);
    // Run to the end of the period, then until every interval of it is stored (the last ones
    // may need the settle time and a backfill), at most a simulated day longer.
    let deadline = end + DAY;
    let mut window = RateWindow::default();
    loop {
        tokio::time::sleep(Duration::from_millis(100)).await;
        let sim = clock.now();
        let h = head_progress.get();
        bars.update(sim, &h, &fleet_progress);
        let sample = (
            Instant::now(),
            h.intervals_stored,
            fleet_progress.total().uploads_acked,
        );
        if sim >= DEMO_START + 3_600 && window.from.is_none() {
            window.from = Some(sample);
            window.cpu_from = cpu_seconds();
        }
        if sim <= end || window.to.is_none() {
            window.to = Some(sample);
            window.cpu_to = cpu_seconds();
        }
        if headend.is_finished() || fleet.is_finished() {
            break;
        }
        let settled = sim >= end + u64::try_from(headend_options.settle_s).unwrap_or(0) + 1_800;
        if sim >= deadline || (settled && h.missing == 0) {
            break;
        }
    }
    let _ = stop_tx.send(true);
    let headend_stats = headend.await??;
    headend_runtime.shutdown_background();
    let agents = fleet.await??;
    bars.finish();
    if let (Some(path), Some(cap)) = (&options.pcap, capture) {
        let bytes = cap
            .lock()
            .map(|c| c.as_bytes().to_vec())
            .unwrap_or_default();
        std::fs::write(path, bytes)?;
    }
    let meters = agents.iter().fold(AgentStats::default(), |a, m| {
        crate::fleet::add(a, m.stats())
    });

    let mut vault = data.open_vault()?;
    let period = TimeRange::new(
        i64::try_from(DEMO_START).unwrap_or(0),
        i64::try_from(end).unwrap_or(i64::MAX),
    );
    let counts = vault.count_intervals(period)?;
    let stored_intervals: u64 = counts.values().sum();
    let expected_intervals = options.meters * options.days * 96;
    let (verified_meters, differing_readings) = verify_sample(&mut vault, &agents, period, 10)?;
    let (ingest_rate, upload_rate) = window.rates();
    let anchor_rate = if options.ingest_anchor {
        Some(bare_ingest_rate(headend_stats.intervals_stored)?)
    } else {
        None
    };
    let mut report = DemoReport {
        headend: headend_stats,
        meters,
        meter_count: options.meters,
        expected_intervals,
        stored_intervals,
        verified_meters,
        differing_readings,
        period: (DEMO_START, end),
        data: options.data.clone(),
        elapsed: t0.elapsed(),
        summary: String::new(),
        ingest_rate,
        upload_rate,
        anchor_rate,
        cpu: window.cores(),
        agents,
    };
    report.summary = summary(&report, &mut vault, &options)?;
    Ok(report)
}

/// Samples (real time, intervals stored, uploads acknowledged) at the start and end of the
/// window the ingest rate is measured over.
#[derive(Default)]
struct RateWindow {
    from: Option<(Instant, u64, u64)>,
    to: Option<(Instant, u64, u64)>,
    cpu_from: Option<CpuSplit>,
    cpu_to: Option<CpuSplit>,
}

/// CPU time: the whole process (every thread, live or ended) and the simulated meters'
/// runtime threads; seconds so far, or cores busy over a window.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct CpuSplit {
    /// The whole process.
    pub process: f64,
    /// The simulated meters (the main runtime's worker threads, where the fleet runs).
    pub meters: f64,
}

/// CPU seconds used so far (Linux `/proc`; `utime`/`stime` are in USER_HZ = 100 ticks).
fn cpu_seconds() -> Option<CpuSplit> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    let fields: Vec<&str> = stat.rsplit_once(')')?.1.split_whitespace().collect();
    let ticks = |i: usize| fields.get(i).and_then(|f| f.parse::<u64>().ok());
    let process = (ticks(11)? + ticks(12)?) as f64 / 100.0;
    let mut meters_ns = 0u64;
    for task in std::fs::read_dir("/proc/self/task").ok()?.flatten() {
        let comm = std::fs::read_to_string(task.path().join("comm")).unwrap_or_default();
        // tokio's default worker names ("tokio-rt-worker", "tokio-runtime-worker" cut to
        // the kernel's 15 characters); the head-end's runtime names its own "headend".
        if comm.starts_with("tokio-") {
            let sched = std::fs::read_to_string(task.path().join("schedstat")).unwrap_or_default();
            meters_ns += sched
                .split_whitespace()
                .next()
                .and_then(|v| v.parse::<u64>().ok())
                .unwrap_or(0);
        }
    }
    Some(CpuSplit {
        process,
        meters: meters_ns as f64 / 1e9,
    })
}

impl RateWindow {
    /// Cores busy over the window.
    fn cores(&self) -> Option<CpuSplit> {
        let (a, b, (t0, _, _), (t1, _, _)) = (self.cpu_from?, self.cpu_to?, self.from?, self.to?);
        let secs = t1.saturating_duration_since(t0).as_secs_f64().max(1e-3);
        Some(CpuSplit {
            process: (b.process - a.process) / secs,
            meters: (b.meters - a.meters) / secs,
        })
    }

    /// (intervals stored, uploads acknowledged) per real second over the window.
    fn rates(&self) -> (f64, f64) {
        let (Some(a), Some(b)) = (self.from, self.to) else {
            return (0.0, 0.0);
        };
        let secs = b.0.saturating_duration_since(a.0).as_secs_f64().max(1e-3);
        (
            b.1.saturating_sub(a.1) as f64 / secs,
            b.2.saturating_sub(a.2) as f64 / secs,
        )
    }
}

/// Readings per second a bare vault (three fresh SQLite stores in a temporary directory)
/// ingests: `n` synthetic readings in batches of 4,096, as the head-end's writer batches them.
fn bare_ingest_rate(n: u64) -> anyhow::Result<f64> {
    let dir = std::env::temp_dir().join(format!("gridguard-anchor-{}", std::process::id()));
    let data = DataDir::new(&dir);
    let mut vault = data.open_vault()?;
    let readings: Vec<gridguard_vault::Reading> = (0..n)
        .map(|i| gridguard_vault::Reading {
            meter: i % 100_000,
            interval_start: i64::try_from(DEMO_START + (i / 100_000) * 900).unwrap_or(0),
            wh: i % 997,
        })
        .collect();
    let t = Instant::now();
    for batch in readings.chunks(4_096) {
        vault.ingest(batch)?;
    }
    let secs = t.elapsed().as_secs_f64().max(1e-9);
    drop(vault);
    let _ = std::fs::remove_dir_all(&dir);
    Ok(n as f64 / secs)
}

/// Checks that the readings rebuilt from the shares equal the meters' own load profiles, for
/// `n` meters spread over the fleet. Returns (equal, checked).
fn verify_sample(
    vault: &mut gridguard_vault::Vault,
    agents: &[MeterAgent],
    period: TimeRange,
    n: usize,
) -> anyhow::Result<((usize, usize), usize)> {
    let step = (agents.len() / n.max(1)).max(1);
    let mut ok = 0;
    let mut checked = 0;
    let mut differing = 0;
    for agent in agents.iter().step_by(step).take(n) {
        checked += 1;
        let from_shares = vault.readings(agent.serial(), period, &Caller::with_household_data())?;
        let own: Vec<(i64, u64)> = agent
            .model()
            .intervals_between(
                u64::try_from(period.start).unwrap_or(0),
                u64::try_from(period.end).unwrap_or(0),
            )
            .iter()
            .map(|iv| {
                (
                    i64::try_from(iv.start).unwrap_or(0),
                    u64::from(iv.delivered) * 10,
                )
            })
            .collect();
        // A clock set backwards repeats an interval start in the meter's profile; the vault
        // keeps the first reading of a (meter, interval), and so does this comparison.
        let mut seen = std::collections::HashSet::new();
        let own: Vec<(i64, u64)> = own.into_iter().filter(|(t, _)| seen.insert(*t)).collect();
        let got: Vec<(i64, u64)> = from_shares
            .readings
            .iter()
            .map(|r| (r.interval_start, r.wh))
            .collect();
        if got == own {
            ok += 1;
        }
        let own: std::collections::HashMap<i64, u64> = own.into_iter().collect();
        differing += got
            .iter()
            .filter(|(t, wh)| own.get(t).is_some_and(|o| o != wh))
            .count();
    }
    Ok(((ok, checked), differing))
}

fn summary(
    r: &DemoReport,
    vault: &mut gridguard_vault::Vault,
    options: &DemoOptions,
) -> anyhow::Result<String> {
    use std::fmt::Write as _;
    let h = &r.headend;
    let m = &r.meters;
    let mut s = String::new();
    let days = (r.period.1 - r.period.0) / DAY;
    let _ = writeln!(
        s,
        "\nSimulated {days} days ({} to {}) in {:.1} s\n",
        gridguard_vault::time::format_day(i64::try_from(r.period.0).unwrap_or(0)),
        gridguard_vault::time::format_day(i64::try_from(r.period.1 - 1).unwrap_or(0)),
        r.elapsed.as_secs_f64()
    );
    let rows: Vec<(&str, String)> = vec![
        ("meters", r.meter_count.to_string()),
        ("PANA sessions (EAP-PSK)", h.sessions.to_string()),
        ("re-authentications", h.reauthentications.to_string()),
        (
            "keys rolled (C12.22, demand response, link layer)",
            (3 * h.reauthentications).to_string(),
        ),
        ("registrations (C12.22)", h.registrations.to_string()),
        (
            "uploads sent / acknowledged",
            format!("{} / {}", m.uploads_sent, m.uploads_acked),
        ),
        (
            "intervals expected in the period",
            r.expected_intervals.to_string(),
        ),
        (
            "intervals stored (vault, each once)",
            r.stored_intervals.to_string(),
        ),
        (
            "intervals received twice (ignored)",
            h.duplicates.to_string(),
        ),
        (
            "gaps detected / intervals backfilled",
            format!("{} / {}", h.gaps_detected, h.intervals_filled),
        ),
        (
            "commands sent / acknowledged",
            format!("{} / {}", h.commands_sent, h.commands_acked),
        ),
        (
            "meter clocks found off and set (SP10)",
            h.clocks_set.to_string(),
        ),
        ("meter reboots (profile kept)", m.reboots.to_string()),
        (
            "meters that gave the head-end up and started over",
            m.restarts.to_string(),
        ),
        (
            "head-end slow: meters' pings to the PAA / answered (held back)",
            format!("{} / {}", m.probes, m.held_back),
        ),
        (
            "head-end busy: uploads answered bsy / vault writer's largest lag",
            format!("{} / {} ms", h.busy_answers, h.max_writer_lag_ms),
        ),
        (
            "C12.22 messages refused by the head-end",
            h.refused.to_string(),
        ),
        (
            "readings from shares = meter's own profile",
            format!(
                "{} of {} meters checked ({} readings differ)",
                r.verified_meters.0, r.verified_meters.1, r.differing_readings
            ),
        ),
    ];
    let width = rows.iter().map(|(k, _)| k.len()).max().unwrap_or(0);
    for (k, v) in rows {
        let _ = writeln!(s, "  {k:<width$}  {v:>12}");
    }
    let _ = writeln!(
        s,
        "\n  durable ingest, end to end (meters simulated in the same process): {:.0} intervals/s ({:.0} uploads/s)",
        r.ingest_rate, r.upload_rate
    );
    if let Some(c) = r.cpu {
        let _ = writeln!(
            s,
            "  cores busy meanwhile: {:.2} in all, of which the simulated meters {:.2} and the head-end with its vault {:.2}",
            c.process,
            c.meters,
            (c.process - c.meters).max(0.0)
        );
    }
    if let Some(a) = r.anchor_rate {
        let _ = writeln!(
            s,
            "  bare vault ingest of as many readings, same run (anchor):         {a:.0} readings/s  (end to end = {:.2}× the anchor)",
            r.ingest_rate / a.max(1e-9)
        );
    }
    let month = Month::new(2026, 10).ok_or_else(|| anyhow::anyhow!("month"))?;
    let households: Vec<u64> = (0..r.meter_count.min(3)).collect();
    let _ = writeln!(
        s,
        "\nBills of three households, October 2026 (from the shares):"
    );
    s.push_str(&crate::vault_cli::bill_report(
        vault,
        month,
        Some(&households),
        households.len(),
    )?);
    if days > 3 && options.regions > 2 {
        let _ = writeln!(
            s,
            "\nDemand response (region 1, day 3, 17:00-19:00, 30% shed), regional totals from the shares:"
        );
        s.push_str(&demand_response_table(vault, r.period.0)?);
    }
    let dir = r.data.display();
    let _ = writeln!(
        s,
        "\nData directory: {dir}\n  gridguard readings --data {dir} --meter 7 --day {}\n  gridguard events --data {dir} --meter 7\n  gridguard bill --data {dir} --month 2026-10 --limit 10\n  gridguard vault check --data {dir}",
        gridguard_vault::time::format_day(i64::try_from(r.period.0 + 3 * DAY).unwrap_or(0))
    );
    if let Some(p) = &options.pcap {
        let _ = writeln!(
            s,
            "Capture: {} (PANA on 716, C12.22 on 1153; see README: opening C12.22 captures in Wireshark)",
            p.display()
        );
    }
    if let Some(k) = &options.keylog {
        let _ = writeln!(
            s,
            "Key log: {} (keys in clear: delete it after debugging)\n  gridguard inspect {} --keylog {}",
            k.display(),
            options.pcap.as_ref().map_or("CAPTURE".into(), |p| p.display().to_string()),
            k.display()
        );
    }
    Ok(s)
}

/// Marks a data directory the demo wrote (and may replace).
const DEMO_MARKER: &str = "DEMO";

/// Region 1 (the event) and region 2 (no event): energy from 17:00 to 19:00 on the event day
/// and on the day before, each a regional total reconstructed from the shares.
fn demand_response_table(vault: &mut gridguard_vault::Vault, start: u64) -> anyhow::Result<String> {
    use std::fmt::Write as _;
    let window = |day: u64| {
        let from = i64::try_from(start + day * DAY + 17 * 3_600).unwrap_or(0);
        TimeRange::new(from, from + 2 * 3_600)
    };
    let mut out = String::from("  region   day before     event day   change\n");
    for region in [1u32, 2] {
        let mut total = |range| -> anyhow::Result<u64> {
            let t = vault.region_totals(
                Some(region),
                range,
                gridguard_vault::Granularity::Day,
                &Caller::aggregates_only(),
            )?;
            Ok(t.rows.iter().map(|r| r.wh).sum())
        };
        let (before, event) = (total(window(1))?, total(window(2))?);
        let change = (event as f64 / before.max(1) as f64 - 1.0) * 100.0;
        let _ = writeln!(
            out,
            "  {region:>6} {before:>10} Wh {event:>10} Wh {change:>+7.1}%"
        );
    }
    Ok(out)
}

/// Removes what a previous demo left in `data`; refuses a directory the demo did not write.
fn clear_data_dir(data: &DataDir) -> anyhow::Result<()> {
    let root = data.root();
    if !root.exists() || std::fs::read_dir(root)?.next().is_none() {
        return Ok(());
    }
    anyhow::ensure!(
        root.join(DEMO_MARKER).exists(),
        "{} holds data the demo did not write; pass --data with a new directory",
        root.display()
    );
    for d in [root.join("vault"), data.headend_dir()] {
        if d.exists() {
            std::fs::remove_dir_all(&d)?;
        }
    }
    Ok(())
}

struct Bars {
    multi: Option<MultiProgress>,
    days: ProgressBar,
    status: ProgressBar,
    start: u64,
}

impl Bars {
    fn new(show: bool, days: u64, meters: u64) -> Self {
        let multi = show.then(MultiProgress::new);
        let add = |b: ProgressBar| match &multi {
            Some(m) => m.add(b),
            None => ProgressBar::hidden(),
        };
        let day_bar = add(ProgressBar::new(days * DAY));
        day_bar.set_style(
            ProgressStyle::with_template("simulated time [{bar:40}] {msg}")
                .unwrap_or_else(|_| ProgressStyle::default_bar())
                .progress_chars("=> "),
        );
        let status = add(ProgressBar::new(meters));
        status.set_style(
            ProgressStyle::with_template("meters online  [{bar:40}] {pos}/{len}  {msg}")
                .unwrap_or_else(|_| ProgressStyle::default_bar())
                .progress_chars("=> "),
        );
        Bars {
            multi,
            days: day_bar,
            status,
            start: DEMO_START,
        }
    }

    fn update(&self, sim: u64, h: &HeadendStats, fleet: &FleetProgress) {
        let elapsed = sim.saturating_sub(self.start);
        self.days.set_position(elapsed);
        self.days.set_message(format!(
            "day {} {:02}:{:02}",
            elapsed / DAY + 1,
            elapsed % DAY / 3_600,
            elapsed % 3_600 / 60
        ));
        self.status.set_position(fleet.online() as u64);
        self.status.set_message(format!(
            "{} intervals stored, {} re-auth, {} backfilled, {} commands acked",
            h.intervals_stored, h.reauthentications, h.intervals_filled, h.commands_acked
        ));
    }

    fn finish(&self) {
        self.days.finish();
        self.status.finish();
        if let Some(m) = &self.multi {
            let _ = m.clear();
        }
    }
}
