//! Our peer against our authenticator, in memory: success for edge-case identities and keys, and
//! every failure the RFC asks for ending with a typed reason.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

use std::sync::Arc;
use std::time::{Duration, Instant};

use gridguard_eap::psk::message::MAX_ID_LEN;
use gridguard_eap::{
    Authenticator, AuthenticatorConfig, AuthenticatorDrop, AuthenticatorEvent, FailureReason,
    MemoryCredentials, MethodError, MethodType, Peer, PeerConfig, PeerDrop, PeerEvent, PeerMethod,
    Psk, PskPeer, PskServerConfig, ServerMethod, ServerMethodFactory, ServerStep, SessionKeys,
};
use rand::rngs::StdRng;
use rand::SeedableRng;
use rand_core::CryptoRngCore;

fn server(identity: &[u8], psk: [u8; 16]) -> Arc<[Arc<dyn ServerMethodFactory>]> {
    let mut creds = MemoryCredentials::new();
    creds.insert(identity.to_vec(), Psk::new(psk));
    let f: Arc<dyn ServerMethodFactory> =
        Arc::new(PskServerConfig::new(b"gridguard".to_vec(), Arc::new(creds)).unwrap());
    vec![f].into()
}

fn peer(identity: &[u8], psk: [u8; 16], now: Instant) -> Peer {
    let m: Box<dyn PeerMethod> = Box::new(PskPeer::new(identity.to_vec(), &Psk::new(psk)).unwrap());
    Peer::new(identity.to_vec(), vec![m], PeerConfig::default(), now)
}

/// Runs both machines until neither has anything to send; `tamper` may rewrite each packet in flight
/// (returning None drops it).
fn run(
    auth: &mut Authenticator,
    peer: &mut Peer,
    now: Instant,
    rng: &mut StdRng,
    mut tamper: impl FnMut(usize, Vec<u8>) -> Option<Vec<u8>>,
) -> (Vec<PeerDrop>, Vec<AuthenticatorDrop>) {
    let (mut peer_drops, mut auth_drops) = (Vec::new(), Vec::new());
    auth.start(now, rng);
    let mut hop = 0;
    for _ in 0..50 {
        let mut moved = false;
        while let Some(p) = auth.poll_transmit() {
            moved = true;
            hop += 1;
            if let Some(p) = tamper(hop, p) {
                if let Err(e) = peer.handle_packet(&p, now, rng) {
                    peer_drops.push(e);
                }
            }
        }
        while let Some(p) = peer.poll_transmit() {
            moved = true;
            hop += 1;
            if let Some(p) = tamper(hop, p) {
                if let Err(e) = auth.handle_response(&p, now, rng) {
                    auth_drops.push(e);
                }
            }
        }
        if !moved {
            break;
        }
    }
    (peer_drops, auth_drops)
}

fn auth_outcome(auth: &mut Authenticator) -> Result<SessionKeys, FailureReason> {
    match auth.poll_event() {
        Some(AuthenticatorEvent::Success { keys, .. }) => Ok(keys),
        Some(AuthenticatorEvent::Failure { reason, .. }) => Err(reason),
        None => panic!("authenticator reported nothing"),
    }
}

fn peer_outcome(peer: &mut Peer) -> Result<SessionKeys, FailureReason> {
    loop {
        match peer.poll_event() {
            Some(PeerEvent::Success(keys)) => return Ok(keys),
            Some(PeerEvent::Failure(reason)) => return Err(reason),
            Some(PeerEvent::Notification(_)) => continue,
            None => panic!("peer reported nothing"),
        }
    }
}

#[test]
fn edge_case_identities_and_keys_authenticate() {
    let long: Vec<u8> = (0..MAX_ID_LEN).map(|i| b'a' + (i % 26) as u8).collect();
    let cases: Vec<(Vec<u8>, [u8; 16])> = vec![
        (b"m".to_vec(), [0u8; 16]),
        (long, [0xff; 16]),
        ("zähler-東京-\u{1F50C}".as_bytes().to_vec(), [0x5a; 16]),
        (vec![0x00, 0xff, 0x80, 0x7f], [1; 16]),
    ];
    let now = Instant::now();
    let mut rng = StdRng::seed_from_u64(1);
    for (identity, psk) in cases {
        let mut auth = Authenticator::new(server(&identity, psk), AuthenticatorConfig::default());
        let mut p = peer(&identity, psk, now);
        let (pd, ad) = run(&mut auth, &mut p, now, &mut rng, |_, b| Some(b));
        assert!(pd.is_empty() && ad.is_empty(), "{pd:?} {ad:?}");
        let a = auth_outcome(&mut auth).unwrap();
        let b = peer_outcome(&mut p).unwrap();
        assert_eq!(a.msk(), b.msk());
        assert_eq!(a.emsk(), b.emsk());
        assert_eq!(a.session_id(), b.session_id());
        assert_ne!(a.msk(), &[0u8; 64]);
    }
}

