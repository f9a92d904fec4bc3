//! The PANA Authentication Agent (PAA): many sessions in one struct (RFC 5191, state machine
//! of RFC 5609 §6).
//!
//! The EAP authenticator (local server or RADIUS pass-through) sits outside and may answer
//! much later: the PAA emits [`PaaEvent::StartEap`] and [`PaaEvent::EapFromPac`], and the
//! backend answers with [`Paa::eap_request`], [`Paa::eap_success`], [`Paa::eap_failure`] or
//! [`Paa::eap_timeout`].
//!
//! Per-session state is kept compact: fixed-size fields inline, the initial PAR/PAN (needed
//! for every key derivation) in one boxed slice, the cached answer and the outstanding
//! request boxed, and everything that only lives during an EAP run in one boxed struct that
//! is dropped once the session is open.

use std::collections::{BTreeSet, HashMap, VecDeque};
use std::hash::Hash;
use std::time::{Duration, Instant};

use rand_core::{CryptoRng, RngCore};

use crate::avp::{Avp, AvpCode, ResultCode, TerminationCause};
use crate::crypto::{
    derive_auth_key, AuthKey, AuthVerified, IntegrityAlgorithm, KeyInputs, PrfAlgorithm,
};
use crate::error::Error;
use crate::event::{FailReason, Msk, PaaEvent, Stats};
use crate::exchange::{nonce, seal, Exchange, Queued, Retransmit, RxCheck};
use crate::message::{Flags, Message, MessageType};
use crate::timer::{RetransmitConfig, RetryClass, Timer, TimerTable};

/// PAA settings.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct PaaConfig {
    /// PRF algorithms offered, in preference order.
    pub prf_algorithms: Vec<PrfAlgorithm>,
    /// Integrity algorithms offered, in preference order.
    pub integrity_algorithms: Vec<IntegrityAlgorithm>,
    /// Retransmission timers.
    pub retransmit: RetransmitConfig,
    /// Length of the PAA nonce.
    pub nonce_len: usize,
    /// Session-Lifetime granted on success (whole seconds are sent).
    pub session_lifetime: Duration,
    /// Time one EAP authentication may take.
    pub auth_timeout: Duration,
    /// Maximum number of sessions; further PCIs are dropped.
    pub max_sessions: usize,
    /// Maximum number of first authentications in progress at once; further PCIs are
    /// dropped (counted in [`Stats::pci_deferred`]) and the PaCs' PCI retransmissions bring
    /// them back later. A PAA that takes on more authentications than it can finish within
    /// the PaCs' retransmission timeouts finishes none: the answers queue, the PaCs send
    /// again, time out and start over. Re-authentications of open sessions are not limited.
    pub max_handshakes: usize,
}

impl Default for PaaConfig {
    fn default() -> Self {
        Self {
            prf_algorithms: vec![PrfAlgorithm::HMAC_SHA2_256, PrfAlgorithm::HMAC_SHA1],
            integrity_algorithms: vec![
                IntegrityAlgorithm::HMAC_SHA2_256_128,
                IntegrityAlgorithm::HMAC_SHA1_160,
            ],
            retransmit: RetransmitConfig::default(),
            nonce_len: 20,
            session_lifetime: Duration::from_secs(3600),
            auth_timeout: Duration::from_secs(60),
            max_sessions: 100_000,
            max_handshakes: usize::MAX,
        }
    }
}

/// Where one PAA session is.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum PaaState {
    /// PAR with S sent, waiting for PAN with S.
    WaitPanStart,
    /// Waiting for the EAP backend.
    WaitBackend,
    /// PAR with an EAP request sent, waiting for the PAN.
    WaitPan,
    /// The PaC answered without EAP-Payload; its EAP response will come in a PAR.
    WaitPacPar,
    /// PAR with C sent, waiting for PAN with C.
    WaitPanComplete,
    /// Authenticated.
    Open,
    /// PTR sent.
    Terminating,
}

/// Cold state of one EAP run.
struct AuthRun {
    paa_nonce: Vec<u8>,
    pac_nonce: Option<Vec<u8>>,
    nonce_sent: bool,
    success: bool,
    pending_key: Option<AuthKey>,
    msk: Option<Msk>,
}

/// One session.
struct Session<P> {
    peer: P,
    state: PaaState,
    prf: PrfAlgorithm,
    integrity: IntegrityAlgorithm,
    ex: Exchange,
    key: Option<AuthKey>,
    timers: TimerTable,
    scheduled: Option<Instant>,
    /// I_PAR followed by I_PAN.
    initial: Box<[u8]>,
    i_par_len: usize,
    run: Option<Box<AuthRun>>,
}

