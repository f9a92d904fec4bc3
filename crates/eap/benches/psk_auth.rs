//! In-process EAP-PSK authentications (no sockets): the authenticator's time per full authentication,
//! printed beside the anchor measured in the same run, the bare AES/CMAC/EAX work one authentication
//! needs on the server side. Run with `cargo bench -p gridguard-eap --bench psk_auth`.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    missing_docs
)]

use std::hint::black_box;
use std::sync::Arc;
use std::time::{Duration, Instant};

use gridguard_eap::psk::crypto;
use gridguard_eap::{
    Authenticator, AuthenticatorConfig, AuthenticatorEvent, MemoryCredentials, Peer, PeerConfig,
    PeerMethod, Psk, PskPeer, PskServerConfig, ServerMethodFactory,
};
use rand::rngs::StdRng;
use rand::SeedableRng;

const METERS: usize = 1000;

fn main() {
    let runs: usize = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(200_000);
    let mut creds = MemoryCredentials::new();
    let mut peers = Vec::new();
    for i in 0..METERS {
        let id = format!("meter-{i:05}").into_bytes();
        let psk = Psk::new([i as u8; 16]);
        creds.insert(id.clone(), psk.clone());
        peers.push((id, psk));
    }
    let factory: Arc<dyn ServerMethodFactory> =
        Arc::new(PskServerConfig::new(b"gridguard".to_vec(), Arc::new(creds)).unwrap());
    let methods: Arc<[Arc<dyn ServerMethodFactory>]> = vec![factory].into();
    let mut rng = StdRng::seed_from_u64(1);
    let now = Instant::now();

    let mut server_time = Duration::ZERO;
    let started = Instant::now();
    let mut ok = 0;
    for i in 0..runs {
        let (id, psk) = &peers[i % METERS];
        let method: Box<dyn PeerMethod> = Box::new(PskPeer::new(id.clone(), psk).unwrap());
        let mut peer = Peer::new(id.clone(), vec![method], PeerConfig::default(), now);
        let t = Instant::now();
        let mut auth = Authenticator::new(methods.clone(), AuthenticatorConfig::backend());
        auth.start(now, &mut rng);
        let mut to_peer = auth.poll_transmit();
        server_time += t.elapsed();
        while let Some(request) = to_peer.take() {
            let _ = peer.handle_packet(&request, now, &mut rng);
            if let Some(response) = peer.poll_transmit() {
                let t = Instant::now();
                let _ = auth.handle_response(&response, now, &mut rng);
                to_peer = auth.poll_transmit();
                if let Some(AuthenticatorEvent::Success { keys, .. }) = auth.poll_event() {
                    black_box(keys);
                    ok += 1;
                }
                server_time += t.elapsed();
            }
        }
    }
    let total = started.elapsed();
    assert_eq!(ok, runs, "every authentication must succeed");

    // Anchor: the cryptographic work of one server-side authentication and nothing else.
    let anchor_runs = runs;
    let psk = [9u8; 16];
    let (id_p, id_s) = (b"meter-00001".as_slice(), b"gridguard".as_slice());
    let header = [0u8; 22];
    let t = Instant::now();
    for i in 0..anchor_runs {
        let rand = [i as u8; 16];
        let lt = crypto::key_setup(black_box(&psk));
        let mac_p = crypto::mac_p(&lt.ak, id_p, id_s, &rand, &rand);
        black_box(crypto::verify_mac_p(
            &lt.ak, id_p, id_s, &rand, &rand, &mac_p,
        ));
        black_box(crypto::mac_s(&lt.ak, id_s, &rand));
        let keys = crypto::derive_session_keys(&lt.kdk, &rand);
        let mut payload = [0x80u8];
        let tag = crypto::channel_seal(&keys.tek, 0, &header, &mut payload).unwrap();
        let mut back = [0x80u8];
        let tag2 = crypto::channel_seal(&keys.tek, 1, &header, &mut back).unwrap();
        black_box(crypto::channel_open(&keys.tek, 1, &header, &tag2, &mut back).is_ok());
        black_box(tag);
    }
    let anchor = t.elapsed();

    let per_auth = server_time.as_secs_f64() / runs as f64;
    let per_anchor = anchor.as_secs_f64() / anchor_runs as f64;
    println!("EAP-PSK in-process, {runs} full authentications (identity + 4 messages + Success), one core");
    println!("  authenticator: {:.2} us per authentication = {:.0} authentications/s (target >= 100000/s)", per_auth * 1e6, 1.0 / per_auth);
    println!(
        "  anchor (AES key setup, CMAC x3, KDF, EAX seal+seal+open): {:.2} us",
        per_anchor * 1e6
    );
    println!(
        "  ratio authenticator / anchor: {:.2}",
        per_auth / per_anchor
    );
    println!(
        "  whole exchange incl. peer: {:.2} us",
        total.as_secs_f64() / runs as f64 * 1e6
    );
}
