//! Known answers recorded from hostapd 2.10's RADIUS server (Debian package `hostapd`,
//! EAP-PSK user "meter1", PSK 000102030405060708090a0b0c0d0e0f, shared secret "upsecret").
//!
//! Recorded with `examples/eap_relay.rs --dump` between eapol_test (EAP-PSK peer, RADIUS
//! client) and hostapd; eapol_test reported "MPPE keys OK: 1 mismatch: 0" for the keys this
//! crate decrypted from hostapd and re-encrypted to it, and printed them; they are the
//! expected keys below.

#![allow(clippy::unwrap_used, clippy::indexing_slicing)] // test helpers fail loudly by design

use gridguard_radius::auth::{verify_message_authenticator, verify_response_authenticator};
use gridguard_radius::mppe::extract_mppe_keys;
use gridguard_radius::{AttributeType, Code, Packet, MS_MPPE_RECV_KEY, MS_MPPE_SEND_KEY};

const SECRET: &[u8] = b"upsecret";

/// Our first Access-Request (EAP-Response/Identity "meter1").
const REQUEST_1: &str = "01000054b72aac69eb85ce4adddec5d0fb6af6105012dab6a704d2b86c64e7ae937bb91a\
    742f01086d65746572311f1330322d30302d30302d30302d30302d30310c06000005784f0d0241000b016d657465\
    7231";
/// hostapd's Access-Challenge to it (EAP-PSK first message).
const CHALLENGE_1: &str = "0b00004b12d02264c18fc2b6c96c8ecd6710ade01806000000004f1f0142001d2f00\
    36c8586a2c03d917f58788eb7d1a4b60686f737461706450124932b95448c8e232747f15e89f38b1e1";
/// Our third Access-Request (EAP-PSK fourth message).
const REQUEST_3: &str = "0102007a868eb427dd133b728bd713b6fe2322bc5012558d52a806485016ed8dac01cb\
    f933b601086d65746572311f1330322d30302d30302d30302d30302d30310c06000005781806000000004f2d02\
    43002b2fc036c8586a2c03d917f58788eb7d1a4b600000000123f1b1cf7be0729af5121a13ce24e57870";
/// hostapd's Access-Accept with EAP-Success and the MS-MPPE keys.
const ACCEPT: &str = "020200c371b22286d810d1dafa21c0956c3aefe04f06034300041a3a0000013710348fe5\
    67b97b92156dc1438d7632a82a466863782cfdd4de2c4b402a420d450a41534b6dcf5bcda958eff654d20888f0\
    7e82551a3a0000013711348fe448a3765e496fb30e7fe23f9c5cc6587b124e9bd773e73a1f96c774911898b198\
    4e3e50bbda7044368772313ca967fa1466232f0c0424a99fac69b060d7d85a43bef7e736c8586a2c03d917f587\
    88eb7d1a4b605012b30d9baaf51b3bd36b022c50d6166dba";
const SEND_KEY: &str = "6344fce0ea7ff8db6194ea68a841b93a7e963f321df19ec909867de2f2fbaa64";
const RECV_KEY: &str = "736e5d93cdc9215dbbf34fba5daa0c32c3dcb1669f743435a38711772b3022b5";

fn h(s: &str) -> Vec<u8> {
    hex::decode(s).unwrap()
}

fn authenticator(bytes: &[u8]) -> [u8; 16] {
    bytes[4..20].try_into().unwrap()
}

#[test]
fn hostapd_challenge_verifies() {
    let req = h(REQUEST_1);
    let resp = h(CHALLENGE_1);
    let ra = authenticator(&req);
    verify_response_authenticator(&resp, &ra, SECRET).unwrap();
    assert_eq!(
        verify_message_authenticator(&resp, &ra, SECRET, true),
        Ok(true)
    );
    let p = Packet::parse(&resp).unwrap();
    assert_eq!(p.code, Code::ACCESS_CHALLENGE);
    assert_eq!(p.identifier, 0);
    let eap = p.eap_message().unwrap();
    // EAP-Request, identifier 0x42, type 47 (EAP-PSK), flags 0 (first message).
    assert_eq!(&eap[..6], &[0x01, 0x42, 0x00, 0x1d, 0x2f, 0x00]);
    // hostapd names its session in a 4-byte State.
    assert_eq!(p.state(), Some(&[0u8, 0, 0, 0][..]));
    assert_eq!(p.to_bytes().unwrap(), resp);
}

#[test]
fn our_requests_carry_a_valid_message_authenticator() {
    for r in [REQUEST_1, REQUEST_3] {
        let req = h(r);
        assert_eq!(
            verify_message_authenticator(&req, &authenticator(&req), SECRET, true),
            Ok(true)
        );
        let p = Packet::parse(&req).unwrap();
        assert_eq!(p.attributes[0].typ, AttributeType::MESSAGE_AUTHENTICATOR);
        assert_eq!(p.user_name(), Some(&b"meter1"[..]));
    }
}

#[test]
fn hostapd_accept_mppe_keys_decrypt_to_known_answer() {
    let req = h(REQUEST_3);
    let resp = h(ACCEPT);
    let ra = authenticator(&req);
    verify_response_authenticator(&resp, &ra, SECRET).unwrap();
    assert_eq!(
        verify_message_authenticator(&resp, &ra, SECRET, true),
        Ok(true)
    );
    let p = Packet::parse(&resp).unwrap();
    assert_eq!(p.code, Code::ACCESS_ACCEPT);
    assert_eq!(p.eap_message().unwrap(), [0x03, 0x43, 0x00, 0x04]);
    // hostapd sends each key in its own Vendor-Specific attribute.
    let types: Vec<u8> = p
        .vendor_specific()
        .flat_map(|v| v.attributes.into_iter().map(|a| a.vendor_type))
        .collect();
    assert_eq!(types, [MS_MPPE_SEND_KEY, MS_MPPE_RECV_KEY]);
    let keys = extract_mppe_keys(&p, SECRET, &ra).unwrap().unwrap();
    assert_eq!(hex::encode(&*keys.send), SEND_KEY);
    assert_eq!(hex::encode(&*keys.recv), RECV_KEY);
    assert_eq!(hex::encode(&*keys.msk()), format!("{RECV_KEY}{SEND_KEY}"));
    // With the wrong Request Authenticator the keys come out different.
    let wrong = extract_mppe_keys(&p, SECRET, &[0; 16]);
    assert!(wrong.map_or(true, |k| k
        .is_none_or(|k| hex::encode(&*k.send) != SEND_KEY)));
    assert_eq!(p.to_bytes().unwrap(), resp);
}