/// Whether a session survives the step that just ran.
#[derive(PartialEq, Eq)]
enum Keep {
    Yes,
    No,
}

/// Everything but the sessions, so a session and the context can be borrowed together.
struct Ctx<R, P> {
    config: PaaConfig,
    rng: R,
    transmits: VecDeque<(P, Vec<u8>)>,
    events: VecDeque<PaaEvent>,
    stats: Stats,
    /// Sessions whose first authentication is running (no key yet).
    handshakes: usize,
}

/// A PAA serving many PaCs, each identified by its address type `P`.
pub struct Paa<P, R> {
    ctx: Ctx<R, P>,
    sessions: HashMap<u32, Session<P>>,
    schedule: BTreeSet<(Instant, u32)>,
    handshaking: HashMap<P, u32>,
}

impl<P: Clone + Eq + Hash, R: RngCore + CryptoRng> Paa<P, R> {
    /// A PAA with no session.
    pub fn new(config: PaaConfig, rng: R) -> Self {
        Self {
            ctx: Ctx {
                config,
                rng,
                transmits: VecDeque::new(),
                events: VecDeque::new(),
                stats: Stats::default(),
                handshakes: 0,
            },
            sessions: HashMap::new(),
            schedule: BTreeSet::new(),
            handshaking: HashMap::new(),
        }
    }

    /// Counters.
    pub fn stats(&self) -> &Stats {
        &self.ctx.stats
    }

    /// Number of sessions held.
    pub fn session_count(&self) -> usize {
        self.sessions.len()
    }

    /// Number of sessions whose first authentication is running.
    pub fn handshake_count(&self) -> usize {
        self.ctx.handshakes
    }

    /// State of a session.
    pub fn session_state(&self, session: u32) -> Option<PaaState> {
        self.sessions.get(&session).map(|s| s.state)
    }

    /// Key-Id of a session's current key.
    pub fn key_id(&self, session: u32) -> Option<u32> {
        self.sessions
            .get(&session)
            .and_then(|s| s.key.as_ref())
            .map(AuthKey::key_id)
    }

    /// Key-Id the session's EAP success announced, while the PAA waits for the final PAN (the
    /// key becomes current then): lets the backend hand keys on before the PaC can use them.
    pub fn pending_key_id(&self, session: u32) -> Option<u32> {
        self.sessions
            .get(&session)
            .and_then(|s| s.run.as_ref())
            .and_then(|r| r.pending_key.as_ref())
            .map(AuthKey::key_id)
    }

    /// The address a session's PaC was last seen at.
    pub fn peer(&self, session: u32) -> Option<&P> {
        self.sessions.get(&session).map(|s| &s.peer)
    }

    /// Next datagram to send, with its destination.
    pub fn poll_transmit(&mut self) -> Option<(P, Vec<u8>)> {
        self.ctx.transmits.pop_front()
    }

    /// Next event.
    pub fn poll_event(&mut self) -> Option<PaaEvent> {
        self.ctx.events.pop_front()
    }

