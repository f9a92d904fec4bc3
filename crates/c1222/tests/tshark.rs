//! Interoperability: APDUs sealed here are verified by Wireshark's C12.22 dissector (tshark),
//! configured with the key; a one-byte change must be flagged as bad crypto.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

mod common;

use std::process::Command;

use gridguard_c1222::pcap::PcapWriter;
use gridguard_c1222::security::{Association, AssociationConfig};
use gridguard_c1222::{
    AcseApdu, ApTitle, Epsem, EpsemControl, Integer, ObjectId, RelativeOid, Request,
    ResponseControl, SecurityMode, Service, TableId, C1222_PORT,
};
use rand::rngs::StdRng;
use rand::SeedableRng;
use zeroize::Zeroizing;

const KEY: [u8; 16] = [
    0x2b, 0x7e, 0x15, 0x16, 0x28, 0xae, 0xd2, 0xa6, 0xab, 0xf7, 0x15, 0x88, 0x09, 0xcf, 0x4f, 0x3c,
];

fn tshark_available() -> bool {
    Command::new("tshark")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success())
}

/// Runs tshark over `pcap` with the given (key id, key) table; returns (crypto_good,
/// crypto_bad) per packet.
fn tshark_verdicts(pcap: &[u8], keys: &[(u8, [u8; 16])], tag: &str) -> Vec<(bool, bool)> {
    tshark_verdicts_with(pcap, keys, tag, &[])
}

fn tshark_verdicts_with(
    pcap: &[u8],
    keys: &[(u8, [u8; 16])],
    tag: &str,
    extra: &[&str],
) -> Vec<(bool, bool)> {
    let path =
        std::env::temp_dir().join(format!("gridguard-c1222-{}-{tag}.pcap", std::process::id()));
    std::fs::write(&path, pcap).unwrap();
    let mut cmd = Command::new("tshark");
    cmd.arg("-n")
        .arg("-r")
        .arg(&path)
        .args(["-o", "c1222.decrypt:TRUE"])
        .args(extra);
    for (id, key) in keys {
        cmd.arg("-o").arg(format!(
            "uat:c1222_decryption_table:\"{id:x}\",{}",
            hex::encode(key)
        ));
    }
    cmd.args([
        "-T",
        "fields",
        "-e",
        "c1222.crypto_good",
        "-e",
        "c1222.crypto_bad",
    ]);
    let out = cmd.output().unwrap();
    let _ = std::fs::remove_file(&path);
    assert!(
        out.status.success(),
        "tshark failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| {
            let mut f = l.split('\t');
            let good = f.next().unwrap_or("");
            let bad = f.next().unwrap_or("");
            (good == "1" || good == "True", bad == "1" || bad == "True")
        })
        .collect()
}

fn pcap_of(messages: &[Vec<u8>]) -> Vec<u8> {
    let mut w = PcapWriter::new();
    for (i, m) in messages.iter().enumerate() {
        w.push_udp(
            1_700_000_000_000_000 + i as u64 * 1000,
            ([192, 0, 2, 10], 50_000),
            ([192, 0, 2, 1], C1222_PORT),
            m,
        )
        .unwrap();
    }
    w.into_bytes()
}

fn request(mode: SecurityMode, invocation: u32) -> AcseApdu {
    let epsem = Epsem {
        control: EpsemControl::new(mode, ResponseControl::ALWAYS),
        ed_class: None,
        end_marker: false,
        services: vec![
            Service::Request(Request::FullRead { table: TableId(1) }),
            Service::Request(Request::PartialReadOffset {
                table: TableId(64),
                offset: 0x10,
                count: 32,
            }),
        ],
    };
    let mut apdu = AcseApdu::new(epsem.to_bytes().unwrap());
    apdu.called_ap_title = Some(ApTitle::Absolute(
        ObjectId::from_arcs(&[2, 16, 124, 113620, 1, 22, 0, 1]).unwrap(),
    ));
    apdu.calling_ap_title = Some(ApTitle::Absolute(
        ObjectId::from_arcs(&[2, 16, 124, 113620, 1, 22, 0, 77]).unwrap(),
    ));
    apdu.calling_ap_invocation_id = Some(Integer::from_u32(invocation));
    apdu
}

