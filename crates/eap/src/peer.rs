//! The EAP peer state machine (RFC 4137 §4, peer side): identity, notification, method selection
//! with Nak, duplicate detection, and the Success/Failure rules. Sans-IO: packets and `now` in,
//! responses, events and the next deadline out.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use rand_core::CryptoRngCore;

use crate::error::{DecodeError, FailureReason, MethodError};
use crate::keys::SessionKeys;
use crate::method::{Decision, MethodState, PeerMethod};
use crate::packet::{self, Code, MethodType, Packet};

/// Peer settings.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct PeerConfig {
    /// How long the peer waits for the next request before giving up (RFC 4137 ClientTimeout).
    pub client_timeout: Duration,
}

impl Default for PeerConfig {
    fn default() -> Self {
        PeerConfig {
            client_timeout: Duration::from_secs(60),
        }
    }
}

/// What the peer reports to the application.
#[derive(Debug)]
pub enum PeerEvent {
    /// EAP-Success was accepted after a method that exported keys.
    Success(SessionKeys),
    /// The authentication failed, with the reason.
    Failure(FailureReason),
    /// The server sent a Notification; its displayable text.
    Notification(String),
}

/// Why the peer dropped a packet without answering it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum PeerDrop {
    /// The packet is not valid EAP.
    #[error("undecodable packet: {0}")]
    Decode(#[from] DecodeError),
    /// The authentication has already ended.
    #[error("authentication already finished")]
    Finished,
    /// A Response, or a Request type that is never valid towards a peer (Nak).
    #[error("packet not meant for a peer")]
    NotForPeer,
    /// A request for a different method than the one already selected.
    #[error("request for {got:?} while {selected:?} is running")]
    OtherMethod {
        /// The method type requested.
        got: MethodType,
        /// The method in progress.
        selected: MethodType,
    },
    /// Success or Failure whose identifier is not the last response's.
    #[error("Success/Failure with identifier {0} does not answer the last response")]
    StaleResult(u8),
    /// EAP-Success while the method is still running.
    #[error("premature EAP-Success ignored")]
    PrematureSuccess,
    /// EAP-Failure after the method reached unconditional success.
    #[error("EAP-Failure ignored after unconditional success")]
    FailureAfterSuccess,
    /// The method silently discarded the request.
    #[error("method discarded the request: {0}")]
    Method(MethodError),
}

/// Counters kept by the peer.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PeerStats {
    /// Requests answered from the cached response (retransmissions by the authenticator).
    pub duplicates: u64,
    /// Packets dropped.
    pub dropped: u64,
}

/// One EAP conversation on the peer side.
pub struct Peer {
    identity: Vec<u8>,
    methods: Vec<Box<dyn PeerMethod>>,
    selected: Option<usize>,
    config: PeerConfig,
    last_id: Option<u8>,
    last_response: Option<Vec<u8>>,
    method_state: MethodState,
    decision: Decision,
    transmit: VecDeque<Vec<u8>>,
    events: VecDeque<PeerEvent>,
    deadline: Instant,
    finished: bool,
    stats: PeerStats,
}

impl Peer {
    /// A peer that answers Identity requests with `identity` and runs one of `methods` (in order of
    /// preference, offered in a Nak when the server proposes another).
    pub fn new(
        identity: impl Into<Vec<u8>>,
        methods: Vec<Box<dyn PeerMethod>>,
        config: PeerConfig,
        now: Instant,
    ) -> Self {
        let deadline = now + config.client_timeout;
        Peer {
            identity: identity.into(),
            methods,
            selected: None,
            config,
            last_id: None,
            last_response: None,
            method_state: MethodState::Continue,
            decision: Decision::Fail,
            transmit: VecDeque::new(),
            events: VecDeque::new(),
            deadline,
            finished: false,
            stats: PeerStats::default(),
        }
    }

    /// Feeds one EAP packet from the authenticator.
    pub fn handle_packet(
        &mut self,
        bytes: &[u8],
        now: Instant,
        rng: &mut dyn CryptoRngCore,
    ) -> Result<(), PeerDrop> {
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
    ) -> Result<(), PeerDrop> {
        if self.finished {
            return Err(PeerDrop::Finished);
        }
        let packet = Packet::parse(bytes)?;
        match packet.code {
            Code::REQUEST => self.handle_request(&packet, now, rng),
            Code::SUCCESS => self.handle_success(packet.identifier),
            Code::FAILURE => self.handle_failure(packet.identifier),
            _ => Err(PeerDrop::NotForPeer),
        }
    }

