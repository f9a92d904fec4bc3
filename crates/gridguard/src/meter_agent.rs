//! One networked meter, sans-IO: the meter model (`gridguard-meter`), its PANA client with the
//! EAP-PSK peer ([`crate::pana_pac::Meter`]) and its C12.22 link (`gridguard-headend`'s
//! [`MeterLink`]) joined into the whole AMSO flow:
//!
//! PANA → UKMF keys → C12.22 Registration → an upload of the newest intervals every upload
//! period → commands from the head-end (served from the C12.19 tables; procedures only under
//! the demand-response key) → re-authentication before the session lifetime ends (the PaC
//! does it on its own) → starting over when the head-end is gone.
//!
//! A head-end that is slow is told apart from one that is gone: each request in a row left
//! unanswered waits twice as long as the one before (up to four times, RFC 6298 §5.5), and
//! after `max_unanswered` of them the meter pings the PAA (a PANA notification, RFC 5191 §4.4). An
//! answered ping means the session lives and the head-end is only behind, so the meter sends
//! nothing more until its next upload slot (the intervals wait in its load profile and the
//! next upload carries them all); only an unanswered ping makes it authenticate again.
//!
//! Two clocks come in on every call: `now` (real time: PANA timers, key lifetimes,
//! retransmissions) and `sim` (simulated seconds since 1970 driving the meter model, which a
//! demo runs faster than real time).

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use gridguard_c1222::{ApTitle, ObjectId, ResponseCode};
use gridguard_eap::{Psk, SessionKeys};
use gridguard_headend::{
    LinkError, MeterEvent as LinkEvent, MeterLink, MeterLinkConfig, MeterTables,
};
use gridguard_keys::{Application, KeyId, SessionFacts};
use gridguard_meter::tables::{id as table, procedures};
use gridguard_pana::PacConfig;
use rand::rngs::StdRng;
use rand::SeedableRng;

use crate::compact_rng::CompactRng;
use crate::pana_pac::{Meter as PanaMeter, MeterEvent as PanaEvent};

/// Object identifier arcs under which meters and the head-end are named (the C12.22 example
/// root `2.16.124.113620.1.22`): `….0.1` is the head-end, `….1.<serial>` a meter.
const ROOT: [u64; 6] = [2, 16, 124, 113_620, 1, 22];

/// The head-end host's AP title.
pub fn host_ap_title() -> ApTitle {
    title(&[0, 1])
}

/// The AP title of meter `serial`.
pub fn meter_ap_title(serial: u64) -> ApTitle {
    title(&[1, serial])
}

#[allow(clippy::expect_used)] // constant root arcs 2.16…: always a valid absolute OID
fn title(tail: &[u64]) -> ApTitle {
    let arcs: Vec<u64> = ROOT.iter().chain(tail).copied().collect();
    ApTitle::Absolute(ObjectId::from_arcs(&arcs).expect("arcs under 2.16 are valid"))
}

/// The serial of a meter AP title built by [`meter_ap_title`].
pub fn serial_of(ap_title: &ApTitle) -> Option<u64> {
    let ApTitle::Absolute(oid) = ap_title else {
        return None;
    };
    let arcs = oid.arcs()?;
    match arcs.as_slice() {
        [a, b, c, d, e, f, 1, serial] if [*a, *b, *c, *d, *e, *f] == ROOT => Some(*serial),
        _ => None,
    }
}

/// The serial of a meter EAP identity (`meter-000123`).
pub fn serial_of_identity(identity: &[u8]) -> Option<u64> {
    std::str::from_utf8(identity)
        .ok()?
        .strip_prefix("meter-")?
        .parse()
        .ok()
}

/// How a meter agent behaves.
#[derive(Clone, Debug)]
pub struct AgentConfig {
    /// PANA settings of the PaC (re-authentication margin, retransmission).
    pub pac: PacConfig,
    /// Simulated seconds between two uploads.
    pub upload_every_s: u64,
    /// Oldest interval an upload carries, simulated seconds back: older unacknowledged
    /// intervals are left for the head-end to read back (backfill).
    pub upload_window_s: u64,
    /// Real time to wait for the head-end's answer before sending again (longer when the
    /// measured round trip is; doubled for each request in a row left unanswered, up to
    /// four times).
    pub reply_timeout: Duration,
    /// Unanswered C12.22 requests in a row after which the meter pings the PAA to learn
    /// whether the head-end is slow (ping answered: wait for the next upload slot) or gone
    /// (no answer: authenticate again).
    pub max_unanswered: u32,
    /// How long the meter waits for the answer to that ping. The PaC sends the ping again
    /// meanwhile on its own retransmission timers (RFC 5191, with jitter), and an answer to
    /// any copy ends the wait: a head-end stalled for a few seconds, whose PAA socket
    /// overflowed with the pings of every meter at once, is not taken for gone.
    pub probe_timeout: Duration,
    /// Key grace period (must match the head-end's).
    pub grace: Duration,
}

impl Default for AgentConfig {
    fn default() -> Self {
        AgentConfig {
            pac: PacConfig::default(),
            upload_every_s: 3_600,
            upload_window_s: 86_400,
            reply_timeout: Duration::from_secs(1),
            max_unanswered: 5,
            probe_timeout: Duration::from_secs(8),
            grace: Duration::from_secs(2),
        }
    }
}

