//! The sans-IO RADIUS server for EAP: verification, duplicate detection (RFC 5080 §2.2.2)
//! and reply encoding. The EAP work is the [`AccessHandler`]'s.

use std::collections::{HashMap, VecDeque};
use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant};

use rand_core::{CryptoRng, OsRng, RngCore};

use crate::attribute::Attribute;
use crate::auth::{
    hmac_with, response_authenticator, verify_message_authenticator_keyed, Secret,
    MESSAGE_AUTHENTICATOR_LEN,
};
use crate::code::{AttributeType, Code};
use crate::error::Error;
use crate::mppe::{mppe_attributes, MppeKeys};
use crate::packet::{
    eap_message_attributes, Packet, AUTHENTICATOR_LEN, HEADER_LEN, MAX_PACKET_LEN,
};

/// Encoded length of one MS-MPPE key attribute carrying a 32-byte key: type, length, vendor
/// id, vendor type, vendor length, salt, and 48 bytes of encrypted key.
const MPPE_ATTRIBUTE_LEN: usize = 2 + 4 + 2 + 2 + 48;

/// An Access-Request that passed verification, as the handler sees it.
#[derive(Debug, Clone)]
pub struct AccessRequest {
    source: SocketAddr,
    packet: Packet,
}

impl AccessRequest {
    /// The client's address.
    pub fn source(&self) -> SocketAddr {
        self.source
    }

    /// The request identifier.
    pub fn identifier(&self) -> u8 {
        self.packet.identifier
    }

    /// All attributes, in wire order.
    pub fn attributes(&self) -> &[Attribute] {
        &self.packet.attributes
    }

    /// The first attribute of type `typ`.
    pub fn attribute(&self, typ: AttributeType) -> Option<&Attribute> {
        self.packet.attribute(typ)
    }

    /// The reassembled EAP packet, if any.
    pub fn eap_message(&self) -> Option<Vec<u8>> {
        self.packet.eap_message()
    }

    /// The State attribute echoed from a previous Access-Challenge.
    pub fn state(&self) -> Option<&[u8]> {
        self.packet.state()
    }

    /// The User-Name attribute.
    pub fn user_name(&self) -> Option<&[u8]> {
        self.packet.user_name()
    }

    /// The whole parsed packet.
    pub fn packet(&self) -> &Packet {
        &self.packet
    }
}

/// What the handler answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum ReplyKind {
    /// Access-Challenge.
    Challenge,
    /// Access-Accept.
    Accept,
    /// Access-Reject.
    Reject,
    /// Send nothing (the request is silently discarded, and so are its retransmissions).
    Discard,
}

/// A reply to an Access-Request, before encoding. The server adds Message-Authenticator,
/// the Response Authenticator, encrypted MPPE keys and the request's Proxy-State attributes.
#[derive(Clone)]
pub struct Reply {
    kind: ReplyKind,
    attributes: Vec<Attribute>,
    mppe: Option<MppeKeys>,
}

impl core::fmt::Debug for Reply {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Reply")
            .field("kind", &self.kind)
            .field("attributes", &self.attributes)
            .field("mppe_keys", &self.mppe.is_some())
            .finish()
    }
}

fn eap_attrs(eap: &[u8]) -> Vec<Attribute> {
    if eap.is_empty() {
        Vec::new()
    } else {
        eap_message_attributes(eap)
    }
}

impl Reply {
    /// An Access-Challenge carrying `eap` and a State attribute (omitted if `state` is empty).
    pub fn challenge(eap: &[u8], state: &[u8]) -> Self {
        let mut attributes = eap_attrs(eap);
        if !state.is_empty() {
            attributes.push(Attribute::new(AttributeType::STATE, state));
        }
        Reply {
            kind: ReplyKind::Challenge,
            attributes,
            mppe: None,
        }
    }

    /// An Access-Accept carrying `eap` (typically EAP-Success; omitted if empty).
    pub fn accept(eap: &[u8]) -> Self {
        Reply {
            kind: ReplyKind::Accept,
            attributes: eap_attrs(eap),
            mppe: None,
        }
    }

