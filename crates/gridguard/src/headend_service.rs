//! The head-end as a service: the PAA (PANA with local EAP-PSK), the C12.22 host keyed by
//! UKMF from each authentication, durable ingest of interval data into the vault (split into
//! shares before anything touches disk; the meter's write is acknowledged only once the
//! shares are committed), gap detection with backfill from the meters' load-profile tables,
//! demand-response and remote-switch commands with their acknowledgements, and the event log.
//!
//! Threads: the PAA and the C12.22 host are tokio tasks sharing the host
//! ([`SharedHost`]: keys are installed from the PAA task before its final PAR leaves); the
//! vault (SQLite) and the event log write from their own threads.

use std::collections::{HashMap, HashSet, VecDeque};
use std::net::SocketAddr;
use std::ops::Range;
use std::path::PathBuf;
use std::sync::{mpsc as std_mpsc, Arc, Mutex};
use std::time::{Duration, Instant};

use gridguard_c1222::{
    Epsem, EpsemControl, Request, ResponseCode, ResponseControl, SecurityMode, Service, TableId,
};
use gridguard_eap::MemoryCredentials;
use gridguard_headend::{C1222Host, Collector, CollectorConfig, HostConfig, HostEvent, SharedHost};
use gridguard_keys::keylog::KeyLog;
use gridguard_keys::SessionFacts;
use gridguard_meter::tables::calendar;
use gridguard_meter::tables::id as table;
use gridguard_meter::tables::procedures::{ProcedureRequest, MP_REMOTE_SWITCH};
use gridguard_meter::tables::upload::{profile_intervals, IntervalUpload};
use gridguard_meter::{LoadControl, TouCalendar as MeterTou};
use gridguard_pana::PaaConfig;
use gridguard_vault::{Reading, TimeRange, Vault};
use rand::rngs::StdRng;
use rand::SeedableRng;
use tokio::net::UdpSocket;
use tokio::sync::{mpsc, watch};

use crate::datadir::DataDir;
use crate::event_log::EventLog;
use crate::ingest_load::IngestLoad;
use crate::meter_agent::{host_ap_title, meter_ap_title, serial_of, serial_of_identity};
use crate::pana_paa::{bind_udp, serve, BackendConfig, PaaOptions, ServeEvent};
use crate::sim_clock::SimClock;
use crate::simulate::{meter_identity, meter_psk};

/// A command the head-end sends to meters.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CommandKind {
    /// Open the remote switch.
    Disconnect,
    /// Close the remote switch.
    Reconnect,
    /// Set the meter's clock to the head-end's (SP10), sent when a meter's clock is off.
    SetClock,
    /// A demand-response (load-control) event from the moment it arrives.
    LoadControl {
        /// Length, minutes.
        duration_min: u16,
        /// Load shed, percent.
        reduction_pct: u8,
    },
}

impl CommandKind {
    fn name(self) -> &'static str {
        match self {
            CommandKind::Disconnect => "disconnect",
            CommandKind::Reconnect => "reconnect",
            CommandKind::SetClock => "set-clock",
            CommandKind::LoadControl { .. } => "demand-response",
        }
    }

    /// The ST7 procedure; `sim` is the head-end's time (for SP10).
    fn procedure(self, seq: u8, sim: u64) -> ProcedureRequest {
        let switch = |on: u8| ProcedureRequest {
            number: MP_REMOTE_SWITCH,
            manufacturer: true,
            selector: 0,
            seq,
            params: vec![on],
        };
        match self {
            CommandKind::Disconnect => switch(0),
            CommandKind::Reconnect => switch(1),
            CommandKind::SetClock => ProcedureRequest::set_date_time(seq, sim),
            CommandKind::LoadControl {
                duration_min,
                reduction_pct,
            } => ProcedureRequest::load_control(
                seq,
                &LoadControl {
                    start: 0,
                    duration_min,
                    reduction_pct,
                },
            ),
        }
    }
}

/// [`HeadendOptions::busy_after`] by default: well below the meters' reply timeout (1 s).
pub const DEFAULT_BUSY_AFTER: Duration = Duration::from_millis(400);

/// Datagrams the host reads from its socket in a row before it looks at commits and ticks.
const DRAIN_AT_ONCE: usize = 64;

/// First authentications the head-end's PAA runs at once.
const PAA_MAX_HANDSHAKES: usize = 2_048;

/// A command due at a simulated time.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ScheduledCommand {
    /// Simulated time at which it is sent.
    pub at: u64,
    /// What.
    pub kind: CommandKind,
    /// To which meters.
    pub meters: Vec<u64>,
}