impl AgentConfig {
    /// Settings for a simulated fleet on a fast clock whose sessions live `lifetime`: the
    /// PaC re-authenticates a quarter of the lifetime before its end and starts over on its
    /// own after losing the PAA, with retransmission and authentication timeouts of seconds
    /// rather than the RFC's minutes.
    pub fn simulated(lifetime: Duration, grace: Duration) -> Self {
        let mut agent = AgentConfig::default();
        agent.pac.reauth_margin = Some(lifetime / 4);
        agent.pac.restart_on_loss = true;
        agent.pac.retransmit.pci_mrt = Duration::from_secs(2);
        agent.pac.retransmit.req_mrt = Duration::from_secs(2);
        agent.pac.auth_timeout = Duration::from_secs(5);
        agent.grace = grace;
        agent
    }
}

/// Where a datagram goes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Dest {
    /// The PAA (PANA).
    Paa,
    /// The C12.22 host.
    Host,
}

/// Counters of one agent.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct AgentStats {
    /// PANA sessions established.
    pub sessions: u64,
    /// Re-authentications (each one a key rollover).
    pub reauthentications: u64,
    /// Registrations acknowledged.
    pub registrations: u64,
    /// Uploads sent (retries included).
    pub uploads_sent: u64,
    /// Uploads acknowledged.
    pub uploads_acked: u64,
    /// Intervals acknowledged by the head-end.
    pub intervals_acked: u64,
    /// Commands (procedures) executed.
    pub commands: u64,
    /// Commands refused (wrong key).
    pub commands_refused: u64,
    /// Reads served (backfill, clock).
    pub reads: u64,
    /// C12.22 messages from the head-end refused (bad MAC, replay, unknown key…).
    pub refused: u64,
    /// Times the meter gave the head-end up and authenticated again.
    pub restarts: u64,
    /// Pings sent to the PAA after unanswered requests.
    pub probes: u64,
    /// Times the head-end left requests unanswered but answered the ping that followed: the
    /// meter held back until its next upload slot instead of authenticating again.
    pub held_back: u64,
    /// Uploads the head-end answered `bsy` (behind): the meter sends the intervals with its
    /// next upload.
    pub uploads_busy: u64,
    /// Reboots (power lost, the load profile kept in non-volatile memory).
    pub reboots: u64,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Phase {
    /// Waiting for PANA.
    Authenticating,
    /// Keys installed, Registration outstanding.
    Registering,
    /// Registered: uploads flow.
    Online,
}

/// An upload or registration waiting for its answer.
#[derive(Clone, Copy, Debug)]
struct Outstanding {
    sent_at: Instant,
    /// Start (meter time) of the first interval carried; 0 for the registration.
    from: u64,
    /// End (meter time) of the intervals carried; 0 for the registration.
    upto: u64,
}

/// Requests waiting for their answers, by invocation id: one or two at a time, so a vector
/// (a `BTreeMap` would keep a node of 11 slots, about 450 bytes, per meter once used).
#[derive(Debug, Default)]
struct Requests(Vec<(u64, Outstanding)>);

impl Requests {
    fn insert(&mut self, invocation: u64, o: Outstanding) {
        self.0.retain(|(k, _)| *k != invocation);
        self.0.reserve_exact(1);
        self.0.push((invocation, o));
    }

    fn remove(&mut self, invocation: &u64) -> Option<Outstanding> {
        let at = self.0.iter().position(|(k, _)| k == invocation)?;
        Some(self.0.swap_remove(at).1)
    }

    fn get(&self, invocation: &u64) -> Option<&Outstanding> {
        self.0.iter().find(|(k, _)| k == invocation).map(|(_, o)| o)
    }

    fn iter(&self) -> impl Iterator<Item = (&u64, &Outstanding)> {
        self.0.iter().map(|(k, o)| (k, o))
    }

    fn values(&self) -> impl Iterator<Item = &Outstanding> {
        self.0.iter().map(|(_, o)| o)
    }

    fn retain(&mut self, mut keep: impl FnMut(&Outstanding) -> bool) {
        self.0.retain(|(_, o)| keep(o));
    }

    fn clear(&mut self) {
        self.0.clear();
    }

    fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

/// Superseded requests whose late answers a meter still accepts.
const SUPERSEDED_KEPT: usize = 4;

/// Smoothed round-trip time and its mean deviation (RFC 6298, section 2).
#[derive(Clone, Copy, Debug)]
struct RoundTrip {
    srtt: Duration,
    rttvar: Duration,
}

impl RoundTrip {
    fn first(sample: Duration) -> Self {
        RoundTrip {
            srtt: sample,
            rttvar: sample / 2,
        }
    }

    /// RTTVAR ← ¾·RTTVAR + ¼·|SRTT − R|, SRTT ← ⅞·SRTT + ⅛·R.
    fn next(self, sample: Duration) -> Self {
        let deviation = self.srtt.abs_diff(sample);
        RoundTrip {
            rttvar: (self.rttvar * 3 + deviation) / 4,
            srtt: (self.srtt * 7 + sample) / 8,
        }
    }

