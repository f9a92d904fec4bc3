//! The PANA Client (PaC): one struct per session (RFC 5191, state machine of RFC 5609 §4-5).
//!
//! The EAP peer sits outside: the PaC hands it [`PacEvent::EapRequest`] and is told the
//! peer's answer through the RFC 5609 variables, modelled as calls:
//! EAP_RESPONSE = [`Pac::send_eap_response`], EAP_SUCCESS = [`Pac::eap_success`],
//! EAP_FAILURE = [`Pac::eap_failure`], EAP_INVALID_MSG = [`Pac::eap_invalid`]; EAP_TIMEOUT is
//! the [`crate::Timer::Auth`] guard on a whole EAP run.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use rand_core::{CryptoRng, RngCore};

use crate::avp::{Avp, AvpCode, ResultCode, TerminationCause};
use crate::crypto::{
    derive_auth_key, AuthKey, AuthVerified, IntegrityAlgorithm, KeyInputs, PrfAlgorithm,
};
use crate::error::Error;
use crate::event::{FailReason, Msk, PacEvent, Stats};
use crate::exchange::{nonce, seal, Exchange, Queued, Retransmit, RxCheck};
use crate::message::{Flags, Message, MessageType};
use crate::timer::{RetransmitConfig, RetryClass, Timer, TimerTable};

/// PaC settings.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct PacConfig {
    /// PRF algorithms this PaC accepts (it picks the first the PAA offers that is here).
    pub prf_algorithms: Vec<PrfAlgorithm>,
    /// Integrity algorithms this PaC accepts.
    pub integrity_algorithms: Vec<IntegrityAlgorithm>,
    /// Retransmission timers.
    pub retransmit: RetransmitConfig,
    /// Length of the PaC nonce.
    pub nonce_len: usize,
    /// Time one EAP authentication may take before the PaC gives up.
    pub auth_timeout: Duration,
    /// When set, the PaC starts a re-authentication this long before the lifetime ends.
    pub reauth_margin: Option<Duration>,
    /// How long the EAP peer may take before the PaC answers the PAR with an empty PAN and
    /// sends the EAP response later in a PAR (None: always wait and piggyback).
    pub eap_response_timeout: Option<Duration>,
    /// When set, the PaC starts over with a new PCI after losing its PAA (retransmissions
    /// exhausted, authentication timeout) or after the session expired.
    pub restart_on_loss: bool,
}

impl Default for PacConfig {
    fn default() -> Self {
        Self {
            prf_algorithms: vec![PrfAlgorithm::HMAC_SHA2_256, PrfAlgorithm::HMAC_SHA1],
            integrity_algorithms: vec![
                IntegrityAlgorithm::HMAC_SHA2_256_128,
                IntegrityAlgorithm::HMAC_SHA1_160,
            ],
            retransmit: RetransmitConfig::default(),
            nonce_len: 20,
            auth_timeout: Duration::from_secs(60),
            reauth_margin: None,
            eap_response_timeout: Some(Duration::from_millis(500)),
            restart_on_loss: false,
        }
    }
}

/// Where the PaC is.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum PacState {
    /// Not started.
    Idle,
    /// PCI sent, waiting for PAR with S.
    WaitParStart,
    /// An EAP request was handed to the EAP peer.
    WaitEapMsg,
    /// Waiting for the next PAR.
    WaitPaa,
    /// PAR with C received; the EAP peer is processing the EAP Success/Failure.
    WaitEapResult,
    /// Authenticated.
    Open,
    /// Finished (terminated, failed or expired).
    Closed,
}

/// The PAR with C flag kept until the EAP peer tells its result.
struct PendingComplete {
    raw: Vec<u8>,
    seq: u32,
    result: ResultCode,
    key_id: Option<u32>,
    lifetime: Option<u32>,
}

/// State of one EAP run (initial authentication or re-authentication).
struct AuthRun {
    pac_nonce: Vec<u8>,
    paa_nonce: Option<Vec<u8>>,
    nonce_sent: bool,
    /// Sequence number of the PAR whose EAP payload the peer is working on.
    pending_seq: Option<u32>,
    /// That PAR was already answered with an empty PAN: the EAP response goes in a PAR.
    late: bool,
    complete: Option<PendingComplete>,
}

