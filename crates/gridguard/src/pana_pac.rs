//! The PANA client side of a meter: the sans-IO [`Meter`] glue joining the PANA PaC core
//! (`gridguard-pana`) with the EAP-PSK peer (`gridguard-eap`), and [`run_meter`], the tokio
//! driver that carries one meter through its whole life over one UDP socket:
//! PCI → EAP-PSK → established → re-authentication before the lifetime ends → …
//!
//! The protocol stays in the cores; this module only moves bytes and EAP packets between them.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use gridguard_eap::{
    packet, Code as EapCode, MethodType, Peer, PeerConfig, PeerEvent, PeerMethod, Psk, PskPeer,
    SessionKeys,
};
use gridguard_pana::{FailReason, Msk, Pac, PacConfig, PacEvent, PacState};
use rand::rngs::StdRng;

use crate::compact_rng::CompactRng;
use rand::SeedableRng;
use tokio::net::UdpSocket;

/// What a meter reports to whoever runs it.
#[derive(Debug)]
#[non_exhaustive]
pub enum MeterEvent {
    /// The first authentication succeeded.
    Established {
        /// PANA Session Identifier.
        session_id: u32,
        /// Key-Id of the MSK.
        key_id: u32,
        /// The MSK (zeroized on drop, never printed by Debug).
        msk: Msk,
        /// Session lifetime granted by the PAA.
        lifetime: Option<Duration>,
        /// The EAP method's keys (MSK and EMSK, the root of the UKMF application keys).
        keys: Option<SessionKeys>,
    },
    /// A re-authentication succeeded.
    Reauthenticated {
        /// Key-Id of the new MSK.
        key_id: u32,
        /// The new MSK.
        msk: Msk,
        /// The EAP method's keys of the re-authentication.
        keys: Option<SessionKeys>,
    },
    /// The authentication or the session failed.
    Failed {
        /// PANA's reason.
        reason: FailReason,
        /// The EAP peer's reason, when EAP said more (for example a rejected PSK).
        eap: Option<String>,
    },
    /// The session ended by termination (either side).
    Terminated,
    /// The session lifetime ran out.
    Expired,
    /// A ping was answered.
    PingAnswered,
}

impl MeterEvent {
    /// A one-line human description (no key bytes).
    pub fn describe(&self) -> String {
        match self {
            MeterEvent::Established {
                session_id,
                key_id,
                lifetime,
                ..
            } => format!(
                "established session {session_id:#010x} key-id {key_id:#010x} lifetime {}",
                lifetime.map_or("none".to_string(), |l| format!("{} s", l.as_secs()))
            ),
            MeterEvent::Reauthenticated { key_id, .. } => {
                format!("re-authenticated key-id {key_id:#010x}")
            }
            MeterEvent::Failed { reason, eap } => match eap {
                Some(e) => format!("failed: {reason:?} (EAP: {e})"),
                None => format!("failed: {reason:?}"),
            },
            MeterEvent::Terminated => "terminated".to_string(),
            MeterEvent::Expired => "expired".to_string(),
            MeterEvent::PingAnswered => "ping answered".to_string(),
        }
    }
}

/// One meter's PANA client and EAP-PSK peer, sans-IO: datagrams and `now` in, datagrams,
/// events and the next deadline out.
pub struct Meter {
    identity: Vec<u8>,
    psk: Psk,
    pac: Pac<CompactRng>,
    /// The EAP peer while a conversation runs (boxed: none most of the time).
    peer: Option<Box<Peer>>,
    rng: CompactRng,
    eap_reason: Option<String>,
    /// An EAP request arrived since the last start: the PAA has left its handshake state.
    eap_seen: bool,
    /// Keys of the last EAP success, until PANA reports the session (re-)established (boxed:
    /// a meter holds them for one round trip and the slot for its whole life).
    keys: Option<Box<SessionKeys>>,
}

fn is_identity_request(eap: &[u8]) -> bool {
    matches!(eap, [1, _, _, _, 1, ..])
}

