//! The sans-IO RADIUS client: identifiers, authenticators, retransmission (RFC 5080 §2.2.1)
//! and response verification. It owns no socket and reads no clock.
//!
//! ```text
//! start(code, attrs, now, rng) ──▶ poll_transmit() ──▶ (driver sends)
//! (driver receives) ──▶ handle_datagram(bytes, now) ──▶ Some((RequestId, Response))
//! poll_timeout() ──▶ (driver sleeps) ──▶ handle_timeout(now) ──▶ poll_transmit() / poll_event()
//! ```

use std::collections::{BTreeMap, VecDeque};
use std::time::{Duration, Instant};

use rand_core::{CryptoRng, RngCore};

use crate::attribute::Attribute;
use crate::auth::{
    encode_request, message_authenticator_placeholder, random_authenticator,
    verify_message_authenticator, verify_response_authenticator, Secret,
};
use crate::code::{AttributeType, Code};
use crate::error::Error;
use crate::mppe::{extract_mppe_keys, MppeKeys};
use crate::packet::{Packet, AUTHENTICATOR_LEN, HEADER_LEN};

/// Retransmission parameters (RFC 5080 §2.2.1 names in brackets).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct ClientConfig {
    /// First retransmission timeout \[IRT\]. Default 2 s.
    pub initial_timeout: Duration,
    /// Ceiling of the doubling timeout \[MRT\]. Default 16 s.
    pub max_timeout: Duration,
    /// Retransmissions after the first transmission before giving up \[MRC\]. Default 5.
    pub max_retransmissions: u32,
    /// Total time before giving up, if any \[MRD\]. Default 30 s.
    pub max_duration: Option<Duration>,
    /// Drop Access-Accept/-Reject/-Challenge responses that carry no Message-Authenticator
    /// even when they carry no EAP-Message (with EAP-Message it is always required,
    /// RFC 3579 §3.2). Default true; set false for servers that, like the RFC 5997 §6
    /// example, answer Status-Server without one.
    pub require_message_authenticator: bool,
    /// Randomize each timeout by ±10 % (the RAND term of RFC 5080 §2.2.1), so that clients
    /// started together do not retransmit in lockstep. Default true.
    pub jitter: bool,
}

impl Default for ClientConfig {
    fn default() -> Self {
        ClientConfig {
            initial_timeout: Duration::from_secs(2),
            max_timeout: Duration::from_secs(16),
            max_retransmissions: 5,
            max_duration: Some(Duration::from_secs(30)),
            require_message_authenticator: true,
            jitter: true,
        }
    }
}

impl ClientConfig {
    /// Sets [`initial_timeout`](Self::initial_timeout).
    pub fn with_initial_timeout(mut self, t: Duration) -> Self {
        self.initial_timeout = t;
        self
    }

    /// Sets [`max_timeout`](Self::max_timeout).
    pub fn with_max_timeout(mut self, t: Duration) -> Self {
        self.max_timeout = t;
        self
    }

    /// Sets [`max_retransmissions`](Self::max_retransmissions).
    pub fn with_max_retransmissions(mut self, n: u32) -> Self {
        self.max_retransmissions = n;
        self
    }

    /// Sets [`max_duration`](Self::max_duration).
    pub fn with_max_duration(mut self, d: Option<Duration>) -> Self {
        self.max_duration = d;
        self
    }

    /// Sets [`require_message_authenticator`](Self::require_message_authenticator).
    pub fn with_require_message_authenticator(mut self, on: bool) -> Self {
        self.require_message_authenticator = on;
        self
    }

    /// Sets [`jitter`](Self::jitter).
    pub fn with_jitter(mut self, on: bool) -> Self {
        self.jitter = on;
        self
    }
}

/// `now + d`, saturating far in the future instead of overflowing.
fn later(now: Instant, d: Duration) -> Instant {
    now.checked_add(d)
        .or_else(|| now.checked_add(Duration::from_secs(86_400 * 365)))
        .unwrap_or(now)
}

/// One step of SplitMix64: spreads the per-request seed drawn from the injected RNG over
/// the retransmissions (jitter only, not a secret).
fn next_jitter(state: &mut u64) -> u64 {
    *state = state.wrapping_add(0x9e37_79b9_7f4a_7c15);
    let mut z = *state;
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// `d` scaled by a factor uniform in [0.9, 1.1] drawn from `r`.
fn jittered(d: Duration, r: u64) -> Duration {
    let permyriad = 9_000 + u128::from(r % 2_001); // 9000..=11000
    let nanos = d.as_nanos().saturating_mul(permyriad) / 10_000;
    Duration::from_nanos(u64::try_from(nanos).unwrap_or(u64::MAX))
}

/// Names one request for the life of a [`Client`] (identifiers are reused, these are not).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct RequestId(pub u64);

/// Something the client reports outside a response.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum ClientEvent {
    /// The request got no valid response within the retransmission budget; its identifier
    /// is free again.
    Timeout(RequestId),
}

