//! EAX′ against every published vector: sealing, opening, tamper detection, the forgery refusal.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

mod common;

use common::Vector;
use gridguard_c1222::{EaxPrime, Error};

fn check_vector(v: &Vector) {
    let key = v.key.expect("positive vectors have a key");
    let e = EaxPrime::new(&key);
    let mac: [u8; 4] = v.mac.clone().try_into().unwrap();

    // Seal.
    let mut buf = v.plaintext.clone();
    let got = e.seal(&v.cleartext, &mut buf).unwrap();
    assert_eq!(buf, v.ciphertext, "{}: ciphertext", v.name);
    assert_eq!(got, mac, "{}: mac", v.name);

    // Open.
    let mut buf = v.ciphertext.clone();
    e.open(&v.cleartext, &mut buf, &mac).unwrap();
    assert_eq!(buf, v.plaintext, "{}: plaintext", v.name);

    // Any flipped byte of cleartext, ciphertext or MAC fails and leaves the buffer encrypted.
    for i in 0..v.cleartext.len() {
        let mut c = v.cleartext.clone();
        c[i] ^= 0x01;
        let mut buf = v.ciphertext.clone();
        assert_eq!(
            e.open(&c, &mut buf, &mac),
            Err(Error::AuthenticationFailed),
            "{}: cleartext byte {i}",
            v.name
        );
        assert_eq!(buf, v.ciphertext);
    }
    for i in 0..v.ciphertext.len() {
        let mut buf = v.ciphertext.clone();
        buf[i] ^= 0x80;
        let tampered = buf.clone();
        assert_eq!(
            e.open(&v.cleartext, &mut buf, &mac),
            Err(Error::AuthenticationFailed),
            "{}: ciphertext byte {i}",
            v.name
        );
        assert_eq!(buf, tampered, "{}: buffer modified on failure", v.name);
    }
    for i in 0..4 {
        let mut m = mac;
        m[i] ^= 0x10;
        let mut buf = v.ciphertext.clone();
        assert_eq!(
            e.open(&v.cleartext, &mut buf, &m),
            Err(Error::AuthenticationFailed)
        );
        assert_eq!(buf, v.ciphertext);
    }
    // The wrong key fails too.
    let mut other = key;
    other[0] ^= 1;
    let mut buf = v.ciphertext.clone();
    assert!(EaxPrime::new(&other)
        .open(&v.cleartext, &mut buf, &mac)
        .is_err());
}

fn run_all(vectors: &[Vector]) -> usize {
    let mut n = 0;
    for v in vectors {
        if v.reject {
            let mac: [u8; 4] = v.mac.clone().try_into().unwrap();
            for key in [[0u8; 16], [0x5a; 16], *b"0123456789abcdef"] {
                let mut buf = v.ciphertext.clone();
                assert_eq!(
                    EaxPrime::new(&key).open(&v.cleartext, &mut buf, &mac),
                    Err(Error::CleartextTooShort),
                    "{}",
                    v.name
                );
                assert_eq!(buf, v.ciphertext);
                let mut p = v.ciphertext.clone();
                assert_eq!(
                    EaxPrime::new(&key).seal(&v.cleartext, &mut p),
                    Err(Error::CleartextTooShort)
                );
            }
            n += 1;
        } else if v.apdu.is_empty() {
            check_vector(v);
            n += 1;
        }
    }
    n
}

#[test]
fn repository_vectors_pass() {
    // tests/vectors/eaxprime.txt at the workspace root, read at run time (no embedded copy).
    let v = common::repository();
    let names: Vec<&str> = v.iter().map(|x| x.name.as_str()).collect();
    assert_eq!(
        names,
        [
            "paper-1",
            "paper-2",
            "paper-3",
            "paper-4",
            "ieee1703-annexG",
            "microaes-selfgen",
            "forgery-onebyte",
            "c12adapter-request"
        ]
    );
    assert_eq!(run_all(&v), 7);
}

#[test]
fn shared_vectors_pass_and_match_repository_copy() {
    match common::shared() {
        Some(shared) => {
            assert_eq!(
                shared,
                common::repository(),
                "tests/vectors/eaxprime.txt differs from the shared original"
            );
            assert_eq!(run_all(&shared), 7);
        }
        None => eprintln!("skipping: {} not present", common::SHARED),
    }
}

#[test]
fn one_block_cleartexts_are_refused_for_every_padding_length() {
    // Generalised forgery: cleartext = pad(C) for 1..15-byte C, and any 16-byte cleartext.
    let e = EaxPrime::new(&[9u8; 16]);
    for len in 0..=16 {
        let clear = vec![0x41u8; len];
        let mut ct = vec![0x41u8];
        assert_eq!(
            e.open(&clear, &mut ct, &[0; 4]),
            Err(Error::CleartextTooShort)
        );
    }
    let mut ct = vec![0x41u8];
    assert_eq!(
        e.open(&[0u8; 17], &mut ct, &[0; 4]),
        Err(Error::AuthenticationFailed)
    );
}

#[test]
fn empty_plaintext_round_trips() {
    let e = EaxPrime::new(&[3u8; 16]);
    let clear = [0xabu8; 40];
    let mac = e.seal(&clear, &mut []).unwrap();
    e.open(&clear, &mut [], &mac).unwrap();
}