    /// An Access-Accept carrying `eap` and the two MPPE keys, encrypted by the server with
    /// the request's authenticator (RFC 2548 §2.4.2-3).
    pub fn accept_with_mppe(eap: &[u8], recv_key: &[u8], send_key: &[u8]) -> Self {
        let mut r = Reply::accept(eap);
        r.mppe = Some(MppeKeys {
            recv: zeroize::Zeroizing::new(recv_key.to_vec()),
            send: zeroize::Zeroizing::new(send_key.to_vec()),
        });
        r
    }

    /// An Access-Accept with the MPPE keys cut from a 64-byte MSK the RFC 5216 way:
    /// Recv-Key = MSK\[0..32\], Send-Key = MSK\[32..64\]. `None` if `msk` is shorter than 64.
    pub fn accept_with_msk(eap: &[u8], msk: &[u8]) -> Option<Self> {
        let mut r = Reply::accept(eap);
        r.mppe = Some(MppeKeys::from_msk(msk)?);
        Some(r)
    }

    /// An Access-Reject carrying `eap` (typically EAP-Failure; omitted if empty).
    pub fn reject(eap: &[u8]) -> Self {
        Reply {
            kind: ReplyKind::Reject,
            attributes: eap_attrs(eap),
            mppe: None,
        }
    }

    /// No answer at all.
    pub fn discard() -> Self {
        Reply {
            kind: ReplyKind::Discard,
            attributes: Vec::new(),
            mppe: None,
        }
    }

    /// Adds an attribute (a Message-Authenticator given here is ignored; the server adds its
    /// own).
    pub fn with_attribute(mut self, attribute: Attribute) -> Self {
        self.attributes.push(attribute);
        self
    }

    /// The kind of reply.
    pub fn kind(&self) -> ReplyKind {
        self.kind
    }

    /// The attributes given so far (without what the server adds).
    pub fn attributes(&self) -> &[Attribute] {
        &self.attributes
    }
}

/// The server's application: decides each verified Access-Request.
pub trait AccessHandler {
    /// Answers one verified, non-duplicate Access-Request.
    fn handle(&mut self, request: &AccessRequest, now: Instant) -> Reply;
}

impl<F: FnMut(&AccessRequest, Instant) -> Reply> AccessHandler for F {
    fn handle(&mut self, request: &AccessRequest, now: Instant) -> Reply {
        self(request, now)
    }
}

/// Server behaviour.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct ServerConfig {
    /// How long a reply is kept to answer retransmissions of the same request. Default 30 s
    /// (RFC 5080 §2.2.2 suggests 5 to 30 s).
    pub duplicate_window: Duration,
    /// Most replies kept; the oldest go first. Default 4096. 0 disables duplicate detection.
    pub cache_capacity: usize,
    /// Drop Access-Requests without Message-Authenticator even when they carry no
    /// EAP-Message. Default true (this server only does EAP).
    pub require_message_authenticator: bool,
    /// Answer Status-Server (RFC 5997) with an Access-Accept. Default true.
    pub answer_status_server: bool,
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            duplicate_window: Duration::from_secs(30),
            cache_capacity: 4096,
            require_message_authenticator: true,
            answer_status_server: true,
        }
    }
}

impl ServerConfig {
    /// Sets [`duplicate_window`](Self::duplicate_window).
    pub fn with_duplicate_window(mut self, d: Duration) -> Self {
        self.duplicate_window = d;
        self
    }

    /// Sets [`cache_capacity`](Self::cache_capacity).
    pub fn with_cache_capacity(mut self, n: usize) -> Self {
        self.cache_capacity = n;
        self
    }

    /// Sets [`require_message_authenticator`](Self::require_message_authenticator).
    pub fn with_require_message_authenticator(mut self, on: bool) -> Self {
        self.require_message_authenticator = on;
        self
    }
}