    fn handle_request(
        &mut self,
        packet: &Packet<'_>,
        now: Instant,
        rng: &mut dyn CryptoRngCore,
    ) -> Result<(), PeerDrop> {
        let id = packet.identifier;
        if self.last_id == Some(id) {
            if let Some(cached) = &self.last_response {
                self.stats.duplicates += 1;
                self.transmit.push_back(cached.clone());
                return Ok(());
            }
        }
        let ty = packet.method_type().ok_or(PeerDrop::NotForPeer)?;
        let data = packet.type_data();
        let (response_type, response) = match ty {
            MethodType::IDENTITY => (ty, self.identity.clone()),
            MethodType::NOTIFICATION => {
                self.events.push_back(PeerEvent::Notification(
                    String::from_utf8_lossy(data).into_owned(),
                ));
                (ty, Vec::new())
            }
            MethodType::NAK => return Err(PeerDrop::NotForPeer),
            _ => match self.select(ty)? {
                Some(index) => (ty, self.run_method(index, id, data, rng)?),
                None => (MethodType::NAK, self.nak_list()),
            },
        };
        let bytes = packet::build(Code::RESPONSE, id, response_type, &response)?;
        self.last_id = Some(id);
        self.last_response = Some(bytes.clone());
        self.transmit.push_back(bytes);
        self.deadline = now + self.config.client_timeout;
        Ok(())
    }

    fn select(&mut self, ty: MethodType) -> Result<Option<usize>, PeerDrop> {
        if let Some(index) = self.selected {
            let selected = self.methods.get(index).map_or(ty, |m| m.method_type());
            if selected != ty {
                return Err(PeerDrop::OtherMethod { got: ty, selected });
            }
            return Ok(Some(index));
        }
        Ok(self.methods.iter().position(|m| m.method_type() == ty))
    }

    fn nak_list(&self) -> Vec<u8> {
        let list: Vec<u8> = self.methods.iter().map(|m| m.method_type().0).collect();
        if list.is_empty() {
            vec![0]
        } else {
            list
        }
    }

    fn run_method(
        &mut self,
        index: usize,
        id: u8,
        data: &[u8],
        rng: &mut dyn CryptoRngCore,
    ) -> Result<Vec<u8>, PeerDrop> {
        let method = self.methods.get_mut(index).ok_or(PeerDrop::NotForPeer)?;
        match method.process(id, data, rng) {
            Ok(step) => {
                self.selected = Some(index);
                self.method_state = step.state;
                self.decision = step.decision;
                Ok(step.response)
            }
            Err(e) if e.is_discard() => Err(PeerDrop::Method(e)),
            Err(e) => {
                self.finish(FailureReason::Method(e.clone()));
                Err(PeerDrop::Method(e))
            }
        }
    }

    fn handle_success(&mut self, id: u8) -> Result<(), PeerDrop> {
        if self.last_id != Some(id) {
            return Err(PeerDrop::StaleResult(id));
        }
        if self.method_state == MethodState::Continue {
            return Err(PeerDrop::PrematureSuccess);
        }
        if self.decision == Decision::Fail {
            self.finish(FailureReason::Method(MethodError::ResultFailure));
            return Ok(());
        }
        let keys = self
            .selected
            .and_then(|i| self.methods.get(i))
            .and_then(|m| m.keys())
            .cloned();
        match keys {
            Some(keys) => {
                self.finished = true;
                self.events.push_back(PeerEvent::Success(keys));
            }
            None => self.finish(FailureReason::PrematureSuccess),
        }
        Ok(())
    }

    fn handle_failure(&mut self, id: u8) -> Result<(), PeerDrop> {
        if self.last_id.is_some_and(|last| last != id) {
            return Err(PeerDrop::StaleResult(id));
        }
        if self.decision == Decision::UnconditionalSuccess {
            return Err(PeerDrop::FailureAfterSuccess);
        }
        let stage = match self.selected.and_then(|i| self.methods.get(i)) {
            Some(method) => method.stage(),
            None if self.last_id.is_some() => {
                "before any method: identity refused or no common method"
            }
            None => "before the conversation started",
        };
        self.finish(FailureReason::Rejected { stage });
        Ok(())
    }

    fn finish(&mut self, reason: FailureReason) {
        self.finished = true;
        self.events.push_back(PeerEvent::Failure(reason));
    }

    /// The next packet to send to the authenticator.
    pub fn poll_transmit(&mut self) -> Option<Vec<u8>> {
        self.transmit.pop_front()
    }

    /// The next event for the application.
    pub fn poll_event(&mut self) -> Option<PeerEvent> {
        self.events.pop_front()
    }

    /// When [`Peer::handle_timeout`] should next be called, if ever.
    pub fn poll_timeout(&self) -> Option<Instant> {
        (!self.finished).then_some(self.deadline)
    }

    /// Advances timers; safe to call at any time.
    pub fn handle_timeout(&mut self, now: Instant) {
        if !self.finished && now >= self.deadline {
            self.finish(FailureReason::Timeout);
        }
    }

    /// Whether the conversation has ended (success or failure).
    pub fn is_finished(&self) -> bool {
        self.finished
    }

    /// Counters.
    pub fn stats(&self) -> PeerStats {
        self.stats
    }
}
