//! The tokio driver of a fleet of networked meters ([`MeterAgent`]s) over loopback UDP: one
//! socket per meter (its address is its identity to the PAA and the C12.22 host), spread
//! over a few tasks ("lanes"), a periodic tick that advances the meters' simulated clock,
//! seeded loss, and an injectable network outage.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::ops::Range;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use gridguard_meter::{MeterConfig, TouCalendar};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use tokio::net::UdpSocket;
use tokio::sync::watch;
use tokio::task::JoinSet;

use gridguard_c1222::pcap::PcapWriter;

use crate::meter_agent::{AgentConfig, AgentStats, Dest, MeterAgent};
use crate::pana_paa::bind_udp;
use crate::sim_clock::SimClock;
use crate::simulate::meter_psk;

/// A network outage: the meters in `serials` can neither send nor receive while the
/// simulated time is in `[from, to)`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Outage {
    /// The meters cut off.
    pub serials: Range<u64>,
    /// Simulated start.
    pub from: u64,
    /// Simulated end.
    pub to: u64,
}

/// How [`run_fleet`] runs.
#[derive(Clone, Debug)]
pub struct FleetOptions {
    /// Serials of the meters.
    pub serials: Range<u64>,
    /// Seed of the PSKs (as [`meter_psk`]) and of the loss schedule.
    pub seed: u64,
    /// The PAA.
    pub paa: SocketAddr,
    /// The C12.22 host.
    pub host: SocketAddr,
    /// The simulated clock (shared with the head-end).
    pub clock: SimClock,
    /// Meter behaviour.
    pub agent: AgentConfig,
    /// Probability of losing each datagram, each direction.
    pub loss: f64,
    /// Real time between two ticks (model advance, uploads, timers).
    pub tick: Duration,
    /// Number of tasks the meters are spread over.
    pub lanes: usize,
    /// Real time over which the meters' first authentications are spread.
    pub start_spread: Duration,
    /// An outage to inject.
    pub outage: Option<Outage>,
    /// Records every datagram a meter sends or receives (the head-end's side shown on its
    /// standard ports: PANA 716, C12.22 1153).
    pub capture: Option<Arc<Mutex<PcapWriter>>>,
    /// Meters whose clock starts off by so many seconds: (serial, offset).
    pub clock_skew: Vec<(u64, i64)>,
    /// Meters that reboot: (serial, simulated time, simulated seconds without power).
    pub reboots: Vec<(u64, u64, u64)>,
}

impl FleetOptions {
    /// Defaults for meters `serials` against `paa` and `host`.
    pub fn new(serials: Range<u64>, paa: SocketAddr, host: SocketAddr, clock: SimClock) -> Self {
        FleetOptions {
            serials,
            seed: 1,
            paa,
            host,
            clock,
            agent: AgentConfig::default(),
            loss: 0.0,
            tick: Duration::from_millis(20),
            lanes: 4,
            start_spread: Duration::from_secs(1),
            outage: None,
            capture: None,
            clock_skew: Vec::new(),
            reboots: Vec::new(),
        }
    }
}

/// The live counters of a fleet: one [`AgentStats`] sum per lane.
#[derive(Clone, Debug, Default)]
pub struct FleetProgress {
    lanes: Arc<Mutex<Vec<AgentStats>>>,
    online: Arc<Mutex<Vec<usize>>>,
    acked: Arc<Mutex<AckedRanges>>,
}

/// Per meter, its acknowledged intervals as merged `[start, end)` ranges of meter time.
pub type AckedRanges = HashMap<u64, Vec<(u64, u64)>>;

impl FleetProgress {
    /// The sum over every meter.
    pub fn total(&self) -> AgentStats {
        let lanes = self.lanes.lock().map(|l| l.clone()).unwrap_or_default();
        lanes.iter().fold(AgentStats::default(), |a, b| add(a, *b))
    }

    /// The intervals each meter has had acknowledged so far (merged `[start, end)` ranges of
    /// meter time), as of the lanes' last tick.
    pub fn acked(&self) -> AckedRanges {
        self.acked.lock().map(|a| a.clone()).unwrap_or_default()
    }

    /// Meters registered with the head-end now.
    pub fn online(&self) -> usize {
        self.online.lock().map(|o| o.iter().sum()).unwrap_or(0)
    }

    fn publish(&self, lane: usize, stats: AgentStats, online: usize) {
        if let Ok(mut l) = self.lanes.lock() {
            if let Some(s) = l.get_mut(lane) {
                *s = stats;
            }
        }
        if let Ok(mut o) = self.online.lock() {
            if let Some(s) = o.get_mut(lane) {
                *s = online;
            }
        }
    }
}