    fn timeout(self) -> Duration {
        self.srtt.saturating_add(self.rttvar.saturating_mul(4))
    }
}

/// Most the reply timeout grows by when requests go unanswered in a row (a power of two).
const MAX_BACKOFF: u32 = 4;

/// One meter on the network.
pub struct MeterAgent {
    serial: u64,
    psk: Psk,
    rng: CompactRng,
    /// Shared by a fleet's meters.
    config: std::sync::Arc<AgentConfig>,
    pana: PanaMeter,
    link: MeterLink<CompactRng>,
    model: gridguard_meter::Meter,
    phase: Phase,
    session_id: u32,
    lifetime: Duration,
    outstanding: Requests,
    /// Requests sent again under a new invocation id: a late answer to one of them still
    /// counts (the head-end answers every copy).
    superseded: VecDeque<(u64, Outstanding)>,
    /// Smoothed round trip and its variation to the head-end (RFC 6298), when measured.
    rtt: Option<RoundTrip>,
    unanswered: u32,
    /// A ping to the PAA after unanswered requests, and when the meter stops waiting for it.
    probe: Option<Instant>,
    acked_to: u64,
    /// Intervals the head-end acknowledged, as merged `[start, end)` ranges of meter time.
    acked: Vec<(u64, u64)>,
    next_upload: u64,
    out: VecDeque<(Dest, Vec<u8>)>,
    stats: AgentStats,
    /// A reboot in progress: the non-volatile memory saved when power went, and the
    /// simulated time it comes back.
    down: Option<(Vec<u8>, u64)>,
}

impl std::fmt::Debug for MeterAgent {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MeterAgent")
            .field("serial", &self.serial)
            .field("phase", &self.phase)
            .field("stats", &self.stats)
            .finish_non_exhaustive()
    }
}

impl MeterAgent {
    /// Meter `serial` with its PSK and model; `rng` seeds the PaC, EAP and C12.22 IVs. A
    /// fleet passes one `Arc` of its configuration to every meter.
    pub fn new(
        serial: u64,
        psk: Psk,
        model: gridguard_meter::Meter,
        config: impl Into<std::sync::Arc<AgentConfig>>,
        mut rng: StdRng,
    ) -> Self {
        let config = config.into();
        let identity =
            crate::simulate::meter_identity(usize::try_from(serial).unwrap_or(0)).into_bytes();
        let pana_rng = StdRng::from_rng(&mut rng).unwrap_or_else(|_| StdRng::seed_from_u64(serial));
        let link_rng =
            CompactRng::from_rng(&mut rng).unwrap_or_else(|_| CompactRng::seed_from_u64(!serial));
        let rng = CompactRng::from_rng(&mut rng)
            .unwrap_or_else(|_| CompactRng::seed_from_u64(serial ^ 1));
        let native = serial.to_be_bytes().to_vec();
        let link = MeterLink::new(
            MeterLinkConfig::new(meter_ap_title(serial), host_ap_title(), native)
                .with_grace(config.grace),
            link_rng,
        );
        let acked_to = interval_floor(model.meter_time());
        MeterAgent {
            serial,
            pana: PanaMeter::with_rng(&identity, psk.clone(), config.pac.clone(), pana_rng),
            psk,
            rng,
            link,
            model,
            phase: Phase::Authenticating,
            session_id: 0,
            lifetime: Duration::ZERO,
            outstanding: Requests::default(),
            superseded: VecDeque::new(),
            rtt: None,
            unanswered: 0,
            probe: None,
            acked_to,
            acked: Vec::new(),
            next_upload: 0,
            out: VecDeque::new(),
            stats: AgentStats::default(),
            down: None,
            config,
        }
    }

    /// The meter's EAP identity (`meter-000123`, from its serial).
    fn identity(&self) -> Vec<u8> {
        crate::simulate::meter_identity(usize::try_from(self.serial).unwrap_or(0)).into_bytes()
    }

    /// The meter's serial.
    pub fn serial(&self) -> u64 {
        self.serial
    }

    /// The meter model.
    pub fn model(&self) -> &gridguard_meter::Meter {
        &self.model
    }

    /// The counters.
    pub fn stats(&self) -> AgentStats {
        self.stats
    }

    /// The intervals the head-end acknowledged (it acknowledges only what it committed), as
    /// merged `[start, end)` ranges of meter time.
    pub fn acked(&self) -> &[(u64, u64)] {
        &self.acked
    }

    /// Where the meter stands, for diagnostics: its phase and its PaC's state.
    pub fn state(&self) -> String {
        format!("{:?}/{:?}", self.phase, self.pana.pac().state())
    }

    /// Whether the meter is registered with the head-end.
    pub fn online(&self) -> bool {
        self.phase == Phase::Online
    }

    /// The PANA session id (0 before the first PAR).
    pub fn session_id(&self) -> u32 {
        self.pana.pac().session_id()
    }

    /// Whether the PaC is waiting for its first answer (the PAA knows it only by address).
    pub fn in_handshake(&self) -> bool {
        self.pana.in_handshake()
    }

    /// Starts PANA: a new PANA session from a new PaC (one still holding a session the PAA
    /// has lost is dropped).
    pub fn start(&mut self, now: Instant) {
        self.phase = Phase::Authenticating;
        self.probe = None;
        if self.pana.start(now).is_err() {
            self.pana = self.fresh_pac();
            if let Err(e) = self.pana.start(now) {
                tracing::warn!(serial = self.serial, %e, "PaC refused to start");
            }
        }
        self.drain(now, None);
    }

    /// Power fails at simulated time `sim` for `down_s` seconds: the meter saves its
    /// non-volatile memory and goes silent; it comes back with its load profile, registers and
    /// C12.22 invocation counter, but without keys or sessions (volatile), and authenticates
    /// anew.
    pub fn reboot(&mut self, sim: u64, down_s: u64) {
        self.advance(sim);
        self.down = Some((self.model.save(), sim + down_s));
        self.stats.reboots += 1;
        self.outstanding.clear();
        self.superseded.clear();
        self.out.clear();
        self.probe = None;
        self.phase = Phase::Authenticating;
    }

    /// Whether the meter is down for a reboot.
    pub fn rebooting(&self) -> bool {
        self.down.is_some()
    }