/// Counters of what the server did and dropped.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct ServerStats {
    /// Access-Requests given to the handler.
    pub requests: u64,
    /// Status-Server requests answered.
    pub status_server: u64,
    /// Retransmitted requests answered from the cache.
    pub duplicates: u64,
    /// Datagrams dropped: unparsable.
    pub dropped_malformed: u64,
    /// Datagrams dropped: from an address with no shared secret.
    pub dropped_unknown_client: u64,
    /// Datagrams dropped: a code this server does not serve.
    pub dropped_unsupported_code: u64,
    /// Datagrams dropped: Message-Authenticator missing where required.
    pub dropped_missing_message_authenticator: u64,
    /// Datagrams dropped: Message-Authenticator wrong or malformed.
    pub dropped_bad_message_authenticator: u64,
    /// Requests the handler chose to discard.
    pub discarded: u64,
    /// Replies that could not be encoded (too long, bad key lengths).
    pub reply_errors: u64,
}

type CacheKey = (SocketAddr, u8);

struct CacheEntry {
    authenticator: [u8; AUTHENTICATOR_LEN],
    reply: Option<Vec<u8>>,
    seq: u64,
}

/// The sans-IO RADIUS server with one shared secret.
pub struct Server<H, R = OsRng> {
    secret: Option<Secret>,
    clients: HashMap<IpAddr, Secret>,
    handler: H,
    rng: R,
    config: ServerConfig,
    cache: HashMap<CacheKey, CacheEntry>,
    order: VecDeque<(CacheKey, u64, Instant)>,
    seq: u64,
    stats: ServerStats,
}

impl<H: AccessHandler> Server<H, OsRng> {
    /// A server drawing MPPE salts from the operating system's RNG.
    pub fn new(secret: impl Into<Secret>, handler: H, config: ServerConfig) -> Self {
        Server::with_rng(secret, handler, config, OsRng)
    }
}

impl<H, R> core::fmt::Debug for Server<H, R> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Server")
            .field("config", &self.config)
            .field("cached", &self.cache.len())
            .field("stats", &self.stats)
            .finish()
    }
}

impl<H: AccessHandler, R: RngCore + CryptoRng> Server<H, R> {
    /// A server with an injected RNG (used for MPPE salts).
    pub fn with_rng(secret: impl Into<Secret>, handler: H, config: ServerConfig, rng: R) -> Self {
        Server {
            secret: Some(secret.into()),
            clients: HashMap::new(),
            handler,
            rng,
            config,
            cache: HashMap::new(),
            order: VecDeque::new(),
            seq: 0,
            stats: ServerStats::default(),
        }
    }

    /// Counters so far.
    pub fn stats(&self) -> ServerStats {
        self.stats
    }

    /// Gives the client at `ip` its own shared secret (like hostapd's
    /// `radius_server_clients` file). Clients without an entry use the default secret.
    pub fn add_client(&mut self, ip: IpAddr, secret: impl Into<Secret>) {
        self.clients.insert(ip, secret.into());
    }

    /// Removes the default secret, so that only clients added with
    /// [`add_client`](Self::add_client) are served; others are dropped and counted in
    /// [`ServerStats::dropped_unknown_client`].
    pub fn only_known_clients(&mut self) {
        self.secret = None;
    }

    fn secret_for(&self, ip: IpAddr) -> Option<Secret> {
        let ip = match ip {
            IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(IpAddr::V6(v6), IpAddr::V4),
            v4 => v4,
        };
        self.clients.get(&ip).or(self.secret.as_ref()).cloned()
    }

    /// The handler.
    pub fn handler(&self) -> &H {
        &self.handler
    }

    /// The handler, mutably.
    pub fn handler_mut(&mut self) -> &mut H {
        &mut self.handler
    }

    /// Replies currently cached for duplicate detection.
    pub fn cached(&self) -> usize {
        self.cache.len()
    }