#[test]
fn identity_longer_than_the_rfc_allows_is_refused() {
    let too_long = vec![b'x'; MAX_ID_LEN + 1];
    assert!(matches!(
        PskPeer::new(too_long, &Psk::new([0; 16])),
        Err(MethodError::IdentityTooLong(967))
    ));
}

#[test]
fn wrong_psk_fails_on_both_sides_with_reasons() {
    let now = Instant::now();
    let mut rng = StdRng::seed_from_u64(2);
    let mut auth = Authenticator::new(server(b"meter1", [1; 16]), AuthenticatorConfig::default());
    let mut p = peer(b"meter1", [2; 16], now);
    run(&mut auth, &mut p, now, &mut rng, |_, b| Some(b));
    assert_eq!(
        auth_outcome(&mut auth).unwrap_err(),
        FailureReason::Method(MethodError::BadPeerMac)
    );
    match peer_outcome(&mut p).unwrap_err() {
        FailureReason::Rejected { stage } => assert!(stage.contains("MAC_P"), "{stage}"),
        other => panic!("{other:?}"),
    }
}

#[test]
fn unknown_identity_fails() {
    let now = Instant::now();
    let mut rng = StdRng::seed_from_u64(3);
    let mut auth = Authenticator::new(server(b"meter1", [1; 16]), AuthenticatorConfig::default());
    let mut p = peer(b"meter2", [1; 16], now);
    run(&mut auth, &mut p, now, &mut rng, |_, b| Some(b));
    assert_eq!(
        auth_outcome(&mut auth).unwrap_err(),
        FailureReason::Method(MethodError::UnknownIdentity)
    );
    assert!(matches!(
        peer_outcome(&mut p).unwrap_err(),
        FailureReason::Rejected { .. }
    ));
}

#[test]
fn forged_server_mac_and_channel_are_refused_by_the_peer() {
    let now = Instant::now();
    for (offset, expected) in [
        (30usize, MethodError::BadServerMac),
        (58, MethodError::BadProtectedChannel),
    ] {
        let mut rng = StdRng::seed_from_u64(4);
        let mut auth =
            Authenticator::new(server(b"meter1", [1; 16]), AuthenticatorConfig::default());
        let mut p = peer(b"meter1", [1; 16], now);
        // hop 5 is message 3 (identity request, identity, message 1, message 2, message 3).
        run(&mut auth, &mut p, now, &mut rng, |hop, mut b| {
            if hop == 5 {
                b[offset] ^= 1;
            }
            Some(b)
        });
        assert_eq!(
            peer_outcome(&mut p).unwrap_err(),
            FailureReason::Method(expected)
        );
    }
}

#[test]
fn tampered_peer_channel_and_wrong_nonce_are_refused_by_the_server() {
    let now = Instant::now();
    // Message 4: 22-byte header, then nonce (4), tag (16), flags (1).
    for (offset, expected) in [
        (42usize, MethodError::BadProtectedChannel),
        (
            25,
            MethodError::BadChannelNonce {
                expected: 1,
                got: 0,
            },
        ),
    ] {
        let mut rng = StdRng::seed_from_u64(5);
        let mut auth =
            Authenticator::new(server(b"meter1", [1; 16]), AuthenticatorConfig::default());
        let mut p = peer(b"meter1", [1; 16], now);
        run(&mut auth, &mut p, now, &mut rng, |hop, mut b| {
            if hop == 6 {
                b[offset] ^= 1;
            }
            Some(b)
        });
        assert_eq!(
            auth_outcome(&mut auth).unwrap_err(),
            FailureReason::Method(expected)
        );
    }
}