    /// Power is back: restore the model from its saved memory and start over.
    fn power_up(&mut self, now: Instant, sim: u64) {
        let Some((saved, _)) = self.down.take() else {
            return;
        };
        let config = crate::fleet::meter_config(self.serial, 0);
        let calendar = std::sync::Arc::new(gridguard_meter::TouCalendar::residential());
        match gridguard_meter::Meter::restore(config, calendar, &saved, sim) {
            Ok(model) => self.model = model,
            Err(e) => tracing::warn!(serial = self.serial, %e, "meter memory lost in reboot"),
        }
        // Keys are volatile and gone; the C12.22 invocation counter and replay window are kept
        // in non-volatile memory (a meter that restarted its counter would see its first
        // messages refused by the host as replays).
        self.link.revoke(now);
        self.pana = self.fresh_pac();
        self.start(now);
    }

    /// A new PaC (with its EAP-PSK peer) for this meter, seeded from the agent's generator.
    fn fresh_pac(&mut self) -> PanaMeter {
        let rng = StdRng::from_rng(&mut self.rng)
            .unwrap_or_else(|_| StdRng::seed_from_u64(self.serial ^ 0x5eed));
        PanaMeter::with_rng(
            &self.identity(),
            self.psk.clone(),
            self.config.pac.clone(),
            rng,
        )
    }

    /// Next datagram to send.
    pub fn poll_transmit(&mut self) -> Option<(Dest, Vec<u8>)> {
        let next = self.out.pop_front();
        if next.is_none() && self.out.capacity() > 0 {
            // Idle most of the time: a fleet keeps no send queue per meter.
            self.out = VecDeque::new();
        }
        next
    }

    /// The next real instant at which [`handle_timeout`](Self::handle_timeout) has work on
    /// the network (a retransmission, a PANA or key timer); none while the meter is down.
    /// Work due at a simulated time is given by [`poll_sim_timeout`](Self::poll_sim_timeout).
    pub fn poll_timeout(&self) -> Option<Instant> {
        if self.down.is_some() {
            return None;
        }
        let retry = self
            .outstanding
            .values()
            .map(|o| o.sent_at + self.backed_off_timeout())
            .min();
        [
            self.pana.poll_timeout(),
            self.link.poll_timeout(),
            retry,
            self.probe,
        ]
        .into_iter()
        .flatten()
        .min()
    }

    /// The simulated time at which [`handle_timeout`](Self::handle_timeout) has work next:
    /// power coming back after a reboot, or the next upload. `None` while the meter waits on
    /// the network only. (The model needs no call of its own: it catches up whenever it is
    /// read.)
    pub fn poll_sim_timeout(&self) -> Option<u64> {
        if let Some((_, until)) = &self.down {
            return Some(*until);
        }
        self.idle_online().then_some(self.next_upload)
    }

    /// Registered, with nothing outstanding and no ping out: free to upload.
    fn idle_online(&self) -> bool {
        self.phase == Phase::Online && self.outstanding.is_empty() && self.probe.is_none()
    }

    /// A PANA datagram from the PAA.
    pub fn handle_pana(&mut self, bytes: &[u8], now: Instant, sim: u64) {
        if self.down.is_some() {
            return;
        }
        self.pana.handle_datagram(bytes, now);
        self.drain(now, Some(sim));
    }

    /// A C12.22 APDU from the host.
    pub fn handle_c1222(&mut self, bytes: &[u8], now: Instant, sim: u64) {
        if self.down.is_some() {
            return;
        }
        self.advance(sim);
        let mut tables = ModelTables {
            model: &mut self.model,
            stats: &mut self.stats,
        };
        match self.link.handle_apdu(bytes, now, &mut tables) {
            Ok(reply) => {
                if let Some(r) = reply {
                    self.out.push_back((Dest::Host, r));
                }
            }
            Err(e) => {
                self.stats.refused += 1;
                tracing::debug!(serial = self.serial, error = %e, "C12.22 message refused");
            }
        }
        while let Some(event) = self.link.poll_event() {
            self.on_link_event(event, sim, now);
        }
    }

    /// Advances timers and the model to `now` / `sim`, uploads when due.
    pub fn handle_timeout(&mut self, now: Instant, sim: u64) {
        if let Some((_, until)) = &self.down {
            if sim < *until {
                return;
            }
            self.power_up(now, sim);
        }
        self.pana.handle_timeout(now);
        self.link.handle_timeout(now);
        self.drain(now, Some(sim));
        self.advance(sim);
        if self.probe.is_some_and(|until| now >= until) {
            tracing::debug!(serial = self.serial, "PAA silent too: authenticating again");
            self.probe = None;
            self.give_up(now);
        }
        self.retry(now, sim);
        if self.idle_online() && sim >= self.next_upload {
            let every = self.config.upload_every_s.max(1);
            // Each meter keeps its own offset within the period (drawn from its serial), so
            // that a fleet does not upload all at once at the period's boundary.
            let offset = self.serial.wrapping_mul(0x9e37_79b9_7f4a_7c15) % every;
            let next = sim - sim % every + offset;
            self.next_upload = if next > sim { next } else { next + every };
            self.upload(now, sim);
        }
    }

    fn advance(&mut self, sim: u64) {
        if sim > self.model.now() {
            if let Err(e) = self.model.advance(sim) {
                tracing::warn!(serial = self.serial, %e, "meter model refused to advance");
            }
        }
    }

