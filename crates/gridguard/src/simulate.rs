//! The meter simulator: N PaCs (each a [`Meter`]: PANA + EAP-PSK) in one process against a
//! head-end over loopback UDP, with seeded loss, a progress bar and a summary.
//!
//! The PAA tells PaCs apart by address until it has given them a session id, so meters are
//! spread over many sockets ("lanes"); a lane has at most one meter waiting for its first
//! PAR at a time and routes every later datagram by the session id in the PANA header.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use gridguard_eap::{MemoryCredentials, Psk};
use gridguard_pana::{PaaConfig, PacConfig};
use rand::rngs::StdRng;
use rand::{Rng, RngCore, SeedableRng};
use tokio::net::UdpSocket;
use tokio::sync::watch;

use crate::pana_paa::{bind_udp, serve, BackendConfig, PaaOptions, ServeReport};
use crate::pana_pac::{sleep_until, Meter, MeterEvent};

/// How [`simulate`] runs.
#[derive(Clone, Debug)]
pub struct SimulateOptions {
    /// Number of meters.
    pub meters: usize,
    /// An external PAA; None runs one in-process with the simulated meters' credentials.
    pub paa: Option<SocketAddr>,
    /// Probability of losing a datagram, each direction (0.0 to 1.0).
    pub loss: f64,
    /// Sockets the meters are spread over.
    pub sockets: usize,
    /// Authentications in flight at once, over all sockets.
    pub concurrency: usize,
    /// Session lifetime of the in-process PAA.
    pub lifetime: Duration,
    /// How long to keep the sessions running once every meter finished its first
    /// authentication (re-authentications happen in this time).
    pub hold: Duration,
    /// Give up on meters not established after this long.
    pub timeout: Duration,
    /// Seed of the meters' credentials and of the loss schedule.
    pub seed: u64,
    /// Show a progress bar.
    pub progress: bool,
    /// Cap of the retransmission interval (REQ_MRT of the in-process PAA and the PaCs, and
    /// the PaCs' PCI_MRT); None keeps RFC 5191's defaults (30 s; PCI 4 s here).
    pub max_rt: Option<Duration>,
}

impl Default for SimulateOptions {
    fn default() -> Self {
        SimulateOptions {
            meters: 1000,
            paa: None,
            loss: 0.0,
            sockets: 1024,
            concurrency: 4096,
            lifetime: Duration::from_secs(3600),
            hold: Duration::ZERO,
            timeout: Duration::from_secs(300),
            seed: 1,
            progress: false,
            max_rt: None,
        }
    }
}

/// What a simulation measured.
#[derive(Debug, Clone)]
pub struct SimulateReport {
    /// Meters simulated.
    pub meters: usize,
    /// Meters whose session was established.
    pub established: u64,
    /// Re-authentications that succeeded.
    pub reauthenticated: u64,
    /// Authentications that failed (a meter that failed and started over counts each time).
    pub failed: u64,
    /// Meters never established.
    pub never_established: u64,
    /// Time from the first PCI until every meter finished its first authentication.
    pub elapsed: Duration,
    /// Median time to establish one meter.
    pub p50: Duration,
    /// 99th percentile time to establish one meter.
    pub p99: Duration,
    /// The in-process PAA's counters, when there was one.
    pub paa: Option<ServeReport>,
}

impl SimulateReport {
    /// Established meters per second.
    pub fn rate(&self) -> f64 {
        self.established as f64 / self.elapsed.as_secs_f64().max(1e-9)
    }
}

/// The identity of simulated meter `i`.
pub fn meter_identity(i: usize) -> String {
    format!("meter-{i:06}")
}

/// The PSK of simulated meter `i` under `seed`.
pub fn meter_psk(seed: u64, i: usize) -> Psk {
    let mut rng = StdRng::seed_from_u64(seed ^ (i as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15));
    let mut key = [0u8; 16];
    rng.fill_bytes(&mut key);
    Psk::new(key)
}

/// The credentials file of `meters` simulated meters (`IDENTITY HEXPSK` lines), for an
/// external PAA.
pub fn credentials_text(seed: u64, meters: usize) -> String {
    let mut out = String::with_capacity(meters * 48);
    for i in 0..meters {
        out.push_str(&meter_identity(i));
        out.push(' ');
        out.push_str(&hex::encode(meter_psk(seed, i).as_bytes()));
        out.push('\n');
    }
    out
}

#[derive(Default)]
struct Counters {
    established: AtomicU64,
    reauthenticated: AtomicU64,
    failed: AtomicU64,
}

struct LaneMeter {
    meter: Meter,
    started: Option<Instant>,
    established: bool,
    session: u32,
    scheduled: Option<Instant>,
}

struct Lane {
    socket: UdpSocket,
    meters: Vec<LaneMeter>,
    by_session: HashMap<u32, usize>,
    next: usize,
    in_flight: usize,
    max_in_flight: usize,
    heap: BinaryHeap<Reverse<(Instant, usize)>>,
    loss: f64,
    rng: StdRng,
    counters: Arc<Counters>,
    times: Vec<Duration>,
    outbox: Vec<Vec<u8>>,
}