/// How the head-end runs.
#[derive(Clone, Debug)]
pub struct HeadendOptions {
    /// Where the vault and the event log live.
    pub data: DataDir,
    /// PANA address (UDP).
    pub paa: SocketAddr,
    /// C12.22 address (UDP).
    pub host: SocketAddr,
    /// The meters it serves (credentials as [`meter_psk`] under `seed`).
    pub meters: Range<u64>,
    /// Seed of the meters' PSKs.
    pub seed: u64,
    /// Number of regions; meter `s` is in region `s % regions`.
    pub regions: u32,
    /// PANA session lifetime (keys live this long plus the grace).
    pub session_lifetime: Duration,
    /// Key grace period.
    pub grace: Duration,
    /// The simulated clock (shared with the meters).
    pub clock: SimClock,
    /// First interval every meter must deliver (meter time).
    pub epoch: i64,
    /// How long after its end an interval may still come by upload before it is backfilled.
    pub settle_s: i64,
    /// Commands to send.
    pub commands: Vec<ScheduledCommand>,
    /// Most readings one vault transaction carries.
    pub batch: usize,
    /// How late the vault writer may fall (age of the oldest job it has not committed)
    /// before interval uploads are answered `bsy` instead of queued: below the meters' reply
    /// timeout, so that a meter learns at once to hold its intervals rather than waiting in
    /// vain and sending them again.
    pub busy_after: Duration,
    /// Append every installed C12.22 key generation to this key log (Wireshark's
    /// `c1222_decryption_table` format); when `None`, `GRIDGUARD_KEYLOG` decides. Keys in clear:
    /// for debugging only.
    pub keylog: Option<PathBuf>,
}

/// Counters of the head-end.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct HeadendStats {
    /// PANA sessions whose keys were installed (first authentications).
    pub sessions: u64,
    /// Re-authentications (each rolls the meter's keys).
    pub reauthentications: u64,
    /// Registrations accepted.
    pub registrations: u64,
    /// Intervals committed to the vault (each (meter, interval) once).
    pub intervals_stored: u64,
    /// Intervals received again after they were stored.
    pub duplicates: u64,
    /// Gaps found (runs of missing intervals).
    pub gaps_detected: u64,
    /// Intervals stored from backfills.
    pub intervals_filled: u64,
    /// Commands sent (retries included).
    pub commands_sent: u64,
    /// Commands acknowledged by the meter.
    pub commands_acked: u64,
    /// Meter clocks found off and set (SP10).
    pub clocks_set: u64,
    /// C12.22 messages refused.
    pub refused: u64,
    /// Intervals missing (neither uploaded nor backfilled) among those that should have
    /// arrived by now (older than the settle time), over every meter.
    pub missing: u64,
    /// Vault transactions.
    pub batches: u64,
    /// Vault transactions that failed (their writes were not acknowledged).
    pub failed_batches: u64,
    /// Interval uploads answered `bsy` because the head-end was behind (the vault writer late
    /// or a standing queue at the C12.22 socket).
    pub busy_answers: u64,
    /// The latest the vault writer fell: the largest age of its oldest uncommitted job seen
    /// when an upload arrived, milliseconds.
    pub max_writer_lag_ms: u64,
}

/// Live counters, shared with whoever shows progress.
#[derive(Clone, Debug, Default)]
pub struct HeadendProgress(Arc<Mutex<HeadendStats>>);

impl HeadendProgress {
    /// The counters now.
    pub fn get(&self) -> HeadendStats {
        self.0.lock().map(|s| *s).unwrap_or_default()
    }

    fn update(&self, f: impl FnOnce(&mut HeadendStats)) {
        if let Ok(mut s) = self.0.lock() {
            f(&mut s);
        }
    }
}

/// A batch of readings for the vault, with what to do once it is committed.
struct Job {
    meter: u64,
    readings: Vec<Reading>,
    /// Interval starts the reply acknowledges: it goes out once every one is stored.
    covers: Vec<i64>,
    reply: Option<(SocketAddr, Vec<u8>)>,
    backfill: bool,
}

/// Jobs the vault thread finished.
struct Committed {
    jobs: Vec<Job>,
    ok: bool,
    /// (meter, interval start) the vault left out: a job holding one is not acknowledged.
    deferred: std::collections::HashSet<(u64, i64)>,
}

