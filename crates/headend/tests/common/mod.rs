//! Shared test plumbing: a real in-memory EAP-PSK exchange for the EMSK, titles, host and
//! meter builders, and tshark helpers.
#![allow(
    dead_code,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

use std::path::PathBuf;
use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};

use gridguard_c1222::pcap::PcapWriter;
use gridguard_c1222::{ApTitle, ObjectId, C1222_PORT};
use gridguard_eap::{
    Authenticator, AuthenticatorConfig, AuthenticatorEvent, MemoryCredentials, Peer, PeerConfig,
    PeerEvent, PeerMethod, Psk, PskPeer, PskServerConfig, ServerMethodFactory, SessionKeys,
};
use gridguard_headend::{C1222Host, HostConfig, MeterLink, MeterLinkConfig};
use gridguard_keys::keylog::KeyLog;
use gridguard_keys::SessionFacts;
use rand::rngs::StdRng;
use rand::SeedableRng;

pub const IDENTITY: &[u8] = b"meter-0077@gridguard.test";
pub const PSK: [u8; 16] = [
    0x3f, 0x12, 0x9a, 0x44, 0x01, 0xbe, 0x77, 0x20, 0x5c, 0xd1, 0x08, 0x6e, 0xaa, 0x93, 0x4b, 0x10,
];
pub const LIFETIME: Duration = Duration::from_secs(3600);
pub const GRACE: Duration = Duration::from_secs(300);

pub fn host_title() -> ApTitle {
    ApTitle::Absolute(ObjectId::from_arcs(&[2, 16, 124, 113620, 1, 22, 0, 1]).unwrap())
}

pub fn meter_title() -> ApTitle {
    ApTitle::Absolute(ObjectId::from_arcs(&[2, 16, 124, 113620, 1, 22, 0, 77]).unwrap())
}

/// Runs our EAP-PSK peer against our authenticator in memory; returns (server keys, peer keys).
pub fn eap_psk(seed: u64) -> (SessionKeys, SessionKeys) {
    let now = Instant::now();
    let mut rng = StdRng::seed_from_u64(seed);
    let mut creds = MemoryCredentials::new();
    creds.insert(IDENTITY.to_vec(), Psk::new(PSK));
    let f: Arc<dyn ServerMethodFactory> =
        Arc::new(PskServerConfig::new(b"gridguard".to_vec(), Arc::new(creds)).unwrap());
    let mut auth = Authenticator::new(vec![f].into(), AuthenticatorConfig::default());
    let m: Box<dyn PeerMethod> = Box::new(PskPeer::new(IDENTITY.to_vec(), &Psk::new(PSK)).unwrap());
    let mut peer = Peer::new(IDENTITY.to_vec(), vec![m], PeerConfig::default(), now);
    auth.start(now, &mut rng);
    for _ in 0..50 {
        let mut moved = false;
        while let Some(p) = auth.poll_transmit() {
            moved = true;
            peer.handle_packet(&p, now, &mut rng).unwrap();
        }
        while let Some(p) = peer.poll_transmit() {
            moved = true;
            auth.handle_response(&p, now, &mut rng).unwrap();
        }
        if !moved {
            break;
        }
    }
    let server = match auth.poll_event() {
        Some(AuthenticatorEvent::Success { keys, .. }) => keys,
        other => panic!("authenticator: {other:?}"),
    };
    let client = loop {
        match peer.poll_event() {
            Some(PeerEvent::Success(keys)) => break keys,
            Some(PeerEvent::Notification(_)) => continue,
            other => panic!("peer: {other:?}"),
        }
    };
    (server, client)
}

/// The PANA facts of authentication number `key_id` of session 7.
pub fn facts(key_id: u32) -> SessionFacts {
    SessionFacts::new(7, key_id, IDENTITY.to_vec())
}

