//! Wireshark's own C12.22 dissector (tshark), keyed from our key log, over captures of the
//! host and meter talking: registration, interval writes, a host read, a demand-response
//! write and a key rollover all verify (crypto_good) and dissect without malformed packets;
//! a message with one byte flipped is refused by our host and flagged by tshark.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

mod common;

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use common::*;
use gridguard_c1222::{
    Epsem, EpsemControl, Request, ResponseControl, SecurityMode, Service, TableId,
};
use gridguard_headend::{MemoryTables, Refusal};
use gridguard_keys::keylog::KeyLog;

fn from() -> SocketAddr {
    "192.0.2.77:50077".parse().unwrap()
}

fn request(service: Request) -> Epsem {
    Epsem {
        control: EpsemControl::new(SecurityMode::CIPHERTEXT_AUTH, ResponseControl::ALWAYS),
        ed_class: None,
        services: vec![Service::Request(service)],
        end_marker: false,
    }
}

#[test]
fn one_flipped_byte_is_refused_by_the_host_and_flagged_by_tshark() {
    if !tshark_available() {
        eprintln!("skipping: tshark is not installed");
        return;
    }
    let t0 = Instant::now();
    let (mut h, mut m) = pair(31, t0);
    let log_path = temp_path("flip.keylog");
    let _ = std::fs::remove_file(&log_path);
    let mut log = KeyLog::open(&log_path).unwrap();
    log_keys(&mut log, &m, t0);

    let reg = m.registration(t0).unwrap();
    let reg_reply = h
        .handle_apdu(from(), &reg.bytes, t0)
        .unwrap()
        .bytes
        .unwrap();
    let w = m.write_intervals(64, &[0x11; 96], t0).unwrap();
    let mut flipped = w.bytes.clone();
    let n = flipped.len();
    flipped[n - 20] ^= 0x04; // inside the ciphertext
    assert_eq!(
        h.handle_apdu(from(), &flipped, t0),
        Err(Refusal::BadMac {
            meter: meter_title()
        })
    );
    let w_reply = h.handle_apdu(from(), &w.bytes, t0).unwrap().bytes.unwrap();

    let pcap = pcap_of(&[
        (Dir::ToHost, reg.bytes),
        (Dir::ToMeter, reg_reply),
        (Dir::ToHost, flipped),
        (Dir::ToHost, w.bytes),
        (Dir::ToMeter, w_reply),
    ]);
    let verdicts = tshark_verdicts(&pcap, &uat_lines(&log_path), "flip");
    let _ = std::fs::remove_file(&log_path);
    assert_eq!(
        verdicts,
        vec![
            (true, false),
            (true, false),
            (false, true),
            (true, false),
            (true, false)
        ]
    );
}