    fn upload(&mut self, now: Instant, sim: u64) {
        let end = interval_floor(self.model.meter_time());
        let oldest = end.saturating_sub(self.config.upload_window_s);
        let from = self.acked_to.max(oldest);
        if from >= end {
            return;
        }
        // A clock change inside the window breaks the intervals into runs of consecutive
        // starts; one upload carries one run, the next upload the rest.
        let Some(upload) = self.model.upload_between(from, end).into_iter().next() else {
            return;
        };
        let (first_start, end) = (upload.first_start, upload.end());
        match self
            .link
            .write_intervals(table::ST64, &upload.to_bytes(), now)
        {
            Ok(o) => {
                self.stats.uploads_sent += 1;
                self.outstanding.insert(
                    o.invocation,
                    Outstanding {
                        sent_at: now,
                        from: first_start,
                        upto: end,
                    },
                );
                self.out.push_back((Dest::Host, o.bytes));
            }
            Err(e) => self.link_down(e, now, sim),
        }
    }

    fn register(&mut self, now: Instant, sim: u64) {
        match self.link.registration(now) {
            Ok(o) => {
                self.phase = Phase::Registering;
                self.outstanding.insert(
                    o.invocation,
                    Outstanding {
                        sent_at: now,
                        from: 0,
                        upto: 0,
                    },
                );
                self.out.push_back((Dest::Host, o.bytes));
            }
            Err(e) => self.link_down(e, now, sim),
        }
    }

    /// Sends again what went unanswered: a fresh message (new invocation id and IV: the host
    /// refuses a replayed one), the ingest is idempotent.
    fn retry(&mut self, now: Instant, sim: u64) {
        let timeout = self.backed_off_timeout();
        let expired: Vec<u64> = self
            .outstanding
            .iter()
            .filter(|(_, o)| now.saturating_duration_since(o.sent_at) >= timeout)
            .map(|(k, _)| *k)
            .collect();
        if expired.is_empty() {
            return;
        }
        let registering = expired
            .iter()
            .any(|k| self.outstanding.get(k).is_some_and(|o| o.upto == 0));
        for k in expired {
            if let Some(o) = self.outstanding.remove(&k) {
                if self.superseded.len() >= SUPERSEDED_KEPT {
                    self.superseded.pop_front();
                }
                self.superseded.reserve_exact(1);
                self.superseded.push_back((k, o));
            }
        }
        self.unanswered += 1;
        if self.unanswered >= self.config.max_unanswered {
            self.unanswered = 0;
            let pinged = self.probe.is_none() && self.pana.pac_mut().ping(now).is_ok();
            // A PaC busy with an exchange of its own (a re-authentication) learns from that
            // one whether the PAA lives: wait for it as for a ping.
            let pac_busy = self.probe.is_none() && self.pana.pac().key_id().is_some();
            if pinged || pac_busy {
                self.probe = Some(now + self.config.probe_timeout);
                self.stats.probes += u64::from(pinged);
                self.outstanding.clear();
                self.drain(now, Some(sim));
            } else {
                self.probe = None;
                self.give_up(now);
            }
            return;
        }
        if registering {
            self.register(now, sim);
        } else if self.phase == Phase::Online {
            self.upload(now, sim);
        }
    }

    /// The head-end is gone: drop the keys and authenticate again.
    fn give_up(&mut self, now: Instant) {
        self.stats.restarts += 1;
        self.link.revoke(now);
        self.outstanding.clear();
        self.superseded.clear();
        self.start(now);
    }

    /// How long to wait for an answer: the configured time, or longer when the head-end's
    /// measured round trip is (RFC 6298: smoothed round trip plus four times its variation),
    /// at most eight times the configured time.
    fn reply_timeout(&self) -> Duration {
        let floor = self.config.reply_timeout;
        self.rtt
            .map_or(floor, |r| r.timeout())
            .clamp(floor, floor.saturating_mul(8))
    }

    /// The reply timeout doubled for each request in a row that went unanswered, up to
    /// [`MAX_BACKOFF`] times (RFC 6298 §5.5): a head-end that falls behind is not sent
    /// every upload again each second, which would bury it deeper.
    fn backed_off_timeout(&self) -> Duration {
        let doublings = self.unanswered.min(MAX_BACKOFF.trailing_zeros());
        self.reply_timeout().saturating_mul(1 << doublings)
    }

    fn link_down(&mut self, error: LinkError, now: Instant, _sim: u64) {
        tracing::debug!(serial = self.serial, %error, "C12.22 link cannot send; authenticating again");
        self.outstanding.clear();
        self.superseded.clear();
        if self.phase != Phase::Authenticating {
            self.stats.restarts += 1;
            self.start(now);
        }
    }

    fn on_link_event(&mut self, event: LinkEvent, sim: u64, now: Instant) {
        let LinkEvent::Response {
            invocation,
            responses,
            ..
        } = event
        else {
            return;
        };
        let o = match self.outstanding.remove(&invocation) {
            Some(o) => o,
            None => {
                let Some(at) = self.superseded.iter().position(|(k, _)| *k == invocation) else {
                    return;
                };
                let Some((_, o)) = self.superseded.remove(at) else {
                    return;
                };
                // The copies sent since carry nothing this answer does not cover.
                self.outstanding.retain(|c| {
                    if o.upto == 0 {
                        c.upto != 0
                    } else {
                        c.upto == 0 || c.from < o.from || c.upto > o.upto
                    }
                });
                o
            }
        };
        // Every copy has its own invocation id, so the answer names the copy it answers and
        // its round trip is a true sample even for a copy sent again (no need for Karn's rule).
        let sample = now.saturating_duration_since(o.sent_at);
        self.rtt = Some(
            self.rtt
                .map_or(RoundTrip::first(sample), |r| r.next(sample)),
        );
        self.unanswered = 0;
        let ok = responses.iter().all(|r| r.code == ResponseCode::OK);
        if o.upto == 0 {
            if ok {
                self.stats.registrations += 1;
                self.phase = Phase::Online;
                self.next_upload = sim;
            } else {
                self.register(now, sim);
            }
        } else if responses.iter().any(|r| r.code == ResponseCode::BSY) {
            // The head-end is behind: the intervals wait in the load profile for the next
            // upload slot, which carries them all.
            self.stats.uploads_busy += 1;
        } else if ok {
            self.stats.uploads_acked += 1;
            self.stats.intervals_acked += o.upto.saturating_sub(o.from) / INTERVAL;
            self.acked_to = self.acked_to.max(o.upto);
            merge_range(&mut self.acked, (o.from, o.upto));
        }
    }