pub fn host(seed: u64) -> C1222Host<StdRng> {
    C1222Host::new(
        HostConfig::new(host_title()).with_grace(GRACE),
        StdRng::seed_from_u64(seed),
    )
}

pub fn meter(seed: u64) -> MeterLink<StdRng> {
    MeterLink::new(
        MeterLinkConfig::new(meter_title(), host_title(), vec![10, 0, 0, 77]).with_grace(GRACE),
        StdRng::seed_from_u64(seed),
    )
}

/// A host and a meter sharing generation 1, keyed from a real EAP-PSK exchange.
pub fn pair(seed: u64, now: Instant) -> (C1222Host<StdRng>, MeterLink<StdRng>) {
    let (server, client) = eap_psk(seed);
    let mut h = host(seed);
    let mut m = meter(seed + 1);
    h.install_session(meter_title(), &facts(1), server.emsk(), LIFETIME, now)
        .unwrap();
    m.install_session(&facts(1), client.emsk(), LIFETIME, now)
        .unwrap();
    (h, m)
}

pub fn tshark_available() -> bool {
    Command::new("tshark")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success())
}

pub fn temp_path(tag: &str) -> PathBuf {
    std::env::temp_dir().join(format!("gridguard-headend-{}-{tag}", std::process::id()))
}

/// Writes the meter's current keys with the keys crate's KeyLog (appending).
pub fn log_keys(log: &mut KeyLog, m: &MeterLink<StdRng>, now: Instant) {
    let n = log.log_current(&"meter-0077", m.ring(), now).unwrap();
    assert_eq!(n, 3);
}

/// The Wireshark table lines of a key log file (comment lines dropped).
pub fn uat_lines(path: &std::path::Path) -> Vec<String> {
    std::fs::read_to_string(path)
        .unwrap()
        .lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
        .map(str::to_owned)
        .collect()
}

/// Direction of a captured APDU.
#[derive(Clone, Copy)]
pub enum Dir {
    ToHost,
    ToMeter,
}

pub fn pcap_of(messages: &[(Dir, Vec<u8>)]) -> Vec<u8> {
    let mut w = PcapWriter::new();
    for (i, (dir, m)) in messages.iter().enumerate() {
        let meter = ([192, 0, 2, 77], 50_077);
        let host = ([192, 0, 2, 1], C1222_PORT);
        let (src, dst) = match dir {
            Dir::ToHost => (meter, host),
            Dir::ToMeter => (host, meter),
        };
        w.push_udp(1_790_000_000_000_000 + i as u64 * 1000, src, dst, m)
            .unwrap();
    }
    w.into_bytes()
}

/// One row per packet of `tshark -T fields` over the capture with the key table `uat`.
pub fn tshark_fields(pcap: &[u8], uat: &[String], tag: &str, fields: &[&str]) -> Vec<Vec<String>> {
    let path = temp_path(&format!("{tag}.pcap"));
    std::fs::write(&path, pcap).unwrap();
    let mut cmd = Command::new("tshark");
    cmd.arg("-n")
        .arg("-r")
        .arg(&path)
        .args(["-o", "c1222.decrypt:TRUE"]);
    for line in uat {
        cmd.arg("-o")
            .arg(format!("uat:c1222_decryption_table:{line}"));
    }
    cmd.args(["-T", "fields", "-E", "occurrence=f"]);
    for f in fields {
        cmd.args(["-e", f]);
    }
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
        .map(|l| l.split('\t').map(str::to_owned).collect())
        .collect()
}

/// (crypto_good, crypto_bad) per packet.
pub fn tshark_verdicts(pcap: &[u8], uat: &[String], tag: &str) -> Vec<(bool, bool)> {
    tshark_fields(pcap, uat, tag, &["c1222.crypto_good", "c1222.crypto_bad"])
        .into_iter()
        .map(|r| {
            let t = |s: Option<&String>| s.is_some_and(|s| s == "1" || s == "True");
            (t(r.first()), t(r.get(1)))
        })
        .collect()
}