fn vault_writer(
    mut vault: Vault,
    rx: std_mpsc::Receiver<Job>,
    done: mpsc::UnboundedSender<Committed>,
    batch: usize,
) {
    const LINGER: Duration = Duration::from_millis(5);
    while let Ok(first) = rx.recv() {
        let mut n = first.readings.len();
        let mut jobs = vec![first];
        let until = Instant::now() + LINGER;
        while n < batch {
            let left = until.saturating_duration_since(Instant::now());
            match rx.recv_timeout(left) {
                Ok(j) => {
                    n += j.readings.len();
                    jobs.push(j);
                }
                Err(_) => break,
            }
        }
        let readings: Vec<Reading> = jobs
            .iter()
            .flat_map(|j| j.readings.iter().copied())
            .collect();
        let started = Instant::now();
        let mut deferred = std::collections::HashSet::new();
        let ok = readings.is_empty()
            || match vault.ingest(&readings) {
                Ok(receipt) => {
                    deferred.extend(receipt.deferred);
                    tracing::debug!(
                        readings = readings.len(),
                        jobs = jobs.len(),
                        ms = started.elapsed().as_secs_f64() * 1e3,
                        "vault batch committed"
                    );
                    true
                }
                Err(e) => {
                    tracing::warn!(%e, "vault ingest failed; writes not acknowledged");
                    false
                }
            };
        if done.send(Committed { jobs, ok, deferred }).is_err() {
            break;
        }
    }
}

/// A command sent to one meter, waiting for its acknowledgement.
#[derive(Clone, Copy, Debug)]
struct PendingCommand {
    kind: CommandKind,
    sent_at: Instant,
    tries: u32,
}

/// Reads of a backfill collected so far.
#[derive(Default)]
struct BackfillReads {
    from: i64,
    to: i64,
    st63: Option<Vec<u8>>,
    st64: Option<Vec<u8>>,
}

const COMMAND_RETRY: Duration = Duration::from_secs(1);
/// Clock error the head-end tolerates before it sets a meter's clock, seconds.
const CLOCK_TOLERANCE_S: i128 = 60;
const COMMAND_TRIES: u32 = 8;

struct Host {
    shared: SharedHost<StdRng>,
    socket: Arc<UdpSocket>,
    collector: Collector,
    jobs: std_mpsc::Sender<Job>,
    log: Arc<EventLog>,
    progress: HeadendProgress,
    clock: SimClock,
    commands: Vec<ScheduledCommand>,
    next_command: usize,
    pending_commands: HashMap<u64, VecDeque<PendingCommand>>,
    backfills: HashMap<u64, BackfillReads>,
    seq: u8,
    ticks: u64,
    /// When each outstanding clock read (ST52) was sent.
    clock_reads: HashMap<u64, Instant>,
    /// (meter, interval start) handed to the vault writer and not committed yet: a meter's
    /// retransmission of them is acknowledged after that commit, not written again.
    queued: HashSet<(u64, i64)>,
    /// Whether uploads are answered `bsy` (vault writer behind, standing queue).
    load: IngestLoad,
    /// The largest vault writer lag reported so far, milliseconds.
    max_lag_ms: u64,
}

impl Host {
    fn send(&self, to: SocketAddr, bytes: &[u8]) {
        if let Err(e) = self.socket.try_send_to(bytes, to) {
            tracing::debug!(%to, %e, "host send failed");
        }
    }