impl Meter {
    /// A meter with its identity and PSK; `config` tunes PANA.
    pub fn new(identity: &[u8], psk: Psk, config: PacConfig) -> Self {
        Self::with_rng(identity, psk, config, StdRng::from_entropy())
    }

    /// Same, with an injected random generator (seeded simulations).
    pub fn with_rng(identity: &[u8], psk: Psk, config: PacConfig, mut rng: StdRng) -> Self {
        let pac_rng = CompactRng::from_rng(&mut rng).unwrap_or_else(|_| CompactRng::from_entropy());
        let eap_rng = CompactRng::from_rng(&mut rng).unwrap_or_else(|_| CompactRng::from_entropy());
        Meter {
            identity: identity.to_vec(),
            psk,
            pac: Pac::new(config, pac_rng),
            peer: None,
            rng: eap_rng,
            eap_reason: None,
            eap_seen: false,
            keys: None,
        }
    }

    /// Sends the PANA-Client-Initiation.
    pub fn start(&mut self, now: Instant) -> Result<(), gridguard_pana::Error> {
        self.peer = None;
        self.eap_seen = false;
        self.pac.start(now)
    }

    /// Whether the PAA may still be in its handshake with this PaC (PCI sent, no EAP request
    /// received yet): until then the PAA knows the PaC only by its address, and a second PCI
    /// from the same address would be taken for a retransmission.
    pub fn in_handshake(&self) -> bool {
        !self.eap_seen && self.pac.state() != PacState::Idle && self.pac.state() != PacState::Closed
    }

    /// The PaC core (read-only: state, session id, key id, counters).
    pub fn pac(&self) -> &Pac<CompactRng> {
        &self.pac
    }

    /// The PaC core, for pings, re-authentication and termination.
    pub fn pac_mut(&mut self) -> &mut Pac<CompactRng> {
        &mut self.pac
    }

    /// Whether the PaC is waiting for the PAA's first answer (its session id is not known).
    pub fn is_starting(&self) -> bool {
        self.pac.state() == PacState::WaitParStart
    }

    /// Feeds a datagram from the PAA.
    pub fn handle_datagram(&mut self, bytes: &[u8], now: Instant) {
        self.pac.handle_datagram(bytes, now);
    }

    /// Runs due timers.
    pub fn handle_timeout(&mut self, now: Instant) {
        self.pac.handle_timeout(now);
    }

