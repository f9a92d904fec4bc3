//! The published vectors rebuilt into complete C12.22 APDUs: codec round trip, canonical
//! cleartext, verification, re-sealing, tamper detection.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

mod common;

use gridguard_c1222::security::{canonical_cleartext, open_apdu, seal_apdu, CanonOptions};
use gridguard_c1222::{AcseApdu, EaxPrime, Epsem, SecurityMode};

fn check(name: &str, bytes: &[u8], plain_epsem: &[u8], key: &[u8; 16], opts: &CanonOptions) {
    let cipher = EaxPrime::new(key);
    let apdu = AcseApdu::parse(bytes).unwrap();
    assert_eq!(
        apdu.to_bytes().unwrap(),
        bytes,
        "{name}: byte-exact re-emit"
    );

    // Verify and decrypt.
    let mut opened = apdu.clone();
    let proof = open_apdu(&mut opened, &cipher, opts).unwrap();
    assert_ne!(proof.mode(), SecurityMode::CLEARTEXT);
    assert_eq!(
        opened.user_information.epsem, plain_epsem,
        "{name}: plaintext"
    );
    let epsem = Epsem::parse(plain_epsem).unwrap();
    assert_eq!(
        epsem.to_bytes().unwrap(),
        plain_epsem,
        "{name}: EPSEM re-emit"
    );

    // Re-seal the plaintext: same bytes.
    let mut resealed = opened.clone();
    seal_apdu(&mut resealed, &cipher, opts).unwrap();
    assert_eq!(resealed.to_bytes().unwrap(), bytes, "{name}: re-seal");

    // Every single flipped byte is refused (by the parser or by the MAC).
    for i in 0..bytes.len() {
        let mut t = bytes.to_vec();
        t[i] ^= 0x01;
        if let Ok(mut a) = AcseApdu::parse(&t) {
            assert!(
                open_apdu(&mut a, &cipher, opts).is_err(),
                "{name}: flipped byte {i} accepted"
            );
        }
    }
}

#[test]
fn paper_and_annex_g_vectors_as_apdus() {
    let vectors = common::repository();
    let mut done = Vec::new();
    for v in vectors
        .iter()
        .filter(|v| v.name.starts_with("paper-") || v.name == "ieee1703-annexG")
    {
        let r = common::rebuild(v);
        let apdu = AcseApdu::parse(&r.apdu).unwrap();
        let canon = canonical_cleartext(&apdu, apdu.user_information.epsem.len(), &r.opts).unwrap();
        assert_eq!(
            hex::encode(&canon),
            hex::encode(&r.canonical),
            "{}: canonical cleartext",
            v.name
        );
        check(&v.name, &r.apdu, &r.plain_epsem, &v.key.unwrap(), &r.opts);
        done.push(v.name.clone());
    }
    assert_eq!(
        done,
        [
            "paper-1",
            "paper-2",
            "paper-3",
            "paper-4",
            "ieee1703-annexG"
        ]
    );
}

#[test]
fn c12adapter_request_verifies() {
    let v = common::repository()
        .into_iter()
        .find(|v| v.name == "c12adapter-request")
        .unwrap();
    let apdu = AcseApdu::parse(&v.apdu).unwrap();
    let wire = &apdu.user_information.epsem;
    assert_eq!(&wire[wire.len() - 4..], &v.mac[..]);
    let plain = wire[..wire.len() - 4].to_vec();
    check(
        &v.name,
        &v.apdu,
        &plain,
        &v.key.unwrap(),
        &CanonOptions::default(),
    );
    // Logon-less Security + two full reads (ST1, ST5).
    let e = Epsem::parse(&plain).unwrap();
    assert_eq!(e.services.len(), 3);
}