    /// Drains PANA events: keys into the link on (re-)authentication.
    fn drain(&mut self, now: Instant, sim: Option<u64>) {
        while let Some(event) = self.pana.poll_event(now) {
            match event {
                PanaEvent::Established {
                    session_id,
                    key_id,
                    lifetime,
                    keys,
                    ..
                } => {
                    self.stats.sessions += 1;
                    self.session_id = session_id;
                    self.lifetime = lifetime.unwrap_or(Duration::from_secs(3_600));
                    if self.install(key_id, keys.as_ref(), now) {
                        self.outstanding.clear();
                        self.superseded.clear();
                        self.register(now, sim.unwrap_or(0));
                    }
                }
                PanaEvent::Reauthenticated { key_id, keys, .. } => {
                    self.stats.reauthentications += 1;
                    self.install(key_id, keys.as_ref(), now);
                }
                PanaEvent::PingAnswered => {
                    if self.probe.take().is_some() {
                        tracing::debug!(serial = self.serial, "head-end slow: holding back");
                        // Alive but behind: nothing more until the next upload slot (a
                        // registration goes again at once, nothing flows without it).
                        self.stats.held_back += 1;
                        if self.phase == Phase::Registering {
                            self.register(now, sim.unwrap_or(0));
                        }
                    }
                }
                PanaEvent::Failed { .. } | PanaEvent::Expired | PanaEvent::Terminated => {
                    self.probe = None;
                    self.link.revoke(now);
                    self.outstanding.clear();
                    self.superseded.clear();
                    self.phase = Phase::Authenticating;
                    if !self.config.pac.restart_on_loss || !self.pana.in_handshake() {
                        self.start(now);
                    }
                }
            }
        }
        while let Some(d) = self.pana.poll_transmit() {
            self.out.push_back((Dest::Paa, d));
        }
    }

    fn install(&mut self, key_id: u32, keys: Option<&SessionKeys>, now: Instant) -> bool {
        let Some(keys) = keys else {
            tracing::warn!(serial = self.serial, "no EMSK from EAP: no C12.22 keys");
            return false;
        };
        let facts = SessionFacts::new(self.session_id, key_id, self.identity());
        match self
            .link
            .install_session(&facts, keys.emsk(), self.lifetime, now)
        {
            Ok(_) => true,
            Err(e) => {
                tracing::warn!(serial = self.serial, %e, "cannot install C12.22 keys");
                false
            }
        }
    }
}

const INTERVAL: u64 = 900;

/// Adds `[r.0, r.1)` to sorted, disjoint, merged ranges.
fn merge_range(ranges: &mut Vec<(u64, u64)>, r: (u64, u64)) {
    if r.0 >= r.1 {
        return;
    }
    ranges.push(r);
    ranges.sort_unstable();
    let mut merged: Vec<(u64, u64)> = Vec::with_capacity(ranges.len());
    for &(a, b) in ranges.iter() {
        match merged.last_mut() {
            Some(last) if a <= last.1 => last.1 = last.1.max(b),
            _ => merged.push((a, b)),
        }
    }
    *ranges = merged;
}

fn interval_floor(t: u64) -> u64 {
    t - t % INTERVAL
}

/// The meter's C12.19 tables as the C12.22 link serves them: reads of any table, writes of the
/// procedure table only under the demand-response key.
struct ModelTables<'a> {
    model: &'a mut gridguard_meter::Meter,
    stats: &'a mut AgentStats,
}

impl MeterTables for ModelTables<'_> {
    fn read(&self, t: u16) -> Option<Vec<u8>> {
        self.model.read_table_full(t).ok()
    }

    fn write(&mut self, t: u16, data: &[u8], key: Application) -> ResponseCode {
        if t == table::ST7 && key != Application::DemandResponse {
            self.stats.commands_refused += 1;
            return ResponseCode::ISC;
        }
        match self.model.write_table(t, 0, data) {
            Ok(()) => {
                if t == table::ST7 {
                    self.stats.commands += 1;
                }
                ResponseCode(procedure_code(self.model, t))
            }
            Err(e) => ResponseCode(e.response_code()),
        }
    }
}

/// OK unless the procedure just run reported a failure in ST8.
fn procedure_code(model: &gridguard_meter::Meter, t: u16) -> u8 {
    if t != table::ST7 {
        return 0;
    }
    match model.read_table_full(table::ST8) {
        Ok(st8) if st8.get(3).copied().unwrap_or(0) != procedures::result::COMPLETED => 0x05,
        _ => 0,
    }
}