/// Counters of what the client did and dropped.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct ClientStats {
    /// Requests started.
    pub requests: u64,
    /// Valid responses delivered.
    pub responses: u64,
    /// Retransmissions sent.
    pub retransmissions: u64,
    /// Requests given up.
    pub timeouts: u64,
    /// Datagrams dropped: Response Authenticator did not verify.
    pub dropped_bad_authenticator: u64,
    /// Datagrams dropped: Message-Authenticator missing where required, or wrong.
    pub dropped_bad_message_authenticator: u64,
    /// Datagrams dropped: no request in flight with that identifier.
    pub dropped_unknown_id: u64,
    /// Datagrams dropped: unparsable, wrong code for the request, or undecryptable MPPE keys.
    pub dropped_malformed: u64,
}

/// A verified response.
#[derive(Clone)]
pub struct Response {
    packet: Packet,
    mppe: Option<MppeKeys>,
}

impl Response {
    /// The response code (Access-Accept, -Reject, -Challenge, Accounting-Response).
    pub fn code(&self) -> Code {
        self.packet.code
    }

    /// All attributes, in wire order (Message-Authenticator included).
    pub fn attributes(&self) -> &[Attribute] {
        &self.packet.attributes
    }

    /// The first attribute of type `typ`.
    pub fn attribute(&self, typ: AttributeType) -> Option<&Attribute> {
        self.packet.attribute(typ)
    }

    /// The reassembled EAP packet, if the response carries EAP-Message attributes.
    pub fn eap_message(&self) -> Option<Vec<u8>> {
        self.packet.eap_message()
    }

    /// The State attribute, to be echoed in the next Access-Request.
    pub fn state(&self) -> Option<&[u8]> {
        self.packet.state()
    }

    /// The decrypted MS-MPPE keys of an Access-Accept, if it carried them.
    pub fn mppe_keys(&self) -> Option<&MppeKeys> {
        self.mppe.as_ref()
    }

    /// The whole parsed packet.
    pub fn packet(&self) -> &Packet {
        &self.packet
    }
}

impl core::fmt::Debug for Response {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Response")
            .field("code", &self.packet.code)
            .field("identifier", &self.packet.identifier)
            .field("attributes", &self.packet.attributes.len())
            .field("mppe_keys", &self.mppe.is_some())
            .finish()
    }
}

struct InFlight {
    id: RequestId,
    code: Code,
    authenticator: [u8; AUTHENTICATOR_LEN],
    bytes: Vec<u8>,
    started: Instant,
    deadline: Instant,
    rto: Duration,
    retransmissions: u32,
    jitter: u64,
}

/// The sans-IO RADIUS client for one server and one source port: at most 256 requests in
/// flight, one per identifier.
pub struct Client {
    secret: Secret,
    config: ClientConfig,
    in_flight: BTreeMap<u8, InFlight>,
    next_identifier: u8,
    next_request: u64,
    transmit: VecDeque<Vec<u8>>,
    events: VecDeque<ClientEvent>,
    stats: ClientStats,
}

impl core::fmt::Debug for Client {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Client")
            .field("config", &self.config)
            .field("in_flight", &self.in_flight.len())
            .field("stats", &self.stats)
            .finish()
    }
}

impl Client {
    /// A client sharing `secret` with its server.
    pub fn new(secret: impl Into<Secret>, config: ClientConfig) -> Self {
        Client {
            secret: secret.into(),
            config,
            in_flight: BTreeMap::new(),
            next_identifier: 0,
            next_request: 0,
            transmit: VecDeque::new(),
            events: VecDeque::new(),
            stats: ClientStats::default(),
        }
    }

    /// The configuration.
    pub fn config(&self) -> &ClientConfig {
        &self.config
    }

    /// Counters so far.
    pub fn stats(&self) -> ClientStats {
        self.stats
    }

    /// Requests waiting for a response.
    pub fn in_flight(&self) -> usize {
        self.in_flight.len()
    }

