//! Meters behind neighbourhood collectors: the fleet in relay mode (one socket per collector,
//! PANA carried in PANA-Relay messages per RFC 6345, C12.22 routed by called AP title) runs the
//! demo's days with an outage and backfill; every interval is stored once, and Wireshark's
//! PANA dissector (tshark) reads every relayed datagram of the capture as a PRY holding the
//! meter's PaC-Information and an encapsulated PANA message.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

mod support;

use std::collections::BTreeSet;
use std::net::SocketAddr;

use gridguard::demo::{run, DemoOptions};
use gridguard::fleet::relayed_pac_address;

const METERS: u64 = 60;

/// PaC-Information as tshark prints it: the 16-octet address, then the port, in hex.
fn pac_information_hex(a: SocketAddr) -> String {
    let SocketAddr::V6(v6) = a else {
        panic!("relayed PaC addresses are IPv6");
    };
    let mut hex: String = v6
        .ip()
        .octets()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    hex.push_str(&format!("{:04x}", v6.port()));
    hex
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn meters_behind_relays_run_their_days_and_tshark_reads_the_relay_messages() {
    let dir = tempfile::tempdir().unwrap();
    let pcap = dir.path().join("relayed.pcap");
    let report = run(DemoOptions {
        meters: METERS,
        days: 3,
        day_secs: 2.5,
        relays: 3,
        data: dir.path().join("data"),
        pcap: Some(pcap.clone()),
        progress: false,
        ..DemoOptions::default()
    })
    .await
    .unwrap();

    assert_eq!(
        report.stored_intervals, report.expected_intervals,
        "{}",
        report.summary
    );
    assert_eq!(report.verified_meters.0, report.verified_meters.1);
    assert_eq!(report.differing_readings, 0);
    assert_eq!(report.headend.sessions, METERS, "{}", report.summary);
    assert!(
        report.headend.intervals_filled > 0,
        "the outage left gaps for backfill: {}",
        report.summary
    );
    // Three meters start with their clocks off; the SP10 reached them through the relays.
    assert_eq!(report.headend.clocks_set, 3, "{}", report.summary);

    if !support::tools_present(&["tshark"]) {
        return;
    }
    let bad = support::tshark(
        &pcap,
        &[
            "-Y",
            "udp.port == 716 && (!pana || _ws.malformed || _ws.expert.severity >= warning)",
        ],
    );
    assert!(bad.trim().is_empty(), "tshark flags problems:\n{bad}");
    let rows = support::tshark(
        &pcap,
        &[
            "-Y",
            "udp.port == 716",
            "-T",
            "fields",
            "-E",
            "separator=|",
            "-e",
            "pana.type",
            "-e",
            "pana.sid",
            "-e",
            "pana.avp.code",
            "-e",
            "pana.avp.data.bytes",
        ],
    );
    let expected: BTreeSet<String> = (0..METERS)
        .map(|m| pac_information_hex(relayed_pac_address(m)))
        .collect();
    let (mut pacs, mut sessions, mut frames) = (BTreeSet::new(), BTreeSet::new(), 0);
    for row in rows.lines() {
        let f: Vec<&str> = row.split('|').collect();
        let types: Vec<&str> = f[0].split(',').collect();
        let sids: Vec<&str> = f[1].split(',').collect();
        let codes: Vec<&str> = f[2].split(',').collect();
        // Outer: a PANA-Relay with session 0, PaC-Information then Relayed-Message; inner: a
        // PANA message of RFC 5191.
        assert_eq!(types.len(), 2, "{row}");
        assert_eq!(types[0], "5", "{row}");
        assert!(["1", "2", "3", "4"].contains(&types[1]), "{row}");
        assert_eq!(sids[0], "0x00000000", "{row}");
        assert_eq!(&codes[..2], &["10", "11"], "{row}");
        let pac = f[3].split(',').next().unwrap().to_string();
        assert!(expected.contains(&pac), "unknown PaC-Information {pac}");
        pacs.insert(pac);
        if sids[1] != "0x00000000" {
            sessions.insert(sids[1].to_string());
        }
        frames += 1;
    }
    assert!(frames > 0);
    assert_eq!(pacs, expected, "every meter authenticated through a relay");
    assert!(sessions.len() >= usize::try_from(METERS).unwrap());
}
