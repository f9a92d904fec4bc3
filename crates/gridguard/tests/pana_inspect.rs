//! `gridguard inspect` on the published PANA vector (a real OpenPANA <-> hostapd exchange,
//! tests/vectors/pana-auth.txt) wrapped into a pcap file: one line per frame, every AUTH AVP
//! `ok` with the vector's MSK and `BAD` with another.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

use pcap_file::pcap::{PcapPacket, PcapWriter};

const GRIDGUARD: &str = env!("CARGO_BIN_EXE_gridguard");

struct Vector {
    msk: String,
    frames: Vec<(u32, Vec<u8>)>,
}

fn load() -> Option<Vector> {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../tests/vectors/pana-auth.txt");
    let Ok(text) = std::fs::read_to_string(&path) else {
        eprintln!("SKIPPED: {} is absent", path.display());
        return None;
    };
    let mut v = Vector {
        msk: String::new(),
        frames: Vec::new(),
    };
    for line in text.lines().filter(|l| !l.starts_with('#')) {
        match line.split_whitespace().collect::<Vec<_>>().as_slice() {
            ["MSK", hex] => v.msk = hex.to_string(),
            ["FRAME", n, hex] => v
                .frames
                .push((n.parse().unwrap(), hex::decode(hex).unwrap())),
            _ => {}
        }
    }
    Some(v)
}

/// The frames as UDP datagrams between a PaC (10.0.0.2) and a PAA (10.0.0.1, port 716) in an
/// Ethernet pcap; requests of type Auth come from the PAA, everything else from the PaC
/// (direction does not matter to the AUTH check).
fn write_pcap(frames: &[(u32, Vec<u8>)]) -> tempfile::NamedTempFile {
    let file = tempfile::NamedTempFile::new().unwrap();
    let mut writer = PcapWriter::new(file.reopen().unwrap()).unwrap();
    for (i, (_, payload)) in frames.iter().enumerate() {
        let from_paa = payload[4] & 0x80 != 0 && payload[7] == 2;
        let (src, dst, sport, dport) = if from_paa {
            ([10, 0, 0, 1], [10, 0, 0, 2], 716, 716)
        } else {
            ([10, 0, 0, 2], [10, 0, 0, 1], 716, 716)
        };
        let mut frame = Vec::new();
        etherparse::PacketBuilder::ethernet2([2, 0, 0, 0, 0, 1], [2, 0, 0, 0, 0, 2])
            .ipv4(src, dst, 64)
            .udp(sport, dport)
            .write(&mut frame, payload)
            .unwrap();
        writer
            .write_packet(&PcapPacket::new(
                Duration::from_millis(100 * i as u64),
                frame.len() as u32,
                &frame,
            ))
            .unwrap();
    }
    drop(writer);
    file
}

fn inspect(path: &std::path::Path, msk: &str) -> (bool, String) {
    let out = Command::new(GRIDGUARD)
        .arg("inspect")
        .arg(path)
        .args(["--msk", msk])
        .output()
        .unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
    )
}

#[test]
fn inspect_verifies_every_auth_avp_of_the_published_vector() {
    let Some(v) = load() else { return };
    let pcap = write_pcap(&v.frames);
    let (ok, text) = inspect(pcap.path(), &v.msk);
    assert!(ok, "{text}");
    let lines: Vec<&str> = text.lines().filter(|l| l.contains(" PANA ")).collect();
    assert_eq!(lines.len(), v.frames.len(), "one line per frame:\n{text}");
    // Which frames carry an AUTH AVP, from the bytes (AVP code 1).
    let with_auth: Vec<u32> = v
        .frames
        .iter()
        .filter(|(_, f)| gridguard_pana::Message::parse(f).unwrap().auth().is_some())
        .map(|(n, _)| *n)
        .collect();
    assert!(with_auth.len() >= 4, "{with_auth:?}");
    let verified = lines.iter().filter(|l| l.ends_with("AUTH ok")).count();
    assert_eq!(verified, with_auth.len(), "{text}");
    assert!(lines[0].contains("PANA PCI"), "{text}");
    assert!(
        lines
            .iter()
            .any(|l| l.contains("PAR [RC]") && l.contains("key-id 0x47889e39")),
        "{text}"
    );
    assert!(lines
        .iter()
        .any(|l| l.contains("EAP Request") && l.contains("PSK-1")));

    let (ok, wrong) = inspect(pcap.path(), &"a5".repeat(64));
    assert!(!ok, "a wrong MSK must fail: {wrong}");
    let bad = wrong.lines().filter(|l| l.ends_with("AUTH BAD")).count();
    assert_eq!(bad, with_auth.len(), "{wrong}");
}