    /// Starts a request: picks a free identifier, draws a random Request Authenticator
    /// (Access-Request, Status-Server) or computes the RFC 2866 one (Accounting-Request),
    /// adds a Message-Authenticator as the first attribute of Access-Request and
    /// Status-Server (any given one is replaced), and queues the bytes for
    /// [`poll_transmit`](Self::poll_transmit).
    pub fn start<R: RngCore + CryptoRng>(
        &mut self,
        code: Code,
        attributes: Vec<Attribute>,
        now: Instant,
        rng: &mut R,
    ) -> Result<RequestId, Error> {
        if !code.is_client_request() {
            return Err(Error::NotARequest(code));
        }
        let identifier = self.free_identifier().ok_or(Error::NoFreeIdentifier)?;
        let mut packet = Packet::new(code, identifier);
        let user_attrs = attributes
            .into_iter()
            .filter(|a| a.typ != AttributeType::MESSAGE_AUTHENTICATOR);
        if code == Code::ACCOUNTING_REQUEST {
            packet.attributes.extend(user_attrs);
        } else {
            packet.authenticator = random_authenticator(rng);
            packet.attributes.push(message_authenticator_placeholder());
            packet.attributes.extend(user_attrs);
        }
        let bytes = encode_request(&packet, self.secret.expose())?;
        let authenticator: [u8; AUTHENTICATOR_LEN] = bytes
            .get(4..HEADER_LEN)
            .and_then(|s| s.try_into().ok())
            .ok_or(Error::TooShort { len: bytes.len() })?;
        let id = RequestId(self.next_request);
        self.next_request += 1;
        let mut jitter = rng.next_u64();
        let rto = self.randomize(self.config.initial_timeout, &mut jitter);
        self.in_flight.insert(
            identifier,
            InFlight {
                id,
                code,
                authenticator,
                bytes: bytes.clone(),
                started: now,
                deadline: self.clip(now, later(now, rto)),
                rto,
                retransmissions: 0,
                jitter,
            },
        );
        self.next_identifier = identifier.wrapping_add(1);
        self.transmit.push_back(bytes);
        self.stats.requests += 1;
        Ok(id)
    }

    /// Stops tracking a request (its caller lost interest): its identifier is free again and
    /// any transmission of it still queued is withdrawn. Returns whether it was in flight.
    pub fn cancel(&mut self, id: RequestId) -> bool {
        let key = self
            .in_flight
            .iter()
            .find(|(_, f)| f.id == id)
            .map(|(k, _)| *k);
        match key.and_then(|k| self.in_flight.remove(&k)) {
            Some(f) => {
                self.transmit.retain(|b| *b != f.bytes);
                true
            }
            None => false,
        }
    }

    fn free_identifier(&self) -> Option<u8> {
        (0..=255u8)
            .map(|i| self.next_identifier.wrapping_add(i))
            .find(|i| !self.in_flight.contains_key(i))
    }

    fn clip(&self, started: Instant, deadline: Instant) -> Instant {
        match self.config.max_duration {
            Some(d) => deadline.min(later(started, d)),
            None => deadline,
        }
    }

    fn randomize(&self, d: Duration, state: &mut u64) -> Duration {
        if self.config.jitter {
            jittered(d, next_jitter(state))
        } else {
            d
        }
    }

    /// The next datagram to send to the server.
    pub fn poll_transmit(&mut self) -> Option<Vec<u8>> {
        self.transmit.pop_front()
    }

    /// The next event.
    pub fn poll_event(&mut self) -> Option<ClientEvent> {
        self.events.pop_front()
    }