    /// The earliest instant at which [`Paa::handle_timeout`] has work.
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.schedule.first().map(|(at, _)| *at)
    }

    /// Runs every timer due at `now` (harmless when none is).
    pub fn handle_timeout(&mut self, now: Instant) {
        while let Some(&(at, id)) = self.schedule.first() {
            if at > now {
                break;
            }
            self.schedule.remove(&(at, id));
            let Some(sess) = self.sessions.get_mut(&id) else {
                continue;
            };
            sess.scheduled = None;
            let mut keep = Keep::Yes;
            while let Some(t) = sess.timers.take_expired(now) {
                keep = on_timer(sess, &mut self.ctx, id, t, now);
                if keep == Keep::No {
                    break;
                }
            }
            if keep == Keep::Yes {
                flush_queue(sess, &mut self.ctx, now);
            }
            self.finish(id, keep);
        }
    }

    fn finish(&mut self, id: u32, keep: Keep) {
        if keep == Keep::No {
            if let Some(s) = self.sessions.remove(&id) {
                if s.key.is_none() {
                    self.ctx.handshakes = self.ctx.handshakes.saturating_sub(1);
                }
                if let Some(at) = s.scheduled {
                    self.schedule.remove(&(at, id));
                }
                if self.handshaking.get(&s.peer) == Some(&id) {
                    self.handshaking.remove(&s.peer);
                }
            }
            return;
        }
        let Some(sess) = self.sessions.get_mut(&id) else {
            return;
        };
        if sess.state != PaaState::WaitPanStart && self.handshaking.get(&sess.peer) == Some(&id) {
            self.handshaking.remove(&sess.peer);
        }
        let next = sess.timers.earliest();
        if next != sess.scheduled {
            if let Some(old) = sess.scheduled {
                self.schedule.remove(&(old, id));
            }
            if let Some(new) = next {
                self.schedule.insert((new, id));
            }
            sess.scheduled = next;
        }
    }

    /// Feeds one datagram received from `peer`. Invalid datagrams are dropped and counted.
    pub fn handle_datagram(&mut self, peer: P, bytes: &[u8], now: Instant) {
        let Ok(msg) = Message::parse(bytes) else {
            self.ctx.stats.malformed += 1;
            return;
        };
        if msg.msg_type == MessageType::CLIENT_INITIATION {
            if msg.is_request() || msg.session_id != 0 {
                self.ctx.stats.unexpected += 1;
            } else {
                self.on_pci(peer, now);
            }
            return;
        }
        let id = msg.session_id;
        let Some(sess) = self.sessions.get_mut(&id) else {
            self.ctx.stats.unknown_session += 1;
            return;
        };
        let keep = on_message(sess, &mut self.ctx, id, peer, &msg, bytes, now);
        if keep == Keep::Yes {
            flush_queue(sess, &mut self.ctx, now);
        }
        self.finish(id, keep);
    }

    fn on_pci(&mut self, peer: P, now: Instant) {
        if self.handshaking.contains_key(&peer) {
            // Our PAR(S) is being retransmitted on its own timer.
            self.ctx.stats.duplicates += 1;
            return;
        }
        if self.sessions.len() >= self.ctx.config.max_sessions {
            self.ctx.stats.sessions_refused += 1;
            return;
        }
        if self.ctx.handshakes >= self.ctx.config.max_handshakes {
            self.ctx.stats.pci_deferred += 1;
            return;
        }
        let mut id = self.ctx.rng.next_u32();
        while id == 0 || self.sessions.contains_key(&id) {
            id = self.ctx.rng.next_u32();
        }
        let mut ex = Exchange::new(self.ctx.rng.next_u32());
        let seq = ex.take_seq();
        let mut par = Message::new(MessageType::AUTH, Flags::REQUEST | Flags::START, id, seq);
        for a in &self.ctx.config.integrity_algorithms {
            par.avps.push(Avp::u32(AvpCode::INTEGRITY_ALGORITHM, a.0));
        }
        for p in &self.ctx.config.prf_algorithms {
            par.avps.push(Avp::u32(AvpCode::PRF_ALGORITHM, p.0));
        }
        let Ok(bytes) = par.emit() else {
            return;
        };
        let mut timers = TimerTable::default();
        let at = ex.start(
            &bytes,
            &par,
            RetryClass::Request,
            &self.ctx.config.retransmit,
            now,
            &mut self.ctx.rng,
        );
        timers.set(Timer::Retransmit, at);
        timers.set(Timer::Auth, now + self.ctx.config.auth_timeout);
        self.ctx.transmits.push_back((peer.clone(), bytes.clone()));
        self.sessions.insert(
            id,
            Session {
                peer: peer.clone(),
                state: PaaState::WaitPanStart,
                prf: PrfAlgorithm::HMAC_SHA1,
                integrity: IntegrityAlgorithm::HMAC_SHA1_160,
                ex,
                key: None,
                timers,
                scheduled: None,
                i_par_len: bytes.len(),
                initial: bytes.into_boxed_slice(),
                run: None,
            },
        );
        self.handshaking.insert(peer, id);
        self.ctx.handshakes += 1;
        self.finish(id, Keep::Yes);
    }

    fn with_session(
        &mut self,
        session: u32,
        now: Instant,
        f: impl FnOnce(&mut Session<P>, &mut Ctx<R, P>) -> Result<Keep, Error>,
    ) -> Result<(), Error> {
        let sess = self
            .sessions
            .get_mut(&session)
            .ok_or(Error::UnknownSession(session))?;
        let keep = f(sess, &mut self.ctx)?;
        if keep == Keep::Yes {
            flush_queue(sess, &mut self.ctx, now);
        }
        self.finish(session, keep);
        Ok(())
    }

    /// The backend's next EAP request for the PaC.
    pub fn eap_request(&mut self, session: u32, eap: &[u8], now: Instant) -> Result<(), Error> {
        self.with_session(session, now, |s, ctx| {
            if s.state != PaaState::WaitBackend {
                return Err(Error::InvalidState);
            }
            let run = s.run.as_mut().ok_or(Error::InvalidState)?;
            let mut avps = vec![Avp::octets(AvpCode::EAP_PAYLOAD, eap)];
            if !run.nonce_sent {
                avps.push(Avp::octets(AvpCode::NONCE, &run.paa_nonce));
                run.nonce_sent = true;
            }
            send_request(
                s,
                ctx,
                session,
                MessageType::AUTH,
                Flags::NONE,
                avps,
                None,
                now,
            )?;
            s.state = PaaState::WaitPan;
            Ok(Keep::Yes)
        })
    }

    /// The backend accepted the PaC: sends PAR with C, Result-Code success, Key-Id,
    /// Session-Lifetime and AUTH under the key derived from `msk`.
    pub fn eap_success(
        &mut self,
        session: u32,
        eap_success: &[u8],
        msk: &[u8],
        now: Instant,
    ) -> Result<(), Error> {
        self.with_session(session, now, |s, ctx| {
            if s.state != PaaState::WaitBackend {
                return Err(Error::InvalidState);
            }
            let run = s.run.as_mut().ok_or(Error::InvalidState)?;
            let pac_nonce = run.pac_nonce.as_deref().ok_or(Error::InvalidState)?;
            let current = s.key.as_ref().map(AuthKey::key_id);
            let mut key_id = ctx.rng.next_u32();
            while Some(key_id) == current {
                key_id = ctx.rng.next_u32();
            }
            let (i_par, i_pan) = s.initial.split_at(s.i_par_len.min(s.initial.len()));
            let inputs = KeyInputs {
                i_par,
                i_pan,
                pac_nonce,
                paa_nonce: &run.paa_nonce,
                key_id,
            };
            let key = derive_auth_key(s.prf, s.integrity, msk, &inputs)?;
            let lifetime = u32::try_from(ctx.config.session_lifetime.as_secs()).unwrap_or(u32::MAX);
            let avps = vec![
                Avp::octets(AvpCode::EAP_PAYLOAD, eap_success),
                Avp::u32(AvpCode::KEY_ID, key_id),
                Avp::u32(AvpCode::RESULT_CODE, ResultCode::SUCCESS.0),
                Avp::u32(AvpCode::SESSION_LIFETIME, lifetime),
            ];
            send_request(
                s,
                ctx,
                session,
                MessageType::AUTH,
                Flags::COMPLETE,
                avps,
                Some(&key),
                now,
            )?;
            if let Some(run) = s.run.as_mut() {
                run.success = true;
                run.pending_key = Some(key);
                run.msk = Some(Msk::new(msk));
            }
            s.state = PaaState::WaitPanComplete;
            Ok(Keep::Yes)
        })
    }

    /// The backend rejected the PaC: sends PAR with C and Result-Code
    /// PANA_AUTHENTICATION_REJECTED; the session fails once the PAN arrives.
    pub fn eap_failure(
        &mut self,
        session: u32,
        eap_failure: &[u8],
        now: Instant,
    ) -> Result<(), Error> {
        self.with_session(session, now, |s, ctx| {
            if s.state != PaaState::WaitBackend {
                return Err(Error::InvalidState);
            }
            let avps = vec![
                Avp::octets(AvpCode::EAP_PAYLOAD, eap_failure),
                Avp::u32(AvpCode::RESULT_CODE, ResultCode::AUTHENTICATION_REJECTED.0),
            ];
            send_request(
                s,
                ctx,
                session,
                MessageType::AUTH,
                Flags::COMPLETE,
                avps,
                None,
                now,
            )?;
            if let Some(run) = s.run.as_mut() {
                run.success = false;
            }
            s.state = PaaState::WaitPanComplete;
            Ok(Keep::Yes)
        })
    }

    /// EAP_TIMEOUT: the backend gave up on this session; the session fails.
    pub fn eap_timeout(&mut self, session: u32, now: Instant) -> Result<(), Error> {
        self.with_session(session, now, |_, ctx| {
            ctx.events.push_back(PaaEvent::Failed {
                session,
                reason: FailReason::EapTimeout,
            });
            Ok(Keep::No)
        })
    }

    /// Starts a PAA-initiated re-authentication: [`PaaEvent::StartEap`] follows.
    pub fn reauthenticate(&mut self, session: u32, now: Instant) -> Result<(), Error> {
        self.with_session(session, now, |s, ctx| {
            if s.state != PaaState::Open || s.run.is_some() {
                return Err(Error::InvalidState);
            }
            begin_run(s, ctx, session, now);
            Ok(Keep::Yes)
        })
    }

    /// Pings the PaC (PNR with P); [`PaaEvent::PingAnswered`] follows.
    pub fn ping(&mut self, session: u32, now: Instant) -> Result<(), Error> {
        self.with_session(session, now, |s, ctx| {
            if s.key.is_none() || s.ex.out.is_some() || s.state == PaaState::Terminating {
                return Err(Error::InvalidState);
            }
            send_request(
                s,
                ctx,
                session,
                MessageType::NOTIFICATION,
                Flags::PING,
                Vec::new(),
                None,
                now,
            )?;
            Ok(Keep::Yes)
        })
    }

    /// Terminates a session (PTR with Termination-Cause ADMINISTRATIVE).
    pub fn terminate(&mut self, session: u32, now: Instant) -> Result<(), Error> {
        self.with_session(session, now, |s, ctx| {
            if s.key.is_none() {
                ctx.events.push_back(PaaEvent::Terminated {
                    session,
                    cause: None,
                });
                return Ok(Keep::No);
            }
            if s.state == PaaState::Terminating {
                return Err(Error::InvalidState);
            }
            // After the outstanding request, if any; a queued one is dropped.
            s.ex.queued = None;
            s.run = None;
            let avps = vec![Avp::u32(
                AvpCode::TERMINATION_CAUSE,
                TerminationCause::ADMINISTRATIVE.0,
            )];
            send_request(
                s,
                ctx,
                session,
                MessageType::TERMINATION,
                Flags::NONE,
                avps,
                None,
                now,
            )?;
            s.state = PaaState::Terminating;
            Ok(Keep::Yes)
        })
    }

    /// Bytes of heap this PAA knows it holds for one session beyond the inline struct: the
    /// boxed parts. (Hash-table and schedule overhead come on top.)
    pub fn session_heap_bytes(&self, session: u32) -> Option<usize> {
        let s = self.sessions.get(&session)?;
        let out = s.ex.out.as_ref().map_or(0, |o| {
            std::mem::size_of::<crate::exchange::Outstanding>() + o.bytes.len()
        });
        let run = s.run.as_ref().map_or(0, |r| {
            std::mem::size_of::<AuthRun>()
                + r.paa_nonce.capacity()
                + r.pac_nonce.as_ref().map_or(0, Vec::capacity)
                + r.msk.as_ref().map_or(0, |m| m.as_bytes().len())
        });
        Some(s.initial.len() + s.ex.cached.as_ref().map_or(0, |c| c.len()) + out + run)
    }

    #[cfg(test)]
    pub(crate) fn snapshot(&self, session: u32) -> Option<crate::sim::Snapshot> {
        let s = self.sessions.get(&session)?;
        Some(crate::sim::Snapshot {
            state: format!("{:?}", s.state),
            session_id: session,
            key: s
                .key
                .as_ref()
                .map(|k| (k.key_id(), k.secret_bytes().to_vec())),
            next_seq: s.ex.next_seq,
            last_rx: s.ex.last_rx,
            outstanding: s.ex.out.as_ref().map(|o| o.seq),
        })
    }

    /// Size of the inline per-session struct.
    pub fn session_inline_bytes() -> usize {
        std::mem::size_of::<Session<P>>()
    }
}