/// Field-wise sum of two counters.
pub fn add(a: AgentStats, b: AgentStats) -> AgentStats {
    AgentStats {
        sessions: a.sessions + b.sessions,
        reauthentications: a.reauthentications + b.reauthentications,
        registrations: a.registrations + b.registrations,
        uploads_sent: a.uploads_sent + b.uploads_sent,
        uploads_acked: a.uploads_acked + b.uploads_acked,
        intervals_acked: a.intervals_acked + b.intervals_acked,
        commands: a.commands + b.commands,
        commands_refused: a.commands_refused + b.commands_refused,
        reads: a.reads + b.reads,
        refused: a.refused + b.refused,
        restarts: a.restarts + b.restarts,
        reboots: a.reboots + b.reboots,
    }
}

struct Slot {
    agent: MeterAgent,
    socket: Arc<UdpSocket>,
    start_at: Instant,
    started: bool,
}

struct Lane {
    index: usize,
    slots: Vec<Slot>,
    options: FleetOptions,
    rng: StdRng,
    progress: FleetProgress,
}

impl Lane {
    fn cut_off(&self, serial: u64, sim: u64) -> bool {
        self.options
            .outage
            .as_ref()
            .is_some_and(|o| o.serials.contains(&serial) && (o.from..o.to).contains(&sim))
    }

    fn lost(&mut self) -> bool {
        self.options.loss > 0.0 && self.rng.gen_bool(self.options.loss.clamp(0.0, 1.0))
    }

    fn flush(&mut self, i: usize, sim: u64) {
        let (paa, host) = (self.options.paa, self.options.host);
        let Some(slot) = self.slots.get_mut(i) else {
            return;
        };
        let mut out = Vec::new();
        while let Some(d) = slot.agent.poll_transmit() {
            out.push(d);
        }
        let serial = slot.agent.serial();
        let socket = slot.socket.clone();
        for (dest, bytes) in out {
            if self.cut_off(serial, sim) || self.lost() {
                continue;
            }
            let to = match dest {
                Dest::Paa => paa,
                Dest::Host => host,
            };
            self.record(&socket, to, &bytes, true);
            if let Err(e) = socket.try_send_to(&bytes, to) {
                tracing::debug!(serial, %e, "meter send failed");
            }
        }
    }

    fn receive(&mut self, i: usize, from: SocketAddr, bytes: &[u8], now: Instant, sim: u64) {
        let Some(serial) = self.slots.get(i).map(|s| s.agent.serial()) else {
            return;
        };
        if self.cut_off(serial, sim) || self.lost() {
            return;
        }
        let (paa, host) = (self.options.paa, self.options.host);
        if let Some(socket) = self.slots.get(i).map(|s| s.socket.clone()) {
            self.record(&socket, from, bytes, false);
        }
        let Some(slot) = self.slots.get_mut(i) else {
            return;
        };
        if from == paa {
            slot.agent.handle_pana(bytes, now, sim);
        } else if from == host {
            slot.agent.handle_c1222(bytes, now, sim);
        }
        self.flush(i, sim);
    }

    /// Adds a datagram between the meter's `socket` and `peer` to the capture, if any.
    fn record(&self, socket: &UdpSocket, peer: SocketAddr, bytes: &[u8], outgoing: bool) {
        let Some(capture) = &self.options.capture else {
            return;
        };
        let Ok(SocketAddr::V4(local)) = socket.local_addr() else {
            return;
        };
        let SocketAddr::V4(remote) = peer else {
            return;
        };
        let port = if peer == self.options.paa { 716 } else { 1153 };
        let meter = (local.ip().octets(), local.port());
        let head = (remote.ip().octets(), port);
        let (src, dst) = if outgoing {
            (meter, head)
        } else {
            (head, meter)
        };
        let micros = crate::sim_clock::real_now_ms().saturating_mul(1_000);
        if let Ok(mut c) = capture.lock() {
            let _ = c.push_udp(micros, src, dst, bytes);
        }
    }

    fn tick(&mut self, now: Instant, sim: u64) {
        for i in 0..self.slots.len() {
            let Some(slot) = self.slots.get_mut(i) else {
                continue;
            };
            if !slot.started {
                if now < slot.start_at {
                    continue;
                }
                slot.started = true;
                slot.agent.start(now);
            }
            let serial = slot.agent.serial();
            if let Some(&(_, _, down)) = self
                .options
                .reboots
                .iter()
                .find(|(s, at, _)| *s == serial && sim >= *at)
            {
                if slot.agent.stats().reboots == 0 {
                    slot.agent.reboot(sim, down);
                }
            }
            slot.agent.handle_timeout(now, sim);
            self.flush(i, sim);
        }
        let stats = self
            .slots
            .iter()
            .fold(AgentStats::default(), |a, s| add(a, s.agent.stats()));
        let online = self.slots.iter().filter(|s| s.agent.online()).count();
        self.progress.publish(self.index, stats, online);
        if let Ok(mut acked) = self.progress.acked.lock() {
            for s in &self.slots {
                let a = s.agent.acked();
                if acked.get(&s.agent.serial()).map(Vec::len) != Some(a.len())
                    || acked.get(&s.agent.serial()).and_then(|v| v.last()) != a.last()
                {
                    acked.insert(s.agent.serial(), a.to_vec());
                }
            }
        }
    }
}