    /// The earliest retransmission or give-up deadline.
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.in_flight.values().map(|f| f.deadline).min()
    }

    /// Retransmits (same bytes, same identifier and authenticator, RFC 5080 §2.2.1) every
    /// request whose deadline has passed, doubling its timeout up to the maximum; gives up
    /// on those past their retransmission count or total duration. Safe to call too often.
    pub fn handle_timeout(&mut self, now: Instant) {
        let config = self.config.clone();
        let mut expired = Vec::new();
        let mut due = Vec::new();
        for (identifier, f) in self.in_flight.iter() {
            if f.deadline > now {
                continue;
            }
            let out_of_time = config
                .max_duration
                .is_some_and(|d| now >= later(f.started, d));
            if out_of_time || f.retransmissions >= config.max_retransmissions {
                expired.push(*identifier);
            } else {
                due.push(*identifier);
            }
        }
        for identifier in due {
            let Some(mut f) = self.in_flight.remove(&identifier) else {
                continue;
            };
            // RFC 5080 §2.2.1: RT = 2·RTprev + RAND·RTprev, and past MRT, MRT + RAND·MRT,
            // with RAND uniform in [-0.1, 0.1].
            f.retransmissions += 1;
            let next = f.rto.saturating_add(self.randomize(f.rto, &mut f.jitter));
            f.rto = if next > config.max_timeout {
                self.randomize(config.max_timeout, &mut f.jitter)
            } else {
                next
            };
            f.deadline = self.clip(f.started, later(now, f.rto));
            self.transmit.push_back(f.bytes.clone());
            self.stats.retransmissions += 1;
            tracing::debug!(
                identifier,
                retransmission = f.retransmissions,
                "RADIUS retransmit"
            );
            self.in_flight.insert(identifier, f);
        }
        for identifier in expired {
            if let Some(f) = self.in_flight.remove(&identifier) {
                self.stats.timeouts += 1;
                tracing::debug!(identifier, "RADIUS request timed out");
                self.events.push_back(ClientEvent::Timeout(f.id));
            }
        }
    }

    /// Handles a datagram from the server. Returns the response it completes, after checking
    /// the identifier, the code, the Response Authenticator, the Message-Authenticator
    /// (required for Access-Request and Status-Server, and whenever EAP-Message is present)
    /// and the MPPE keys. Anything else is dropped and counted in [`ClientStats`].
    pub fn handle_datagram(
        &mut self,
        datagram: &[u8],
        _now: Instant,
    ) -> Option<(RequestId, Response)> {
        match self.verify(datagram) {
            Ok((identifier, response)) => {
                let f = self.in_flight.remove(&identifier)?;
                self.stats.responses += 1;
                Some((f.id, response))
            }
            Err(reason) => {
                tracing::debug!(?reason, "RADIUS response dropped");
                let counter = match reason {
                    Dropped::Malformed => &mut self.stats.dropped_malformed,
                    Dropped::UnknownId => &mut self.stats.dropped_unknown_id,
                    Dropped::BadAuthenticator => &mut self.stats.dropped_bad_authenticator,
                    Dropped::BadMessageAuthenticator => {
                        &mut self.stats.dropped_bad_message_authenticator
                    }
                };
                *counter += 1;
                None
            }
        }
    }

    /// Verifies a datagram against the request in flight with its identifier.
    fn verify(&self, datagram: &[u8]) -> Result<(u8, Response), Dropped> {
        let packet = Packet::parse(datagram)?;
        let f = self
            .in_flight
            .get(&packet.identifier)
            .ok_or(Dropped::UnknownId)?;
        if !f.code.accepts_response(packet.code) {
            return Err(Dropped::Malformed);
        }
        let secret = self.secret.expose();
        verify_response_authenticator(datagram, &f.authenticator, secret)?;
        let required = packet.has_eap_message()
            || (self.config.require_message_authenticator && f.code != Code::ACCOUNTING_REQUEST);
        let present = verify_message_authenticator(datagram, &f.authenticator, secret, required)?;
        if required && !present {
            return Err(Dropped::BadMessageAuthenticator);
        }
        let mppe = extract_mppe_keys(&packet, secret, &f.authenticator)?;
        Ok((packet.identifier, Response { packet, mppe }))
    }
}

/// Why a datagram was dropped, one per counter.
#[derive(Debug, Clone, Copy)]
enum Dropped {
    Malformed,
    UnknownId,
    BadAuthenticator,
    BadMessageAuthenticator,
}

