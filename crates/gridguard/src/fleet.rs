//! The tokio driver of a fleet of networked meters ([`MeterAgent`]s) over loopback UDP,
//! spread over a few tasks ("lanes"), a periodic tick that advances the meters' simulated
//! clock, seeded loss, and an injectable network outage.
//!
//! Two ways onto the network: one socket per meter (its address is its identity to the PAA),
//! or, for fleets larger than the process's file limit, one socket per lane acting as a
//! neighbourhood collector: a PANA Relay Element (RFC 6345) for its meters' PANA, each meter
//! named by a PaC address of its own, and a C12.22 relay that hands each message from the
//! head-end to the meter its called AP title names.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap};
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

use gridguard_c1222::acse::AcseApdu;
use gridguard_c1222::pcap::PcapWriter;
use gridguard_pana::relay;

use crate::meter_agent::{serial_of, AgentConfig, AgentStats, Dest, MeterAgent};
use crate::pana_paa::bind_udp;
use crate::sim_clock::SimClock;
use crate::simulate::meter_psk;

/// A network outage: the meters in `serials` can neither send nor receive while the
/// simulated time is in `[from, to)` (or, with `host_only`, only their C12.22 traffic is cut).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Outage {
    /// The meters cut off.
    pub serials: Range<u64>,
    /// Simulated start.
    pub from: u64,
    /// Simulated end.
    pub to: u64,
    /// Only the C12.22 traffic is cut while the PAA still answers: to the meters the head-end
    /// looks stalled, not gone.
    pub host_only: bool,
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
    /// Relay mode: the meters of each lane share one socket, PANA goes through it as
    /// PANA-Relay messages and C12.22 is routed by called AP title (so a fleet is not bounded
    /// by the file limit). Off: one socket per meter.
    pub relays: bool,
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
    /// Simulated days each meter has been in service before the clock's origin: its model
    /// starts that long before and runs up to the origin, so its load profile (30 days at
    /// most) is already full. That history is the meter's own; it uploads only what follows.
    pub history_days: u64,
    /// Keeps every meter's acknowledged ranges in [`FleetProgress::acked`] (off: that map
    /// stays empty and costs nothing).
    pub publish_acked: bool,
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
            relays: false,
            start_spread: Duration::from_secs(1),
            outage: None,
            capture: None,
            clock_skew: Vec::new(),
            reboots: Vec::new(),
            history_days: 0,
            publish_acked: false,
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
    /// meter time), as of the lanes' last tick; empty unless [`FleetOptions::publish_acked`].
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
        held_back: a.held_back + b.held_back,
        uploads_busy: a.uploads_busy + b.uploads_busy,
        probes: a.probes + b.probes,
        reboots: a.reboots + b.reboots,
    }
}

struct Slot {
    agent: MeterAgent,
    /// The meter's own socket, or its lane's relay socket.
    socket: Arc<UdpSocket>,
    start_at: Instant,
    started: bool,
    /// The reboot planned for this meter: (simulated time, simulated seconds down).
    reboot: Option<(u64, u64)>,
    /// When the lane's timer queue holds this slot next.
    wake: Option<Instant>,
}

/// How often a lane publishes its counters and acknowledged ranges.
const PUBLISH_EVERY: Duration = Duration::from_millis(250);
/// Longest a meter goes unvisited when it names no deadline of its own.
const IDLE_WAKE: Duration = Duration::from_secs(5);

/// A lane's relay table: which slot the meter with a serial is (a relayed PaC address and a
/// called AP title both name the serial).
#[derive(Default)]
struct Routes {
    by_serial: HashMap<u64, u32>,
}

impl Routes {
    fn slot(&self, serial: u64) -> Option<usize> {
        self.by_serial.get(&serial).map(|&i| i as usize)
    }
}

