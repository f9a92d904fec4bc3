//! The AMSO commands: `demo` (head-end and meters for a simulated week), `headend` (the
//! head-end on its own, e.g. for a fleet in another process), `meters` (that fleet) and
//! `events` (the head-end's event log).

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::{Args, Subcommand};
use tokio::sync::watch;

use crate::datadir::DataDir;
use crate::demo::{self, DemoOptions};
use crate::event_log::read_events;
use crate::headend_service::{run_headend, HeadendOptions, HeadendProgress};
use crate::sim_clock::SimClock;
use crate::vault_cli::DEFAULT_DATA_DIR;

/// The AMSO commands (flattened into the top-level command list).
#[derive(Subcommand, Debug)]
pub enum AmsoCommand {
    /// A head-end and simulated meters on loopback for a simulated week: PANA, UKMF keys,
    /// C12.22 with EAX′, re-authentication, an outage with backfill, demand response, a remote
    /// disconnect and reconnect; readings kept as secret shares. Leaves a data directory to
    /// query with `readings`, `events`, `bill`, `totals`.
    Demo {
        /// Number of meters.
        #[arg(long, default_value_t = 1000)]
        meters: u64,
        /// Simulated days.
        #[arg(long, default_value_t = 7)]
        days: u64,
        /// Real seconds per simulated day.
        #[arg(long, default_value_t = 4.0)]
        day_secs: f64,
        /// Data directory (a previous demo's is replaced; any other directory is refused).
        #[arg(long, default_value = DEFAULT_DATA_DIR)]
        data: PathBuf,
        /// Datagram loss on the meters' links, each direction (0.0–0.5).
        #[arg(long, default_value_t = 0.0)]
        loss: f64,
        /// Number of regions.
        #[arg(long, default_value_t = 10)]
        regions: u32,
        /// Write the meters' traffic to this pcap file (open it in Wireshark with the key log).
        #[arg(long)]
        pcap: Option<PathBuf>,
        /// Append the C12.22 keys to this key log (keys in clear; GRIDGUARD_KEYLOG works too).
        #[arg(long)]
        keylog: Option<PathBuf>,
        /// No progress bars.
        #[arg(long)]
        quiet: bool,
        /// After the run, time a bare vault ingest of as many readings (benchmark anchor).
        #[arg(long)]
        ingest_anchor: bool,
        /// Meters reach the head-end through this many neighbourhood collectors (PANA relays
        /// per RFC 6345, C12.22 routed by AP title), one socket each, instead of a socket per
        /// meter: for fleets beyond the process's file limit. 0: a socket per meter.
        #[arg(long, default_value_t = 0)]
        relays: usize,
        /// Simulated minutes between two uploads of a meter.
        #[arg(long, default_value_t = 60)]
        upload_every: u64,
        /// Simulated days a PANA session lives (meters re-authenticate a quarter before).
        #[arg(long, default_value_t = 2.0)]
        session_days: f64,
    },
    /// Run the head-end alone: PAA, C12.22 host, durable ingest into the vault, backfill.
    Headend {
        /// Data directory.
        #[arg(long, default_value = DEFAULT_DATA_DIR)]
        data: PathBuf,
        /// Addresses, meters, session times and clock.
        #[command(flatten)]
        shared: SharedArgs,
        /// Number of regions.
        #[arg(long, default_value_t = 10)]
        regions: u32,
        /// Seconds (meter time) an interval may take to arrive before it is backfilled.
        #[arg(long, default_value_t = 7200)]
        settle: i64,
        /// Append the C12.22 keys to this key log (keys in clear; GRIDGUARD_KEYLOG works too).
        #[arg(long)]
        keylog: Option<PathBuf>,
        /// Print a status line (`status stored=N missing=M …`) to stderr this often, seconds.
        #[arg(long)]
        status_every: Option<f64>,
    },
    /// Simulated meters on their own against a head-end in another process; prints what they
    /// did and the memory each simulated meter takes.
    Meters(crate::fleet_cli::MetersArgs),
    /// The head-end's event log (sessions, key rollovers, registrations, gaps, commands).
    Events {
        /// Data directory.
        #[arg(long, default_value = DEFAULT_DATA_DIR)]
        data: PathBuf,
        /// Only this meter.
        #[arg(long)]
        meter: Option<u64>,
        /// Only this kind (session, rekey, registered, gap, backfill-read, backfilled, command,
        /// ack, nack, command-lost, start, stop).
        #[arg(long)]
        kind: Option<String>,
        /// Newest events shown at most.
        #[arg(long, default_value_t = 50)]
        limit: usize,
    },
}

