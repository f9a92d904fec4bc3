//! The PANA Authentication Agent driver: one UDP socket, the sans-IO `Paa` core of
//! `gridguard-pana`, and an EAP backend chosen by configuration: a local EAP-PSK
//! authenticator per session, or RADIUS pass-through to a AAA server (the MSK comes back in
//! the Access-Accept's MS-MPPE keys).
//!
//! The driver only moves bytes: datagrams between the socket and the core, EAP packets
//! between the core and the backend, and one sleep armed at the core's next deadline.

use std::collections::{BTreeMap, HashMap};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use gridguard_eap::{
    packet, Authenticator, AuthenticatorConfig, AuthenticatorEvent, Code as EapCode,
    CredentialStore, Packet, PskServerConfig, ServerMethodFactory, SessionKeys,
};
use gridguard_pana::relay::{self, PacAddress};
use gridguard_pana::{FailReason, Paa, PaaConfig, PaaEvent, Stats};
use gridguard_radius::{eap_request_attributes, AsyncClient, ClientConfig, Code, Response};
use rand::rngs::StdRng;
use rand::{RngCore, SeedableRng};
use tokio::net::UdpSocket;
use tokio::sync::mpsc;

use crate::pana_pac::{identity_request, sleep_until};

/// Where the PAA's EAP authentication happens.
#[derive(Clone)]
pub enum BackendConfig {
    /// A local EAP-PSK server with these credentials.
    Local {
        /// The server identity ID_S.
        server_id: Vec<u8>,
        /// The meters' PSKs.
        credentials: Arc<dyn CredentialStore>,
    },
    /// RADIUS pass-through to a AAA server.
    Radius {
        /// The AAA server.
        server: SocketAddr,
        /// The RADIUS shared secret.
        secret: String,
    },
}

/// An action the PAA takes on its own on every established session (tests and demos).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PaaAction {
    /// Ping the PaC.
    Ping,
    /// Start a re-authentication.
    Reauthenticate,
    /// Terminate the session.
    Terminate,
}

/// How [`serve`] runs.
#[derive(Clone)]
pub struct PaaOptions {
    /// PANA settings (session lifetime, retransmission, table size).
    pub config: PaaConfig,
    /// The EAP backend.
    pub backend: BackendConfig,
    /// Actions on each established session, each this long after establishment.
    pub actions: Vec<(Duration, PaaAction)>,
}

/// What the PAA reports, one event per session milestone.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub enum ServeEvent {
    /// A session was established.
    Established {
        /// Session Identifier.
        session: u32,
        /// The PaC's own address (behind a relay: the one the relay reports).
        peer: SocketAddr,
        /// Key-Id.
        key_id: u32,
        /// The identity EAP authenticated, when the backend tells it.
        identity: Option<Vec<u8>>,
        /// Session lifetime.
        lifetime: Duration,
        /// The EAP method's keys (MSK and EMSK) when the backend is local; a RADIUS backend
        /// hands over the MSK only (MS-MPPE keys), never the EMSK.
        keys: Option<SessionKeys>,
    },
    /// EAP succeeded (first authentication or re-authentication) and the PAA is about to send
    /// the final PAR: the keys are known before the PaC can use them, so a consumer that
    /// installs them on this event (the C12.22 host) is never behind the meter. Local
    /// backend only.
    KeysReady {
        /// Session Identifier.
        session: u32,
        /// The identity EAP authenticated.
        identity: Vec<u8>,
        /// Key-Id the final PAR announces.
        key_id: u32,
        /// Session lifetime the final PAR announces.
        lifetime: Duration,
        /// The EAP method's keys (MSK and EMSK).
        keys: SessionKeys,
    },
    /// A session re-authenticated.
    Reauthenticated {
        /// Session Identifier.
        session: u32,
        /// The new Key-Id.
        key_id: u32,
        /// The identity EAP authenticated, when the backend tells it.
        identity: Option<Vec<u8>>,
        /// New session lifetime.
        lifetime: Duration,
        /// The EAP method's keys of the re-authentication (local backend only).
        keys: Option<SessionKeys>,
    },
    /// An authentication failed.
    Failed {
        /// Session Identifier.
        session: u32,
        /// PANA's reason.
        reason: FailReason,
        /// The backend's reason, when it gave one.
        eap: Option<String>,
    },
    /// A session was terminated.
    Terminated {
        /// Session Identifier.
        session: u32,
    },
    /// A session expired.
    Expired {
        /// Session Identifier.
        session: u32,
    },
    /// A ping of the PAA was answered.
    PingAnswered {
        /// Session Identifier.
        session: u32,
    },
}