struct Lane {
    index: usize,
    slots: Vec<Slot>,
    options: FleetOptions,
    rng: StdRng,
    progress: FleetProgress,
    routes: Option<Routes>,
    /// Each slot's next deadline (stale entries are skipped): a lane visits only the meters
    /// with work due, not every meter every tick.
    wakes: BinaryHeap<Reverse<(Instant, usize)>>,
    /// Per slot, the acknowledged ranges last published: how many, and the last one (empty
    /// unless the fleet publishes them).
    acked_seen: Vec<(usize, Option<(u64, u64)>)>,
    /// Slots whose acknowledged ranges changed since the last publish.
    acked_dirty: Vec<usize>,
    published_at: Instant,
}

/// The PaC address a relay reports for meter `serial` (a unique-local IPv6 address holding
/// the serial, PANA's port).
pub fn relayed_pac_address(serial: u64) -> SocketAddr {
    let w = |shift: u32| u16::try_from((serial >> shift) & 0xffff).unwrap_or(0);
    let ip = std::net::Ipv6Addr::new(0xfd00, 0x6767, 0, 0, w(48), w(32), w(16), w(0));
    SocketAddr::new(ip.into(), gridguard_pana::PANA_PORT)
}

/// The serial in a PaC address made by [`relayed_pac_address`].
fn relayed_serial(pac: SocketAddr) -> Option<u64> {
    let SocketAddr::V6(v6) = pac else {
        return None;
    };
    let w = v6.ip().segments();
    (w[..4] == [0xfd00, 0x6767, 0, 0] && pac.port() == gridguard_pana::PANA_PORT)
        .then(|| w[4..].iter().fold(0u64, |s, &x| s << 16 | u64::from(x)))
}

/// The slot a datagram arriving on a relay socket is for, with the inner message of a PRY
/// (`None`: a C12.22 message, given as it came).
fn route(
    routes: &Routes,
    from: SocketAddr,
    paa: SocketAddr,
    bytes: &[u8],
) -> Option<(usize, Option<Vec<u8>>)> {
    if from == paa {
        let r = relay::unwrap(bytes).ok()?;
        return routes
            .slot(relayed_serial(r.pac)?)
            .map(|i| (i, Some(r.message)));
    }
    let apdu = AcseApdu::parse(bytes).ok()?;
    let serial = serial_of(apdu.called_ap_title.as_ref()?)?;
    routes.slot(serial).map(|i| (i, None))
}

impl Lane {
    /// Whether the outage cuts a datagram of meter `serial` at `sim` (`c1222`: to or from the
    /// host rather than the PAA).
    fn cut_off(&self, serial: u64, sim: u64, c1222: bool) -> bool {
        self.options.outage.as_ref().is_some_and(|o| {
            (c1222 || !o.host_only) && o.serials.contains(&serial) && (o.from..o.to).contains(&sim)
        })
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
        let relayed = self.routes.is_some();
        for (dest, bytes) in out {
            if self.cut_off(serial, sim, dest == Dest::Host) || self.lost() {
                continue;
            }
            let (to, bytes) = match dest {
                Dest::Paa if relayed => match relay::wrap(relayed_pac_address(serial), &bytes) {
                    Ok(pry) => (paa, pry),
                    Err(_) => continue,
                },
                Dest::Paa => (paa, bytes),
                Dest::Host => (host, bytes),
            };
            self.record(&socket, to, &bytes, true);
            if let Err(e) = socket.try_send_to(&bytes, to) {
                tracing::debug!(serial, %e, "meter send failed");
            }
        }
    }

    /// A datagram from a relay socket: to the slot it is for (a PRY unwrapped).
    fn receive_relayed(&mut self, from: SocketAddr, bytes: &[u8], now: Instant, sim: u64) {
        let Some(routes) = &self.routes else {
            return;
        };
        let Some((i, inner)) = route(routes, from, self.options.paa, bytes) else {
            return;
        };
        if self.arrives(i, from, bytes, sim) {
            self.deliver(i, from, inner.as_deref().unwrap_or(bytes), now, sim);
        }
    }

    fn receive(&mut self, i: usize, from: SocketAddr, bytes: &[u8], now: Instant, sim: u64) {
        if self.arrives(i, from, bytes, sim) {
            self.deliver(i, from, bytes, now, sim);
        }
    }