    fn on_apdu(&mut self, from: SocketAddr, bytes: &[u8]) {
        let now = Instant::now();
        self.load.datagram(now);
        let lag = self.load.writer_lag(now);
        let busy = self.load.busy(now);
        let (reply, events, busy_writes) = self.shared.with(|h| {
            h.set_ingest_busy(busy);
            let before = h.stats().busy_writes;
            let r = h.handle_apdu(from, bytes, now);
            let busy_writes = h.stats().busy_writes - before;
            let events: Vec<HostEvent> = std::iter::from_fn(|| h.poll_event()).collect();
            (r, events, busy_writes)
        });
        let lag_ms = u64::try_from(lag.as_millis()).unwrap_or(u64::MAX);
        if busy_writes > 0 || lag_ms > self.max_lag_ms {
            self.max_lag_ms = self.max_lag_ms.max(lag_ms);
            self.progress.update(|s| {
                s.busy_answers += busy_writes;
                s.max_writer_lag_ms = s.max_writer_lag_ms.max(lag_ms);
            });
        }
        let mut reply = reply.ok().and_then(|r| r.bytes.map(|b| (r.to, b)));
        for event in events {
            match event {
                HostEvent::Registered { meter, .. } => {
                    if let Some(serial) = serial_of(&meter) {
                        self.collector.register(serial);
                        self.progress.update(|s| s.registrations += 1);
                        self.log.log(
                            self.clock.now(),
                            Some(serial),
                            "registered",
                            from.to_string(),
                        );
                        if self.read_tables(serial, &[table::ST52], now) {
                            self.clock_reads.insert(serial, now);
                        }
                    }
                }
                HostEvent::Intervals { meter, data, .. } => {
                    let Some(serial) = serial_of(&meter) else {
                        continue;
                    };
                    let upload = match IntervalUpload::parse(&data) {
                        Ok(u) => u,
                        Err(e) => {
                            tracing::debug!(serial, %e, "bad interval upload");
                            continue;
                        }
                    };
                    let covers: Vec<i64> = upload
                        .intervals
                        .iter()
                        .filter_map(|iv| i64::try_from(iv.start).ok())
                        .filter(|s| self.collector.wanted(*s))
                        .collect();
                    let readings = self.new_readings(serial, &upload.intervals);
                    let in_flight = covers.iter().any(|s| self.queued.contains(&(serial, *s)));
                    if readings.is_empty() && !in_flight {
                        continue; // all stored already: answer now
                    }
                    // Otherwise the answer waits for the commit (a job without readings of
                    // its own is answered with the batch that holds the earlier copy).
                    self.queued
                        .extend(readings.iter().map(|r| (serial, r.interval_start)));
                    let job = Job {
                        meter: serial,
                        readings,
                        covers,
                        reply: reply.take(),
                        backfill: false,
                    };
                    self.hand_to_writer(job, now);
                }
                HostEvent::Response {
                    meter,
                    table: t,
                    code,
                    data,
                    ..
                } => {
                    if let Some(serial) = serial_of(&meter) {
                        self.on_response(serial, t, code, data);
                    }
                }
                HostEvent::Refused { .. } => self.progress.update(|s| s.refused += 1),
                _ => {}
            }
        }
        if let Some((to, bytes)) = reply {
            self.send(to, &bytes);
        }
    }

    /// The readings of `intervals` the vault does not hold yet (wanted ones only).
    fn new_readings(&self, serial: u64, intervals: &[gridguard_meter::Interval]) -> Vec<Reading> {
        intervals
            .iter()
            .filter_map(|iv| {
                let start = i64::try_from(iv.start).ok()?;
                (self.collector.wanted(start)
                    && !self.collector.is_stored(serial, start)
                    && !self.queued.contains(&(serial, start)))
                .then(|| Reading {
                    meter: serial,
                    interval_start: start,
                    wh: u64::from(iv.delivered) * 10,
                })
            })
            .collect()
    }

    fn on_response(&mut self, serial: u64, t: Option<u16>, code: ResponseCode, data: Vec<u8>) {
        match t {
            Some(table::ST52) if code == ResponseCode::OK => {
                let Ok(meter_time) = calendar::parse_clock(&data) else {
                    return;
                };
                let sim = self.clock.now();
                let skew = i128::from(meter_time) - i128::from(sim);
                // The meter read its clock somewhere within the round trip: on a fast simulated
                // clock that uncertainty is added to the tolerance.
                let rtt = self
                    .clock_reads
                    .remove(&serial)
                    .map_or(Duration::ZERO, |sent| sent.elapsed());
                let uncertainty = (rtt.as_secs_f64() * self.clock.speed).ceil() as i128;
                if skew.abs() > CLOCK_TOLERANCE_S + uncertainty {
                    self.log.log(
                        sim,
                        Some(serial),
                        "clock",
                        format!("meter clock off by {skew} s; setting it"),
                    );
                    self.progress.update(|s| s.clocks_set += 1);
                    self.pending_commands
                        .entry(serial)
                        .or_default()
                        .push_back(PendingCommand {
                            kind: CommandKind::SetClock,
                            sent_at: Instant::now(),
                            tries: 0,
                        });
                    self.dispatch(serial, Instant::now());
                }
            }
            Some(table::ST63) | Some(table::ST64) => {
                let Some(b) = self.backfills.get_mut(&serial) else {
                    return;
                };
                if code != ResponseCode::OK {
                    self.backfills.remove(&serial);
                    self.collector.backfill_done(serial);
                    return;
                }
                if t == Some(table::ST63) {
                    b.st63 = Some(data);
                } else {
                    b.st64 = Some(data);
                }
                if let (Some(s63), Some(s64)) = (&b.st63, &b.st64) {
                    let (from, to) = (b.from, b.to);
                    let intervals = profile_intervals(s63, s64).unwrap_or_default();
                    self.backfills.remove(&serial);
                    // The read holds the meter's whole profile: every interval still missing
                    // is taken, not only the gap that triggered the read.
                    let readings = self.new_readings(serial, &intervals);
                    self.log.log(
                        self.clock.now(),
                        Some(serial),
                        "backfill-read",
                        format!(
                            "gap of {} intervals; {} missing intervals in the profile",
                            (to - from) / 900,
                            readings.len()
                        ),
                    );
                    if readings.is_empty() {
                        self.collector.backfill_done(serial);
                    } else {
                        self.queued
                            .extend(readings.iter().map(|r| (serial, r.interval_start)));
                        let job = Job {
                            meter: serial,
                            readings,
                            covers: Vec::new(),
                            reply: None,
                            backfill: true,
                        };
                        self.hand_to_writer(job, Instant::now());
                    }
                }
            }
            _ => {
                let Some(queue) = self.pending_commands.get_mut(&serial) else {
                    return;
                };
                let Some(cmd) = queue.pop_front() else {
                    return;
                };
                if code == ResponseCode::OK {
                    self.progress.update(|s| s.commands_acked += 1);
                    self.log
                        .log(self.clock.now(), Some(serial), "ack", cmd.kind.name());
                } else {
                    self.log.log(
                        self.clock.now(),
                        Some(serial),
                        "nack",
                        format!("{} refused: {code:?}", cmd.kind.name()),
                    );
                }
            }
        }
    }