/// Counters of a [`serve`] run.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct ServeReport {
    /// Sessions established.
    pub established: u64,
    /// Re-authentications.
    pub reauthenticated: u64,
    /// Failed authentications.
    pub failed: u64,
    /// Terminations.
    pub terminated: u64,
    /// Expirations.
    pub expired: u64,
    /// Pings answered.
    pub pings: u64,
    /// Sessions held when the run ended.
    pub sessions: usize,
    /// The core's counters (malformed, bad AUTH, duplicates, retransmissions, ...).
    pub stats: Stats,
    /// The process's resident set size when the run ended, sessions still held (Linux).
    pub resident_at_end: Option<u64>,
}

/// Binds a UDP socket with receive and send buffers of `buffer` bytes (as far as the system
/// allows), for a PAA or simulator serving many peers.
pub fn bind_udp(addr: SocketAddr, buffer: usize) -> std::io::Result<UdpSocket> {
    use socket2::{Domain, Protocol, Socket, Type};
    let socket = Socket::new(Domain::for_address(addr), Type::DGRAM, Some(Protocol::UDP))?;
    // Best effort: the system caps these at net.core.{r,w}mem_max.
    let _ = socket.set_recv_buffer_size(buffer);
    let _ = socket.set_send_buffer_size(buffer);
    socket.set_nonblocking(true)?;
    socket.bind(&addr.into())?;
    UdpSocket::from_std(socket.into())
}

/// The process's resident set size in bytes (Linux; None elsewhere).
pub fn resident_bytes() -> Option<u64> {
    let text = std::fs::read_to_string("/proc/self/statm").ok()?;
    let pages: u64 = text.split_whitespace().nth(1)?.parse().ok()?;
    Some(pages * 4096)
}

/// One RADIUS conversation of the pass-through backend.
struct RadiusConversation {
    user_name: Option<Vec<u8>>,
    state: Option<Vec<u8>>,
    identifier: u8,
}

/// The answer of a RADIUS request, back from its task.
type RadiusResult = (u32, Result<Response, gridguard_radius::Error>);

enum Backend {
    Local {
        methods: Arc<[Arc<dyn ServerMethodFactory>]>,
        runs: HashMap<u32, Authenticator>,
    },
    Radius {
        client: AsyncClient,
        conversations: HashMap<u32, RadiusConversation>,
        results: mpsc::UnboundedSender<RadiusResult>,
    },
}

/// The PAA with its backend: the part of [`serve`] that is not the socket.
struct Agent {
    paa: Paa<PacAddress, StdRng>,
    backend: Backend,
    rng: StdRng,
    actions: Vec<(Duration, PaaAction)>,
    scheduled: BTreeMap<(Instant, u32, usize), PaaAction>,
    identities: HashMap<u32, Vec<u8>>,
    /// Keys of a local EAP success, until PANA reports the session (re-)established.
    keys: HashMap<u32, SessionKeys>,
    /// Key hand-overs to report before the final PAR goes out.
    ready: Vec<ServeEvent>,
    lifetime: Duration,
    eap_reasons: HashMap<u32, String>,
    report: ServeReport,
}

impl Agent {
    fn start_eap(&mut self, session: u32, now: Instant) {
        match &mut self.backend {
            Backend::Local { methods, runs } => {
                let mut auth = Authenticator::new(methods.clone(), AuthenticatorConfig::backend());
                auth.start(now, &mut self.rng);
                if let Some(request) = auth.poll_transmit() {
                    logged(self.paa.eap_request(session, &request, now), "eap_request");
                }
                runs.insert(session, auth);
            }
            Backend::Radius { conversations, .. } => {
                let identifier = (self.rng.next_u32() & 0xff) as u8;
                if let Some(request) = identity_request(identifier) {
                    logged(self.paa.eap_request(session, &request, now), "eap_request");
                }
                conversations.insert(
                    session,
                    RadiusConversation {
                        user_name: None,
                        state: None,
                        identifier,
                    },
                );
            }
        }
    }