    /// Whether a datagram for slot `i` survives the outage and the loss; records it if so.
    fn arrives(&mut self, i: usize, from: SocketAddr, bytes: &[u8], sim: u64) -> bool {
        let Some(serial) = self.slots.get(i).map(|s| s.agent.serial()) else {
            return false;
        };
        if self.cut_off(serial, sim, from == self.options.host) || self.lost() {
            return false;
        }
        if let Some(socket) = self.slots.get(i).map(|s| s.socket.clone()) {
            self.record(&socket, from, bytes, false);
        }
        true
    }

    fn deliver(&mut self, i: usize, from: SocketAddr, bytes: &[u8], now: Instant, sim: u64) {
        let (paa, host) = (self.options.paa, self.options.host);
        let Some(slot) = self.slots.get_mut(i) else {
            return;
        };
        if from == paa {
            slot.agent.handle_pana(bytes, now, sim);
        } else if from == host {
            slot.agent.handle_c1222(bytes, now, sim);
        }
        self.flush(i, sim);
        self.reschedule(i, now, sim);
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

    /// Runs the meters whose deadline has come, and publishes the counters when due.
    fn tick(&mut self, now: Instant, sim: u64) {
        while let Some(&Reverse((at, i))) = self.wakes.peek() {
            if at > now {
                break;
            }
            self.wakes.pop();
            let Some(slot) = self.slots.get_mut(i) else {
                continue;
            };
            if slot.wake != Some(at) {
                continue; // superseded by an earlier deadline, already run
            }
            slot.wake = None;
            if !slot.started {
                slot.started = true;
                slot.agent.start(now);
            }
            if let Some((reboot_at, down)) = slot.reboot {
                if sim >= reboot_at && slot.agent.stats().reboots == 0 {
                    slot.agent.reboot(sim, down);
                }
            }
            slot.agent.handle_timeout(now, sim);
            self.flush(i, sim);
            self.reschedule(i, now, sim);
        }
        if now.saturating_duration_since(self.published_at) >= PUBLISH_EVERY {
            self.publish();
            self.published_at = now;
        }
    }

    /// Puts slot `i` in the timer queue at its next deadline (real, or simulated time turned
    /// into real time), no sooner than the next tick; notes a change of its acknowledged
    /// ranges.
    fn reschedule(&mut self, i: usize, now: Instant, sim: u64) {
        let (tick, clock) = (self.options.tick, self.options.clock);
        let Some(slot) = self.slots.get_mut(i) else {
            return;
        };
        if let Some(last) = self.acked_seen.get_mut(i) {
            let acked = slot.agent.acked();
            let seen = (acked.len(), acked.last().copied());
            if seen != *last {
                *last = seen;
                self.acked_dirty.push(i);
            }
        }
        let due = if slot.started {
            let reboot = slot
                .reboot
                .filter(|_| slot.agent.stats().reboots == 0)
                .map(|(at, _)| at);
            let sim_due = [slot.agent.poll_sim_timeout(), reboot]
                .into_iter()
                .flatten()
                .min()
                .map(|t| now + clock.real(t.saturating_sub(sim)));
            [slot.agent.poll_timeout(), sim_due]
                .into_iter()
                .flatten()
                .min()
                .unwrap_or(now + IDLE_WAKE)
        } else {
            slot.start_at
        };
        let due = due.max(now + tick);
        if slot.wake.is_some_and(|w| w <= due) {
            return;
        }
        slot.wake = Some(due);
        self.wakes.push(Reverse((due, i)));
    }

    fn publish(&mut self) {
        let stats = self
            .slots
            .iter()
            .fold(AgentStats::default(), |a, s| add(a, s.agent.stats()));
        let online = self.slots.iter().filter(|s| s.agent.online()).count();
        self.progress.publish(self.index, stats, online);
        if let Ok(mut acked) = self.progress.acked.lock() {
            for i in self.acked_dirty.drain(..) {
                if let Some(s) = self.slots.get(i) {
                    acked.insert(s.agent.serial(), s.agent.acked().to_vec());
                }
            }
        }
    }
}

/// Model step of the fleet's meters, seconds: power is held for 5 minutes, three steps a
/// 15-minute interval (the model's own default, 60 s, costs five times as much to simulate
/// and changes nothing the head-end sees but the values).
pub const FLEET_MODEL_STEP_S: u32 = 300;

/// The model configuration of simulated meter `serial` (its household is drawn from the
/// serial); `clock_offset` seconds of clock error.
pub fn meter_config(serial: u64, clock_offset: i64) -> MeterConfig {
    MeterConfig::new(serial, serial.wrapping_mul(0x9e37_79b9).wrapping_add(7))
        .with_clock_offset(clock_offset)
        .with_step(FLEET_MODEL_STEP_S)
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

/// A fleet ready to run: the meters and their sockets (one per meter, or one per lane in
/// relay mode).
pub struct Fleet {
    /// The meters, in serial order.
    pub agents: Vec<MeterAgent>,
    /// The sockets: `agents.len()` of them, or one per lane in relay mode.
    pub sockets: Vec<UdpSocket>,
}

/// Binds the meters' sockets and builds their agents (models start at the clock's origin).
///
/// # Errors
/// When a socket cannot be bound.
pub fn build_fleet(options: &FleetOptions) -> std::io::Result<Fleet> {
    let sim = options.clock.sim_start;
    let mut models: Vec<gridguard_meter::Meter> = options
        .serials
        .clone()
        .map(|serial| {
            let offset = options
                .clock_skew
                .iter()
                .find(|(s, _)| *s == serial)
                .map_or(0, |(_, o)| *o);
            let born = sim.saturating_sub(options.history_days.saturating_mul(86_400));
            meter_model_skewed(serial, born, offset)
        })
        .collect();
    if options.history_days > 0 {
        run_up_to(&mut models, sim);
    }
    let config = Arc::new(options.agent.clone());
    let mut agents = Vec::with_capacity(models.len());
    for (serial, model) in options.serials.clone().zip(models) {
        agents.push(MeterAgent::new(
            serial,
            meter_psk(options.seed, usize::try_from(serial).unwrap_or(0)),
            model,
            config.clone(),
            StdRng::seed_from_u64(options.seed ^ serial.rotate_left(17)),
        ));
    }
    let (count, buffer) = if options.relays {
        (options.lanes.max(1), 8 << 20)
    } else {
        (agents.len(), 1 << 18)
    };
    let sockets = (0..count)
        .map(|_| bind_udp(SocketAddr::from(([127, 0, 0, 1], 0)), buffer))
        .collect::<std::io::Result<Vec<_>>>()?;
    Ok(Fleet { agents, sockets })
}

/// Advances every model to simulated time `sim`, a day at a time, on every core.
fn run_up_to(models: &mut [gridguard_meter::Meter], sim: u64) {
    let threads = std::thread::available_parallelism().map_or(1, std::num::NonZeroUsize::get);
    let chunk = models.len().div_ceil(threads).max(1);
    std::thread::scope(|scope| {
        for part in models.chunks_mut(chunk) {
            scope.spawn(move || {
                for model in part {
                    while model.now() < sim {
                        let next = (model.now() + 86_400).min(sim);
                        if let Err(e) = model.advance(next) {
                            tracing::warn!(%e, "meter model refused to advance");
                            break;
                        }
                    }
                }
            });
        }
    });
}

/// Runs the fleet until `stop` turns true; returns the agents (for inspection) when it does.
///
/// # Errors
/// When a lane task fails.
pub async fn run_fleet(
    fleet: Fleet,
    options: FleetOptions,
    progress: FleetProgress,
    stop: watch::Receiver<bool>,
) -> anyhow::Result<Vec<MeterAgent>> {
    let lanes = options.lanes.max(1);
    let n = fleet.agents.len().max(1);
    if let Ok(mut l) = progress.lanes.lock() {
        *l = vec![AgentStats::default(); lanes];
    }
    if let Ok(mut o) = progress.online.lock() {
        *o = vec![0; lanes];
    }
    let t0 = Instant::now();
    let sockets: Vec<Arc<UdpSocket>> = fleet.sockets.into_iter().map(Arc::new).collect();
    let mut per_lane: Vec<(Vec<Slot>, Option<Routes>)> = (0..lanes)
        .map(|_| {
            let slots = Vec::with_capacity(n.div_ceil(lanes));
            (slots, options.relays.then(Routes::default))
        })
        .collect();
    // Taken from the back, the fleet's vector handing back its memory as it empties, so that
    // the meters are never held twice over; each lane's slots come out reversed.
    let mut agents = fleet.agents;
    while let Some(agent) = agents.pop() {
        let i = agents.len();
        if agents.capacity() > 2 * agents.len() + 1_024 {
            agents.shrink_to_fit();
        }
        let start_at = t0 + options.start_spread.mul_f64(i as f64 / n as f64);
        let lane = i % lanes;
        let socket = if options.relays {
            sockets.get(lane)
        } else {
            sockets.get(i)
        };
        let (Some((slots, _)), Some(socket)) = (per_lane.get_mut(lane), socket) else {
            continue;
        };
        let reboot = options
            .reboots
            .iter()
            .find(|(s, _, _)| *s == agent.serial())
            .map(|&(_, at, down)| (at, down));
        slots.push(Slot {
            agent,
            socket: socket.clone(),
            start_at,
            started: false,
            reboot,
            wake: Some(start_at),
        });
    }
    let mut set = JoinSet::new();
    for (index, (mut slots, mut routes)) in per_lane.into_iter().enumerate() {
        slots.reverse();
        if let Some(r) = &mut routes {
            for (k, s) in slots.iter().enumerate() {
                r.by_serial
                    .insert(s.agent.serial(), u32::try_from(k).unwrap_or(u32::MAX));
            }
        }
        let wakes = slots
            .iter()
            .enumerate()
            .map(|(i, s)| Reverse((s.start_at, i)))
            .collect();
        let acked_seen = if options.publish_acked {
            vec![(0, None); slots.len()]
        } else {
            Vec::new()
        };
        let lane = Lane {
            index,
            slots,
            rng: StdRng::seed_from_u64(options.seed.wrapping_add(index as u64)),
            options: options.clone(),
            progress: progress.clone(),
            acked_seen,
            routes,
            wakes,
            acked_dirty: Vec::new(),
            published_at: t0,
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

/// Slot index of datagrams that arrive on a lane's relay socket (routed on arrival).
const RELAYED: usize = usize::MAX;

async fn run_lane(
    mut lane: Lane,
    mut stop: watch::Receiver<bool>,
) -> anyhow::Result<Vec<MeterAgent>> {
    let (tx, mut rx) = tokio::sync::mpsc::channel::<(usize, SocketAddr, Vec<u8>)>(4096);
    let mut readers = JoinSet::new();
    let mut sockets: Vec<(usize, Arc<UdpSocket>)> = Vec::new();
    if lane.routes.is_some() {
        if let Some(slot) = lane.slots.first() {
            sockets.push((RELAYED, slot.socket.clone()));
        }
    } else {
        sockets.extend(
            lane.slots
                .iter()
                .enumerate()
                .map(|(i, s)| (i, s.socket.clone())),
        );
    }
    for (i, socket) in sockets {
        let tx = tx.clone();
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
                let (now, sim) = (Instant::now(), lane.options.clock.now());
                if i == RELAYED {
                    lane.receive_relayed(from, &bytes, now, sim);
                } else {
                    lane.receive(i, from, &bytes, now, sim);
                }
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
    lane.publish();
    readers.abort_all();
    Ok(lane.slots.into_iter().map(|s| s.agent).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_relayed_pac_address_names_its_serial_and_nothing_else_does() {
        for serial in [0, 1, 99_999, 0x1234_5678_9abc_def0, u64::MAX] {
            assert_eq!(relayed_serial(relayed_pac_address(serial)), Some(serial));
        }
        let other_port = SocketAddr::new(relayed_pac_address(7).ip(), 1153);
        assert_eq!(relayed_serial(other_port), None);
        assert_eq!(
            relayed_serial(SocketAddr::from(([127, 0, 0, 1], 716))),
            None
        );
        let other_prefix: SocketAddr = "[fd00:6768::7]:716".parse().unwrap_or(other_port);
        assert_eq!(relayed_serial(other_prefix), None);
    }
}