fn begin_run<R: RngCore + CryptoRng, P>(
    s: &mut Session<P>,
    ctx: &mut Ctx<R, P>,
    session: u32,
    now: Instant,
) {
    s.run = Some(Box::new(AuthRun {
        paa_nonce: nonce(&mut ctx.rng, ctx.config.nonce_len),
        pac_nonce: None,
        nonce_sent: false,
        success: false,
        pending_key: None,
        msk: None,
    }));
    s.state = PaaState::WaitBackend;
    s.timers.set(Timer::Auth, now + ctx.config.auth_timeout);
    ctx.events.push_back(PaaEvent::StartEap { session });
}

#[allow(clippy::too_many_arguments)]
fn send_request<R: RngCore + CryptoRng, P: Clone>(
    s: &mut Session<P>,
    ctx: &mut Ctx<R, P>,
    session: u32,
    msg_type: MessageType,
    flags: Flags,
    avps: Vec<Avp>,
    key: Option<&AuthKey>,
    now: Instant,
) -> Result<(), Error> {
    let mut msg = Message::new(msg_type, flags | Flags::REQUEST, session, 0);
    msg.avps = avps;
    if s.ex.out.is_some() {
        // Wait for the slot: sequence numbers may not skip.
        if s.ex.queued.is_some() {
            return Err(Error::InvalidState);
        }
        s.ex.queued = Some(Box::new(Queued {
            msg,
            key: key.cloned(),
        }));
        return Ok(());
    }
    transmit_request(s, ctx, msg, key, now)
}