    fn eap_from_pac(&mut self, session: u32, eap: &[u8], now: Instant) {
        match &mut self.backend {
            Backend::Local { runs, .. } => {
                let Some(auth) = runs.get_mut(&session) else {
                    logged(self.paa.eap_timeout(session, now), "eap_timeout");
                    return;
                };
                if let Err(drop) = auth.handle_response(eap, now, &mut self.rng) {
                    tracing::debug!(session, %drop, "EAP response dropped");
                    let failure = packet::build_status(EapCode::FAILURE, auth.identifier());
                    self.eap_reasons.insert(session, drop.to_string());
                    runs.remove(&session);
                    logged(self.paa.eap_failure(session, &failure, now), "eap_failure");
                    return;
                }
                let out = auth.poll_transmit();
                match auth.poll_event() {
                    Some(AuthenticatorEvent::Success {
                        peer_identity,
                        keys,
                    }) => {
                        let success = out.unwrap_or_else(|| {
                            packet::build_status(EapCode::SUCCESS, auth.identifier())
                        });
                        self.identities.insert(session, peer_identity);
                        logged(
                            self.paa.eap_success(session, &success, keys.msk(), now),
                            "eap_success",
                        );
                        runs.remove(&session);
                        let identity = self.identities.get(&session).cloned();
                        if let (Some(key_id), Some(identity)) =
                            (self.paa.pending_key_id(session), identity)
                        {
                            self.ready.push(ServeEvent::KeysReady {
                                session,
                                identity,
                                key_id,
                                lifetime: self.lifetime,
                                keys: keys.clone(),
                            });
                        }
                        self.keys.insert(session, keys);
                    }
                    Some(AuthenticatorEvent::Failure { reason, .. }) => {
                        let failure = out.unwrap_or_else(|| {
                            packet::build_status(EapCode::FAILURE, auth.identifier())
                        });
                        self.eap_reasons.insert(session, reason.to_string());
                        logged(self.paa.eap_failure(session, &failure, now), "eap_failure");
                        runs.remove(&session);
                    }
                    None => {
                        if let Some(request) = out {
                            logged(self.paa.eap_request(session, &request, now), "eap_request");
                        }
                    }
                }
            }
            Backend::Radius {
                client,
                conversations,
                results,
            } => {
                let Some(conv) = conversations.get_mut(&session) else {
                    logged(self.paa.eap_timeout(session, now), "eap_timeout");
                    return;
                };
                if conv.user_name.is_none() {
                    let identity = Packet::parse(eap)
                        .ok()
                        .filter(|p| p.code == EapCode::RESPONSE)
                        .map(|p| p.type_data().to_vec());
                    conv.user_name = identity.clone();
                    if let Some(id) = identity {
                        self.identities.insert(session, id);
                    }
                }
                let user = conv.user_name.as_ref().map(|u| u.get(..253).unwrap_or(u));
                let attributes = eap_request_attributes(eap, user, conv.state.as_deref());
                let (client, results) = (client.clone(), results.clone());
                tokio::spawn(async move {
                    let response = client.request(Code::ACCESS_REQUEST, attributes).await;
                    let _ = results.send((session, response));
                });
            }
        }
    }

    fn radius_answer(&mut self, session: u32, response: RadiusResult, now: Instant) {
        let Backend::Radius { conversations, .. } = &mut self.backend else {
            return;
        };
        let Some(conv) = conversations.get_mut(&session) else {
            return;
        };
        let response = match response.1 {
            Ok(r) => r,
            Err(e) => {
                self.eap_reasons.insert(session, format!("RADIUS: {e}"));
                conversations.remove(&session);
                logged(self.paa.eap_timeout(session, now), "eap_timeout");
                return;
            }
        };
        let eap = response.eap_message();
        let code = response.code();
        if code == Code::ACCESS_CHALLENGE {
            conv.state = response.state().map(<[u8]>::to_vec);
            match eap {
                Some(request) => {
                    logged(self.paa.eap_request(session, &request, now), "eap_request");
                }
                None => {
                    conversations.remove(&session);
                    logged(self.paa.eap_timeout(session, now), "eap_timeout");
                }
            }
            return;
        }
        let identifier = conv.identifier;
        conversations.remove(&session);
        let msk = response.mppe_keys().map(|k| k.msk());
        match (code, msk) {
            (Code::ACCESS_ACCEPT, Some(msk)) => {
                let success = eap.unwrap_or_else(|| packet::build_status(EapCode::SUCCESS, 0));
                logged(
                    self.paa.eap_success(session, &success, &msk, now),
                    "eap_success",
                );
            }
            _ => {
                self.eap_reasons.insert(
                    session,
                    if code == Code::ACCESS_ACCEPT {
                        "Access-Accept without MS-MPPE keys".to_string()
                    } else {
                        format!("RADIUS {code:?}")
                    },
                );
                let failure =
                    eap.unwrap_or_else(|| packet::build_status(EapCode::FAILURE, identifier));
                logged(self.paa.eap_failure(session, &failure, now), "eap_failure");
            }
        }
    }