    fn hand_to_writer(&mut self, job: Job, now: Instant) {
        if self.jobs.send(job).is_ok() {
            self.load.handed(now);
        }
    }

    fn on_committed(&mut self, done: Committed) {
        self.load.committed(done.jobs.len());
        if done.ok {
            self.progress.update(|s| s.batches += 1);
        } else {
            self.progress.update(|s| s.failed_batches += 1);
        }
        for job in done.jobs {
            for r in &job.readings {
                self.queued.remove(&(job.meter, r.interval_start));
            }
            let written = done.ok
                && !job
                    .readings
                    .iter()
                    .any(|r| done.deferred.contains(&(job.meter, r.interval_start)));
            if written {
                for r in &job.readings {
                    self.collector
                        .stored(job.meter, r.interval_start, job.backfill);
                }
                let stored = job
                    .covers
                    .iter()
                    .all(|s| self.collector.is_stored(job.meter, *s));
                if let (Some((to, bytes)), true) = (&job.reply, stored) {
                    self.send(*to, bytes);
                }
                if job.backfill {
                    self.log.log(
                        self.clock.now(),
                        Some(job.meter),
                        "backfilled",
                        format!("{} intervals", job.readings.len()),
                    );
                }
            }
            if job.backfill {
                self.collector.backfill_done(job.meter);
            }
        }
        let c = self.collector.stats();
        self.progress.update(|s| {
            s.intervals_stored = c.stored;
            s.duplicates = c.duplicates;
            s.intervals_filled = c.filled;
            s.gaps_detected = c.gaps_detected;
        });
    }

    fn on_tick(&mut self) {
        let now = Instant::now();
        let sim = self.clock.now();
        self.shared.with(|h| h.handle_timeout(now));
        // Bounded per tick: a backfill that cannot be sent (the meter has not registered yet)
        // stays outstanding until its timeout, so the scan moves on. None while uploads are
        // answered `bsy`: the meters send the intervals once the head-end takes them again.
        let budget = if self.load.busy(now) {
            0
        } else {
            self.collector.config().max_backfills
        };
        for _ in 0..budget {
            let Some(req) = self
                .collector
                .poll_backfill(i64::try_from(sim).unwrap_or(i64::MAX), now)
            else {
                break;
            };
            if self.read_tables(req.meter, &[table::ST63, table::ST64], now) {
                self.backfills.insert(
                    req.meter,
                    BackfillReads {
                        from: req.from,
                        to: req.to,
                        ..BackfillReads::default()
                    },
                );
                self.log.log(
                    sim,
                    Some(req.meter),
                    "gap",
                    format!("{} intervals from {}", (req.to - req.from) / 900, req.from),
                );
            }
        }
        self.send_commands(now, sim);
        let c = self.collector.stats();
        self.ticks += 1;
        let missing = self.ticks.is_multiple_of(20).then(|| {
            let settled = i64::try_from(sim).unwrap_or(i64::MAX) - self.collector.config().settle_s;
            self.collector
                .missing_total(settled - settled.rem_euclid(900))
        });
        self.progress.update(|s| {
            s.gaps_detected = c.gaps_detected;
            if let Some(m) = missing {
                s.missing = m;
            }
        });
    }