#[test]
fn tshark_verifies_our_mode_1_and_mode_2_messages() {
    if !tshark_available() {
        eprintln!("skipping: tshark is not installed");
        return;
    }
    let keys = |_: &ApTitle, id: u8| (id == 0).then(|| Zeroizing::new(KEY));
    let mut assoc = Association::new(AssociationConfig::default(), keys);
    let mut rng = StdRng::seed_from_u64(1153);
    let m1 = assoc
        .seal(request(SecurityMode::CLEARTEXT_AUTH, 1), 0, &mut rng)
        .unwrap();
    let m2 = assoc
        .seal(request(SecurityMode::CIPHERTEXT_AUTH, 2), 0, &mut rng)
        .unwrap();
    let n = m1.len();
    let mut m1_epsem_flip = m1.clone();
    m1_epsem_flip[n - 6] ^= 0x01; // inside the authenticated EPSEM
    let mut m2_body_flip = m2.clone();
    let n2 = m2.len();
    m2_body_flip[n2 - 8] ^= 0x01; // inside the ciphertext
    let mut m2_mac_flip = m2.clone();
    m2_mac_flip[n2 - 1] ^= 0x80;
    let mut m2_header_flip = m2.clone();
    // The last arc of the called AP title (2.16.124.113620.1.22.0.1 -> ...0.0).
    let pos = m2.windows(3).position(|w| w == [0x16, 0x00, 0x01]).unwrap();
    m2_header_flip[pos + 2] ^= 0x01;

    let msgs = vec![
        m1.clone(),
        m2.clone(),
        m1_epsem_flip,
        m2_body_flip,
        m2_mac_flip,
        m2_header_flip,
    ];
    let verdicts = tshark_verdicts(&pcap_of(&msgs), &[(0, KEY)], "ours");
    assert_eq!(
        verdicts,
        vec![
            (true, false),
            (true, false),
            (false, true),
            (false, true),
            (false, true),
            (false, true),
        ]
    );

    // And our own receiver agrees.
    let mut rx = Association::new(AssociationConfig::default(), |_: &ApTitle, id: u8| {
        (id == 0).then(|| Zeroizing::new(KEY))
    });
    let now = std::time::Instant::now();
    for (i, m) in msgs.iter().enumerate() {
        assert_eq!(rx.receive(now, m).is_ok(), i < 2, "message {i}");
    }
}

#[test]
fn tshark_verifies_rebuilt_paper_vectors() {
    if !tshark_available() {
        eprintln!("skipping: tshark is not installed");
        return;
    }
    let vectors = common::repository();
    // paper-1 and paper-2 share key id 2 and a key; paper-3 uses key id 0.
    let mut msgs = Vec::new();
    let mut keys = Vec::new();
    for name in ["paper-1", "paper-2", "paper-3"] {
        let v = vectors.iter().find(|v| v.name == name).unwrap();
        let r = common::rebuild(v);
        msgs.push(r.apdu.clone());
        let mut bad = r.apdu.clone();
        let last = bad.len() - 1;
        bad[last] ^= 0x01;
        msgs.push(bad);
        if !keys.iter().any(|(id, _)| *id == r.key_id) {
            keys.push((r.key_id, v.key.unwrap()));
        }
    }
    let verdicts = tshark_verdicts(&pcap_of(&msgs), &keys, "paper");
    assert_eq!(
        verdicts,
        vec![
            (true, false),
            (false, true),
            (true, false),
            (false, true),
            (true, false),
            (false, true)
        ]
    );
}