    fn forget(&mut self, session: u32) {
        self.identities.remove(&session);
        self.keys.remove(&session);
        self.eap_reasons.remove(&session);
        match &mut self.backend {
            Backend::Local { runs, .. } => {
                runs.remove(&session);
            }
            Backend::Radius { conversations, .. } => {
                conversations.remove(&session);
            }
        }
    }

    /// Drains the core's events into the backend and the report.
    fn process_events(&mut self, now: Instant, report: &mut impl FnMut(&ServeEvent)) {
        while let Some(event) = self.paa.poll_event() {
            let out = match event {
                PaaEvent::StartEap { session } => {
                    self.start_eap(session, now);
                    None
                }
                PaaEvent::EapFromPac { session, bytes } => {
                    self.eap_from_pac(session, &bytes, now);
                    None
                }
                PaaEvent::Established {
                    session,
                    key_id,
                    lifetime,
                    ..
                } => {
                    self.report.established += 1;
                    for (i, (after, action)) in self.actions.iter().enumerate() {
                        self.scheduled.insert((now + *after, session, i), *action);
                    }
                    self.eap_reasons.remove(&session);
                    Some(ServeEvent::Established {
                        session,
                        peer: self
                            .paa
                            .peer(session)
                            .map(PacAddress::pac)
                            .unwrap_or_else(|| SocketAddr::from(([0, 0, 0, 0], 0))),
                        key_id,
                        identity: self.identities.remove(&session),
                        lifetime,
                        keys: self.keys.remove(&session),
                    })
                }
                PaaEvent::Reauthenticated {
                    session,
                    key_id,
                    lifetime,
                    ..
                } => {
                    self.report.reauthenticated += 1;
                    Some(ServeEvent::Reauthenticated {
                        session,
                        key_id,
                        identity: self.identities.remove(&session),
                        lifetime,
                        keys: self.keys.remove(&session),
                    })
                }
                PaaEvent::Failed { session, reason } => {
                    self.report.failed += 1;
                    let eap = self.eap_reasons.remove(&session);
                    self.forget(session);
                    Some(ServeEvent::Failed {
                        session,
                        reason,
                        eap,
                    })
                }
                PaaEvent::Terminated { session, .. } => {
                    self.report.terminated += 1;
                    self.forget(session);
                    Some(ServeEvent::Terminated { session })
                }
                PaaEvent::Expired { session } => {
                    self.report.expired += 1;
                    self.forget(session);
                    Some(ServeEvent::Expired { session })
                }
                PaaEvent::PingAnswered { session } => {
                    self.report.pings += 1;
                    Some(ServeEvent::PingAnswered { session })
                }
                _ => None,
            };
            if let Some(e) = out {
                report(&e);
            }
        }
        for e in self.ready.drain(..) {
            report(&e);
        }
    }

    fn run_actions(&mut self, now: Instant) {
        while let Some((&(at, session, i), &action)) = self.scheduled.first_key_value() {
            if at > now {
                break;
            }
            self.scheduled.remove(&(at, session, i));
            let result = match action {
                PaaAction::Ping => self.paa.ping(session, now),
                PaaAction::Reauthenticate => self.paa.reauthenticate(session, now),
                PaaAction::Terminate => self.paa.terminate(session, now),
            };
            if let Err(e) = result {
                tracing::warn!(session, ?action, %e, "PAA action refused");
            }
        }
    }

    fn deadline(&self) -> Option<Instant> {
        let action = self.scheduled.first_key_value().map(|(k, _)| k.0);
        [self.paa.poll_timeout(), action]
            .into_iter()
            .flatten()
            .min()
    }
}