/// A PANA client session.
pub struct Pac<R> {
    config: PacConfig,
    rng: R,
    state: PacState,
    session_id: u32,
    ex: Exchange,
    prf: PrfAlgorithm,
    integrity: IntegrityAlgorithm,
    i_par: Vec<u8>,
    i_pan: Vec<u8>,
    key: Option<AuthKey>,
    run: Option<AuthRun>,
    timers: TimerTable,
    transmits: VecDeque<Vec<u8>>,
    events: VecDeque<PacEvent>,
    stats: Stats,
}

impl<R: RngCore + CryptoRng> Pac<R> {
    /// A PaC that has not started yet.
    pub fn new(config: PacConfig, rng: R) -> Self {
        Self {
            config,
            rng,
            state: PacState::Idle,
            session_id: 0,
            ex: Exchange::new(0),
            prf: PrfAlgorithm::HMAC_SHA1,
            integrity: IntegrityAlgorithm::HMAC_SHA1_160,
            i_par: Vec::new(),
            i_pan: Vec::new(),
            key: None,
            run: None,
            timers: TimerTable::default(),
            transmits: VecDeque::new(),
            events: VecDeque::new(),
            stats: Stats::default(),
        }
    }

    /// Sends PANA-Client-Initiation (from `Idle` or `Closed`).
    pub fn start(&mut self, now: Instant) -> Result<(), Error> {
        if !matches!(self.state, PacState::Idle | PacState::Closed) {
            return Err(Error::InvalidState);
        }
        self.reset();
        let initial = self.rng.next_u32();
        self.ex = Exchange::new(initial);
        let pci = Message::new(MessageType::CLIENT_INITIATION, Flags::NONE, 0, 0);
        let bytes = pci.emit()?;
        let at = self.ex.start(
            &bytes,
            &pci,
            RetryClass::Pci,
            &self.config.retransmit,
            now,
            &mut self.rng,
        );
        self.timers.set(Timer::Retransmit, at);
        self.transmits.push_back(bytes);
        self.state = PacState::WaitParStart;
        Ok(())
    }

    fn reset(&mut self) {
        self.session_id = 0;
        self.key = None;
        self.run = None;
        self.i_par.clear();
        self.i_pan.clear();
        self.timers.clear();
        self.ex = Exchange::new(0);
    }

    /// The current state.
    pub fn state(&self) -> PacState {
        self.state
    }

    /// The PANA Session Identifier (0 before the PAA assigned one).
    pub fn session_id(&self) -> u32 {
        self.session_id
    }

    /// Key-Id of the key protecting the session, once authenticated.
    pub fn key_id(&self) -> Option<u32> {
        self.key.as_ref().map(AuthKey::key_id)
    }

    /// The negotiated PRF and integrity algorithms.
    pub fn algorithms(&self) -> (PrfAlgorithm, IntegrityAlgorithm) {
        (self.prf, self.integrity)
    }

    /// Counters.
    pub fn stats(&self) -> &Stats {
        &self.stats
    }

    /// Next datagram to send to the PAA.
    pub fn poll_transmit(&mut self) -> Option<Vec<u8>> {
        let next = self.transmits.pop_front();
        if next.is_none() && self.transmits.capacity() > 0 {
            // Drained: a PaC idles for most of its session, so it keeps no queue meanwhile.
            self.transmits = VecDeque::new();
        }
        next
    }

    /// Next event.
    pub fn poll_event(&mut self) -> Option<PacEvent> {
        let next = self.events.pop_front();
        if next.is_none() && self.events.capacity() > 0 {
            self.events = VecDeque::new();
        }
        next
    }

