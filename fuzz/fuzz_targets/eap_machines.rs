//! The EAP peer and authenticator state machines fed arbitrary packets mid-exchange: never a panic.
#![no_main]

use std::sync::Arc;
use std::time::Instant;

use gridguard_eap::{
    packet, Authenticator, AuthenticatorConfig, Code, MemoryCredentials, MethodType, Peer, PeerConfig, PeerMethod,
    Psk, PskPeer, PskServerConfig, ServerMethodFactory,
};
use libfuzzer_sys::fuzz_target;
use rand::rngs::StdRng;
use rand::SeedableRng;

fuzz_target!(|data: &[u8]| {
    let now = Instant::now();
    let mut rng = StdRng::seed_from_u64(0);
    let psk = Psk::new([7; 16]);
    let mut creds = MemoryCredentials::new();
    creds.insert(b"meter".to_vec(), psk.clone());
    let factory: Arc<dyn ServerMethodFactory> =
        Arc::new(PskServerConfig::new(b"server".to_vec(), Arc::new(creds)).expect("valid id"));
    let mut auth = Authenticator::new(vec![factory].into(), AuthenticatorConfig::default());
    let method: Box<dyn PeerMethod> = Box::new(PskPeer::new(b"meter".to_vec(), &psk).expect("valid id"));
    let mut peer = Peer::new(b"meter".to_vec(), vec![method], PeerConfig::default(), now);
    auth.start(now, &mut rng);
    let request = auth.poll_transmit().expect("identity request");
    let identity = packet::build(Code::RESPONSE, request[1], MethodType::IDENTITY, b"meter").expect("small");
    let _ = auth.handle_response(&identity, now, &mut rng);
    if let Some(first) = auth.poll_transmit() {
        let _ = peer.handle_packet(&first, now, &mut rng);
    }
    for chunk in data.split(|&b| b == 0xfe) {
        let _ = peer.handle_packet(chunk, now, &mut rng);
        let _ = auth.handle_response(chunk, now, &mut rng);
        while peer.poll_transmit().is_some() {}
        while auth.poll_transmit().is_some() {}
    }
});
