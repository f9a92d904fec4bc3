//! `gridguard meters`: a fleet of simulated meters on its own, against a head-end in another
//! process (`gridguard headend`, or any head-end given the simulator's credentials by
//! `gridguard simulate --write-credentials`): load for a head-end under test, and the measurement
//! of what a simulated meter costs in memory, since nothing else shares the process.

use std::process::ExitCode;
use std::time::{Duration, Instant};

use clap::Args;
use tokio::sync::watch;

use crate::amso_cli::SharedArgs;
use crate::fleet::{build_fleet, run_fleet, FleetOptions, FleetProgress};
use crate::meter_agent::AgentConfig;
use crate::pana_paa::resident_bytes;

/// Options of `gridguard meters`.
#[derive(Args, Debug)]
pub struct MetersArgs {
    /// Addresses, meters, session times and clock (the head-end's own).
    #[command(flatten)]
    shared: SharedArgs,
    /// Meters share this many sockets as neighbourhood collectors (PANA relays, C12.22
    /// routed by AP title); 0: a socket per meter.
    #[arg(long, default_value_t = 0)]
    relays: usize,
    /// Simulated minutes between two uploads of a meter.
    #[arg(long, default_value_t = 60)]
    upload_every: u64,
    /// Simulated days each meter was in service before the clock's origin (its load profile
    /// holds at most 30 of them).
    #[arg(long, default_value_t = 0)]
    history_days: u64,
    /// Datagram loss on the meters' links, each direction (0.0–0.5).
    #[arg(long, default_value_t = 0.0)]
    loss: f64,
    /// Stop after this many real seconds (default: at Ctrl-C).
    #[arg(long)]
    run_for: Option<f64>,
    /// Print a status line to stderr this often, seconds.
    #[arg(long)]
    status_every: Option<f64>,
}

/// Runs `gridguard meters`: prints what the fleet did and what it weighs.
///
/// # Errors
/// When the meters' sockets cannot be bound or a lane fails.
pub async fn run(args: MetersArgs) -> anyhow::Result<ExitCode> {
    let resident_before = resident_bytes().unwrap_or(0);
    let shared = &args.shared;
    let clock = shared.clock();
    let mut agent = AgentConfig::simulated(shared.lifetime(), shared.grace());
    agent.upload_every_s = args.upload_every.max(1).saturating_mul(60);
    let meters = shared.meters;
    let mut options = FleetOptions::new(0..meters, shared.paa, shared.host, clock);
    options.seed = shared.seed;
    options.agent = agent;
    options.loss = args.loss.clamp(0.0, 0.5);
    options.history_days = args.history_days;
    // About 2,000 first authentications a second, what one PAA takes on without a storm.
    options.start_spread = Duration::from_millis(1_000 + meters / 2);
    if args.relays > 0 {
        options.relays = true;
        options.lanes = args.relays;
    }
    let built_at = Instant::now();
    let fleet = build_fleet(&options)?;
    let model_bytes: usize = fleet
        .agents
        .iter()
        .map(|a| std::mem::size_of_val(a.model()) + a.model().heap_bytes())
        .sum();
    eprintln!(
        "meters: {} built in {:.1} s ({} simulated days of history each); PANA {}, C12.22 {}",
        meters,
        built_at.elapsed().as_secs_f64(),
        args.history_days,
        shared.paa,
        shared.host
    );

    let (stop_tx, stop_rx) = watch::channel(false);
    let progress = FleetProgress::default();
    let run_for = args.run_for.map(Duration::from_secs_f64);
    {
        let stop_tx = stop_tx.clone();
        tokio::spawn(async move {
            match run_for {
                Some(d) => tokio::time::sleep(d).await,
                None => {
                    let _ = tokio::signal::ctrl_c().await;
                }
            }
            let _ = stop_tx.send(true);
        });
    }
    let fleet = tokio::spawn(run_fleet(fleet, options, progress.clone(), stop_rx.clone()));
    let status = Duration::from_secs_f64(args.status_every.unwrap_or(1.0).max(0.05));
    let mut online_resident = 0u64;
    let mut stop = stop_rx;
    while !*stop.borrow() {
        tokio::select! {
            () = tokio::time::sleep(status) => {}
            _ = stop.changed() => {}
        }
        let online = progress.online();
        let resident = resident_bytes().unwrap_or(0);
        if online as u64 == meters {
            online_resident = online_resident.max(resident);
        }
        if args.status_every.is_some() {
            let t = progress.total();
            eprintln!(
                "status sim={} online={online} sessions={} acked={} restarts={} pings={} held_back={} busy={} resident_mib={}",
                clock.now(),
                t.sessions,
                t.intervals_acked,
                t.restarts,
                t.probes,
                t.held_back,
                t.uploads_busy,
                resident >> 20
            );
        }
    }
    let resident_end = resident_bytes().unwrap_or(0);
    let agents = fleet.await??;
    let total = agents
        .iter()
        .fold(Default::default(), |a, m| crate::fleet::add(a, m.stats()));
    let n = meters.max(1) as f64;
    let per_meter = |bytes: u64| bytes.saturating_sub(resident_before) as f64 / n;
    println!("meters                                   {}", meters);
    println!(
        "PANA sessions / re-authentications       {} / {}",
        total.sessions, total.reauthentications
    );
    println!(
        "uploads sent / acknowledged              {} / {}",
        total.uploads_sent, total.uploads_acked
    );
    println!(
        "intervals acknowledged                   {}",
        total.intervals_acked
    );
    println!(
        "meters that started over                 {}",
        total.restarts
    );
    if online_resident == 0 {
        println!(
            "memory per simulated meter: not every meter came online; at the end {:.0} B",
            per_meter(resident_end)
        );
    } else {
        println!(
            "memory per simulated meter, whole process, every meter online: {:.0} B at most (target <= 8192 B)",
            per_meter(online_resident)
        );
    }
    println!(
        "  of which the meter model (struct and load profile, own count, anchor): {:.0} B",
        model_bytes as f64 / n
    );
    println!(
        "  resident before the meters were built: {} MiB; projected for 1,000,000 meters: {:.1} GiB",
        resident_before >> 20,
        per_meter(online_resident.max(resident_end)) * 1e6 / f64::from(1u32 << 30)
    );
    Ok(ExitCode::SUCCESS)
}
