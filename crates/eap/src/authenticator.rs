//! The EAP authenticator state machine (RFC 4137 §5, standalone authenticator / backend server):
//! Identity, method proposal with Nak, identifier handling, retransmission driven by
//! `poll_timeout`/`handle_timeout` (or left to the lower layer), and the Success/Failure decision.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::{Duration, Instant};

use rand_core::CryptoRngCore;

use crate::error::{DecodeError, FailureReason, MethodError};
use crate::keys::SessionKeys;
use crate::method::{ServerMethod, ServerMethodFactory, ServerStep};
use crate::packet::{self, nak_types, Code, MethodType, Packet};

/// Retransmission of requests by the authenticator itself (used when the lower layer does not
/// retransmit; a RADIUS backend leaves it off, since the NAS retransmits).
#[derive(Debug, Clone, Copy)]
#[non_exhaustive]
pub struct Retransmit {
    /// First retransmission timeout; doubled after each retransmission.
    pub initial: Duration,
    /// Upper bound of the timeout.
    pub max: Duration,
    /// Retransmissions before giving up (RFC 4137 MaxRetrans).
    pub max_retransmissions: u32,
}

impl Default for Retransmit {
    fn default() -> Self {
        Retransmit {
            initial: Duration::from_secs(3),
            max: Duration::from_secs(20),
            max_retransmissions: 4,
        }
    }
}

/// Authenticator settings.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct AuthenticatorConfig {
    /// Request retransmission, or `None` to leave it to the lower layer.
    pub retransmit: Option<Retransmit>,
    /// Most requests in one conversation before it is abandoned (bounds a misbehaving peer).
    pub max_rounds: u32,
    /// How long to wait for a response when retransmission is off, before giving up.
    pub idle_timeout: Duration,
}

impl Default for AuthenticatorConfig {
    fn default() -> Self {
        AuthenticatorConfig {
            retransmit: Some(Retransmit::default()),
            max_rounds: 50,
            idle_timeout: Duration::from_secs(60),
        }
    }
}

impl AuthenticatorConfig {
    /// Settings for a backend behind RADIUS: no retransmission of its own.
    pub fn backend() -> Self {
        AuthenticatorConfig {
            retransmit: None,
            ..Self::default()
        }
    }
}

/// What the authenticator reports to the application.
#[derive(Debug)]
pub enum AuthenticatorEvent {
    /// The peer authenticated; EAP-Success has been queued.
    Success {
        /// The identity the method authenticated.
        peer_identity: Vec<u8>,
        /// The exported keys.
        keys: SessionKeys,
    },
    /// The authentication failed; EAP-Failure has been queued where the RFC asks for one.
    Failure {
        /// The identity the peer claimed, when it got that far.
        peer_identity: Option<Vec<u8>>,
        /// Why.
        reason: FailureReason,
    },
}

/// Why the authenticator dropped a packet without answering it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum AuthenticatorDrop {
    /// The packet is not valid EAP.
    #[error("undecodable packet: {0}")]
    Decode(#[from] DecodeError),
    /// Not a Response.
    #[error("not an EAP Response")]
    NotAResponse,
    /// The identifier does not match the outstanding request (stale or replayed).
    #[error("identifier {got} does not match outstanding request {expected}")]
    WrongIdentifier {
        /// The outstanding request's identifier.
        expected: u8,
        /// The response's.
        got: u8,
    },
    /// A Response of a type the current state does not expect.
    #[error("unexpected response type {0:?}")]
    UnexpectedType(MethodType),
    /// The conversation is over or not started.
    #[error("no request outstanding")]
    NotWaiting,
    /// The method silently discarded the response.
    #[error("method discarded the response: {0}")]
    Method(MethodError),
}

/// Counters kept by the authenticator.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct AuthenticatorStats {
    /// Requests retransmitted.
    pub retransmissions: u64,
    /// Responses dropped.
    pub dropped: u64,
}

enum Phase {
    Idle,
    AwaitIdentity,
    Proposed {
        method: Box<dyn ServerMethod>,
        tried: Vec<MethodType>,
    },
    Running {
        method: Box<dyn ServerMethod>,
    },
    Done,
}

/// One EAP conversation on the authenticator side.
pub struct Authenticator {
    methods: Arc<[Arc<dyn ServerMethodFactory>]>,
    config: AuthenticatorConfig,
    phase: Phase,
    identifier: u8,
    identity: Option<Vec<u8>>,
    last_request: Vec<u8>,
    retransmissions: u32,
    rounds: u32,
    deadline: Option<Instant>,
    transmit: VecDeque<Vec<u8>>,
    events: VecDeque<AuthenticatorEvent>,
    stats: AuthenticatorStats,
}

impl Authenticator {
    /// An authenticator offering `methods` in order of preference.
    pub fn new(methods: Arc<[Arc<dyn ServerMethodFactory>]>, config: AuthenticatorConfig) -> Self {
        Authenticator {
            methods,
            config,
            phase: Phase::Idle,
            identifier: 0,
            identity: None,
            last_request: Vec::new(),
            retransmissions: 0,
            rounds: 0,
            deadline: None,
            transmit: VecDeque::new(),
            events: VecDeque::new(),
            stats: AuthenticatorStats::default(),
        }
    }