    /// Sends a request reading `tables` of meter `serial` under its C12.22 data key; false
    /// when the meter has no session or address.
    fn read_tables(&mut self, serial: u64, tables: &[u16], now: Instant) -> bool {
        let epsem = Epsem {
            control: EpsemControl::new(SecurityMode::CIPHERTEXT_AUTH, ResponseControl::ALWAYS),
            ed_class: None,
            services: tables
                .iter()
                .map(|&t| Service::Request(Request::FullRead { table: TableId(t) }))
                .collect(),
            end_marker: false,
        };
        let title = meter_ap_title(serial);
        let sent = self.shared.with(|h| {
            let addr = h.meter_address(&title)?;
            h.request(&title, &epsem, now).ok().map(|b| (addr, b))
        });
        match sent {
            Some((addr, bytes)) => {
                self.send(addr, &bytes);
                true
            }
            None => false,
        }
    }

    fn send_commands(&mut self, now: Instant, sim: u64) {
        while let Some(cmd) = self.commands.get(self.next_command).cloned() {
            if cmd.at > sim {
                break;
            }
            self.next_command += 1;
            self.log.log(
                sim,
                None,
                "command",
                format!("{} to {} meters", cmd.kind.name(), cmd.meters.len()),
            );
            for m in cmd.meters {
                self.pending_commands
                    .entry(m)
                    .or_default()
                    .push_back(PendingCommand {
                        kind: cmd.kind,
                        sent_at: now,
                        tries: 0,
                    });
                self.dispatch(m, now);
            }
        }
        let due: Vec<u64> = self
            .pending_commands
            .iter()
            .filter(|(_, q)| {
                q.front()
                    .is_some_and(|c| now.saturating_duration_since(c.sent_at) >= COMMAND_RETRY)
            })
            .map(|(m, _)| *m)
            .collect();
        for m in due {
            self.dispatch(m, now);
        }
    }

    /// Sends (again) the oldest unacknowledged command of meter `m`, under its
    /// demand-response key.
    fn dispatch(&mut self, m: u64, now: Instant) {
        let Some(queue) = self.pending_commands.get_mut(&m) else {
            return;
        };
        let Some(cmd) = queue.front_mut() else {
            return;
        };
        if cmd.tries >= COMMAND_TRIES {
            let kind = cmd.kind;
            queue.pop_front();
            self.log
                .log(self.clock.now(), Some(m), "command-lost", kind.name());
            return;
        }
        cmd.tries += 1;
        cmd.sent_at = now;
        self.seq = self.seq.wrapping_add(1);
        let epsem = Epsem {
            control: EpsemControl::new(SecurityMode::CIPHERTEXT_AUTH, ResponseControl::ALWAYS),
            ed_class: None,
            services: vec![Service::Request(Request::FullWrite {
                table: TableId(table::ST7),
                data: cmd.kind.procedure(self.seq, self.clock.now()).to_bytes(),
            })],
            end_marker: false,
        };
        let title = meter_ap_title(m);
        let sent = self.shared.with(|h| {
            let addr = h.meter_address(&title)?;
            h.demand_response(&title, &epsem, now)
                .ok()
                .map(|b| (addr, b))
        });
        if let Some((addr, bytes)) = sent {
            self.progress.update(|s| s.commands_sent += 1);
            self.send(addr, &bytes);
        }
    }
}

/// Opens the vault, writes the public metadata (regions, TOU tiers of the intervals from the
/// epoch on) and loads which intervals are stored.
fn prepare_vault(options: &HeadendOptions) -> anyhow::Result<(Vault, Collector)> {
    let mut vault = options.data.open_vault()?;
    let regions = options.regions.max(1);
    let rows: Vec<(u64, u32)> = options
        .meters
        .clone()
        .map(|m| (m, u32::try_from(m % u64::from(regions)).unwrap_or(0)))
        .collect();
    vault.set_regions(&rows)?;
    let tou = MeterTou::residential();
    let day = 86_400;
    let first_day = options.epoch - options.epoch.rem_euclid(day);
    let tiers: Vec<(i64, u8)> = (0..40 * 96)
        .map(|i| {
            let t = first_day + i * 900;
            let tier = u64::try_from(t).map_or(0, |u| tou.tier_at(u).0.index());
            (t, u8::try_from(tier).unwrap_or(0))
        })
        .collect();
    vault.set_interval_tiers(&tiers)?;
    let mut config = CollectorConfig::new(options.epoch);
    config.settle_s = options.settle_s;
    let mut collector = Collector::new(config);
    for m in options.meters.clone() {
        collector.register(m);
    }
    for (meter, starts) in vault.stored_intervals(TimeRange::new(options.epoch, i64::MAX))? {
        collector.load(meter, &starts);
    }
    Ok((vault, collector))
}

