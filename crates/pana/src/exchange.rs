//! Request/answer bookkeeping shared by PaC and PAA (RFC 5191 §5.2): one outstanding request
//! with its retransmission state, the last received request sequence number and the cached
//! answer to it.

use std::time::{Duration, Instant};

use rand_core::RngCore;

use crate::avp::{Avp, AvpCode};
use crate::crypto::AuthKey;
use crate::error::Error;
use crate::message::{Flags, Message, MessageType};
use crate::timer::{initial_rt, next_rt, RetransmitConfig, RetryClass};

/// A request waiting for its answer.
pub(crate) struct Outstanding {
    pub bytes: Box<[u8]>,
    pub seq: u32,
    pub msg_type: MessageType,
    pub flags: Flags,
    pub class: RetryClass,
    pub rt: Duration,
    pub retransmissions: u32,
}

/// A request waiting for the single request slot (RFC 5191 allows one outstanding request
/// per direction, and sequence numbers may not skip). Its sequence number is assigned when
/// it is sent.
pub(crate) struct Queued {
    pub msg: Message,
    /// Key to sign with instead of the session key (a PAR with C under the new key).
    pub key: Option<AuthKey>,
}

/// How a received request relates to the sequence state.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) enum RxCheck {
    /// The next expected request.
    New,
    /// A retransmission of the last request: answer from the cache.
    Duplicate,
    /// Anything else: discard.
    Invalid,
}

/// What to do when the retransmission timer fires.
pub(crate) enum Retransmit {
    /// Send these bytes again and re-arm at the deadline.
    Resend(Vec<u8>, Instant),
    /// The request ran out of retransmissions.
    GiveUp(Box<Outstanding>),
    /// Nothing outstanding.
    Idle,
}

/// Sequence and retransmission state of one session.
pub(crate) struct Exchange {
    pub next_seq: u32,
    pub last_rx: Option<u32>,
    pub cached: Option<Box<[u8]>>,
    pub out: Option<Box<Outstanding>>,
    pub queued: Option<Box<Queued>>,
}

impl Exchange {
    pub fn new(initial_seq: u32) -> Self {
        Self {
            next_seq: initial_seq,
            last_rx: None,
            cached: None,
            out: None,
            queued: None,
        }
    }

    pub fn check_request(&self, seq: u32) -> RxCheck {
        match self.last_rx {
            None => RxCheck::New,
            Some(l) if seq == l.wrapping_add(1) => RxCheck::New,
            Some(l) if seq == l => RxCheck::Duplicate,
            Some(_) => RxCheck::Invalid,
        }
    }

    /// Records an answered request and its answer.
    pub fn answered(&mut self, seq: u32, answer: &[u8]) {
        self.last_rx = Some(seq);
        self.cached = Some(answer.into());
    }

    /// Whether an answer matches the outstanding request.
    pub fn answer_matches(&self, msg: &Message) -> bool {
        self.out.as_ref().is_some_and(|o| {
            o.seq == msg.seq && o.msg_type == msg.msg_type && o.class == RetryClass::Request
        })
    }

    /// Registers a new outstanding request; returns the retransmission deadline.
    pub fn start(
        &mut self,
        bytes: &[u8],
        msg: &Message,
        class: RetryClass,
        cfg: &RetransmitConfig,
        now: Instant,
        rng: &mut dyn RngCore,
    ) -> Instant {
        let (irt, _, _) = cfg.params(class);
        let rt = initial_rt(irt, rng);
        self.out = Some(Box::new(Outstanding {
            bytes: bytes.into(),
            seq: msg.seq,
            msg_type: msg.msg_type,
            flags: msg.flags,
            class,
            rt,
            retransmissions: 0,
        }));
        now + rt
    }

    /// After a re-key, signs the outstanding request and the cached answer again under the
    /// new key, so that their retransmissions still verify at the peer.
    pub fn resign(&mut self, key: &AuthKey) {
        if let Some(o) = self.out.as_mut() {
            let mut b = o.bytes.to_vec();
            if key.sign(&mut b).is_ok() {
                o.bytes = b.into();
            }
        }
        if let Some(c) = self.cached.as_mut() {
            let mut b = c.to_vec();
            if key.sign(&mut b).is_ok() {
                *c = b.into();
            }
        }
    }

    /// Takes the next request sequence number.
    pub fn take_seq(&mut self) -> u32 {
        let s = self.next_seq;
        self.next_seq = s.wrapping_add(1);
        s
    }

    pub fn on_timer(
        &mut self,
        cfg: &RetransmitConfig,
        now: Instant,
        rng: &mut dyn RngCore,
    ) -> Retransmit {
        let Some(out) = self.out.as_mut() else {
            return Retransmit::Idle;
        };
        let (_, mrt, mrc) = cfg.params(out.class);
        if mrc != 0 && out.retransmissions >= mrc {
            return match self.out.take() {
                Some(o) => Retransmit::GiveUp(o),
                None => Retransmit::Idle,
            };
        }
        out.retransmissions += 1;
        out.rt = next_rt(out.rt, mrt, rng);
        Retransmit::Resend(out.bytes.to_vec(), now + out.rt)
    }
}

/// Encodes `msg`, adding an AUTH AVP computed with `key` when there is one.
pub(crate) fn seal(mut msg: Message, key: Option<&AuthKey>) -> Result<Vec<u8>, Error> {
    if let Some(k) = key {
        msg.avps
            .push(Avp::octets(AvpCode::AUTH, &vec![0; k.tag_len()]));
    }
    let mut bytes = msg.emit()?;
    if let Some(k) = key {
        k.sign(&mut bytes)?;
    }
    Ok(bytes)
}

/// A fresh nonce of `len` bytes.
pub(crate) fn nonce(rng: &mut dyn RngCore, len: usize) -> Vec<u8> {
    let mut n = vec![0; len];
    rng.fill_bytes(&mut n);
    n
}
