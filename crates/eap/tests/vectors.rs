//! The recorded hostapd/eapol_test EAP-PSK exchange (`tests/vectors/eap-psk.txt`) replayed through our
//! peer and our authenticator: fed the recorded randoms, both must produce the recorded packets and keys.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Instant;

use gridguard_eap::psk::crypto;
use gridguard_eap::{
    Authenticator, AuthenticatorConfig, AuthenticatorEvent, Code, MemoryCredentials, MethodType,
    Peer, PeerConfig, PeerEvent, PeerMethod, Psk, PskPeer, PskServerConfig, ServerMethodFactory,
};
use rand_core::{CryptoRng, RngCore};

const VECTOR: &str = include_str!("../../../tests/vectors/eap-psk.txt");

fn vector() -> HashMap<String, Vec<u8>> {
    VECTOR
        .lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
        .filter_map(|l| {
            let mut parts = l.split_whitespace();
            let key = parts.next()?.to_string();
            let value = hex::decode(parts.next()?).ok()?;
            Some((key, value))
        })
        .collect()
}

/// Returns the recorded bytes in order, then fails the test if more are asked for.
struct Replay(Vec<u8>);

impl RngCore for Replay {
    fn next_u32(&mut self) -> u32 {
        let mut b = [0; 4];
        self.fill_bytes(&mut b);
        u32::from_le_bytes(b)
    }
    fn next_u64(&mut self) -> u64 {
        let mut b = [0; 8];
        self.fill_bytes(&mut b);
        u64::from_le_bytes(b)
    }
    fn fill_bytes(&mut self, dest: &mut [u8]) {
        assert!(
            self.0.len() >= dest.len(),
            "the exchange drew more randomness than recorded"
        );
        let rest = self.0.split_off(dest.len());
        dest.copy_from_slice(&self.0);
        self.0 = rest;
    }
    fn try_fill_bytes(&mut self, dest: &mut [u8]) -> Result<(), rand_core::Error> {
        self.fill_bytes(dest);
        Ok(())
    }
}
impl CryptoRng for Replay {}

fn arr(v: &[u8]) -> [u8; 16] {
    v.try_into().unwrap()
}

#[test]
fn shared_copy_matches_original_when_present() {
    let shared = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../../shared/vectors/eap-psk.txt"
    );
    match std::fs::read_to_string(shared) {
        Ok(original) => assert_eq!(original, VECTOR),
        Err(_) => {
            eprintln!("shared/vectors not beside the checkout; using the committed copy only")
        }
    }
}

#[test]
fn key_derivation_matches_vector() {
    let v = vector();
    let lt = crypto::key_setup(&arr(&v["PSK"]));
    assert_eq!(lt.ak.to_vec(), v["AK"]);
    assert_eq!(lt.kdk.to_vec(), v["KDK"]);
    let rand_s = arr(&v["RAND_S"]);
    let rand_p = arr(&v["RAND_P"]);
    assert_eq!(
        crypto::mac_p(&lt.ak, &v["ID_P"], &v["ID_S"], &rand_s, &rand_p).to_vec(),
        v["MAC_P"]
    );
    assert_eq!(
        crypto::mac_s(&lt.ak, &v["ID_S"], &rand_p).to_vec(),
        v["MAC_S"]
    );
    let derived = crypto::derive_session_keys(&lt.kdk, &rand_p);
    assert_eq!(derived.tek.to_vec(), v["TEK"]);
    assert_eq!(derived.msk.to_vec(), v["MSK"]);
    assert_eq!(derived.emsk.to_vec(), v["EMSK"]);
    assert_eq!(crypto::session_id(&rand_p, &rand_s), v["SESSION_ID"]);
}

#[test]
fn our_peer_reproduces_the_recorded_responses() {
    let v = vector();
    let now = Instant::now();
    let psk = Psk::new(arr(&v["PSK"]));
    let method: Box<dyn PeerMethod> = Box::new(PskPeer::new(v["ID_P"].clone(), &psk).unwrap());
    let mut peer = Peer::new(v["ID_P"].clone(), vec![method], PeerConfig::default(), now);
    let mut rng = Replay(v["RAND_P"].clone());

    peer.handle_packet(&v["MSG1"], now, &mut rng).unwrap();
    assert_eq!(
        hex::encode(peer.poll_transmit().unwrap()),
        hex::encode(&v["MSG2"])
    );
    peer.handle_packet(&v["MSG3"], now, &mut rng).unwrap();
    assert_eq!(
        hex::encode(peer.poll_transmit().unwrap()),
        hex::encode(&v["MSG4"])
    );
    peer.handle_packet(&[Code::SUCCESS.0, v["MSG4"][1], 0, 4], now, &mut rng)
        .unwrap();
    match peer.poll_event() {
        Some(PeerEvent::Success(keys)) => {
            assert_eq!(keys.msk().to_vec(), v["MSK"]);
            assert_eq!(keys.emsk().to_vec(), v["EMSK"]);
            assert_eq!(keys.session_id(), v["SESSION_ID"]);
        }
        other => panic!("expected success, got {other:?}"),
    }
}

#[test]
fn our_server_reproduces_the_recorded_requests() {
    let v = vector();
    let now = Instant::now();
    let mut creds = MemoryCredentials::new();
    creds.insert(v["ID_P"].clone(), Psk::new(arr(&v["PSK"])));
    let psk_server: Arc<dyn ServerMethodFactory> =
        Arc::new(PskServerConfig::new(v["ID_S"].clone(), Arc::new(creds)).unwrap());
    let mut auth = Authenticator::new(vec![psk_server].into(), AuthenticatorConfig::backend());
    // The identity round precedes message 1 by one identifier.
    let identity_id = v["MSG1"][1].wrapping_sub(1);
    let mut rng = Replay([vec![identity_id], v["RAND_S"].clone()].concat());
    auth.start(now, &mut rng);
    let identity_request = auth.poll_transmit().unwrap();
    assert_eq!(
        identity_request,
        vec![1, identity_id, 0, 5, MethodType::IDENTITY.0]
    );
    let identity_response = gridguard_eap::packet::build(
        Code::RESPONSE,
        identity_id,
        MethodType::IDENTITY,
        &v["ID_P"],
    )
    .unwrap();
    auth.handle_response(&identity_response, now, &mut rng)
        .unwrap();
    assert_eq!(
        hex::encode(auth.poll_transmit().unwrap()),
        hex::encode(&v["MSG1"])
    );
    auth.handle_response(&v["MSG2"], now, &mut rng).unwrap();
    assert_eq!(
        hex::encode(auth.poll_transmit().unwrap()),
        hex::encode(&v["MSG3"])
    );
    auth.handle_response(&v["MSG4"], now, &mut rng).unwrap();
    assert_eq!(
        auth.poll_transmit().unwrap(),
        vec![Code::SUCCESS.0, v["MSG4"][1], 0, 4]
    );
    match auth.poll_event() {
        Some(AuthenticatorEvent::Success {
            peer_identity,
            keys,
        }) => {
            assert_eq!(peer_identity, v["ID_P"]);
            assert_eq!(keys.msk().to_vec(), v["MSK"]);
            assert_eq!(keys.emsk().to_vec(), v["EMSK"]);
        }
        other => panic!("expected success, got {other:?}"),
    }
}