/// The model configuration of simulated meter `serial` (its household is drawn from the
/// serial); `clock_offset` seconds of clock error.
pub fn meter_config(serial: u64, clock_offset: i64) -> MeterConfig {
    MeterConfig::new(serial, serial.wrapping_mul(0x9e37_79b9).wrapping_add(7))
        .with_clock_offset(clock_offset)
}

/// The meter model of `serial` at simulated time `sim`, with the residential TOU calendar.
pub fn meter_model(serial: u64, sim: u64) -> gridguard_meter::Meter {
    meter_model_skewed(serial, sim, 0)
}

fn meter_model_skewed(serial: u64, sim: u64, clock_offset: i64) -> gridguard_meter::Meter {
    gridguard_meter::Meter::new(
        meter_config(serial, clock_offset),
        Arc::new(TouCalendar::residential()),
        sim,
    )
}

/// Binds the meters' sockets and builds their agents (models start at the clock's origin).
///
/// # Errors
/// When a socket cannot be bound.
pub fn build_fleet(options: &FleetOptions) -> std::io::Result<Vec<(MeterAgent, UdpSocket)>> {
    let sim = options.clock.sim_start;
    let mut out = Vec::new();
    for serial in options.serials.clone() {
        let offset = options
            .clock_skew
            .iter()
            .find(|(s, _)| *s == serial)
            .map_or(0, |(_, o)| *o);
        let model = meter_model_skewed(serial, sim, offset);
        let agent = MeterAgent::new(
            serial,
            meter_psk(options.seed, usize::try_from(serial).unwrap_or(0)),
            model,
            options.agent.clone(),
            StdRng::seed_from_u64(options.seed ^ serial.rotate_left(17)),
        );
        let socket = bind_udp(SocketAddr::from(([127, 0, 0, 1], 0)), 1 << 18)?;
        out.push((agent, socket));
    }
    Ok(out)
}

/// Runs `agents` until `stop` turns true; returns the agents (for inspection) when it does.
///
/// # Errors
/// When a lane task fails.
pub async fn run_fleet(
    agents: Vec<(MeterAgent, UdpSocket)>,
    options: FleetOptions,
    progress: FleetProgress,
    stop: watch::Receiver<bool>,
) -> anyhow::Result<Vec<MeterAgent>> {
    let lanes = options.lanes.max(1);
    let n = agents.len().max(1);
    if let Ok(mut l) = progress.lanes.lock() {
        *l = vec![AgentStats::default(); lanes];
    }
    if let Ok(mut o) = progress.online.lock() {
        *o = vec![0; lanes];
    }
    let t0 = Instant::now();
    let mut per_lane: Vec<Vec<Slot>> = (0..lanes).map(|_| Vec::new()).collect();
    for (i, (agent, socket)) in agents.into_iter().enumerate() {
        let start_at = t0 + options.start_spread.mul_f64(i as f64 / n as f64);
        if let Some(l) = per_lane.get_mut(i % lanes) {
            l.push(Slot {
                agent,
                socket: Arc::new(socket),
                start_at,
                started: false,
            });
        }
    }
    let mut set = JoinSet::new();
    for (index, slots) in per_lane.into_iter().enumerate() {
        let lane = Lane {
            index,
            slots,
            rng: StdRng::seed_from_u64(options.seed.wrapping_add(index as u64)),
            options: options.clone(),
            progress: progress.clone(),
        };
        set.spawn(run_lane(lane, stop.clone()));
    }
    let mut all = Vec::new();
    while let Some(r) = set.join_next().await {
        all.extend(r??);
    }
    all.sort_by_key(MeterAgent::serial);
    Ok(all)
}

async fn run_lane(
    mut lane: Lane,
    mut stop: watch::Receiver<bool>,
) -> anyhow::Result<Vec<MeterAgent>> {
    let (tx, mut rx) = tokio::sync::mpsc::channel::<(usize, SocketAddr, Vec<u8>)>(4096);
    let mut readers = JoinSet::new();
    for (i, slot) in lane.slots.iter().enumerate() {
        let (socket, tx) = (slot.socket.clone(), tx.clone());
        readers.spawn(async move {
            let mut buf = vec![0u8; 65_535];
            while let Ok((n, from)) = socket.recv_from(&mut buf).await {
                let bytes = buf.get(..n).unwrap_or_default().to_vec();
                if tx.send((i, from, bytes)).await.is_err() {
                    break;
                }
            }
        });
    }
    drop(tx);
    let mut ticker = tokio::time::interval(lane.options.tick);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            Some((i, from, bytes)) = rx.recv() => {
                lane.receive(i, from, &bytes, Instant::now(), lane.options.clock.now());
            }
            _ = ticker.tick() => {
                lane.tick(Instant::now(), lane.options.clock.now());
            }
            r = stop.changed() => {
                if r.is_err() || *stop.borrow() {
                    break;
                }
            }
        }
    }
    readers.abort_all();
    Ok(lane.slots.into_iter().map(|s| s.agent).collect())
}