    /// The earliest instant at which [`Pac::handle_timeout`] has work.
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.timers.earliest()
    }

    /// Runs every timer due at `now` (harmless when none is).
    pub fn handle_timeout(&mut self, now: Instant) {
        while let Some(t) = self.timers.take_expired(now) {
            match t {
                Timer::Retransmit => self.on_retransmit(now),
                Timer::Lifetime => {
                    self.events.push_back(PacEvent::Expired);
                    self.close();
                    self.maybe_restart(now);
                }
                Timer::Auth => self.lose(FailReason::AuthTimeout, now),
                Timer::EapResponse => self.on_eap_response_timeout(),
                Timer::Reauth => {
                    if self.reauthenticate(now).is_err() && self.state != PacState::Closed {
                        self.timers.set(Timer::Reauth, now + Duration::from_secs(1));
                    }
                }
            }
        }
        self.flush_queue(now);
    }

    /// The EAP peer is slow: answer the pending PAR now, without EAP-Payload.
    fn on_eap_response_timeout(&mut self) {
        if self.state != PacState::WaitEapMsg {
            return;
        }
        let Some(run) = self.run.as_mut() else {
            return;
        };
        let (Some(seq), false) = (run.pending_seq, run.late) else {
            return;
        };
        let mut pan = Message::new(MessageType::AUTH, Flags::NONE, self.session_id, seq);
        if !run.nonce_sent {
            pan = pan.with(Avp::octets(AvpCode::NONCE, &run.pac_nonce));
        }
        let Ok(bytes) = seal(pan, self.key.as_ref()) else {
            return;
        };
        run.nonce_sent = true;
        run.late = true;
        self.ex.answered(seq, &bytes);
        self.transmits.push_back(bytes);
    }

    fn on_retransmit(&mut self, now: Instant) {
        match self
            .ex
            .on_timer(&self.config.retransmit, now, &mut self.rng)
        {
            Retransmit::Resend(bytes, at) => {
                self.stats.retransmissions += 1;
                self.transmits.push_back(bytes);
                self.timers.set(Timer::Retransmit, at);
            }
            Retransmit::GiveUp(out) => {
                if out.msg_type == MessageType::TERMINATION {
                    self.events.push_back(PacEvent::Terminated { cause: None });
                    self.close();
                } else {
                    self.lose(FailReason::RetransmissionsExhausted, now);
                }
            }
            Retransmit::Idle => {}
        }
    }

    fn close(&mut self) {
        self.state = PacState::Closed;
        self.key = None;
        self.run = None;
        self.timers.clear();
        self.ex.out = None;
        self.ex.queued = None;
    }

    fn lose(&mut self, reason: FailReason, now: Instant) {
        self.events.push_back(PacEvent::Failed { reason });
        self.close();
        self.maybe_restart(now);
    }

    fn maybe_restart(&mut self, now: Instant) {
        if self.config.restart_on_loss {
            // Cannot fail from Closed.
            let _ = self.start(now);
        }
    }

    fn fail(&mut self, reason: FailReason) {
        self.events.push_back(PacEvent::Failed { reason });
        self.close();
    }

    /// Feeds one datagram received from the PAA. Invalid datagrams are dropped and counted.
    pub fn handle_datagram(&mut self, bytes: &[u8], now: Instant) {
        let Ok(msg) = Message::parse(bytes) else {
            self.stats.malformed += 1;
            return;
        };
        if msg.msg_type == MessageType::AUTH
            && msg.is_request()
            && msg.flags.contains(Flags::START)
            && self.state == PacState::WaitParStart
            && msg.session_id != 0
        {
            self.on_par_start(&msg, bytes, now);
            return;
        }
        if matches!(
            self.state,
            PacState::Idle | PacState::WaitParStart | PacState::Closed
        ) || msg.session_id != self.session_id
        {
            self.stats.unknown_session += 1;
            return;
        }
        // A new PAR with C announcing success is protected with the key it announces: its
        // AUTH is checked once the EAP peer has produced the MSK.
        let deferred = msg.is_request()
            && msg.msg_type == MessageType::AUTH
            && msg.flags.contains(Flags::COMPLETE)
            && msg.result_code() == Some(ResultCode::SUCCESS)
            && self.ex.check_request(msg.seq) == RxCheck::New;
        let proof = match (&self.key, deferred) {
            (Some(key), false) => match key.verify(bytes) {
                Ok(p) => Some(p),
                Err(_) => {
                    self.stats.auth_failures += 1;
                    return;
                }
            },
            (None, false) if msg.auth().is_some() => {
                self.stats.auth_failures += 1;
                return;
            }
            _ => None,
        };
        if msg.is_request() {
            self.on_request(&msg, bytes, proof.as_ref(), now);
        } else {
            self.on_answer(&msg, proof.as_ref(), now);
        }
        self.flush_queue(now);
    }

    fn on_par_start(&mut self, msg: &Message, raw: &[u8], now: Instant) {
        let prf = msg
            .prf_algorithms()
            .find(|p| p.is_supported() && self.config.prf_algorithms.contains(p));
        let integ = msg
            .integrity_algorithms()
            .find(|a| a.is_supported() && self.config.integrity_algorithms.contains(a));
        let (Some(prf), Some(integrity)) = (prf, integ) else {
            self.fail(FailReason::NoCommonAlgorithm);
            return;
        };
        // Integrity-Algorithm before PRF-Algorithm, as OpenPANA sends them (I_PAN enters the
        // key derivation byte for byte, so matching it keeps the replay test exact).
        let pan = Message::new(MessageType::AUTH, Flags::START, msg.session_id, msg.seq)
            .with(Avp::u32(AvpCode::INTEGRITY_ALGORITHM, integrity.0))
            .with(Avp::u32(AvpCode::PRF_ALGORITHM, prf.0));
        let Ok(bytes) = pan.emit() else {
            return;
        };
        self.session_id = msg.session_id;
        self.prf = prf;
        self.integrity = integrity;
        self.ex.out = None;
        self.timers.stop(Timer::Retransmit);
        self.ex.answered(msg.seq, &bytes);
        self.i_par = raw.to_vec();
        self.i_pan = bytes.clone();
        self.transmits.push_back(bytes);
        self.begin_run(now);
        self.state = PacState::WaitPaa;
    }

    fn begin_run(&mut self, now: Instant) {
        self.run = Some(AuthRun {
            pac_nonce: nonce(&mut self.rng, self.config.nonce_len),
            paa_nonce: None,
            nonce_sent: false,
            pending_seq: None,
            late: false,
            complete: None,
        });
        self.timers.set(Timer::Auth, now + self.config.auth_timeout);
    }

    fn on_request(
        &mut self,
        msg: &Message,
        raw: &[u8],
        proof: Option<&AuthVerified>,
        now: Instant,
    ) {
        match self.ex.check_request(msg.seq) {
            RxCheck::Duplicate => {
                self.stats.duplicates += 1;
                if let Some(c) = &self.ex.cached {
                    self.transmits.push_back(c.to_vec());
                }
                return;
            }
            RxCheck::Invalid => {
                self.stats.bad_sequence += 1;
                return;
            }
            RxCheck::New => {}
        }
        match msg.msg_type {
            MessageType::AUTH if msg.flags.contains(Flags::START) => self.stats.unexpected += 1,
            MessageType::AUTH if msg.flags.contains(Flags::COMPLETE) => {
                self.on_par_complete(msg, raw)
            }
            MessageType::AUTH => self.on_par_eap(msg, now),
            MessageType::TERMINATION if proof.is_some() => {
                let pta = Message::new(
                    MessageType::TERMINATION,
                    Flags::NONE,
                    self.session_id,
                    msg.seq,
                );
                if let Ok(bytes) = seal(pta, self.key.as_ref()) {
                    self.ex.answered(msg.seq, &bytes);
                    self.transmits.push_back(bytes);
                }
                self.events.push_back(PacEvent::Terminated {
                    cause: msg.termination_cause(),
                });
                self.close();
            }
            MessageType::NOTIFICATION if proof.is_some() => {
                let flags = Flags(msg.flags.0 & (Flags::PING.0 | Flags::REAUTH.0));
                let pna = Message::new(MessageType::NOTIFICATION, flags, self.session_id, msg.seq);
                if let Ok(bytes) = seal(pna, self.key.as_ref()) {
                    self.ex.answered(msg.seq, &bytes);
                    self.transmits.push_back(bytes);
                }
                if flags == Flags::NONE {
                    self.events.push_back(PacEvent::Notification);
                }
            }
            _ => self.stats.unexpected += 1,
        }
    }

    fn on_par_eap(&mut self, msg: &Message, now: Instant) {
        let Some(eap) = msg.eap_payload() else {
            self.stats.unexpected += 1;
            return;
        };
        match self.state {
            PacState::WaitPaa => {}
            // The PAA starts a re-authentication.
            PacState::Open => self.begin_run(now),
            PacState::WaitEapMsg
                if self.run.as_ref().and_then(|r| r.pending_seq) == Some(msg.seq) =>
            {
                // Retransmission while the EAP peer is still working on it.
                self.stats.duplicates += 1;
                return;
            }
            _ => {
                self.stats.unexpected += 1;
                return;
            }
        }
        let Some(run) = self.run.as_mut() else {
            self.stats.unexpected += 1;
            return;
        };
        if run.paa_nonce.is_none() {
            match msg.nonce() {
                Some(n) if !n.is_empty() => run.paa_nonce = Some(n.to_vec()),
                _ => {
                    self.stats.unexpected += 1;
                    return;
                }
            }
        }
        run.pending_seq = Some(msg.seq);
        run.late = false;
        self.state = PacState::WaitEapMsg;
        self.par_acknowledged();
        if let Some(t) = self.config.eap_response_timeout {
            self.timers.set(Timer::EapResponse, now + t);
        }
        self.events.push_back(PacEvent::EapRequest(eap.to_vec()));
    }

    /// A new PAR from the PAA proves that it received our own PAR (late EAP response) or our
    /// re-authentication request even if its answer was lost: stop retransmitting it.
    fn par_acknowledged(&mut self) {
        if self.ex.out.as_ref().is_some_and(|o| {
            o.msg_type == MessageType::AUTH
                || (o.msg_type == MessageType::NOTIFICATION && o.flags.contains(Flags::REAUTH))
        }) {
            self.ex.out = None;
            self.timers.stop(Timer::Retransmit);
        }
    }

    fn on_par_complete(&mut self, msg: &Message, raw: &[u8]) {
        let in_run = matches!(self.state, PacState::WaitPaa | PacState::WaitEapMsg);
        let (Some(result), true) = (msg.result_code(), in_run) else {
            self.stats.unexpected += 1;
            return;
        };
        let Some(run) = self.run.as_mut() else {
            self.stats.unexpected += 1;
            return;
        };
        run.pending_seq = None;
        run.complete = Some(PendingComplete {
            raw: raw.to_vec(),
            seq: msg.seq,
            result,
            key_id: msg.key_id(),
            lifetime: msg.session_lifetime(),
        });
        self.state = PacState::WaitEapResult;
        self.par_acknowledged();
        self.events.push_back(PacEvent::EapRequest(
            msg.eap_payload().unwrap_or_default().to_vec(),
        ));
    }

    fn on_answer(&mut self, msg: &Message, proof: Option<&AuthVerified>, now: Instant) {
        if !self.ex.answer_matches(msg) {
            self.stats.bad_sequence += 1;
            return;
        }
        // Only the PAN to our own PAR (EAP response sent late) can come before the key.
        if proof.is_none() && msg.msg_type != MessageType::AUTH {
            self.stats.unexpected += 1;
            return;
        }
        let Some(out) = self.ex.out.take() else {
            return;
        };
        self.timers.stop(Timer::Retransmit);
        match msg.msg_type {
            MessageType::NOTIFICATION if out.flags.contains(Flags::PING) => {
                self.events.push_back(PacEvent::PingAnswered)
            }
            MessageType::NOTIFICATION if out.flags.contains(Flags::REAUTH) => {
                // The PAA will send a PAR; guard the run.
                self.timers.set(Timer::Auth, now + self.config.auth_timeout);
            }
            MessageType::TERMINATION => {
                self.events.push_back(PacEvent::Terminated { cause: None });
                self.close();
            }
            _ => {}
        }
    }

    /// EAP_RESPONSE: the EAP peer's answer to the last [`PacEvent::EapRequest`].
    pub fn send_eap_response(&mut self, eap: &[u8], now: Instant) -> Result<(), Error> {
        if self.state != PacState::WaitEapMsg {
            return Err(Error::InvalidState);
        }
        self.timers.stop(Timer::EapResponse);
        let run = self.run.as_mut().ok_or(Error::InvalidState)?;
        let seq = run.pending_seq.ok_or(Error::InvalidState)?;
        if run.late {
            // The PAR was answered already: the response travels in a PAR of our own (after
            // a ping still outstanding, if any).
            run.late = false;
            run.pending_seq = None;
            self.send_request(
                MessageType::AUTH,
                Flags::NONE,
                vec![Avp::octets(AvpCode::EAP_PAYLOAD, eap)],
                now,
            )?;
            self.state = PacState::WaitPaa;
            return Ok(());
        }
        let mut pan = Message::new(MessageType::AUTH, Flags::NONE, self.session_id, seq)
            .with(Avp::octets(AvpCode::EAP_PAYLOAD, eap));
        if !run.nonce_sent {
            pan = pan.with(Avp::octets(AvpCode::NONCE, &run.pac_nonce));
        }
        let bytes = seal(pan, self.key.as_ref())?;
        run.nonce_sent = true;
        run.pending_seq = None;
        self.ex.answered(seq, &bytes);
        self.transmits.push_back(bytes);
        self.state = PacState::WaitPaa;
        Ok(())
    }

    /// EAP_INVALID_MSG: the EAP peer discarded the last request; wait for the next one.
    pub fn eap_invalid(&mut self, _now: Instant) -> Result<(), Error> {
        match self.state {
            PacState::WaitEapMsg | PacState::WaitEapResult => {
                self.timers.stop(Timer::EapResponse);
                if let Some(run) = self.run.as_mut() {
                    run.pending_seq = None;
                    run.late = false;
                    run.complete = None;
                }
                self.state = PacState::WaitPaa;
                Ok(())
            }
            _ => Err(Error::InvalidState),
        }
    }

    /// EAP_SUCCESS: the EAP peer accepted the EAP Success of the PAR with C flag and produced
    /// `msk` (None for a method without keys, which this PaC treats as a failure).
    pub fn eap_success(&mut self, msk: Option<&[u8]>, now: Instant) -> Result<(), Error> {
        if self.state != PacState::WaitEapResult {
            return Err(Error::InvalidState);
        }
        let run = self.run.as_mut().ok_or(Error::InvalidState)?;
        let pc = run.complete.take().ok_or(Error::InvalidState)?;
        if pc.result != ResultCode::SUCCESS {
            // The PAA said no, whatever the EAP peer thinks.
            return self.finish_failure(&pc, FailReason::AuthenticationRejected);
        }
        let (Some(msk), Some(key_id), Some(paa_nonce)) = (msk, pc.key_id, run.paa_nonce.as_deref())
        else {
            self.fail(FailReason::NoKey);
            return Ok(());
        };
        let inputs = KeyInputs {
            i_par: &self.i_par,
            i_pan: &self.i_pan,
            pac_nonce: &run.pac_nonce,
            paa_nonce,
            key_id,
        };
        let Ok(new_key) = derive_auth_key(self.prf, self.integrity, msk, &inputs) else {
            self.fail(FailReason::NoKey);
            return Ok(());
        };
        let Ok(verified) = new_key.verify(&pc.raw) else {
            // Forged or corrupted PAR(C): drop it and wait for the real one.
            self.stats.auth_failures += 1;
            self.state = PacState::WaitPaa;
            return Ok(());
        };
        let pan = Message::new(MessageType::AUTH, Flags::COMPLETE, self.session_id, pc.seq)
            .with(Avp::u32(AvpCode::KEY_ID, key_id));
        let bytes = seal(pan, Some(&new_key))?;
        self.ex.answered(pc.seq, &bytes);
        self.transmits.push_back(bytes);
        let reauth = self.key.is_some();
        self.install_key(new_key, verified);
        self.run = None;
        self.timers.stop(Timer::Auth);
        let lifetime = pc.lifetime.map(|s| Duration::from_secs(u64::from(s)));
        self.timers.stop(Timer::Lifetime);
        self.timers.stop(Timer::Reauth);
        if let Some(l) = lifetime {
            self.timers.set(Timer::Lifetime, now + l);
            if let Some(margin) = self.config.reauth_margin {
                self.timers
                    .set(Timer::Reauth, now + l.saturating_sub(margin));
            }
        }
        self.state = PacState::Open;
        let msk = Msk::new(msk);
        self.events.push_back(if reauth {
            PacEvent::Reauthenticated {
                key_id,
                msk,
                lifetime,
            }
        } else {
            PacEvent::Established {
                session_id: self.session_id,
                key_id,
                msk,
                lifetime,
            }
        });
        Ok(())
    }

    /// Installs a new PANA_AUTH_KEY; only possible with the proof that the PAR(C) carrying
    /// its Key-Id verified under it.
    fn install_key(&mut self, key: AuthKey, _verified: AuthVerified) {
        self.ex.resign(&key);
        self.key = Some(key);
    }

    /// EAP_FAILURE: the EAP peer saw an EAP Failure (or its method failed).
    pub fn eap_failure(&mut self, _now: Instant) -> Result<(), Error> {
        if self.state != PacState::WaitEapResult {
            return Err(Error::InvalidState);
        }
        let pc = self
            .run
            .as_mut()
            .and_then(|r| r.complete.take())
            .ok_or(Error::InvalidState)?;
        self.finish_failure(&pc, FailReason::AuthenticationRejected)
    }

    fn finish_failure(&mut self, pc: &PendingComplete, reason: FailReason) -> Result<(), Error> {
        let pan = Message::new(MessageType::AUTH, Flags::COMPLETE, self.session_id, pc.seq);
        let bytes = seal(pan, self.key.as_ref())?;
        self.ex.answered(pc.seq, &bytes);
        self.transmits.push_back(bytes);
        self.fail(reason);
        Ok(())
    }

    fn send_request(
        &mut self,
        msg_type: MessageType,
        flags: Flags,
        avps: Vec<Avp>,
        now: Instant,
    ) -> Result<(), Error> {
        let mut msg = Message::new(msg_type, flags | Flags::REQUEST, self.session_id, 0);
        msg.avps = avps;
        if self.ex.out.is_some() {
            // Wait for the slot: sequence numbers may not skip.
            if self.ex.queued.is_some() {
                return Err(Error::InvalidState);
            }
            self.ex.queued = Some(Box::new(Queued { msg, key: None }));
            return Ok(());
        }
        self.transmit_request(msg, now)
    }

    /// Sends the queued request once the slot is free.
    fn flush_queue(&mut self, now: Instant) {
        if self.ex.out.is_none() && self.state != PacState::Closed {
            if let Some(q) = self.ex.queued.take() {
                // Encoding cannot fail for the messages this PaC builds.
                let _ = self.transmit_request(q.msg, now);
            }
        }
    }

    fn transmit_request(&mut self, mut msg: Message, now: Instant) -> Result<(), Error> {
        msg.seq = self.ex.take_seq();
        let bytes = seal(msg.clone(), self.key.as_ref())?;
        let at = self.ex.start(
            &bytes,
            &msg,
            RetryClass::Request,
            &self.config.retransmit,
            now,
            &mut self.rng,
        );
        self.timers.set(Timer::Retransmit, at);
        self.transmits.push_back(bytes);
        Ok(())
    }

    fn can_request(&self) -> bool {
        self.key.is_some() && self.ex.out.is_none() && self.state != PacState::Closed
    }

    #[cfg(test)]
    pub(crate) fn snapshot(&self) -> crate::sim::Snapshot {
        crate::sim::Snapshot {
            state: format!("{:?}", self.state),
            session_id: self.session_id,
            key: self
                .key
                .as_ref()
                .map(|k| (k.key_id(), k.secret_bytes().to_vec())),
            next_seq: self.ex.next_seq,
            last_rx: self.ex.last_rx,
            outstanding: self.ex.out.as_ref().map(|o| o.seq),
        }
    }

    /// Sends a ping (PNR with P); [`PacEvent::PingAnswered`] follows.
    pub fn ping(&mut self, now: Instant) -> Result<(), Error> {
        if !self.can_request() {
            return Err(Error::InvalidState);
        }
        self.send_request(MessageType::NOTIFICATION, Flags::PING, Vec::new(), now)
    }

    /// Asks the PAA for a re-authentication (PNR with A); the PAA then restarts EAP.
    pub fn reauthenticate(&mut self, now: Instant) -> Result<(), Error> {
        if !self.can_request() || self.state != PacState::Open {
            return Err(Error::InvalidState);
        }
        self.send_request(MessageType::NOTIFICATION, Flags::REAUTH, Vec::new(), now)
    }

    /// Terminates the session (PTR with Termination-Cause LOGOUT), after the outstanding
    /// request if there is one (a queued one is dropped). [`PacEvent::Terminated`] follows
    /// when the PTA arrives (or retransmissions run out).
    pub fn terminate(&mut self, now: Instant) -> Result<(), Error> {
        if self.key.is_none() || self.state == PacState::Closed {
            return Err(Error::InvalidState);
        }
        if self
            .ex
            .out
            .as_ref()
            .is_some_and(|o| o.msg_type == MessageType::TERMINATION)
        {
            return Err(Error::InvalidState);
        }
        self.ex.queued = None;
        self.send_request(
            MessageType::TERMINATION,
            Flags::NONE,
            vec![Avp::u32(
                AvpCode::TERMINATION_CAUSE,
                TerminationCause::LOGOUT.0,
            )],
            now,
        )
    }
}