#[test]
fn tshark_verifies_relative_ap_titles_against_the_base_oid() {
    if !tshark_available() {
        eprintln!("skipping: tshark is not installed");
        return;
    }
    // Wireshark's relative form is the context-tagged one (0x80); it expands it against
    // c1222.baseoid before authenticating, as our CanonOptions::base_oid does.
    let base = ObjectId::from_arcs(&[2, 16, 124, 113620, 1, 22]).unwrap();
    let mut cfg = AssociationConfig::default();
    cfg.canon.base_oid = Some(base);
    let keys = |_: &ApTitle, id: u8| (id == 5).then(|| Zeroizing::new(KEY));
    let mut assoc = Association::new(cfg, keys);
    let mut rng = StdRng::seed_from_u64(22);
    let mut msgs = Vec::new();
    for (i, mode) in [SecurityMode::CLEARTEXT_AUTH, SecurityMode::CIPHERTEXT_AUTH]
        .into_iter()
        .enumerate()
    {
        let mut apdu = request(mode, 100 + i as u32);
        apdu.called_ap_title = Some(ApTitle::RelativeContextTagged(
            RelativeOid::from_arcs(&[0, 1]).unwrap(),
        ));
        apdu.calling_ap_title = Some(ApTitle::RelativeContextTagged(
            RelativeOid::from_arcs(&[0, 77]).unwrap(),
        ));
        msgs.push(assoc.seal(apdu, 5, &mut rng).unwrap());
    }
    let pcap = pcap_of(&msgs);
    let with_base = tshark_verdicts_with(
        &pcap,
        &[(5, KEY)],
        "relative",
        &["-o", "c1222.baseoid:2.16.124.113620.1.22"],
    );
    assert_eq!(with_base, vec![(true, false), (true, false)]);
    // Without the base OID Wireshark authenticates a different cleartext: both fail.
    let without = tshark_verdicts(&pcap, &[(5, KEY)], "relative-nobase");
    assert_eq!(without, vec![(false, true), (false, true)]);
}

#[test]
fn tshark_verifies_every_covered_header_element() {
    if !tshark_available() {
        eprintln!("skipping: tshark is not installed");
        return;
    }
    // Application context, called AP invocation id, calling AE qualifier and mechanism name are
    // all part of the canonified cleartext; Wireshark must agree on their layout.
    let keys = |_: &ApTitle, id: u8| (id == 1).then(|| Zeroizing::new(KEY));
    let mut assoc = Association::new(AssociationConfig::default(), keys);
    let mut rng = StdRng::seed_from_u64(4);
    let mut msgs = Vec::new();
    for (i, mode) in [SecurityMode::CLEARTEXT_AUTH, SecurityMode::CIPHERTEXT_AUTH]
        .into_iter()
        .enumerate()
    {
        let mut apdu = request(mode, 300 + i as u32);
        apdu.application_context = Some(ObjectId::from_arcs(&[2, 16, 124, 113620, 1, 22]).unwrap());
        apdu.called_ap_invocation_id = Some(Integer::from_u32(77));
        apdu.calling_ae_qualifier = Some(Integer::from_u32(4));
        apdu.mechanism_name =
            Some(ObjectId::from_arcs(&[2, 16, 124, 113620, 1, 22, 2, 1]).unwrap());
        let wire = assoc.seal(apdu, 1, &mut rng).unwrap();
        let parsed = AcseApdu::parse(&wire).unwrap();
        assert_eq!(
            parsed.element_tags(),
            [0xa1, 0xa2, 0xa4, 0xa6, 0xa7, 0xa8, 0x8b, 0xac, 0xbe]
        );
        msgs.push(wire);
    }
    // Same messages with the mechanism name's last byte changed: must fail.
    for m in msgs.clone() {
        let mut bad = m.clone();
        let pos = bad.iter().position(|b| *b == 0x8b).unwrap();
        let len = usize::from(bad[pos + 1]);
        bad[pos + 1 + len] ^= 0x01;
        msgs.push(bad);
    }
    let verdicts = tshark_verdicts(&pcap_of(&msgs), &[(1, KEY)], "all-elements");
    assert_eq!(
        verdicts,
        vec![(true, false), (true, false), (false, true), (false, true)]
    );
}