impl Lane {
    fn starting(&self) -> Option<usize> {
        self.meters
            .iter()
            .position(|m| m.started.is_some() && m.meter.is_starting())
    }

    fn start_more(&mut self, now: Instant) {
        while self.in_flight < self.max_in_flight
            && self.next < self.meters.len()
            && self.starting().is_none()
        {
            let i = self.next;
            self.next += 1;
            if let Some(m) = self.meters.get_mut(i) {
                if m.meter.start(now).is_ok() {
                    m.started = Some(now);
                    self.in_flight += 1;
                }
            }
            self.after(i, now);
        }
    }

    /// Sends what meter `i` has to send, drains its events and re-arms its timer.
    fn after(&mut self, i: usize, now: Instant) {
        let Some(m) = self.meters.get_mut(i) else {
            return;
        };
        while let Some(event) = m.meter.poll_event(now) {
            match event {
                MeterEvent::Established { .. } if !m.established => {
                    m.established = true;
                    self.in_flight = self.in_flight.saturating_sub(1);
                    self.counters.established.fetch_add(1, Ordering::Relaxed);
                    if let Some(t0) = m.started {
                        self.times.push(now.saturating_duration_since(t0));
                    }
                }
                MeterEvent::Reauthenticated { .. } => {
                    self.counters
                        .reauthenticated
                        .fetch_add(1, Ordering::Relaxed);
                }
                MeterEvent::Failed { reason, eap } => {
                    tracing::info!(?reason, ?eap, "simulated meter failed");
                    self.counters.failed.fetch_add(1, Ordering::Relaxed);
                }
                _ => {}
            }
        }
        let session = m.meter.pac().session_id();
        if session != m.session {
            self.by_session.remove(&m.session);
            if session != 0 {
                self.by_session.insert(session, i);
            }
            m.session = session;
        }
        while let Some(bytes) = m.meter.poll_transmit() {
            if self.loss > 0.0 && self.rng.gen_bool(self.loss) {
                continue;
            }
            self.outbox.push(bytes);
        }
        let next = m.meter.poll_timeout();
        if next != m.scheduled {
            m.scheduled = next;
            if let Some(at) = next {
                self.heap.push(Reverse((at, i)));
            }
        }
    }

    fn on_datagram(&mut self, bytes: &[u8], now: Instant) {
        if self.loss > 0.0 && self.rng.gen_bool(self.loss) {
            return;
        }
        let session = bytes
            .get(8..12)
            .and_then(|b| <[u8; 4]>::try_from(b).ok())
            .map(u32::from_be_bytes);
        let target = match session.and_then(|s| self.by_session.get(&s)) {
            Some(&i) => Some(i),
            None => self.starting(),
        };
        if let Some(i) = target {
            if let Some(m) = self.meters.get_mut(i) {
                m.meter.handle_datagram(bytes, now);
            }
            self.after(i, now);
        }
    }

    fn on_timers(&mut self, now: Instant) {
        while let Some(&Reverse((at, i))) = self.heap.peek() {
            if at > now {
                break;
            }
            self.heap.pop();
            let current = self.meters.get(i).and_then(|m| m.scheduled);
            if current != Some(at) {
                continue; // superseded
            }
            if let Some(m) = self.meters.get_mut(i) {
                m.scheduled = None;
                m.meter.handle_timeout(now);
            }
            self.after(i, now);
        }
    }

    async fn run(mut self, mut stop: watch::Receiver<bool>) -> Vec<Duration> {
        let mut buf = vec![0u8; 4096];
        loop {
            let now = Instant::now();
            self.start_more(now);
            for bytes in std::mem::take(&mut self.outbox) {
                // A send error is loss; the PaC retransmits.
                let _ = self.socket.send(&bytes).await;
            }
            let deadline = self.heap.peek().map(|Reverse((at, _))| *at);
            tokio::select! {
                ready = self.socket.readable() => {
                    if ready.is_err() {
                        break;
                    }
                    let now = Instant::now();
                    for _ in 0..64 {
                        match self.socket.try_recv(&mut buf) {
                            Ok(n) => {
                                let bytes = buf.get(..n).unwrap_or(&[]).to_vec();
                                self.on_datagram(&bytes, now);
                            }
                            Err(_) => break,
                        }
                    }
                }
                () = sleep_until(deadline) => self.on_timers(Instant::now()),
                changed = stop.changed() => {
                    if changed.is_err() || *stop.borrow() {
                        break;
                    }
                }
            }
        }
        self.times
    }
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let idx = ((sorted.len() - 1) as f64 * p).round() as usize;
    sorted.get(idx).copied().unwrap_or_default()
}

