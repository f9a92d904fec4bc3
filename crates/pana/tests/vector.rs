//! Known-answer test against a real OpenPANA <-> hostapd exchange
//! (/work/shared/vectors/pana-auth.txt, read relative to the crate).

#![allow(clippy::unwrap_used, clippy::panic, clippy::indexing_slicing)] // test helpers

use std::collections::BTreeMap;
use std::path::PathBuf;

use gridguard_pana::message::auth_value_range;
use gridguard_pana::{
    derive_auth_key, AvpCode, Flags, IntegrityAlgorithm, KeyInputs, Message, MessageType,
    PrfAlgorithm,
};

struct Vector {
    msk: Vec<u8>,
    key_id: u32,
    auth_key: Vec<u8>,
    frames: BTreeMap<u32, Vec<u8>>,
}

fn load() -> Option<Vector> {
    let path =
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared/vectors/pana-auth.txt");
    let Ok(text) = std::fs::read_to_string(&path) else {
        eprintln!("SKIPPED: PANA vector file {} is absent", path.display());
        return None;
    };
    let mut v = Vector {
        msk: Vec::new(),
        key_id: 0,
        auth_key: Vec::new(),
        frames: BTreeMap::new(),
    };
    for line in text.lines().filter(|l| !l.starts_with('#')) {
        let parts: Vec<&str> = line.split_whitespace().collect();
        match parts.as_slice() {
            ["MSK", hex] => v.msk = hex::decode(hex).unwrap(),
            ["KEY_ID", hex] => v.key_id = u32::from_str_radix(hex, 16).unwrap(),
            ["PANA_AUTH_KEY", hex] => v.auth_key = hex::decode(hex).unwrap(),
            ["FRAME", n, hex] => {
                v.frames
                    .insert(n.parse().unwrap(), hex::decode(hex).unwrap());
            }
            [] => {}
            other => panic!("unexpected vector line {other:?}"),
        }
    }
    assert!(!v.msk.is_empty() && !v.auth_key.is_empty() && v.frames.len() >= 15);
    Some(v)
}

#[test]
fn every_frame_parses_and_reencodes_byte_for_byte() {
    let Some(v) = load() else { return };
    for (n, frame) in &v.frames {
        let msg = Message::parse(frame).unwrap_or_else(|e| panic!("frame {n}: {e}"));
        assert_eq!(
            &msg.emit().unwrap(),
            frame,
            "frame {n} re-encodes differently"
        );
    }
    // Spot checks of what the frames mean.
    let pci = Message::parse(&v.frames[&1]).unwrap();
    assert_eq!(pci.msg_type, MessageType::CLIENT_INITIATION);
    let par_s = Message::parse(&v.frames[&2]).unwrap();
    assert!(par_s.flags.contains(Flags::REQUEST | Flags::START));
    assert_eq!(
        par_s.prf_algorithms().collect::<Vec<_>>(),
        vec![PrfAlgorithm::HMAC_SHA1]
    );
    assert_eq!(
        par_s.integrity_algorithms().collect::<Vec<_>>(),
        vec![IntegrityAlgorithm::HMAC_SHA1_160]
    );
    let par_c = Message::parse(&v.frames[&16]).unwrap();
    assert!(par_c.flags.contains(Flags::COMPLETE));
    assert_eq!(par_c.key_id(), Some(v.key_id));
    assert_eq!(par_c.session_lifetime(), Some(30));
    assert_eq!(par_c.eap_payload().map(|e| e[0]), Some(3), "EAP Success");
    let ping = Message::parse(&v.frames[&18]).unwrap();
    assert!(ping.flags.contains(Flags::REQUEST | Flags::PING));
    assert_eq!(ping.msg_type, MessageType::NOTIFICATION);
}

fn derived(v: &Vector) -> gridguard_pana::AuthKey {
    let nonce = |n: u32| {
        Message::parse(&v.frames[&n])
            .unwrap()
            .find(AvpCode::NONCE)
            .unwrap()
            .value
            .clone()
    };
    let paa_nonce = nonce(4);
    let pac_nonce = nonce(5);
    let inputs = KeyInputs {
        i_par: &v.frames[&2],
        i_pan: &v.frames[&3],
        pac_nonce: &pac_nonce,
        paa_nonce: &paa_nonce,
        key_id: v.key_id,
    };
    derive_auth_key(
        PrfAlgorithm::HMAC_SHA1,
        IntegrityAlgorithm::HMAC_SHA1_160,
        &v.msk,
        &inputs,
    )
    .unwrap()
}

#[test]
fn pana_auth_key_matches_the_vector() {
    let Some(v) = load() else { return };
    assert_eq!(derived(&v).secret_bytes(), v.auth_key.as_slice());
}

#[test]
fn every_auth_avp_verifies_and_a_flipped_byte_does_not() {
    let Some(v) = load() else { return };
    let key = derived(&v);
    let mut checked = 0;
    for n in 16..=21 {
        let Some(frame) = v.frames.get(&n) else {
            continue;
        };
        assert!(
            auth_value_range(frame).is_some(),
            "frame {n} has an AUTH AVP"
        );
        key.verify(frame)
            .unwrap_or_else(|e| panic!("frame {n} AUTH does not verify: {e}"));
        checked += 1;
        // Every single-byte flip, in the header, an AVP or the AUTH value itself, fails.
        for i in 0..frame.len() {
            let mut bad = frame.clone();
            bad[i] ^= 0x01;
            assert!(
                key.verify(&bad).is_err(),
                "frame {n} byte {i} flipped still verifies"
            );
        }
        // Re-signing the parsed-and-re-encoded frame reproduces the AUTH value.
        let mut again = Message::parse(frame).unwrap().emit().unwrap();
        key.sign(&mut again).unwrap();
        assert_eq!(&again, frame);
    }
    assert_eq!(checked, 6);
}