/// Sends the queued request once the slot is free.
fn flush_queue<R: RngCore + CryptoRng, P: Clone>(
    s: &mut Session<P>,
    ctx: &mut Ctx<R, P>,
    now: Instant,
) {
    if s.ex.out.is_none() {
        if let Some(q) = s.ex.queued.take() {
            // Encoding cannot fail for the messages this PAA builds.
            let _ = transmit_request(s, ctx, q.msg, q.key.as_ref(), now);
        }
    }
}

fn transmit_request<R: RngCore + CryptoRng, P: Clone>(
    s: &mut Session<P>,
    ctx: &mut Ctx<R, P>,
    mut msg: Message,
    key: Option<&AuthKey>,
    now: Instant,
) -> Result<(), Error> {
    msg.seq = s.ex.next_seq;
    let bytes = seal(msg.clone(), key.or(s.key.as_ref()))?;
    s.ex.take_seq();
    let at = s.ex.start(
        &bytes,
        &msg,
        RetryClass::Request,
        &ctx.config.retransmit,
        now,
        &mut ctx.rng,
    );
    s.timers.set(Timer::Retransmit, at);
    ctx.transmits.push_back((s.peer.clone(), bytes));
    Ok(())
}

fn answer<R, P: Clone>(s: &mut Session<P>, ctx: &mut Ctx<R, P>, req: &Message, flags: Flags) {
    let ans = Message::new(req.msg_type, flags, req.session_id, req.seq);
    if let Ok(bytes) = seal(ans, s.key.as_ref()) {
        s.ex.answered(req.seq, &bytes);
        ctx.transmits.push_back((s.peer.clone(), bytes));
    }
}