/// The flags `headend` and `meters` share: where the head-end listens, which meters it
/// knows, and the session times and simulated clock both sides must agree on.
#[derive(Args, Debug, Clone)]
pub struct SharedArgs {
    /// The head-end's PANA address.
    #[arg(long, default_value = "127.0.0.1:716")]
    pub paa: SocketAddr,
    /// The head-end's C12.22 address.
    #[arg(long, default_value = "127.0.0.1:1153")]
    pub host: SocketAddr,
    /// Number of meters (serials 0..N, simulator credentials under --seed).
    #[arg(long, default_value_t = 1000)]
    pub meters: u64,
    /// Seed of the simulated meters' PSKs.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// PANA session lifetime, seconds (meters re-authenticate a quarter before its end).
    #[arg(long, default_value_t = 3600.0)]
    pub lifetime: f64,
    /// Key grace period, seconds.
    #[arg(long, default_value_t = 60.0)]
    pub grace: f64,
    /// Simulated clock: simulated seconds since 1970 at --real-start-ms.
    #[arg(long, default_value_t = demo::DEMO_START)]
    pub sim_start: u64,
    /// Simulated clock: real milliseconds since 1970 at which it reads --sim-start
    /// (default: now).
    #[arg(long)]
    pub real_start_ms: Option<u64>,
    /// Simulated seconds per real second.
    #[arg(long, default_value_t = 1.0)]
    pub speed: f64,
}

impl SharedArgs {
    /// The simulated clock the flags describe.
    pub fn clock(&self) -> SimClock {
        let mut clock = SimClock::starting_now(self.sim_start, self.speed);
        if let Some(ms) = self.real_start_ms {
            clock.real_start_ms = ms;
        }
        clock
    }

    /// The PANA session lifetime (at least a second).
    pub fn lifetime(&self) -> Duration {
        Duration::from_secs_f64(self.lifetime.max(1.0))
    }

    /// The key grace period.
    pub fn grace(&self) -> Duration {
        Duration::from_secs_f64(self.grace.max(0.0))
    }
}

/// Runs an AMSO command.
///
/// # Errors
/// When the command fails.
pub async fn run(command: AmsoCommand) -> anyhow::Result<ExitCode> {
    match command {
        AmsoCommand::Demo {
            meters,
            days,
            day_secs,
            data,
            loss,
            regions,
            pcap,
            keylog,
            quiet,
            ingest_anchor,
            relays,
            upload_every,
            session_days,
        } => {
            let options = DemoOptions {
                ingest_anchor,
                relays,
                upload_every_s: upload_every.max(1).saturating_mul(60),
                session_days,
                keylog,
                meters,
                days,
                day_secs,
                data,
                loss: loss.clamp(0.0, 0.5),
                regions,
                pcap,
                progress: !quiet,
                ..DemoOptions::default()
            };
            let report = demo::run(options).await?;
            println!("{}", report.summary);
            let complete = report.stored_intervals == report.expected_intervals
                && report.verified_meters.0 == report.verified_meters.1;
            Ok(if complete {
                ExitCode::SUCCESS
            } else {
                ExitCode::FAILURE
            })
        }
        AmsoCommand::Headend {
            data,
            shared,
            regions,
            settle,
            keylog,
            status_every,
        } => {
            let clock = shared.clock();
            let (paa, host) = (shared.paa, shared.host);
            let options = HeadendOptions {
                data: DataDir::new(data),
                paa,
                host,
                meters: 0..shared.meters,
                seed: shared.seed,
                regions,
                session_lifetime: shared.lifetime(),
                grace: shared.grace(),
                clock,
                epoch: i64::try_from(shared.sim_start).unwrap_or(0),
                settle_s: settle,
                commands: Vec::new(),
                batch: 4_096,
                busy_after: crate::headend_service::DEFAULT_BUSY_AFTER,
                keylog,
            };
            let (stop_tx, stop_rx) = watch::channel(false);
            tokio::spawn(async move {
                let _ = tokio::signal::ctrl_c().await;
                let _ = stop_tx.send(true);
            });
            eprintln!("head-end: PANA on {paa}, C12.22 on {host}; Ctrl-C stops");
            let progress = HeadendProgress::default();
            if let Some(every) = status_every {
                let (p, period) = (progress.clone(), Duration::from_secs_f64(every.max(0.05)));
                tokio::spawn(async move {
                    loop {
                        tokio::time::sleep(period).await;
                        let s = p.get();
                        eprintln!(
                            "status sim={} stored={} missing={} filled={} sessions={} rekeys={} busy={} writer_lag_ms={}",
                            clock.now(),
                            s.intervals_stored,
                            s.missing,
                            s.intervals_filled,
                            s.sessions,
                            s.reauthentications,
                            s.busy_answers,
                            s.max_writer_lag_ms
                        );
                    }
                });
            }
            let stats = run_headend(options, progress, stop_rx).await?;
            eprintln!("{stats:?}");
            Ok(ExitCode::SUCCESS)
        }
        AmsoCommand::Meters(args) => crate::fleet_cli::run(args).await,
        AmsoCommand::Events {
            data,
            meter,
            kind,
            limit,
        } => {
            let path = DataDir::new(&data).events_path();
            anyhow::ensure!(path.exists(), "no event log at {}", path.display());
            for e in read_events(&path, meter, kind.as_deref(), limit)? {
                let t = gridguard_vault::time::format_utc(i64::try_from(e.sim_time).unwrap_or(0));
                let meter = e.meter.map_or("-".to_string(), |m| m.to_string());
                println!("{t}  {meter:>7}  {:<13} {}", e.kind, e.detail);
            }
            Ok(ExitCode::SUCCESS)
        }
    }
}