    /// Handles one datagram from `from`; returns the bytes to send back to `from`, if any.
    ///
    /// Drops (and counts) unparsable packets, packets from addresses without a secret,
    /// codes other than Access-Request and Status-Server, and packets whose
    /// Message-Authenticator is missing or wrong. A
    /// retransmission (same source, identifier and Request Authenticator within the
    /// duplicate window) gets the cached reply without calling the handler again.
    pub fn handle_datagram(
        &mut self,
        from: SocketAddr,
        datagram: &[u8],
        now: Instant,
    ) -> Option<Vec<u8>> {
        self.expire(now);
        let packet = match Packet::parse(datagram) {
            Ok(p) => p,
            Err(e) => {
                tracing::debug!(%from, error = %e, "RADIUS request dropped: malformed");
                self.stats.dropped_malformed += 1;
                return None;
            }
        };
        let Some(secret) = self.secret_for(from.ip()) else {
            tracing::debug!(%from, "RADIUS request dropped: unknown client");
            self.stats.dropped_unknown_client += 1;
            return None;
        };
        let status = packet.code == Code::STATUS_SERVER && self.config.answer_status_server;
        if packet.code != Code::ACCESS_REQUEST && !status {
            self.stats.dropped_unsupported_code += 1;
            return None;
        }
        let must_have_ma = status || self.config.require_message_authenticator;
        match verify_message_authenticator_keyed(
            datagram,
            &packet.authenticator,
            &secret,
            packet.has_eap_message(),
        ) {
            Ok(true) => {}
            Ok(false) if !must_have_ma => {}
            Ok(false) | Err(Error::MissingMessageAuthenticator) => {
                tracing::debug!(%from, "RADIUS request dropped: no Message-Authenticator");
                self.stats.dropped_missing_message_authenticator += 1;
                return None;
            }
            Err(Error::BadMessageAuthenticator | Error::BadMessageAuthenticatorAttribute) => {
                tracing::debug!(%from, "RADIUS request dropped: bad Message-Authenticator");
                self.stats.dropped_bad_message_authenticator += 1;
                return None;
            }
            Err(_) => {
                self.stats.dropped_malformed += 1;
                return None;
            }
        }

        if status {
            // RFC 5997 §3: not subject to duplicate detection.
            self.stats.status_server += 1;
            return self.encode(&secret, Reply::accept(&[]), &packet);
        }

        let key = (from, packet.identifier);
        if let Some(entry) = self.cache.get(&key) {
            if entry.authenticator == packet.authenticator {
                self.stats.duplicates += 1;
                return entry.reply.clone();
            }
        }

        self.stats.requests += 1;
        let request = AccessRequest {
            source: from,
            packet,
        };
        let reply = self.handler.handle(&request, now);
        let bytes = self.encode(&secret, reply, &request.packet);
        self.remember(key, request.packet.authenticator, bytes.clone(), now);
        bytes
    }

    fn encode(&mut self, secret: &Secret, reply: Reply, request: &Packet) -> Option<Vec<u8>> {
        let code = match reply.kind {
            ReplyKind::Challenge => Code::ACCESS_CHALLENGE,
            ReplyKind::Accept => Code::ACCESS_ACCEPT,
            ReplyKind::Reject => Code::ACCESS_REJECT,
            ReplyKind::Discard => {
                self.stats.discarded += 1;
                return None;
            }
        };
        match self.try_encode(secret, code, reply, request) {
            Ok(bytes) => Some(bytes),
            Err(e) => {
                tracing::warn!(error = %e, "RADIUS reply could not be encoded");
                self.stats.reply_errors += 1;
                None
            }
        }
    }