#[test]
fn replayed_and_out_of_order_messages_are_discarded_with_reasons() {
    let now = Instant::now();
    let mut rng = StdRng::seed_from_u64(6);
    // Record a full exchange.
    let mut auth = Authenticator::new(server(b"meter1", [1; 16]), AuthenticatorConfig::default());
    let mut p = peer(b"meter1", [1; 16], now);
    let mut recorded = Vec::new();
    run(&mut auth, &mut p, now, &mut rng, |_, b| {
        recorded.push(b.clone());
        Some(b)
    });
    auth_outcome(&mut auth).unwrap();
    let (old_msg2, old_msg4) = (recorded[3].clone(), recorded[5].clone());

    // A new authentication: replay the old message 2 with the new identifier: RAND_S does not match.
    let mut auth = Authenticator::new(server(b"meter1", [1; 16]), AuthenticatorConfig::default());
    let mut p = peer(b"meter1", [1; 16], now);
    auth.start(now, &mut rng);
    let identity_request = auth.poll_transmit().unwrap();
    p.handle_packet(&identity_request, now, &mut rng).unwrap();
    auth.handle_response(&p.poll_transmit().unwrap(), now, &mut rng)
        .unwrap();
    let msg1 = auth.poll_transmit().unwrap();
    let mut replay = old_msg2.clone();
    replay[1] = msg1[1];
    assert_eq!(
        auth.handle_response(&replay, now, &mut rng),
        Err(AuthenticatorDrop::Method(MethodError::NonceMismatch))
    );
    // Out of order: an old message 4 now, with the right identifier.
    let mut early = old_msg4.clone();
    early[1] = msg1[1];
    assert!(matches!(
        auth.handle_response(&early, now, &mut rng),
        Err(AuthenticatorDrop::Method(_))
    ));
    // A stale identifier is dropped before the method sees it.
    assert!(matches!(
        auth.handle_response(&old_msg2, now, &mut rng),
        Err(AuthenticatorDrop::WrongIdentifier { .. })
    ));
    // The genuine exchange still completes.
    p.handle_packet(&msg1, now, &mut rng).unwrap();
    auth.handle_response(&p.poll_transmit().unwrap(), now, &mut rng)
        .unwrap();
    let msg3 = auth.poll_transmit().unwrap();
    p.handle_packet(&msg3, now, &mut rng).unwrap();
    auth.handle_response(&p.poll_transmit().unwrap(), now, &mut rng)
        .unwrap();
    p.handle_packet(&auth.poll_transmit().unwrap(), now, &mut rng)
        .unwrap();
    assert!(auth_outcome(&mut auth).is_ok());
    assert!(peer_outcome(&mut p).is_ok());
}

#[test]
fn duplicate_request_gets_the_cached_response() {
    let now = Instant::now();
    let mut rng = StdRng::seed_from_u64(7);
    let mut auth = Authenticator::new(server(b"meter1", [1; 16]), AuthenticatorConfig::default());
    let mut p = peer(b"meter1", [1; 16], now);
    auth.start(now, &mut rng);
    p.handle_packet(&auth.poll_transmit().unwrap(), now, &mut rng)
        .unwrap();
    auth.handle_response(&p.poll_transmit().unwrap(), now, &mut rng)
        .unwrap();
    let msg1 = auth.poll_transmit().unwrap();
    p.handle_packet(&msg1, now, &mut rng).unwrap();
    let first = p.poll_transmit().unwrap();
    p.handle_packet(&msg1, now, &mut rng).unwrap();
    let second = p.poll_transmit().unwrap();
    assert_eq!(
        first, second,
        "a retransmitted request must get the same response, same RAND_P"
    );
    assert_eq!(p.stats().duplicates, 1);
}

#[test]
fn authenticator_retransmits_then_gives_up() {
    let start = Instant::now();
    let mut rng = StdRng::seed_from_u64(8);
    let mut auth = Authenticator::new(server(b"meter1", [1; 16]), AuthenticatorConfig::default());
    auth.start(start, &mut rng);
    let first = auth.poll_transmit().unwrap();
    let mut now = start;
    let mut sent = 0;
    for _ in 0..20 {
        let Some(deadline) = auth.poll_timeout() else {
            break;
        };
        assert!(deadline > now);
        now = deadline;
        auth.handle_timeout(now);
        if let Some(again) = auth.poll_transmit() {
            assert_eq!(again, first);
            sent += 1;
        }
    }
    assert_eq!(sent, 4);
    assert_eq!(auth_outcome(&mut auth).unwrap_err(), FailureReason::Timeout);
    assert!(now - start >= Duration::from_secs(3 + 6 + 12 + 20));
}

#[test]
fn lost_message_is_recovered_by_retransmission() {
    let now = Instant::now();
    let mut rng = StdRng::seed_from_u64(9);
    let mut auth = Authenticator::new(server(b"meter1", [1; 16]), AuthenticatorConfig::default());
    let mut p = peer(b"meter1", [1; 16], now);
    run(&mut auth, &mut p, now, &mut rng, |hop, b| {
        (hop != 4).then_some(b)
    });
    assert!(!auth.is_finished());
    let later = auth.poll_timeout().unwrap();
    auth.handle_timeout(later);
    let msg1_again = auth.poll_transmit().unwrap();
    p.handle_packet(&msg1_again, later, &mut rng).unwrap();
    let mut rounds = 0;
    while let Some(pkt) = p.poll_transmit() {
        auth.handle_response(&pkt, later, &mut rng).unwrap();
        while let Some(req) = auth.poll_transmit() {
            p.handle_packet(&req, later, &mut rng).unwrap();
        }
        rounds += 1;
        assert!(rounds < 10);
    }
    assert!(auth_outcome(&mut auth).is_ok());
    assert!(peer_outcome(&mut p).is_ok());
}