#[test]
fn capture_of_registration_writes_reads_and_rollover_dissects_clean() {
    if !tshark_available() {
        eprintln!("skipping: tshark is not installed");
        return;
    }
    let t0 = Instant::now();
    let (mut h, mut m) = pair(32, t0);
    let mut tables = MemoryTables::default();
    tables.tables.insert(1, b"GRIDGUARD-0077".to_vec());
    tables.tables.insert(2049, vec![0; 2]);
    let log_path = temp_path("rollover.keylog");
    let _ = std::fs::remove_file(&log_path);
    let mut log = KeyLog::open(&log_path).unwrap();
    log_keys(&mut log, &m, t0);
    let mut cap = Vec::new();
    // (what the meter sent, what the host answered)
    let meter_to_host = |h: &mut gridguard_headend::C1222Host<_>,
                         cap: &mut Vec<(Dir, Vec<u8>)>,
                         bytes: Vec<u8>,
                         now| {
        let reply = h.handle_apdu(from(), &bytes, now).unwrap().bytes;
        cap.push((Dir::ToHost, bytes));
        if let Some(r) = reply {
            cap.push((Dir::ToMeter, r));
        }
    };

    let reg = m.registration(t0).unwrap();
    meter_to_host(&mut h, &mut cap, reg.bytes, t0);
    let w = m.write_intervals(64, &[0x21; 96], t0).unwrap();
    meter_to_host(&mut h, &mut cap, w.bytes, t0);

    let read = h
        .request(
            &meter_title(),
            &request(Request::FullRead { table: TableId(1) }),
            t0,
        )
        .unwrap();
    let answer = m.handle_apdu(&read, t0, &mut tables).unwrap().unwrap();
    cap.push((Dir::ToMeter, read));
    meter_to_host(&mut h, &mut cap, answer, t0);

    let dr = h
        .demand_response(
            &meter_title(),
            &request(Request::FullWrite {
                table: TableId(2049),
                data: vec![0, 50],
            }),
            t0,
        )
        .unwrap();
    let answer = m.handle_apdu(&dr, t0, &mut tables).unwrap().unwrap();
    cap.push((Dir::ToMeter, dr));
    meter_to_host(&mut h, &mut cap, answer, t0);

    // Rollover: a message sealed under generation 1 is delivered after the re-authentication.
    let t1 = t0 + Duration::from_secs(3000);
    let old = m.write_intervals(64, &[0x31; 96], t1).unwrap();
    let (server, client) = eap_psk(1032);
    h.install_session(meter_title(), &facts(2), server.emsk(), LIFETIME, t1)
        .unwrap();
    m.install_session(&facts(2), client.emsk(), LIFETIME, t1)
        .unwrap();
    log_keys(&mut log, &m, t1);
    let new = m.write_intervals(64, &[0x41; 96], t1).unwrap();
    meter_to_host(&mut h, &mut cap, new.bytes, t1);
    meter_to_host(&mut h, &mut cap, old.bytes, t1 + Duration::from_secs(60));
    let read2 = h
        .request(
            &meter_title(),
            &request(Request::PartialReadOffset {
                table: TableId(1),
                offset: 2,
                count: 9,
            }),
            t1,
        )
        .unwrap();
    let answer = m.handle_apdu(&read2, t1, &mut tables).unwrap().unwrap();
    cap.push((Dir::ToMeter, read2));
    meter_to_host(&mut h, &mut cap, answer, t1);
    assert_eq!(cap.len(), 14);

    let uat = uat_lines(&log_path);
    let _ = std::fs::remove_file(&log_path);
    assert_eq!(uat.len(), 6, "two generations of three keys");
    let rows = tshark_fields(
        &pcap_of(&cap),
        &uat,
        "rollover",
        &[
            "c1222.crypto_good",
            "c1222.crypto_bad",
            "_ws.malformed",
            "_ws.expert.severity",
            "c1222.cmd",
            "c1222.write.table",
            "c1222.read.table",
            "c1222.key_id_element",
        ],
    );
    assert_eq!(rows.len(), cap.len());
    for (i, r) in rows.iter().enumerate() {
        assert_eq!(r[0], "1", "packet {i} not crypto_good: {r:?}");
        assert!(
            r[1].is_empty() || r[1] == "0",
            "packet {i} crypto_bad: {r:?}"
        );
        assert!(r[2].is_empty(), "packet {i} malformed: {r:?}");
        assert!(r[3].is_empty(), "packet {i} has expert items: {r:?}");
    }
    // Decrypted by tshark: the request commands and tables are visible.
    let cmds: Vec<&str> = rows.iter().map(|r| r[4].as_str()).collect();
    assert_eq!(
        cmds,
        ["0x27", "", "0x40", "", "0x30", "", "0x40", "", "0x40", "", "0x40", "", "0x3f", ""]
    );
    assert_eq!(rows[2][5], "0x0040");
    assert_eq!(rows[4][6], "0x0001");
    assert_eq!(rows[6][5], "0x0801");
    // Key ids: generation 1 data key, the demand-response key, generation 2 data key; the
    // late generation-1 message (packet 10) verified under the old key inside the grace, its
    // answer under the new one.
    let kid = |i: usize| rows[i][7].clone();
    let (g1, dr, g2) = (kid(0), kid(6), kid(8));
    assert!(g1 != g2 && g1 != dr && g2 != dr, "{g1} {dr} {g2}");
    assert!((0..6).all(|i| kid(i) == g1));
    assert_eq!(kid(7), dr);
    assert_eq!(kid(10), g1);
    assert!([8, 9, 11, 12, 13].iter().all(|&i| kid(i) == g2));
}