    /// Starts the conversation with an EAP-Request/Identity carrying a random first identifier.
    pub fn start(&mut self, now: Instant, rng: &mut dyn CryptoRngCore) {
        let mut first = [0u8; 1];
        rng.fill_bytes(&mut first);
        self.identifier = first[0];
        self.phase = Phase::AwaitIdentity;
        self.send_request(MethodType::IDENTITY, Vec::new(), now);
    }

    /// Starts directly with a method for a peer whose identity the lower layer already knows
    /// (skipping EAP-Request/Identity, as RFC 3748 §5.1 allows).
    pub fn start_with_identity(
        &mut self,
        identity: &[u8],
        now: Instant,
        rng: &mut dyn CryptoRngCore,
    ) {
        let mut first = [0u8; 1];
        rng.fill_bytes(&mut first);
        self.identifier = first[0].wrapping_sub(1);
        self.identity = Some(identity.to_vec());
        self.propose(0, Vec::new(), now, rng);
    }

    /// Starts as a backend authenticator (RFC 4137 §5.1): the pass-through authenticator already
    /// asked for the identity, and `response` is the peer's EAP-Response/Identity it forwarded.
    pub fn start_from_identity_response(
        &mut self,
        response: &[u8],
        now: Instant,
        rng: &mut dyn CryptoRngCore,
    ) -> Result<(), AuthenticatorDrop> {
        let packet = Packet::parse(response)?;
        if packet.code != Code::RESPONSE {
            return Err(AuthenticatorDrop::NotAResponse);
        }
        match packet.method_type() {
            Some(MethodType::IDENTITY) => {}
            Some(other) => return Err(AuthenticatorDrop::UnexpectedType(other)),
            None => return Err(AuthenticatorDrop::NotAResponse),
        }
        self.identifier = packet.identifier;
        self.identity = Some(packet.type_data().to_vec());
        self.propose(0, Vec::new(), now, rng);
        Ok(())
    }

    fn send_request(&mut self, ty: MethodType, data: Vec<u8>, now: Instant) {
        match packet::build(Code::REQUEST, self.identifier, ty, &data) {
            Ok(bytes) => {
                self.rounds += 1;
                self.retransmissions = 0;
                // Only an authenticator that retransmits by itself needs its own copy.
                if self.config.retransmit.is_some() {
                    self.last_request.clone_from(&bytes);
                }
                self.transmit.push_back(bytes);
                self.deadline = Some(now + self.first_timeout());
            }
            Err(e) => self.fail(FailureReason::Method(MethodError::Malformed(e)), false),
        }
    }

    fn first_timeout(&self) -> Duration {
        self.config
            .retransmit
            .map_or(self.config.idle_timeout, |r| r.initial)
    }

    fn propose(
        &mut self,
        from: usize,
        mut tried: Vec<MethodType>,
        now: Instant,
        rng: &mut dyn CryptoRngCore,
    ) {
        let identity = self.identity.clone().unwrap_or_default();
        let Some(factory) = self.methods.get(from).cloned() else {
            self.fail(FailureReason::NoAcceptableMethod(tried), true);
            return;
        };
        tried.push(factory.method_type());
        let method = factory.start(&identity);
        self.phase = Phase::Proposed { method, tried };
        self.next_request(now, rng);
    }

    fn next_request(&mut self, now: Instant, rng: &mut dyn CryptoRngCore) {
        if self.rounds >= self.config.max_rounds {
            self.fail(FailureReason::Timeout, true);
            return;
        }
        self.identifier = self.identifier.wrapping_add(1);
        let identifier = self.identifier;
        let built = match &mut self.phase {
            Phase::Proposed { method, .. } | Phase::Running { method } => method
                .build_request(identifier, rng)
                .map(|data| (method.method_type(), data)),
            _ => return,
        };
        match built {
            Ok((ty, data)) => self.send_request(ty, data, now),
            Err(e) => self.fail(FailureReason::Method(e), true),
        }
    }

    /// Feeds one EAP packet from the peer.
    pub fn handle_response(
        &mut self,
        bytes: &[u8],
        now: Instant,
        rng: &mut dyn CryptoRngCore,
    ) -> Result<(), AuthenticatorDrop> {
        let result = self.dispatch(bytes, now, rng);
        if result.is_err() {
            self.stats.dropped += 1;
        }
        result
    }