/// Runs the simulation.
pub async fn simulate(options: SimulateOptions) -> anyhow::Result<SimulateReport> {
    let n = options.meters;
    let (stop_paa_tx, stop_paa_rx) = tokio::sync::oneshot::channel::<()>();
    let mut paa_task = None;
    let paa_addr = match options.paa {
        Some(a) => a,
        None => {
            let mut table = MemoryCredentials::new();
            for i in 0..n {
                table.insert(meter_identity(i).into_bytes(), meter_psk(options.seed, i));
            }
            let socket = bind_udp("127.0.0.1:0".parse()?, 8 << 20)?;
            let addr = socket.local_addr()?;
            let mut config = PaaConfig::default();
            config.session_lifetime = options.lifetime;
            config.max_sessions = n.saturating_mul(2).max(1024);
            if let Some(mrt) = options.max_rt {
                config.retransmit.req_mrt = mrt;
            }
            let paa = PaaOptions {
                config,
                backend: BackendConfig::Local {
                    server_id: b"gridguard".to_vec(),
                    credentials: Arc::new(table),
                },
                actions: Vec::new(),
            };
            paa_task = Some(tokio::spawn(serve(socket, paa, |_| {}, async move {
                let _ = stop_paa_rx.await;
            })));
            addr
        }
    };

    let lanes = options.sockets.clamp(1, n.max(1));
    let per_lane = options.concurrency.div_ceil(lanes).max(1);
    let counters = Arc::new(Counters::default());
    let (stop_tx, stop_rx) = watch::channel(false);
    let mut pac = PacConfig::default();
    pac.restart_on_loss = true;
    // A PCI sent while the PAA still holds an earlier meter of the same socket in its
    // handshake is taken for a retransmission and dropped; cap the PCI back-off so such a
    // meter retries within seconds rather than the RFC's default two minutes.
    pac.retransmit.pci_mrt = Duration::from_secs(4);
    if let Some(mrt) = options.max_rt {
        pac.retransmit.pci_mrt = mrt;
        pac.retransmit.req_mrt = mrt;
    }
    pac.reauth_margin = Some(options.lifetime / 4);
    let mut lane_meters: Vec<Vec<LaneMeter>> = (0..lanes).map(|_| Vec::new()).collect();
    let mut seeds = StdRng::seed_from_u64(options.seed);
    for i in 0..n {
        let meter = Meter::with_rng(
            meter_identity(i).as_bytes(),
            meter_psk(options.seed, i),
            pac.clone(),
            StdRng::seed_from_u64(seeds.next_u64()),
        );
        if let Some(l) = lane_meters.get_mut(i % lanes) {
            l.push(LaneMeter {
                meter,
                started: None,
                established: false,
                session: 0,
                scheduled: None,
            });
        }
    }
    let started = Instant::now();
    let mut tasks = Vec::with_capacity(lanes);
    for (l, meters) in lane_meters.into_iter().enumerate() {
        let local: SocketAddr = if paa_addr.ip().is_loopback() {
            "127.0.0.1:0".parse()?
        } else {
            "0.0.0.0:0".parse()?
        };
        let socket = bind_udp(local, 256 << 10)?;
        socket.connect(paa_addr).await?;
        let lane = Lane {
            socket,
            meters,
            by_session: HashMap::new(),
            next: 0,
            in_flight: 0,
            max_in_flight: per_lane,
            heap: BinaryHeap::new(),
            loss: options.loss,
            rng: StdRng::seed_from_u64(options.seed ^ 0x10_55 ^ (l as u64) << 20),
            counters: counters.clone(),
            times: Vec::new(),
            outbox: Vec::new(),
        };
        tasks.push(tokio::spawn(lane.run(stop_rx.clone())));
    }

    let bar = if options.progress {
        let bar = indicatif::ProgressBar::new(n as u64);
        bar.set_style(
            indicatif::ProgressStyle::with_template(
                "{elapsed_precise} [{bar:40}] {pos}/{len} established {per_sec} {msg}",
            )
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
        );
        Some(bar)
    } else {
        None
    };
    let give_up = started + options.timeout;
    let mut elapsed;
    loop {
        tokio::time::sleep(Duration::from_millis(100)).await;
        let est = counters.established.load(Ordering::Relaxed);
        let failed = counters.failed.load(Ordering::Relaxed);
        elapsed = started.elapsed();
        if let Some(b) = &bar {
            b.set_position(est);
            b.set_message(format!("{failed} failed"));
        }
        if est >= n as u64 || Instant::now() >= give_up {
            break;
        }
    }
    if let Some(b) = &bar {
        b.finish();
    }
    if !options.hold.is_zero() {
        tokio::time::sleep(options.hold).await;
    }
    let _ = stop_tx.send(true);
    let mut times = Vec::with_capacity(n);
    for t in tasks {
        times.extend(t.await?);
    }
    let _ = stop_paa_tx.send(());
    let paa = match paa_task {
        Some(t) => Some(t.await??),
        None => None,
    };
    times.sort_unstable();
    let established = counters.established.load(Ordering::Relaxed);
    Ok(SimulateReport {
        meters: n,
        established,
        reauthenticated: counters.reauthenticated.load(Ordering::Relaxed),
        failed: counters.failed.load(Ordering::Relaxed),
        never_established: (n as u64).saturating_sub(established),
        elapsed,
        p50: percentile(&times, 0.5),
        p99: percentile(&times, 0.99),
        paa,
    })
}