    /// Encodes the reply straight into its datagram: header, Message-Authenticator, the
    /// handler's attributes, MPPE keys, Proxy-State; then the Message-Authenticator and the
    /// Response Authenticator are computed in place (same bytes as [`crate::auth::encode_response`] gives for
    /// the equivalent [`Packet`], without building one).
    fn try_encode(
        &mut self,
        secret: &Secret,
        code: Code,
        reply: Reply,
        request: &Packet,
    ) -> Result<Vec<u8>, Error> {
        let attributes = reply
            .attributes
            .iter()
            .filter(|a| a.typ != AttributeType::MESSAGE_AUTHENTICATOR);
        let estimate = attributes
            .clone()
            .chain(request.attributes_of(AttributeType::PROXY_STATE))
            .fold(HEADER_LEN + 2 + MESSAGE_AUTHENTICATOR_LEN, |n, a| {
                n.saturating_add(a.buffer_len())
            });
        let mut out = Vec::with_capacity(estimate + 2 * MPPE_ATTRIBUTE_LEN);
        out.extend_from_slice(&[code.0, request.identifier, 0, 0]);
        out.extend_from_slice(&request.authenticator);
        out.extend_from_slice(&[
            AttributeType::MESSAGE_AUTHENTICATOR.0,
            (2 + MESSAGE_AUTHENTICATOR_LEN) as u8,
        ]);
        let ma_offset = out.len();
        out.extend_from_slice(&[0; MESSAGE_AUTHENTICATOR_LEN]);
        for a in attributes {
            a.emit(&mut out)?;
        }
        if let (ReplyKind::Accept, Some(keys)) = (reply.kind, &reply.mppe) {
            for a in mppe_attributes(keys, secret.expose(), &request.authenticator, &mut self.rng)?
            {
                a.emit(&mut out)?;
            }
        }
        // RFC 2865 §5.33: Proxy-State is copied unmodified and in order.
        for a in request.attributes_of(AttributeType::PROXY_STATE) {
            a.emit(&mut out)?;
        }
        let len = out.len();
        if len > MAX_PACKET_LEN {
            return Err(Error::PacketTooLong { len });
        }
        if let Some(slot) = out.get_mut(2..4) {
            slot.copy_from_slice(&(len as u16).to_be_bytes());
        }
        // The Authenticator field holds the Request Authenticator while both are computed.
        let mac = hmac_with(secret.hmac()?, &out, ma_offset, &request.authenticator)?;
        if let Some(slot) = out.get_mut(ma_offset..ma_offset + MESSAGE_AUTHENTICATOR_LEN) {
            slot.copy_from_slice(&mac);
        }
        let auth = response_authenticator(&out, &request.authenticator, secret.expose())?;
        if let Some(slot) = out.get_mut(4..HEADER_LEN) {
            slot.copy_from_slice(&auth);
        }
        Ok(out)
    }

    fn remember(
        &mut self,
        key: CacheKey,
        authenticator: [u8; AUTHENTICATOR_LEN],
        reply: Option<Vec<u8>>,
        now: Instant,
    ) {
        let cap = self.config.cache_capacity;
        if cap == 0 {
            return;
        }
        while self.cache.len() >= cap || self.order.len() >= cap.saturating_mul(2) {
            if !self.evict_oldest() {
                break;
            }
        }
        self.seq += 1;
        self.cache.insert(
            key,
            CacheEntry {
                authenticator,
                reply,
                seq: self.seq,
            },
        );
        self.order
            .push_back((key, self.seq, now + self.config.duplicate_window));
    }

    fn evict_oldest(&mut self) -> bool {
        let Some((key, seq, _)) = self.order.pop_front() else {
            return false;
        };
        if self.cache.get(&key).is_some_and(|e| e.seq == seq) {
            self.cache.remove(&key);
        }
        true
    }