#[test]
fn peer_times_out_without_requests() {
    let now = Instant::now();
    let mut p = peer(b"meter1", [1; 16], now);
    let deadline = p.poll_timeout().unwrap();
    p.handle_timeout(deadline - Duration::from_millis(1));
    assert!(!p.is_finished());
    p.handle_timeout(deadline);
    assert_eq!(peer_outcome(&mut p).unwrap_err(), FailureReason::Timeout);
}

/// A server method of a type the peer does not implement, to exercise Nak.
struct Unsupported;
impl ServerMethod for Unsupported {
    fn method_type(&self) -> MethodType {
        MethodType::MD5_CHALLENGE
    }
    fn build_request(&mut self, _: u8, _: &mut dyn CryptoRngCore) -> Result<Vec<u8>, MethodError> {
        Ok(vec![16; 17])
    }
    fn process(&mut self, _: u8, _: &[u8]) -> Result<ServerStep, MethodError> {
        Err(MethodError::ResultFailure)
    }
    fn keys(&self) -> Option<&SessionKeys> {
        None
    }
    fn peer_identity(&self) -> Option<&[u8]> {
        None
    }
}
impl ServerMethodFactory for Unsupported {
    fn method_type(&self) -> MethodType {
        MethodType::MD5_CHALLENGE
    }
    fn start(&self, _: &[u8]) -> Box<dyn ServerMethod> {
        Box::new(Unsupported)
    }
}

#[test]
fn nak_moves_the_server_to_a_method_the_peer_supports() {
    let now = Instant::now();
    let mut rng = StdRng::seed_from_u64(10);
    let psk = server(b"meter1", [1; 16]);
    let methods: Arc<[Arc<dyn ServerMethodFactory>]> = vec![
        Arc::new(Unsupported) as Arc<dyn ServerMethodFactory>,
        psk[0].clone(),
    ]
    .into();
    let mut auth = Authenticator::new(methods, AuthenticatorConfig::default());
    let mut p = peer(b"meter1", [1; 16], now);
    let mut nak_seen = false;
    run(&mut auth, &mut p, now, &mut rng, |_, b| {
        if b[0] == 2 && b.get(4) == Some(&MethodType::NAK.0) {
            assert_eq!(&b[5..], &[MethodType::PSK.0]);
            nak_seen = true;
        }
        Some(b)
    });
    assert!(nak_seen);
    assert!(auth_outcome(&mut auth).is_ok());
    assert!(peer_outcome(&mut p).is_ok());

    // Only the unsupported method on offer: the Nak ends in Failure with the peer's list.
    let only: Arc<[Arc<dyn ServerMethodFactory>]> =
        vec![Arc::new(Unsupported) as Arc<dyn ServerMethodFactory>].into();
    let mut auth = Authenticator::new(only, AuthenticatorConfig::default());
    let mut p = peer(b"meter1", [1; 16], now);
    run(&mut auth, &mut p, now, &mut rng, |_, b| Some(b));
    assert_eq!(
        auth_outcome(&mut auth).unwrap_err(),
        FailureReason::NoAcceptableMethod(vec![MethodType::PSK])
    );
    assert!(matches!(
        peer_outcome(&mut p).unwrap_err(),
        FailureReason::Rejected { .. }
    ));
}

#[test]
fn notification_is_reported_and_answered() {
    let now = Instant::now();
    let mut rng = StdRng::seed_from_u64(11);
    let mut p = peer(b"meter1", [1; 16], now);
    let note = gridguard_eap::packet::build(
        gridguard_eap::Code::REQUEST,
        9,
        MethodType::NOTIFICATION,
        b"maintenance",
    )
    .unwrap();
    p.handle_packet(&note, now, &mut rng).unwrap();
    assert_eq!(p.poll_transmit().unwrap(), vec![2, 9, 0, 5, 2]);
    assert!(matches!(p.poll_event(), Some(PeerEvent::Notification(t)) if t == "maintenance"));
}

#[test]
fn premature_success_is_ignored() {
    let now = Instant::now();
    let mut rng = StdRng::seed_from_u64(12);
    let mut auth = Authenticator::new(server(b"meter1", [1; 16]), AuthenticatorConfig::default());
    let mut p = peer(b"meter1", [1; 16], now);
    auth.start(now, &mut rng);
    p.handle_packet(&auth.poll_transmit().unwrap(), now, &mut rng)
        .unwrap();
    auth.handle_response(&p.poll_transmit().unwrap(), now, &mut rng)
        .unwrap();
    let msg1 = auth.poll_transmit().unwrap();
    p.handle_packet(&msg1, now, &mut rng).unwrap();
    assert_eq!(
        p.handle_packet(&[3, msg1[1], 0, 4], now, &mut rng),
        Err(PeerDrop::PrematureSuccess)
    );
    assert!(!p.is_finished());
}