/// Runs the head-end on `options.paa` and `options.host` until `stop` turns true.
///
/// # Errors
/// When a socket cannot be bound or the data directory cannot be opened.
pub async fn run_headend(
    options: HeadendOptions,
    progress: HeadendProgress,
    stop: watch::Receiver<bool>,
) -> anyhow::Result<HeadendStats> {
    let paa_socket = bind_udp(options.paa, 8 << 20)?;
    let host_socket = bind_udp(options.host, 8 << 20)?;
    run_headend_on(paa_socket, host_socket, options, progress, stop).await
}

/// Runs the head-end on sockets already bound (PANA, C12.22) until `stop` turns true.
///
/// # Errors
/// When the data directory cannot be opened.
pub async fn run_headend_on(
    paa_socket: UdpSocket,
    host_socket: UdpSocket,
    options: HeadendOptions,
    progress: HeadendProgress,
    mut stop: watch::Receiver<bool>,
) -> anyhow::Result<HeadendStats> {
    let (vault, collector) = prepare_vault(&options)?;
    progress.update(|s| s.intervals_stored = 0);
    let log = Arc::new(EventLog::spawn(&options.data.events_path())?);
    log.log(
        options.clock.now(),
        None,
        "start",
        format!("head-end serving meters {:?}", options.meters),
    );

    let mut credentials = MemoryCredentials::new();
    for m in options.meters.clone() {
        let i = usize::try_from(m).unwrap_or(0);
        credentials.insert(meter_identity(i).into_bytes(), meter_psk(options.seed, i));
    }
    let shared = SharedHost::new(C1222Host::new(
        HostConfig::new(host_ap_title()).with_grace(options.grace),
        StdRng::from_entropy(),
    ));
    let host_socket = Arc::new(host_socket);

    let mut config = PaaConfig::default();
    config.session_lifetime = options.session_lifetime;
    // A meter that starts over leaves its old session behind until it expires: room for
    // several sessions per meter, so that a crowd starting over is never refused.
    config.max_sessions = usize::try_from(options.meters.end - options.meters.start)
        .unwrap_or(usize::MAX)
        .saturating_mul(8)
        .saturating_add(4_096);
    config.retransmit.req_mrt = Duration::from_secs(2);
    // A crowd starting over at once is taken a slice at a time: each admitted handshake
    // finishes within the meters' retransmission timeouts, the rest come back with their
    // next PCI.
    config.max_handshakes = PAA_MAX_HANDSHAKES;
    let paa_options = PaaOptions {
        config,
        backend: BackendConfig::Local {
            server_id: b"gridguard-headend".to_vec(),
            credentials: Arc::new(credentials),
        },
        actions: Vec::new(),
    };
    let mut keylog = match &options.keylog {
        Some(path) => Some(KeyLog::open(path)?),
        None => KeyLog::from_env()?,
    };
    if let Some(k) = &keylog {
        eprintln!(
            "warning: C12.22 keys are written in clear to {} (debugging only)",
            k.path().display()
        );
    }
    let (paa_shared, paa_log, paa_progress, clock) =
        (shared.clone(), log.clone(), progress.clone(), options.clock);
    let on_paa = move |e: &ServeEvent| {
        let ServeEvent::KeysReady {
            session,
            identity,
            key_id,
            lifetime,
            keys,
        } = e
        else {
            return;
        };
        let Some(serial) = serial_of_identity(identity) else {
            return;
        };
        let title = meter_ap_title(serial);
        let facts = SessionFacts::new(*session, *key_id, identity.clone());
        let now = Instant::now();
        let (rollover, result) = paa_shared.with(|h| {
            let rollover = h.keys().contains(&title);
            let result = h.install_session(title.clone(), &facts, keys.emsk(), *lifetime, now);
            if let (Ok(_), Some(k), Some(ring)) = (&result, keylog.as_mut(), h.keys().ring(&title))
            {
                if let Err(e) = k.log_current(&serial, ring, now) {
                    tracing::warn!(%e, "key log write failed");
                }
            }
            (rollover, result)
        });
        match result {
            Ok(_) if rollover => {
                paa_progress.update(|s| s.reauthentications += 1);
                paa_log.log(
                    clock.now(),
                    Some(serial),
                    "rekey",
                    format!("key-id {key_id:#010x}"),
                );
            }
            Ok(_) => {
                paa_progress.update(|s| s.sessions += 1);
                paa_log.log(
                    clock.now(),
                    Some(serial),
                    "session",
                    format!("session {session:#010x}"),
                );
            }
            Err(e) => tracing::warn!(serial, %e, "cannot install the meter's C12.22 keys"),
        }
    };
    let mut paa_stop = stop.clone();
    // The PAA runs on a thread of its own: under load the host's work would otherwise delay
    // its answers, and a meter that pings the PAA to learn whether the head-end lives would
    // take a busy head-end for a dead one.
    let paa_socket = paa_socket.into_std()?;
    let paa_thread = std::thread::Builder::new().name("pana-paa".into()).spawn(
        move || -> anyhow::Result<()> {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()?;
            runtime.block_on(async move {
                let socket = UdpSocket::from_std(paa_socket)?;
                serve(socket, paa_options, on_paa, async move {
                    while paa_stop.changed().await.is_ok() && !*paa_stop.borrow() {}
                })
                .await
                .map(|_| ())
            })
        },
    )?;

    let (jobs_tx, jobs_rx) = std_mpsc::channel::<Job>();
    let (done_tx, mut done_rx) = mpsc::unbounded_channel::<Committed>();
    let batch = options.batch.max(1);
    let writer = std::thread::Builder::new()
        .name("vault-writer".into())
        .spawn(move || vault_writer(vault, jobs_rx, done_tx, batch))?;

    let mut commands = options.commands.clone();
    commands.sort_by_key(|c| c.at);
    let mut host = Host {
        shared,
        socket: host_socket.clone(),
        collector,
        jobs: jobs_tx,
        log: log.clone(),
        progress: progress.clone(),
        clock: options.clock,
        commands,
        next_command: 0,
        pending_commands: HashMap::new(),
        backfills: HashMap::new(),
        seq: 0,
        ticks: 0,
        clock_reads: HashMap::new(),
        queued: HashSet::new(),
        load: IngestLoad::new(options.busy_after),
        max_lag_ms: 0,
    };
    let mut ticker = tokio::time::interval(Duration::from_millis(50));
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut buf = vec![0u8; 65_535];
    loop {
        tokio::select! {
            biased;
            Some(done) = done_rx.recv() => host.on_committed(done),
            r = host_socket.recv_from(&mut buf) => {
                if let Ok((n, from)) = r {
                    if let Some(bytes) = buf.get(..n) {
                        let bytes = bytes.to_vec();
                        host.on_apdu(from, &bytes);
                    }
                }
                // What is queued already, a bounded number at a time (commits and ticks
                // come in between), noting when the socket runs empty.
                for _ in 0..DRAIN_AT_ONCE {
                    match host_socket.try_recv_from(&mut buf) {
                        Ok((n, from)) => {
                            if let Some(bytes) = buf.get(..n) {
                                let bytes = bytes.to_vec();
                                host.on_apdu(from, &bytes);
                            }
                        }
                        Err(e) => {
                            if e.kind() == std::io::ErrorKind::WouldBlock {
                                host.load.ran_empty();
                            }
                            break;
                        }
                    }
                }
            }
            _ = ticker.tick() => host.on_tick(),
            r = stop.changed() => {
                if r.is_err() || *stop.borrow() {
                    break;
                }
            }
        }
    }
    // Let the vault finish what it holds, acknowledging nothing more.
    host.jobs = std_mpsc::channel().0; // drops the writer's last sender
    let _ = writer.join();
    while let Ok(done) = done_rx.try_recv() {
        host.on_committed_quiet(done);
    }
    match tokio::task::spawn_blocking(move || paa_thread.join()).await {
        Ok(Ok(Err(e))) => tracing::warn!(%e, "PAA stopped with an error"),
        Ok(Err(_)) => tracing::warn!("PAA thread panicked"),
        _ => {}
    }
    log.log(options.clock.now(), None, "stop", "head-end stopped");
    Ok(progress.get())
}

impl Host {
    /// Books committed jobs without answering (the head-end is stopping).
    fn on_committed_quiet(&mut self, done: Committed) {
        if done.ok {
            for job in &done.jobs {
                for r in &job.readings {
                    self.collector
                        .stored(job.meter, r.interval_start, job.backfill);
                }
            }
        }
        let c = self.collector.stats();
        self.progress.update(|s| {
            s.intervals_stored = c.stored;
            s.intervals_filled = c.filled;
        });
    }
}