/// A PAR from the PaC carrying the EAP response it could not piggyback: answer with a PAN
/// and hand the response to the backend. Only valid while waiting for it.
fn on_pac_par<R: RngCore + CryptoRng, P: Clone>(
    s: &mut Session<P>,
    ctx: &mut Ctx<R, P>,
    session: u32,
    msg: &Message,
) -> Keep {
    match s.ex.check_request(msg.seq) {
        RxCheck::New => {}
        RxCheck::Duplicate => {
            ctx.stats.duplicates += 1;
            if let Some(c) = &s.ex.cached {
                ctx.transmits.push_back((s.peer.clone(), c.to_vec()));
            }
            return Keep::Yes;
        }
        RxCheck::Invalid => {
            ctx.stats.bad_sequence += 1;
            return Keep::Yes;
        }
    }
    let eap = match (s.state, msg.eap_payload(), msg.flags.0 & !Flags::REQUEST.0) {
        (PaaState::WaitPacPar, Some(eap), 0) => eap.to_vec(),
        _ => {
            ctx.stats.unexpected += 1;
            return Keep::Yes;
        }
    };
    answer(s, ctx, msg, Flags::NONE);
    s.state = PaaState::WaitBackend;
    ctx.events.push_back(PaaEvent::EapFromPac {
        session,
        bytes: eap,
    });
    Keep::Yes
}

/// Installs a new PANA_AUTH_KEY; only possible with the proof that the PAN(C) verified under
/// it.
fn install_key<P>(s: &mut Session<P>, key: AuthKey, _verified: AuthVerified) {
    s.ex.resign(&key);
    s.key = Some(key);
}