    /// Drops cached replies older than the duplicate window.
    fn expire(&mut self, now: Instant) {
        while self.order.front().is_some_and(|(_, _, exp)| *exp <= now) {
            self.evict_oldest();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::auth::{
        encode_request, encode_response, message_authenticator_placeholder, random_authenticator,
        verify_message_authenticator, verify_response_authenticator,
    };
    use crate::mppe::extract_mppe_keys;
    use rand::{rngs::StdRng, SeedableRng};

    const SECRET: &[u8] = b"sharedsecret";

    fn from() -> SocketAddr {
        "127.0.0.1:40000".parse().unwrap()
    }

    fn request(id: u8, eap: &[u8], rng: &mut StdRng) -> (Packet, Vec<u8>) {
        let mut p = Packet::new(Code::ACCESS_REQUEST, id);
        p.authenticator = random_authenticator(rng);
        p.attributes.push(message_authenticator_placeholder());
        p.attributes
            .push(Attribute::new(AttributeType::USER_NAME, b"meter1".to_vec()));
        p.attributes.extend(eap_message_attributes(eap));
        p.attributes
            .push(Attribute::new(AttributeType::PROXY_STATE, b"px".to_vec()));
        let bytes = encode_request(&p, SECRET).unwrap();
        (p, bytes)
    }

    /// A handler that counts calls and challenges with the request's EAP echoed.
    #[derive(Default)]
    struct Echo {
        calls: u32,
    }

    impl AccessHandler for Echo {
        fn handle(&mut self, req: &AccessRequest, _now: Instant) -> Reply {
            self.calls += 1;
            assert_eq!(req.user_name(), Some(&b"meter1"[..]));
            Reply::challenge(&req.eap_message().unwrap(), b"state-1")
        }
    }

    fn server() -> Server<Echo, StdRng> {
        Server::with_rng(
            SECRET,
            Echo::default(),
            ServerConfig::default(),
            StdRng::seed_from_u64(0),
        )
    }

    #[test]
    fn challenge_reply_is_authenticated() {
        let mut rng = StdRng::seed_from_u64(1);
        let mut s = server();
        let eap = vec![2u8; 600];
        let (req, bytes) = request(5, &eap, &mut rng);
        let now = Instant::now();
        let reply = s.handle_datagram(from(), &bytes, now).unwrap();
        verify_response_authenticator(&reply, &req.authenticator, SECRET).unwrap();
        assert_eq!(
            verify_message_authenticator(&reply, &req.authenticator, SECRET, true),
            Ok(true)
        );
        let p = Packet::parse(&reply).unwrap();
        assert_eq!(p.code, Code::ACCESS_CHALLENGE);
        assert_eq!(p.identifier, 5);
        assert_eq!(p.eap_message().unwrap(), eap);
        assert_eq!(p.attributes_of(AttributeType::EAP_MESSAGE).count(), 3);
        assert_eq!(p.state(), Some(&b"state-1"[..]));
        assert_eq!(
            p.attribute(AttributeType::PROXY_STATE).unwrap().value,
            b"px"
        );
        assert_eq!(s.stats().requests, 1);
    }

    /// The reply written straight into bytes is exactly what `encode_response` makes of the
    /// same packet: Proxy-State copied, one Message-Authenticator, both authenticators valid.
    #[test]
    fn direct_encoding_matches_encode_response() {
        let mut rng = StdRng::seed_from_u64(11);
        let msk: Vec<u8> = (100..164u8).collect();
        let handler = move |req: &AccessRequest, _: Instant| {
            let eap = req.eap_message().unwrap();
            if eap.len() > 10 {
                Reply::challenge(&eap, b"state-2")
                    .with_attribute(message_authenticator_placeholder())
                    .with_attribute(Attribute::integer(AttributeType::SESSION_TIMEOUT, 30))
            } else {
                Reply::accept_with_msk(&[3, eap[1], 0, 4], &msk).unwrap()
            }
        };
        let mut s = Server::with_rng(
            SECRET,
            handler,
            ServerConfig::default(),
            StdRng::seed_from_u64(3),
        );
        for (id, eap) in [(1u8, vec![2u8; 300]), (2, vec![2, 2, 0, 4])] {
            let (req, bytes) = request(id, &eap, &mut rng);
            let reply = s.handle_datagram(from(), &bytes, Instant::now()).unwrap();
            let parsed = Packet::parse(&reply).unwrap();
            assert_eq!(
                parsed
                    .attributes_of(AttributeType::MESSAGE_AUTHENTICATOR)
                    .count(),
                1
            );
            assert_eq!(
                parsed.attributes.last().unwrap().typ,
                AttributeType::PROXY_STATE
            );
            assert_eq!(
                encode_response(&parsed, &req.authenticator, SECRET).unwrap(),
                reply
            );
            verify_response_authenticator(&reply, &req.authenticator, SECRET).unwrap();
        }
    }

    #[test]
    fn duplicate_answered_from_cache_until_window_ends() {
        let mut rng = StdRng::seed_from_u64(2);
        let mut s = server();
        let (_, bytes) = request(9, &[2, 9, 0, 4], &mut rng);
        let t0 = Instant::now();
        let first = s.handle_datagram(from(), &bytes, t0).unwrap();
        let again = s
            .handle_datagram(from(), &bytes, t0 + Duration::from_secs(3))
            .unwrap();
        assert_eq!(first, again);
        assert_eq!(s.handler().calls, 1);
        assert_eq!(s.stats().duplicates, 1);
        // Same identifier from another port is a different request.
        let other: SocketAddr = "127.0.0.1:40001".parse().unwrap();
        s.handle_datagram(other, &bytes, t0).unwrap();
        assert_eq!(s.handler().calls, 2);
        // Same identifier, new authenticator: a new request.
        let (_, bytes2) = request(9, &[2, 9, 0, 4], &mut rng);
        s.handle_datagram(from(), &bytes2, t0).unwrap();
        assert_eq!(s.handler().calls, 3);
        // After the window the entry is gone and the handler runs again.
        s.handle_datagram(from(), &bytes2, t0 + Duration::from_secs(31))
            .unwrap();
        assert_eq!(s.handler().calls, 4);
    }

    #[test]
    fn cache_is_bounded() {
        let mut rng = StdRng::seed_from_u64(3);
        let mut s = Server::with_rng(
            SECRET,
            Echo::default(),
            ServerConfig::default().with_cache_capacity(10),
            StdRng::seed_from_u64(0),
        );
        let now = Instant::now();
        let mut sent = Vec::new();
        for i in 0..100u16 {
            let addr = SocketAddr::new(from().ip(), 1000 + i);
            let (_, b) = request(1, &[2, 1, 0, 4], &mut rng);
            s.handle_datagram(addr, &b, now).unwrap();
            sent.push((addr, b));
            assert!(s.cached() <= 10);
        }
        // The newest is still cached, the oldest was evicted.
        let calls = s.handler().calls;
        let (addr, b) = sent.last().unwrap();
        s.handle_datagram(*addr, b, now).unwrap();
        assert_eq!(s.handler().calls, calls);
        let (addr, b) = &sent[0];
        s.handle_datagram(*addr, b, now).unwrap();
        assert_eq!(s.handler().calls, calls + 1);
    }

    #[test]
    fn bad_or_missing_message_authenticator_dropped() {
        let mut rng = StdRng::seed_from_u64(4);
        let mut s = server();
        let now = Instant::now();
        let (_, mut bytes) = request(1, &[2, 1, 0, 4], &mut rng);
        let last = bytes.len() - 1;
        bytes[last] ^= 1; // inside Proxy-State: the HMAC no longer matches
        assert!(s.handle_datagram(from(), &bytes, now).is_none());
        assert_eq!(s.stats().dropped_bad_message_authenticator, 1);

        let mut p = Packet::new(Code::ACCESS_REQUEST, 2);
        p.attributes = eap_message_attributes(&[2, 1, 0, 4]);
        assert!(s
            .handle_datagram(from(), &p.to_bytes().unwrap(), now)
            .is_none());
        assert_eq!(s.stats().dropped_missing_message_authenticator, 1);

        // Wrong secret.
        let mut p = Packet::new(Code::ACCESS_REQUEST, 3);
        p.attributes.push(message_authenticator_placeholder());
        p.attributes.extend(eap_message_attributes(&[2, 1, 0, 4]));
        let b = encode_request(&p, b"not-the-secret").unwrap();
        assert!(s.handle_datagram(from(), &b, now).is_none());
        assert_eq!(s.stats().dropped_bad_message_authenticator, 2);

        assert!(s.handle_datagram(from(), &[0; 10], now).is_none());
        assert_eq!(s.stats().dropped_malformed, 1);
        let acct = Packet::new(Code::ACCOUNTING_REQUEST, 1).to_bytes().unwrap();
        assert!(s.handle_datagram(from(), &acct, now).is_none());
        assert_eq!(s.stats().dropped_unsupported_code, 1);
        assert_eq!(s.handler().calls, 0);
    }

    #[test]
    fn accept_carries_encrypted_msk() {
        let mut rng = StdRng::seed_from_u64(5);
        let msk: Vec<u8> = (0..64u8).collect();
        let msk2 = msk.clone();
        let handler = move |_: &AccessRequest, _: Instant| {
            Reply::accept_with_msk(&[3, 7, 0, 4], &msk2).unwrap()
        };
        let mut s = Server::with_rng(
            SECRET,
            handler,
            ServerConfig::default(),
            StdRng::seed_from_u64(1),
        );
        let (req, bytes) = request(7, &[2, 7, 0, 4], &mut rng);
        let reply = s.handle_datagram(from(), &bytes, Instant::now()).unwrap();
        let p = Packet::parse(&reply).unwrap();
        assert_eq!(p.code, Code::ACCESS_ACCEPT);
        let keys = extract_mppe_keys(&p, SECRET, &req.authenticator)
            .unwrap()
            .unwrap();
        assert_eq!(&*keys.msk(), &msk[..]);
        assert_eq!(p.eap_message().unwrap(), [3, 7, 0, 4]);
    }

    #[test]
    fn per_client_secrets() {
        let mut rng = StdRng::seed_from_u64(8);
        let mut s = server();
        let other: SocketAddr = "127.0.0.2:40000".parse().unwrap();
        s.add_client(other.ip(), b"other-secret");
        let now = Instant::now();
        // The default secret still serves 127.0.0.1, but no longer 127.0.0.2.
        let (_, b) = request(1, &[2, 1, 0, 4], &mut rng);
        assert!(s.handle_datagram(from(), &b, now).is_some());
        assert!(s.handle_datagram(other, &b, now).is_none());
        assert_eq!(s.stats().dropped_bad_message_authenticator, 1);
        // A request signed with 127.0.0.2's own secret is answered under that secret.
        let mut p = Packet::new(Code::ACCESS_REQUEST, 2);
        p.authenticator = random_authenticator(&mut rng);
        p.attributes.push(message_authenticator_placeholder());
        p.attributes
            .push(Attribute::new(AttributeType::USER_NAME, b"meter1".to_vec()));
        p.attributes.extend(eap_message_attributes(&[2, 2, 0, 4]));
        let b2 = encode_request(&p, b"other-secret").unwrap();
        let reply = s.handle_datagram(other, &b2, now).unwrap();
        verify_response_authenticator(&reply, &p.authenticator, b"other-secret").unwrap();
        // IPv4-mapped IPv6 sources find the IPv4 entry.
        let mapped: SocketAddr = "[::ffff:127.0.0.2]:40000".parse().unwrap();
        let mut p3 = p.clone();
        p3.identifier = 3;
        let b3 = encode_request(&p3, b"other-secret").unwrap();
        assert!(s.handle_datagram(mapped, &b3, now).is_some());
        // Without a default secret, unknown addresses are dropped and counted.
        s.only_known_clients();
        let (_, b4) = request(4, &[2, 4, 0, 4], &mut rng);
        assert!(s.handle_datagram(from(), &b4, now).is_none());
        assert_eq!(s.stats().dropped_unknown_client, 1);
    }

    #[test]
    fn status_server_answered_and_discard_honoured() {
        let mut rng = StdRng::seed_from_u64(6);
        let handler = |_: &AccessRequest, _: Instant| Reply::discard();
        let mut s = Server::with_rng(
            SECRET,
            handler,
            ServerConfig::default(),
            StdRng::seed_from_u64(1),
        );
        let mut st = Packet::new(Code::STATUS_SERVER, 0x33);
        st.authenticator = random_authenticator(&mut rng);
        st.attributes.push(message_authenticator_placeholder());
        let b = encode_request(&st, SECRET).unwrap();
        let reply = s.handle_datagram(from(), &b, Instant::now()).unwrap();
        verify_response_authenticator(&reply, &st.authenticator, SECRET).unwrap();
        assert_eq!(Packet::parse(&reply).unwrap().code, Code::ACCESS_ACCEPT);
        assert_eq!(s.stats().status_server, 1);

        let (_, req) = request(1, &[2, 1, 0, 4], &mut rng);
        assert!(s.handle_datagram(from(), &req, Instant::now()).is_none());
        assert!(s.handle_datagram(from(), &req, Instant::now()).is_none());
        assert_eq!(s.stats().discarded, 1);
        assert_eq!(s.stats().duplicates, 1);
    }
}