    /// When [`Meter::handle_timeout`] has work.
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.pac.poll_timeout()
    }

    /// Next datagram for the PAA.
    pub fn poll_transmit(&mut self) -> Option<Vec<u8>> {
        self.pac.poll_transmit()
    }

    /// Next event; EAP requests are answered inside, so only what matters above comes out.
    pub fn poll_event(&mut self, now: Instant) -> Option<MeterEvent> {
        loop {
            let event = self.pac.poll_event()?;
            match event {
                PacEvent::EapRequest(eap) => self.on_eap(&eap, now),
                PacEvent::Established {
                    session_id,
                    key_id,
                    msk,
                    lifetime,
                } => {
                    self.eap_reason = None;
                    return Some(MeterEvent::Established {
                        session_id,
                        key_id,
                        msk,
                        lifetime,
                        keys: self.keys.take().map(|k| *k),
                    });
                }
                PacEvent::Reauthenticated { key_id, msk, .. } => {
                    self.eap_reason = None;
                    return Some(MeterEvent::Reauthenticated {
                        key_id,
                        msk,
                        keys: self.keys.take().map(|k| *k),
                    });
                }
                PacEvent::Failed { reason } => {
                    return Some(MeterEvent::Failed {
                        reason,
                        eap: self.eap_reason.take(),
                    })
                }
                PacEvent::Terminated { .. } => return Some(MeterEvent::Terminated),
                PacEvent::Expired => return Some(MeterEvent::Expired),
                PacEvent::PingAnswered => return Some(MeterEvent::PingAnswered),
                _ => {}
            }
        }
    }

    fn new_peer(&self, now: Instant) -> Option<Box<Peer>> {
        let method: Box<dyn PeerMethod> =
            Box::new(PskPeer::new(self.identity.clone(), &self.psk).ok()?);
        Some(Box::new(Peer::new(
            self.identity.clone(),
            vec![method],
            PeerConfig::default(),
            now,
        )))
    }

    /// Hands one EAP packet to the EAP peer and its answer to the PaC.
    fn on_eap(&mut self, eap: &[u8], now: Instant) {
        self.eap_seen = true;
        let fresh = is_identity_request(eap) || self.peer.as_ref().is_none_or(|p| p.is_finished());
        if fresh {
            self.peer = self.new_peer(now);
        }
        let Some(peer) = self.peer.as_mut() else {
            logged(self.pac.eap_invalid(now), "eap_invalid");
            return;
        };
        let dropped = peer.handle_packet(eap, now, &mut self.rng).err();
        if let Some(response) = peer.poll_transmit() {
            logged(
                self.pac.send_eap_response(&response, now),
                "send_eap_response",
            );
            return;
        }
        match peer.poll_event() {
            Some(PeerEvent::Success(keys)) => {
                logged(self.pac.eap_success(Some(keys.msk()), now), "eap_success");
                self.keys = Some(Box::new(keys));
                // The conversation is over; a re-authentication starts a new peer.
                self.peer = None;
            }
            Some(PeerEvent::Failure(reason)) => {
                self.peer = None;
                self.eap_reason = Some(reason.to_string());
                logged(self.pac.eap_failure(now), "eap_failure");
            }
            _ if self.pac.state() == PacState::WaitEapResult => {
                // A PAR with C whose EAP payload the peer could not use: PANA's Result-Code
                // decides (a rejection fails the session, a success without key too).
                if let Some(d) = dropped {
                    self.eap_reason = Some(d.to_string());
                }
                logged(self.pac.eap_failure(now), "eap_failure");
            }
            _ => {
                logged(self.pac.eap_invalid(now), "eap_invalid");
            }
        }
    }
}

/// An action a meter takes on its own once its session is established (tests and demos).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MeterAction {
    /// Send a PANA ping.
    Ping,
    /// Ask for a re-authentication.
    Reauthenticate,
    /// Terminate the session.
    Terminate,
}

/// How [`run_meter`] runs a meter.
#[derive(Clone, Debug)]
pub struct MeterOptions {
    /// The PAA's address.
    pub paa: SocketAddr,
    /// PANA settings.
    pub pac: PacConfig,
    /// Stop once the first authentication ended (after the scheduled actions, if any).
    pub once: bool,
    /// Actions, each this long after the session was established.
    pub actions: Vec<(Duration, MeterAction)>,
}

impl MeterOptions {
    /// Defaults for a meter living forever: re-authentication `reauth_margin` before the
    /// lifetime ends, start over after losing the PAA.
    pub fn new(paa: SocketAddr, reauth_margin: Duration) -> Self {
        let mut pac = PacConfig::default();
        pac.reauth_margin = Some(reauth_margin);
        pac.restart_on_loss = true;
        MeterOptions {
            paa,
            pac,
            once: false,
            actions: Vec::new(),
        }
    }
}

/// How a run of [`run_meter`] ended.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct MeterSummary {
    /// Initial authentications that succeeded.
    pub established: u32,
    /// Re-authentications that succeeded.
    pub reauthenticated: u32,
    /// Failures.
    pub failed: u32,
    /// Pings answered.
    pub pings: u32,
    /// The run ended with a termination.
    pub terminated: bool,
}