fn on_timer<R: RngCore + CryptoRng, P: Clone>(
    s: &mut Session<P>,
    ctx: &mut Ctx<R, P>,
    session: u32,
    t: Timer,
    now: Instant,
) -> Keep {
    match t {
        Timer::Retransmit => match s.ex.on_timer(&ctx.config.retransmit, now, &mut ctx.rng) {
            Retransmit::Resend(bytes, at) => {
                ctx.stats.retransmissions += 1;
                ctx.transmits.push_back((s.peer.clone(), bytes));
                s.timers.set(Timer::Retransmit, at);
                Keep::Yes
            }
            Retransmit::GiveUp(out) => {
                let ev = if out.msg_type == MessageType::TERMINATION {
                    PaaEvent::Terminated {
                        session,
                        cause: None,
                    }
                } else if s.state == PaaState::WaitPanComplete
                    && !s.run.as_ref().is_some_and(|r| r.success)
                {
                    PaaEvent::Failed {
                        session,
                        reason: FailReason::AuthenticationRejected,
                    }
                } else {
                    PaaEvent::Failed {
                        session,
                        reason: FailReason::RetransmissionsExhausted,
                    }
                };
                ctx.events.push_back(ev);
                Keep::No
            }
            Retransmit::Idle => Keep::Yes,
        },
        Timer::Lifetime => {
            ctx.events.push_back(PaaEvent::Expired { session });
            Keep::No
        }
        Timer::Auth => {
            ctx.events.push_back(PaaEvent::Failed {
                session,
                reason: FailReason::AuthTimeout,
            });
            Keep::No
        }
        Timer::Reauth | Timer::EapResponse => Keep::Yes,
    }
}

fn on_message<R: RngCore + CryptoRng, P: Clone + Eq>(
    s: &mut Session<P>,
    ctx: &mut Ctx<R, P>,
    session: u32,
    peer: P,
    msg: &Message,
    raw: &[u8],
    now: Instant,
) -> Keep {
    let completing = !msg.is_request()
        && msg.msg_type == MessageType::AUTH
        && msg.flags.contains(Flags::COMPLETE)
        && s.state == PaaState::WaitPanComplete;
    let pending = if completing {
        s.run.as_ref().and_then(|r| r.pending_key.as_ref())
    } else {
        None
    };
    let proof = match pending.or(s.key.as_ref()) {
        Some(k) => match k.verify(raw) {
            Ok(p) => p,
            Err(_) => {
                ctx.stats.auth_failures += 1;
                return Keep::Yes;
            }
        },
        None => {
            if peer != s.peer || msg.auth().is_some() {
                ctx.stats.unexpected += 1;
                return Keep::Yes;
            }
            return if msg.is_request() {
                // Before authentication the only PaC request is a PAR carrying a late EAP
                // response.
                on_pac_par(s, ctx, session, msg)
            } else {
                on_answer(s, ctx, session, msg, raw, None, now)
            };
        }
    };
    // Authenticated: the PaC may have moved.
    s.peer = peer;
    if msg.is_request() {
        on_request(s, ctx, session, msg, &proof, now)
    } else {
        on_answer(s, ctx, session, msg, raw, Some(proof), now)
    }
}

fn on_request<R: RngCore + CryptoRng, P: Clone>(
    s: &mut Session<P>,
    ctx: &mut Ctx<R, P>,
    session: u32,
    msg: &Message,
    _verified: &AuthVerified,
    now: Instant,
) -> Keep {
    match s.ex.check_request(msg.seq) {
        RxCheck::Duplicate => {
            ctx.stats.duplicates += 1;
            if let Some(c) = &s.ex.cached {
                ctx.transmits.push_back((s.peer.clone(), c.to_vec()));
            }
            return Keep::Yes;
        }
        RxCheck::Invalid => {
            ctx.stats.bad_sequence += 1;
            return Keep::Yes;
        }
        RxCheck::New => {}
    }
    match msg.msg_type {
        MessageType::NOTIFICATION => {
            let flags = Flags(msg.flags.0 & (Flags::PING.0 | Flags::REAUTH.0));
            answer(s, ctx, msg, flags);
            if flags.contains(Flags::REAUTH) {
                if s.state == PaaState::Open && s.run.is_none() {
                    begin_run(s, ctx, session, now);
                }
            } else if !flags.contains(Flags::PING) {
                ctx.events.push_back(PaaEvent::Notification { session });
            }
            Keep::Yes
        }
        MessageType::AUTH => on_pac_par(s, ctx, session, msg),
        MessageType::TERMINATION => {
            answer(s, ctx, msg, Flags::NONE);
            ctx.events.push_back(PaaEvent::Terminated {
                session,
                cause: msg.termination_cause(),
            });
            Keep::No
        }
        _ => {
            ctx.stats.unexpected += 1;
            Keep::Yes
        }
    }
}