impl From<Error> for Dropped {
    fn from(e: Error) -> Self {
        match e {
            Error::BadResponseAuthenticator => Dropped::BadAuthenticator,
            Error::BadMessageAuthenticator
            | Error::MissingMessageAuthenticator
            | Error::BadMessageAuthenticatorAttribute => Dropped::BadMessageAuthenticator,
            _ => Dropped::Malformed,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::auth::encode_response;
    use crate::mppe::mppe_attributes;
    use crate::packet::eap_message_attributes;
    use rand::{rngs::StdRng, SeedableRng};

    const SECRET: &[u8] = b"testing123";

    fn client(config: ClientConfig) -> Client {
        Client::new(SECRET, config)
    }

    fn eap_identity() -> Vec<Attribute> {
        let mut a = vec![Attribute::new(AttributeType::USER_NAME, b"meter1".to_vec())];
        a.extend(eap_message_attributes(&[
            2, 0, 0, 11, 1, b'm', b'e', b't', b'e', b'r', b'1',
        ]));
        a
    }

    /// What a server would answer: a Challenge with MA and the right authenticators.
    fn answer(request: &[u8], code: Code, extra: Vec<Attribute>, secret: &[u8]) -> Vec<u8> {
        let req = Packet::parse(request).unwrap();
        let mut p = Packet::new(code, req.identifier);
        p.attributes.push(message_authenticator_placeholder());
        p.attributes.extend(extra);
        encode_response(&p, &req.authenticator, secret).unwrap()
    }

    #[test]
    fn request_is_well_formed() {
        let mut rng = StdRng::seed_from_u64(1);
        let mut c = client(ClientConfig::default().with_jitter(false));
        let now = Instant::now();
        c.start(Code::ACCESS_REQUEST, eap_identity(), now, &mut rng)
            .unwrap();
        let bytes = c.poll_transmit().unwrap();
        let p = Packet::parse(&bytes).unwrap();
        assert_eq!(p.code, Code::ACCESS_REQUEST);
        assert_eq!(p.attributes[0].typ, AttributeType::MESSAGE_AUTHENTICATOR);
        assert_eq!(
            verify_message_authenticator(&bytes, &p.authenticator, SECRET, true),
            Ok(true)
        );
        assert_ne!(p.authenticator, [0; 16]);
        assert_eq!(p.user_name(), Some(&b"meter1"[..]));
        assert!(c.poll_transmit().is_none());
        assert_eq!(c.poll_timeout(), Some(now + Duration::from_secs(2)));
        assert_eq!(
            c.start(Code::ACCESS_ACCEPT, vec![], now, &mut rng),
            Err(Error::NotARequest(Code::ACCESS_ACCEPT))
        );
    }

    #[test]
    fn challenge_is_verified_and_delivered() {
        let mut rng = StdRng::seed_from_u64(2);
        let mut c = client(ClientConfig::default());
        let now = Instant::now();
        let id = c
            .start(Code::ACCESS_REQUEST, eap_identity(), now, &mut rng)
            .unwrap();
        let req = c.poll_transmit().unwrap();
        let mut extra = eap_message_attributes(&[1, 1, 0, 6, 47, 1]);
        extra.push(Attribute::new(AttributeType::STATE, b"st".to_vec()));
        let resp = answer(&req, Code::ACCESS_CHALLENGE, extra, SECRET);
        let (got, r) = c.handle_datagram(&resp, now).unwrap();
        assert_eq!(got, id);
        assert_eq!(r.code(), Code::ACCESS_CHALLENGE);
        assert_eq!(r.eap_message().unwrap(), [1, 1, 0, 6, 47, 1]);
        assert_eq!(r.state(), Some(&b"st"[..]));
        assert!(r.mppe_keys().is_none());
        assert_eq!(c.in_flight(), 0);
        assert_eq!(c.poll_timeout(), None);
        // A duplicate of the same response is now for an unknown identifier.
        assert!(c.handle_datagram(&resp, now).is_none());
        assert_eq!(c.stats().dropped_unknown_id, 1);
        assert_eq!(c.stats().responses, 1);
    }

    #[test]
    fn accept_with_mppe_keys_decrypted_with_request_authenticator() {
        let mut rng = StdRng::seed_from_u64(3);
        let mut c = client(ClientConfig::default());
        let now = Instant::now();
        c.start(Code::ACCESS_REQUEST, eap_identity(), now, &mut rng)
            .unwrap();
        let req = c.poll_transmit().unwrap();
        let req_auth = Packet::parse(&req).unwrap().authenticator;
        let msk: Vec<u8> = (0..64u8).map(|i| i.wrapping_mul(7)).collect();
        let keys = MppeKeys::from_msk(&msk).unwrap();
        let mut extra = eap_message_attributes(&[3, 2, 0, 4]);
        extra.extend(mppe_attributes(&keys, SECRET, &req_auth, &mut rng).unwrap());
        let resp = answer(&req, Code::ACCESS_ACCEPT, extra, SECRET);
        let (_, r) = c.handle_datagram(&resp, now).unwrap();
        assert_eq!(&*r.mppe_keys().unwrap().msk(), &msk[..]);
    }

    #[test]
    fn bad_responses_are_dropped_and_counted() {
        let mut rng = StdRng::seed_from_u64(4);
        let mut c = client(ClientConfig::default());
        let now = Instant::now();
        c.start(Code::ACCESS_REQUEST, eap_identity(), now, &mut rng)
            .unwrap();
        let req = c.poll_transmit().unwrap();
        let eap = eap_message_attributes(&[1, 1, 0, 4]);

        // Wrong secret: the Response Authenticator fails first.
        let wrong = answer(&req, Code::ACCESS_CHALLENGE, eap.clone(), b"other");
        assert!(c.handle_datagram(&wrong, now).is_none());
        assert_eq!(c.stats().dropped_bad_authenticator, 1);

        // Right Response Authenticator but a corrupted Message-Authenticator.
        let req_p = Packet::parse(&req).unwrap();
        let mut p = Packet::new(Code::ACCESS_CHALLENGE, req_p.identifier);
        p.attributes.push(Attribute::new(
            AttributeType::MESSAGE_AUTHENTICATOR,
            vec![0x55; 16],
        ));
        p.attributes.extend(eap.clone());
        let mut bytes = p.to_bytes().unwrap();
        let ra = crate::auth::response_authenticator(&bytes, &req_p.authenticator, SECRET).unwrap();
        bytes[4..20].copy_from_slice(&ra);
        assert!(c.handle_datagram(&bytes, now).is_none());
        assert_eq!(c.stats().dropped_bad_message_authenticator, 1);

        // EAP-Message without Message-Authenticator.
        let mut p = Packet::new(Code::ACCESS_CHALLENGE, req_p.identifier);
        p.attributes.extend(eap.clone());
        let bytes = encode_response(&p, &req_p.authenticator, SECRET).unwrap();
        assert!(c.handle_datagram(&bytes, now).is_none());
        assert_eq!(c.stats().dropped_bad_message_authenticator, 2);

        // Wrong code for the request, garbage, unknown identifier.
        let acct = answer(&req, Code::ACCOUNTING_RESPONSE, vec![], SECRET);
        assert!(c.handle_datagram(&acct, now).is_none());
        assert!(c.handle_datagram(&[1, 2, 3], now).is_none());
        assert_eq!(c.stats().dropped_malformed, 2);
        let mut other = answer(&req, Code::ACCESS_CHALLENGE, eap.clone(), SECRET);
        other[1] = other[1].wrapping_add(1);
        assert!(c.handle_datagram(&other, now).is_none());
        assert_eq!(c.stats().dropped_unknown_id, 1);

        // The request is still in flight and the genuine answer is accepted.
        assert_eq!(c.in_flight(), 1);
        let good = answer(&req, Code::ACCESS_CHALLENGE, eap, SECRET);
        assert!(c.handle_datagram(&good, now).is_some());
    }

    #[test]
    fn retransmits_same_bytes_with_backoff_then_times_out() {
        let mut rng = StdRng::seed_from_u64(5);
        let config = ClientConfig::default()
            .with_initial_timeout(Duration::from_secs(2))
            .with_max_timeout(Duration::from_secs(10))
            .with_max_retransmissions(4)
            .with_max_duration(None)
            .with_jitter(false);
        let mut c = client(config);
        let t0 = Instant::now();
        let id = c
            .start(Code::ACCESS_REQUEST, eap_identity(), t0, &mut rng)
            .unwrap();
        let first = c.poll_transmit().unwrap();
        let mut now = t0;
        let mut gaps = Vec::new();
        // A virtual clock that jumps to each deadline.
        while let Some(deadline) = c.poll_timeout() {
            // Too early: nothing happens.
            c.handle_timeout(deadline - Duration::from_millis(1));
            assert!(c.poll_transmit().is_none());
            gaps.push(deadline - now);
            now = deadline;
            c.handle_timeout(now);
            if let Some(again) = c.poll_transmit() {
                assert_eq!(
                    again, first,
                    "retransmission must reuse id and authenticator"
                );
            }
        }
        let secs: Vec<u64> = gaps.iter().map(|d| d.as_secs()).collect();
        assert_eq!(secs, [2, 4, 8, 10, 10]);
        assert_eq!(c.poll_event(), Some(ClientEvent::Timeout(id)));
        assert_eq!(c.poll_event(), None);
        assert_eq!(c.stats().retransmissions, 4);
        assert_eq!(c.stats().timeouts, 1);
        assert_eq!(c.in_flight(), 0);
    }

    #[test]
    fn max_duration_cuts_retransmissions_short() {
        let mut rng = StdRng::seed_from_u64(6);
        let config = ClientConfig::default().with_jitter(false); // 2, 4, 8, 16 .. but MRD 30 s
        let mut c = client(config);
        let t0 = Instant::now();
        c.start(Code::STATUS_SERVER, vec![], t0, &mut rng).unwrap();
        assert!(c.poll_transmit().is_some());
        let mut times = vec![0];
        while let Some(d) = c.poll_timeout() {
            c.handle_timeout(d);
            while c.poll_transmit().is_some() {
                times.push((d - t0).as_secs());
            }
        }
        assert_eq!(times, [0, 2, 6, 14]);
        assert_eq!(c.stats().timeouts, 1);
        // Three retransmissions fit in the 30 s budget; the fourth deadline was cut to 30 s.
        assert_eq!(c.stats().retransmissions, 3);
    }

    #[test]
    fn identifiers_exhaust_at_256_and_free_on_completion() {
        let mut rng = StdRng::seed_from_u64(7);
        let mut c = client(ClientConfig::default());
        let now = Instant::now();
        let mut requests = Vec::new();
        for _ in 0..256 {
            c.start(Code::ACCESS_REQUEST, eap_identity(), now, &mut rng)
                .unwrap();
            requests.push(c.poll_transmit().unwrap());
        }
        let mut ids: Vec<u8> = requests.iter().map(|r| r[1]).collect();
        ids.sort_unstable();
        ids.dedup();
        assert_eq!(ids.len(), 256);
        assert_eq!(
            c.start(Code::ACCESS_REQUEST, eap_identity(), now, &mut rng),
            Err(Error::NoFreeIdentifier)
        );
        let resp = answer(&requests[17], Code::ACCESS_REJECT, vec![], SECRET);
        assert!(c.handle_datagram(&resp, now).is_some());
        c.start(Code::ACCESS_REQUEST, eap_identity(), now, &mut rng)
            .unwrap();
        assert_eq!(c.poll_transmit().unwrap()[1], requests[17][1]);
    }

    #[test]
    fn many_more_than_256_requests_through_256_identifiers_over_time() {
        let mut rng = StdRng::seed_from_u64(8);
        let mut c = client(ClientConfig::default());
        let mut now = Instant::now();
        let mut outstanding: VecDeque<(RequestId, Vec<u8>)> = VecDeque::new();
        let mut done = 0;
        let mut next_auths = std::collections::HashSet::new();
        while done < 1024 {
            // Fill the window, then answer the oldest half.
            loop {
                match c.start(Code::ACCESS_REQUEST, eap_identity(), now, &mut rng) {
                    Ok(id) => outstanding.push_back((id, c.poll_transmit().unwrap())),
                    Err(Error::NoFreeIdentifier) => break,
                    Err(e) => panic!("{e}"),
                }
            }
            assert_eq!(c.in_flight(), 256);
            for _ in 0..128 {
                let (id, req) = outstanding.pop_front().unwrap();
                assert!(
                    next_auths.insert(req[4..20].to_vec()),
                    "authenticator reused"
                );
                let resp = answer(&req, Code::ACCESS_ACCEPT, vec![], SECRET);
                let (got, _) = c.handle_datagram(&resp, now).unwrap();
                assert_eq!(got, id);
                done += 1;
            }
            now += Duration::from_millis(100);
            c.handle_timeout(now);
        }
        assert_eq!(c.stats().responses, 1024);
        assert_eq!(c.stats().timeouts, 0);
    }

    #[test]
    fn accounting_request_needs_no_message_authenticator_in_response() {
        let mut rng = StdRng::seed_from_u64(9);
        let mut c = client(ClientConfig::default());
        let now = Instant::now();
        c.start(
            Code::ACCOUNTING_REQUEST,
            vec![Attribute::integer(AttributeType::ACCT_STATUS_TYPE, 1)],
            now,
            &mut rng,
        )
        .unwrap();
        let req = c.poll_transmit().unwrap();
        assert_eq!(
            crate::auth::accounting_request_authenticator(&req, SECRET).unwrap(),
            req[4..20]
        );
        let p = Packet::parse(&req).unwrap();
        let resp = encode_response(
            &Packet::new(Code::ACCOUNTING_RESPONSE, p.identifier),
            &p.authenticator,
            SECRET,
        )
        .unwrap();
        assert!(c.handle_datagram(&resp, now).is_some());
    }

    #[test]
    fn jitter_stays_within_ten_percent_and_varies() {
        let mut rng = StdRng::seed_from_u64(11);
        let config = ClientConfig::default()
            .with_max_retransmissions(6)
            .with_max_duration(None);
        let mut c = client(config);
        let t0 = Instant::now();
        let mut starts = Vec::new();
        for _ in 0..20 {
            c.start(Code::STATUS_SERVER, vec![], t0, &mut rng).unwrap();
            starts.push(c.poll_transmit().unwrap());
        }
        // Gaps: IRT ± 10 %, then 2·prev ± 0.1·prev, capped to MRT ± 10 %.
        let mut per_request: std::collections::BTreeMap<u8, Vec<Instant>> = Default::default();
        while let Some(now) = c.poll_timeout() {
            c.handle_timeout(now);
            while let Some(b) = c.poll_transmit() {
                per_request.entry(b[1]).or_default().push(now);
            }
        }
        let mut first_gaps = std::collections::HashSet::new();
        for times in per_request.values() {
            let mut prev = t0;
            let mut prev_gap: Option<f64> = None;
            for t in times {
                let gap = (*t - prev).as_secs_f64();
                let ok = match prev_gap {
                    None => (1.8..=2.2).contains(&gap),
                    Some(p) => {
                        (1.9 * p - 1e-6..=2.1 * p + 1e-6).contains(&gap)
                            || (1.9 * p > 14.4 && (14.4..=17.6).contains(&gap))
                    }
                };
                assert!(ok, "gap {gap} after {prev_gap:?}");
                first_gaps.insert((gap * 1e6) as u64);
                prev = *t;
                prev_gap = Some(gap);
            }
            assert_eq!(times.len(), 6);
        }
        assert!(first_gaps.len() > 20, "jitter must vary between requests");
        assert_eq!(c.stats().timeouts, 20);
    }

    /// An RNG that hands out fixed bytes, to replay a published request.
    struct Replay(Vec<u8>);

    impl RngCore for Replay {
        fn next_u32(&mut self) -> u32 {
            0
        }
        fn next_u64(&mut self) -> u64 {
            0
        }
        fn fill_bytes(&mut self, dest: &mut [u8]) {
            let n = dest.len().min(self.0.len());
            dest[..n].copy_from_slice(&self.0[..n]);
            self.0.drain(..n);
        }
        fn try_fill_bytes(&mut self, dest: &mut [u8]) -> Result<(), rand_core::Error> {
            self.fill_bytes(dest);
            Ok(())
        }
    }
    impl CryptoRng for Replay {}

    /// RFC 5997 §6 through the client: with the published Request Authenticator and
    /// identifier 0xda the client emits the published Status-Server byte for byte, and the
    /// published Access-Accept (which has no Message-Authenticator) is accepted only when
    /// the client does not require one.
    #[test]
    fn rfc5997_status_server_through_the_client() {
        let request = hex::decode(
            "0cda00268a54f4686fb394c52866e302185d062350125a665e2e1e8411f3e243822097c84fa3",
        )
        .unwrap();
        let response = hex::decode("02da0014ef0d552a4bf2d693ec2b6fe8b5411d66").unwrap();
        for require in [true, false] {
            let config = ClientConfig::default().with_require_message_authenticator(require);
            let mut c = Client::new(&b"xyzzy5461"[..], config);
            let now = Instant::now();
            let mut rng = StdRng::seed_from_u64(0);
            // Burn identifiers 0..=0xd9.
            for _ in 0..0xda {
                let id = c.start(Code::STATUS_SERVER, vec![], now, &mut rng).unwrap();
                assert!(c.cancel(id));
            }
            let mut replay = Replay(request[4..20].to_vec());
            let id = c
                .start(Code::STATUS_SERVER, vec![], now, &mut replay)
                .unwrap();
            let sent = std::iter::from_fn(|| c.poll_transmit()).last().unwrap();
            assert_eq!(sent, request);
            let got = c.handle_datagram(&response, now);
            if require {
                assert!(got.is_none());
                assert_eq!(c.stats().dropped_bad_message_authenticator, 1);
            } else {
                let (rid, r) = got.unwrap();
                assert_eq!(rid, id);
                assert_eq!(r.code(), Code::ACCESS_ACCEPT);
            }
        }
    }

    #[test]
    fn cancel_frees_the_identifier() {
        let mut rng = StdRng::seed_from_u64(10);
        let mut c = client(ClientConfig::default());
        let now = Instant::now();
        let id = c.start(Code::STATUS_SERVER, vec![], now, &mut rng).unwrap();
        assert!(c.cancel(id));
        assert!(!c.cancel(id));
        // The queued first transmission was withdrawn.
        assert!(c.poll_transmit().is_none());
        assert_eq!(c.in_flight(), 0);
        assert_eq!(c.poll_timeout(), None);
    }
}