/// Runs one meter over a UDP socket bound on the PAA's address family: until the first
/// authentication ends (and the scheduled actions ran) with `once`, else until `stop`
/// resolves. Every event goes to `report`.
pub async fn run_meter(
    identity: &[u8],
    psk: Psk,
    options: MeterOptions,
    mut report: impl FnMut(&MeterEvent),
    stop: impl std::future::Future<Output = ()>,
) -> std::io::Result<MeterSummary> {
    let local: SocketAddr = if options.paa.is_ipv4() {
        if options.paa.ip().is_loopback() {
            "127.0.0.1:0"
        } else {
            "0.0.0.0:0"
        }
    } else {
        "[::]:0"
    }
    .parse()
    .map_err(std::io::Error::other)?;
    let socket = UdpSocket::bind(local).await?;
    socket.connect(options.paa).await?;
    let mut meter = Meter::new(identity, psk, options.pac.clone());
    let mut summary = MeterSummary::default();
    let mut pending: Vec<(Instant, MeterAction)> = Vec::new();
    // With `once`: when to return once established and every action ran.
    let mut quiet_at: Option<Instant> = None;
    let mut done = false;
    meter.start(Instant::now()).map_err(std::io::Error::other)?;
    tokio::pin!(stop);
    let mut buf = vec![0u8; 65_535];
    loop {
        let now = Instant::now();
        while let Some(event) = meter.poll_event(now) {
            report(&event);
            match &event {
                MeterEvent::Established { .. } => {
                    summary.established += 1;
                    pending = options
                        .actions
                        .iter()
                        .map(|(after, a)| (now + *after, *a))
                        .collect();
                    pending.sort_by_key(|(at, _)| std::cmp::Reverse(*at));
                    if pending.is_empty() {
                        quiet_at = Some(now);
                    }
                }
                MeterEvent::Reauthenticated { .. } => summary.reauthenticated += 1,
                MeterEvent::Failed { .. } => {
                    summary.failed += 1;
                    done = true;
                }
                MeterEvent::Terminated => {
                    summary.terminated = true;
                    done = true;
                }
                MeterEvent::Expired => done = true,
                MeterEvent::PingAnswered => summary.pings += 1,
            }
        }
        while let Some(bytes) = meter.poll_transmit() {
            socket.send(&bytes).await?;
        }
        if options.once && (done || quiet_at.is_some_and(|q| q <= now)) {
            return Ok(summary);
        }
        let next_action = pending.last().map(|(at, _)| *at);
        let deadline = [
            meter.poll_timeout(),
            next_action,
            quiet_at.filter(|_| options.once),
        ]
        .into_iter()
        .flatten()
        .min();
        tokio::select! {
            received = socket.recv(&mut buf) => {
                let n = received?;
                if let Some(bytes) = buf.get(..n) {
                    meter.handle_datagram(bytes, Instant::now());
                }
            }
            () = sleep_until(deadline) => {
                let now = Instant::now();
                meter.handle_timeout(now);
                while pending.last().is_some_and(|(at, _)| *at <= now) {
                    if let Some((_, action)) = pending.pop() {
                        if pending.is_empty() {
                            // Leave a second for the answer before `once` returns.
                            quiet_at = Some(now + Duration::from_secs(1));
                        }
                        let pac = meter.pac_mut();
                        let result = match action {
                            MeterAction::Ping => pac.ping(now),
                            MeterAction::Reauthenticate => pac.reauthenticate(now),
                            MeterAction::Terminate => pac.terminate(now),
                        };
                        if let Err(e) = result {
                            tracing::warn!(?action, %e, "meter action refused");
                        }
                    }
                }
            }
            () = &mut stop => return Ok(summary),
        }
    }
}

/// Sleeps until `deadline`, forever when there is none.
pub(crate) async fn sleep_until(deadline: Option<Instant>) {
    match deadline {
        Some(at) => tokio::time::sleep_until(at.into()).await,
        None => std::future::pending().await,
    }
}

/// Builds the EAP-Request/Identity a PAA sends first (used by the RADIUS pass-through).
pub(crate) fn identity_request(identifier: u8) -> Option<Vec<u8>> {
    packet::build(EapCode::REQUEST, identifier, MethodType::IDENTITY, &[]).ok()
}

/// Logs an API call the core refused (a driver bug or a race worth seeing in the logs).
fn logged(result: Result<(), gridguard_pana::Error>, call: &str) {
    if let Err(e) = result {
        tracing::debug!(%e, call, "PANA core refused a call");
    }
}