fn on_answer<R: RngCore + CryptoRng, P: Clone>(
    s: &mut Session<P>,
    ctx: &mut Ctx<R, P>,
    session: u32,
    msg: &Message,
    raw: &[u8],
    proof: Option<AuthVerified>,
    now: Instant,
) -> Keep {
    if !s.ex.answer_matches(msg) {
        ctx.stats.bad_sequence += 1;
        return Keep::Yes;
    }
    let out_flags = s.ex.out.as_ref().map(|o| o.flags).unwrap_or_default();
    match (msg.msg_type, s.state) {
        (t, PaaState::Terminating) if t != MessageType::TERMINATION => {
            // The answer to what was outstanding before the PTR: frees the slot.
            s.ex.out = None;
            s.timers.stop(Timer::Retransmit);
            Keep::Yes
        }
        (MessageType::AUTH, PaaState::WaitPanStart) => {
            let prf: Vec<PrfAlgorithm> = msg.prf_algorithms().collect();
            let integ: Vec<IntegrityAlgorithm> = msg.integrity_algorithms().collect();
            let (&[prf], &[integrity]) = (prf.as_slice(), integ.as_slice()) else {
                ctx.stats.unexpected += 1;
                return Keep::Yes;
            };
            if !msg.flags.contains(Flags::START)
                || !ctx.config.prf_algorithms.contains(&prf)
                || !ctx.config.integrity_algorithms.contains(&integrity)
                || !prf.is_supported()
                || !integrity.is_supported()
            {
                ctx.events.push_back(PaaEvent::Failed {
                    session,
                    reason: FailReason::NoCommonAlgorithm,
                });
                return Keep::No;
            }
            s.ex.out = None;
            s.timers.stop(Timer::Retransmit);
            s.prf = prf;
            s.integrity = integrity;
            let mut init = Vec::with_capacity(s.initial.len() + raw.len());
            init.extend_from_slice(&s.initial);
            init.extend_from_slice(raw);
            s.initial = init.into_boxed_slice();
            begin_run(s, ctx, session, now);
            Keep::Yes
        }
        (MessageType::AUTH, PaaState::WaitPan) => {
            let Some(run) = s.run.as_mut() else {
                ctx.stats.unexpected += 1;
                return Keep::Yes;
            };
            if run.pac_nonce.is_none() {
                match msg.nonce() {
                    Some(n) if !n.is_empty() => run.pac_nonce = Some(n.to_vec()),
                    _ => {
                        ctx.stats.unexpected += 1;
                        return Keep::Yes;
                    }
                }
            }
            s.ex.out = None;
            s.timers.stop(Timer::Retransmit);
            match msg.eap_payload() {
                Some(eap) => {
                    s.state = PaaState::WaitBackend;
                    ctx.events.push_back(PaaEvent::EapFromPac {
                        session,
                        bytes: eap.to_vec(),
                    });
                }
                // The PaC's EAP peer is slow: its response will come in a PAR.
                None => s.state = PaaState::WaitPacPar,
            }
            Keep::Yes
        }
        (MessageType::AUTH, PaaState::WaitPanComplete) => {
            s.ex.out = None;
            s.timers.stop(Timer::Retransmit);
            let Some(mut run) = s.run.take() else {
                return Keep::No;
            };
            if !run.success {
                ctx.events.push_back(PaaEvent::Failed {
                    session,
                    reason: FailReason::AuthenticationRejected,
                });
                return Keep::No;
            }
            let (Some(key), Some(msk), Some(proof)) =
                (run.pending_key.take(), run.msk.take(), proof)
            else {
                return Keep::No;
            };
            let key_id = key.key_id();
            let reauth = s.key.is_some();
            if !reauth {
                ctx.handshakes = ctx.handshakes.saturating_sub(1);
            }
            install_key(s, key, proof);
            s.state = PaaState::Open;
            s.timers.stop(Timer::Auth);
            let lifetime = Duration::from_secs(ctx.config.session_lifetime.as_secs());
            s.timers.set(Timer::Lifetime, now + lifetime);
            ctx.events.push_back(if reauth {
                PaaEvent::Reauthenticated {
                    session,
                    key_id,
                    msk,
                    lifetime,
                }
            } else {
                PaaEvent::Established {
                    session,
                    key_id,
                    msk,
                    lifetime,
                }
            });
            Keep::Yes
        }
        (MessageType::NOTIFICATION, _) if proof.is_some() => {
            s.ex.out = None;
            s.timers.stop(Timer::Retransmit);
            if out_flags.contains(Flags::PING) {
                ctx.events.push_back(PaaEvent::PingAnswered { session });
            }
            Keep::Yes
        }
        (MessageType::TERMINATION, _) if proof.is_some() => {
            ctx.events.push_back(PaaEvent::Terminated {
                session,
                cause: None,
            });
            Keep::No
        }
        _ => {
            ctx.stats.unexpected += 1;
            Keep::Yes
        }
    }
}