/// Which application a key id belongs to (for logs).
pub fn key_application(key_id: u8) -> Option<Application> {
    KeyId(key_id).application()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;
    use gridguard_c1222::{
        Epsem, EpsemControl, Request, ResponseControl, SecurityMode, Service, TableId,
    };
    use gridguard_headend::{C1222Host, HostConfig, HostEvent};
    use gridguard_meter::tables::procedures::{ProcedureRequest, MP_REMOTE_SWITCH};
    use gridguard_meter::SwitchState;

    const SIM: u64 = 1_790_812_800;

    /// A meter agent and a host sharing one session's keys (as PANA would give them).
    fn keyed_pair(now: Instant) -> (MeterAgent, C1222Host<StdRng>) {
        let serial = 7;
        let model = crate::fleet::meter_model(serial, SIM);
        let mut agent = MeterAgent::new(
            serial,
            Psk::new([7; 16]),
            model,
            AgentConfig::default(),
            StdRng::seed_from_u64(1),
        );
        let emsk = [0x42u8; 64];
        let facts = SessionFacts::new(9, 1, agent.identity());
        let lifetime = Duration::from_secs(3_600);
        agent.session_id = 9;
        agent
            .link
            .install_session(&facts, &emsk, lifetime, now)
            .unwrap();
        let mut host = C1222Host::new(HostConfig::new(host_ap_title()), StdRng::seed_from_u64(2));
        host.install_session(meter_ap_title(serial), &facts, &emsk, lifetime, now)
            .unwrap();
        // Register, so the host knows the meter's address.
        agent.register(now, SIM);
        let (_, reg) = agent.poll_transmit().unwrap();
        let from = "127.0.0.1:40000".parse().unwrap();
        let reply = host.handle_apdu(from, &reg, now).unwrap();
        agent.handle_c1222(&reply.bytes.unwrap(), now, SIM);
        assert!(agent.online());
        (agent, host)
    }

    fn switch(on: u8, seq: u8) -> Epsem {
        let proc = ProcedureRequest {
            number: MP_REMOTE_SWITCH,
            manufacturer: true,
            selector: 0,
            seq,
            params: vec![on],
        };
        Epsem {
            control: EpsemControl::new(SecurityMode::CIPHERTEXT_AUTH, ResponseControl::ALWAYS),
            ed_class: None,
            services: vec![Service::Request(Request::FullWrite {
                table: TableId(table::ST7),
                data: proc.to_bytes(),
            })],
            end_marker: false,
        }
    }

    /// The response code the host sees for the meter's answer to `bytes`.
    fn answer(
        agent: &mut MeterAgent,
        host: &mut C1222Host<StdRng>,
        bytes: &[u8],
        now: Instant,
    ) -> Option<ResponseCode> {
        agent.handle_c1222(bytes, now, SIM + 60);
        let (_, reply) = agent.poll_transmit()?;
        host.handle_apdu("127.0.0.1:40000".parse().unwrap(), &reply, now)
            .ok()?;
        std::iter::from_fn(|| host.poll_event()).find_map(|e| match e {
            HostEvent::Response { code, .. } => Some(code),
            _ => None,
        })
    }

    #[test]
    fn a_switch_command_works_only_under_the_demand_response_key_and_only_once() {
        let now = Instant::now();
        let (mut agent, mut host) = keyed_pair(now);
        let title = meter_ap_title(7);

        // Under the C12.22 data key: refused with isc, the switch stays closed.
        let wrong_key = host.request(&title, &switch(0, 1), now).unwrap();
        assert_eq!(
            answer(&mut agent, &mut host, &wrong_key, now),
            Some(ResponseCode::ISC)
        );
        assert_eq!(agent.model().switch_state(), SwitchState::Connected);
        assert_eq!(agent.stats().commands_refused, 1);

        // Under the demand-response key: done and acknowledged.
        let open = host.demand_response(&title, &switch(0, 2), now).unwrap();
        assert_eq!(
            answer(&mut agent, &mut host, &open, now),
            Some(ResponseCode::OK)
        );
        assert_eq!(agent.model().switch_state(), SwitchState::Disconnected);
        let close = host.demand_response(&title, &switch(1, 3), now).unwrap();
        assert_eq!(
            answer(&mut agent, &mut host, &close, now),
            Some(ResponseCode::OK)
        );
        assert_eq!(agent.model().switch_state(), SwitchState::Connected);

        // The "open" command replayed: refused by the link, the switch stays closed.
        let refused = agent.stats().refused;
        assert_eq!(answer(&mut agent, &mut host, &open, now), None);
        assert_eq!(agent.stats().refused, refused + 1);
        assert_eq!(agent.model().switch_state(), SwitchState::Connected);
        assert_eq!(agent.stats().commands, 2);
    }

    #[test]
    fn a_command_for_another_meter_is_refused() {
        let now = Instant::now();
        let (mut agent, mut host) = keyed_pair(now);
        // A second meter with its own session; its command reaches meter 7's socket.
        let other = meter_ap_title(8);
        let facts = SessionFacts::new(10, 1, b"meter-000008".to_vec());
        host.install_session(
            other.clone(),
            &facts,
            &[0x43; 64],
            Duration::from_secs(3_600),
            now,
        )
        .unwrap();
        let for_other = host.demand_response(&other, &switch(0, 1), now).unwrap();
        let refused = agent.stats().refused;
        assert_eq!(answer(&mut agent, &mut host, &for_other, now), None);
        assert_eq!(agent.stats().refused, refused + 1);
        assert_eq!(agent.model().switch_state(), SwitchState::Connected);
    }

    #[test]
    fn ap_titles_and_identities_name_the_serial() {
        assert_eq!(serial_of(&meter_ap_title(123_456)), Some(123_456));
        assert_eq!(serial_of(&meter_ap_title(u64::MAX)), Some(u64::MAX));
        assert_eq!(serial_of(&host_ap_title()), None);
        assert_eq!(serial_of_identity(b"meter-000042"), Some(42));
        assert_eq!(serial_of_identity(b"other-42"), None);
    }

    /// An upload answered after the meter sent it again still counts, once; the copy sent
    /// since is then no longer waited for, and the slow answer lengthens the reply timeout.
    #[test]
    fn a_late_answer_to_an_earlier_copy_of_an_upload_counts_once() {
        let t0 = Instant::now();
        let (mut agent, mut host) = keyed_pair(t0);
        let from = "127.0.0.1:40000".parse().unwrap();
        agent.handle_timeout(t0, SIM + 3_600);
        let (_, first) = agent.poll_transmit().unwrap();
        let t1 = t0 + Duration::from_millis(1_500);
        agent.handle_timeout(t1, SIM + 3_600);
        let (_, second) = agent.poll_transmit().unwrap();
        assert_ne!(first, second);
        assert_eq!(agent.stats().uploads_sent, 2);

        let late = host.handle_apdu(from, &first, t1).unwrap();
        agent.handle_c1222(&late.bytes.unwrap(), t1, SIM + 3_600);
        assert_eq!(agent.stats().uploads_acked, 1);
        assert!(agent.outstanding.is_empty());
        assert!(agent.reply_timeout() > agent.config.reply_timeout);
        let acked = agent.acked().to_vec();
        assert!(!acked.is_empty());

        let answer = host.handle_apdu(from, &second, t1).unwrap();
        agent.handle_c1222(&answer.bytes.unwrap(), t1, SIM + 3_600);
        assert_eq!(agent.stats().uploads_acked, 1);
        assert_eq!(agent.acked(), acked.as_slice());
    }

    /// An upload answered `bsy` is not sent again: the meter waits for its next upload slot
    /// (no retransmission, no ping), whose upload carries the held intervals with the new.
    #[test]
    fn an_upload_answered_busy_waits_for_the_next_slot() {
        let t0 = Instant::now();
        let (mut agent, mut host) = keyed_pair(t0);
        let from = "127.0.0.1:40000".parse().unwrap();
        let sim = SIM + 3_600;
        let exchange = |agent: &mut MeterAgent, host: &mut C1222Host<StdRng>, now, sim| {
            let (dest, upload) = agent.poll_transmit().unwrap();
            assert_eq!(dest, Dest::Host);
            let reply = host.handle_apdu(from, &upload, now).unwrap();
            agent.handle_c1222(&reply.bytes.unwrap(), now, sim);
            assert!(agent.poll_transmit().is_none());
        };
        host.set_ingest_busy(true);
        agent.handle_timeout(t0, sim);
        exchange(&mut agent, &mut host, t0, sim);
        assert_eq!(agent.stats().uploads_busy, 1);
        let slot = agent.poll_sim_timeout().unwrap();
        assert!(slot > sim);
        // Long past any reply timeout, before the slot: nothing is sent.
        let later = t0 + Duration::from_secs(30);
        agent.handle_timeout(later, slot - 1);
        assert!(agent.poll_transmit().is_none());
        assert_eq!(agent.stats().probes + agent.stats().restarts, 0);
        host.set_ingest_busy(false);
        agent.handle_timeout(later, slot);
        exchange(&mut agent, &mut host, later, slot);
        assert_eq!(agent.stats().uploads_acked, 1);
        assert_eq!(agent.stats().uploads_sent, 2);
        assert!(agent.acked_to >= interval_floor(SIM + 3_600));
    }

    /// A head-end that answers nothing gets the upload again after 1, 2, 4 and 4 s (the
    /// timeout doubling up to four times); after the fifth the meter stops sending it (here,
    /// with no PANA session to ping over, it starts over).
    #[test]
    fn unanswered_uploads_are_sent_again_ever_more_slowly() {
        let t0 = Instant::now();
        let (mut agent, _host) = keyed_pair(t0);
        let sim = SIM + 3_600;
        agent.handle_timeout(t0, sim);
        let (dest, _) = agent.poll_transmit().unwrap();
        assert_eq!(dest, Dest::Host);
        let mut sent_at = vec![Duration::ZERO];
        let mut now = t0;
        for _ in 0..1_000 {
            if agent.stats().probes + agent.stats().restarts > 0 {
                break;
            }
            now = agent
                .poll_timeout()
                .map_or(now, |t| t.max(now))
                .max(now + Duration::from_millis(10));
            agent.handle_timeout(now, sim);
            while let Some((dest, _)) = agent.poll_transmit() {
                if dest == Dest::Host {
                    sent_at.push(now - t0);
                }
            }
        }
        let gaps: Vec<u64> = sent_at
            .windows(2)
            .map(|w| (w[1] - w[0]).as_secs())
            .collect();
        assert_eq!(gaps, [1, 2, 4, 4], "{sent_at:?}");
        assert_eq!(agent.stats().probes + agent.stats().restarts, 1);
        assert_eq!(agent.stats().uploads_sent, 5);
    }

    #[test]
    fn round_trip_estimate_follows_rfc_6298() {
        let ms = Duration::from_millis;
        let r = RoundTrip::first(ms(100));
        assert_eq!((r.srtt, r.rttvar, r.timeout()), (ms(100), ms(50), ms(300)));
        let r = r.next(ms(500));
        // RTTVAR = (3·50 + 400) / 4, SRTT = (7·100 + 500) / 8.
        assert_eq!(
            (r.srtt, r.rttvar),
            (ms(150), Duration::from_micros(137_500))
        );
    }

    #[test]
    fn acknowledged_ranges_merge() {
        let mut r = Vec::new();
        merge_range(&mut r, (900, 1800));
        merge_range(&mut r, (3600, 4500));
        merge_range(&mut r, (1800, 2700));
        merge_range(&mut r, (0, 900));
        merge_range(&mut r, (5000, 5000));
        assert_eq!(r, vec![(0, 2700), (3600, 4500)]);
    }
}