    fn dispatch(
        &mut self,
        bytes: &[u8],
        now: Instant,
        rng: &mut dyn CryptoRngCore,
    ) -> Result<(), AuthenticatorDrop> {
        let packet = Packet::parse(bytes)?;
        if packet.code != Code::RESPONSE {
            return Err(AuthenticatorDrop::NotAResponse);
        }
        if matches!(self.phase, Phase::Idle | Phase::Done) {
            return Err(AuthenticatorDrop::NotWaiting);
        }
        if packet.identifier != self.identifier {
            return Err(AuthenticatorDrop::WrongIdentifier {
                expected: self.identifier,
                got: packet.identifier,
            });
        }
        let ty = packet
            .method_type()
            .ok_or(AuthenticatorDrop::NotAResponse)?;
        let data = packet.type_data();
        match std::mem::replace(&mut self.phase, Phase::Done) {
            Phase::AwaitIdentity if ty == MethodType::IDENTITY => {
                self.identity = Some(data.to_vec());
                self.propose(0, Vec::new(), now, rng);
                Ok(())
            }
            Phase::Proposed { tried, .. } if ty == MethodType::NAK => {
                self.handle_nak(data, tried, now, rng);
                Ok(())
            }
            Phase::Proposed { method, .. } | Phase::Running { method }
                if ty == method.method_type() =>
            {
                self.run_method(method, data, now, rng)
            }
            phase => {
                self.phase = phase;
                Err(AuthenticatorDrop::UnexpectedType(ty))
            }
        }
    }

    fn handle_nak(
        &mut self,
        data: &[u8],
        tried: Vec<MethodType>,
        now: Instant,
        rng: &mut dyn CryptoRngCore,
    ) {
        let wanted: Vec<MethodType> = nak_types(data).collect();
        let next = self
            .methods
            .iter()
            .position(|f| wanted.contains(&f.method_type()) && !tried.contains(&f.method_type()));
        match next {
            Some(index) => self.propose(index, tried, now, rng),
            None => self.fail(FailureReason::NoAcceptableMethod(wanted), true),
        }
    }

    fn run_method(
        &mut self,
        mut method: Box<dyn ServerMethod>,
        data: &[u8],
        now: Instant,
        rng: &mut dyn CryptoRngCore,
    ) -> Result<(), AuthenticatorDrop> {
        match method.process(self.identifier, data) {
            Ok(ServerStep::Continue) => {
                self.phase = Phase::Running { method };
                self.next_request(now, rng);
                Ok(())
            }
            Ok(ServerStep::Success) => {
                let peer_identity = method
                    .peer_identity()
                    .map(<[u8]>::to_vec)
                    .or_else(|| self.identity.clone())
                    .unwrap_or_default();
                match method.keys().cloned() {
                    Some(keys) => {
                        self.transmit
                            .push_back(packet::build_status(Code::SUCCESS, self.identifier));
                        self.end();
                        self.events.push_back(AuthenticatorEvent::Success {
                            peer_identity,
                            keys,
                        });
                    }
                    None => self.fail(FailureReason::PrematureSuccess, true),
                }
                Ok(())
            }
            Err(e) if e.is_discard() => {
                self.phase = Phase::Running { method };
                Err(AuthenticatorDrop::Method(e))
            }
            Err(e) => {
                if let Some(id_p) = method.peer_identity() {
                    self.identity = Some(id_p.to_vec());
                }
                self.fail(FailureReason::Method(e), true);
                Ok(())
            }
        }
    }

    fn end(&mut self) {
        self.phase = Phase::Done;
        self.deadline = None;
    }

    fn fail(&mut self, reason: FailureReason, send_failure: bool) {
        if send_failure {
            self.transmit
                .push_back(packet::build_status(Code::FAILURE, self.identifier));
        }
        self.end();
        self.events.push_back(AuthenticatorEvent::Failure {
            peer_identity: self.identity.clone(),
            reason,
        });
    }

    /// The next packet to send to the peer.
    pub fn poll_transmit(&mut self) -> Option<Vec<u8>> {
        self.transmit.pop_front()
    }

    /// The next event for the application.
    pub fn poll_event(&mut self) -> Option<AuthenticatorEvent> {
        self.events.pop_front()
    }

    /// When [`Authenticator::handle_timeout`] should next be called, if ever.
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.deadline
    }

    /// Retransmits the outstanding request or gives up; safe to call at any time.
    pub fn handle_timeout(&mut self, now: Instant) {
        let Some(deadline) = self.deadline else {
            return;
        };
        if now < deadline {
            return;
        }
        match self.config.retransmit {
            Some(r) if self.retransmissions < r.max_retransmissions => {
                self.retransmissions += 1;
                self.stats.retransmissions += 1;
                self.transmit.push_back(self.last_request.clone());
                let backoff = r
                    .initial
                    .saturating_mul(1 << self.retransmissions.min(16))
                    .min(r.max);
                self.deadline = Some(now + backoff);
            }
            _ => self.fail(FailureReason::Timeout, false),
        }
    }

    /// Whether the conversation has ended.
    pub fn is_finished(&self) -> bool {
        matches!(self.phase, Phase::Done)
    }

    /// The identifier of the outstanding request (or of the last one).
    pub fn identifier(&self) -> u8 {
        self.identifier
    }

    /// Counters.
    pub fn stats(&self) -> AuthenticatorStats {
        self.stats
    }
}