/// Most datagrams read in one go before the answers go out.
const BATCH: usize = 512;

/// Runs the PAA on `socket` until `stop` resolves; every session milestone goes to `report`.
pub async fn serve(
    socket: UdpSocket,
    options: PaaOptions,
    mut report: impl FnMut(&ServeEvent),
    stop: impl std::future::Future<Output = ()>,
) -> anyhow::Result<ServeReport> {
    let (results_tx, mut results_rx) = mpsc::unbounded_channel::<RadiusResult>();
    let backend = match options.backend {
        BackendConfig::Local {
            server_id,
            credentials,
        } => {
            let psk: Arc<dyn ServerMethodFactory> =
                Arc::new(PskServerConfig::new(server_id, credentials)?);
            Backend::Local {
                methods: vec![psk].into(),
                runs: HashMap::new(),
            }
        }
        BackendConfig::Radius { server, secret } => Backend::Radius {
            client: AsyncClient::connect(server, secret.as_str(), ClientConfig::default()).await?,
            conversations: HashMap::new(),
            results: results_tx,
        },
    };
    let mut agent = Agent {
        lifetime: options.config.session_lifetime,
        paa: Paa::new(options.config, StdRng::from_entropy()),
        backend,
        rng: StdRng::from_entropy(),
        actions: options.actions,
        scheduled: BTreeMap::new(),
        identities: HashMap::new(),
        keys: HashMap::new(),
        ready: Vec::new(),
        eap_reasons: HashMap::new(),
        report: ServeReport::default(),
    };
    tokio::pin!(stop);
    let mut buf = vec![0u8; 65_535];
    loop {
        let now = Instant::now();
        agent.process_events(now, &mut report);
        while let Some((peer, bytes)) = agent.paa.poll_transmit() {
            let (to, datagram) = match peer {
                PacAddress::Direct(to) => (to, bytes),
                PacAddress::Relayed { relay, pac } => match relay::wrap(pac, &bytes) {
                    Ok(pry) => (relay, pry),
                    Err(e) => {
                        tracing::debug!(%pac, %e, "cannot relay");
                        continue;
                    }
                },
            };
            if let Err(e) = socket.send_to(&datagram, to).await {
                tracing::debug!(%to, %e, "send failed");
            }
        }
        tokio::select! {
            ready = socket.readable() => {
                ready?;
                let now = Instant::now();
                for _ in 0..BATCH {
                    match socket.try_recv_from(&mut buf) {
                        Ok((n, peer)) => {
                            if let Some(bytes) = buf.get(..n) {
                                receive(&mut agent.paa, peer, bytes, now);
                            }
                        }
                        Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => break,
                        Err(e) => {
                            tracing::debug!(%e, "receive failed");
                            break;
                        }
                    }
                    agent.process_events(now, &mut report);
                }
            }
            Some(result) = results_rx.recv() => {
                let session = result.0;
                agent.radius_answer(session, result, Instant::now());
            }
            () = sleep_until(agent.deadline()) => {
                let now = Instant::now();
                agent.paa.handle_timeout(now);
                agent.run_actions(now);
            }
            () = &mut stop => break,
        }
    }
    let mut out = agent.report;
    out.sessions = agent.paa.session_count();
    out.stats = *agent.paa.stats();
    out.resident_at_end = resident_bytes();
    Ok(out)
}

/// Feeds a datagram to the core: a PANA-Relay message (RFC 6345) is unwrapped and its PaC
/// keyed by relay and PaC address; a malformed one is dropped.
fn receive(paa: &mut Paa<PacAddress, StdRng>, from: SocketAddr, bytes: &[u8], now: Instant) {
    if relay::is_relay(bytes) {
        match relay::unwrap(bytes) {
            Ok(r) => paa.handle_datagram(
                PacAddress::Relayed {
                    relay: from,
                    pac: r.pac,
                },
                &r.message,
                now,
            ),
            Err(e) => tracing::debug!(%from, %e, "PANA-Relay message dropped"),
        }
    } else {
        paa.handle_datagram(PacAddress::Direct(from), bytes, now);
    }
}

/// Logs an API call the core refused (a driver bug or a race worth seeing in the logs).
fn logged(result: Result<(), gridguard_pana::Error>, call: &str) {
    if let Err(e) = result {
        tracing::debug!(%e, call, "PANA core refused a call");
    }
}
