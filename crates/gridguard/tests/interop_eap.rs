//! EAP-PSK over RADIUS against implementations nobody here wrote: our peer against hostapd's RADIUS
//! server, and eapol_test's peer against our server, each in a network namespace holding only `lo`,
//! captured with dumpcap and dissected by tshark.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod support;

use support::*;

const SECRET: &str = "gridguard-test-secret";
const TOOLS: &[&str] = &["hostapd", "eapol_test", "dumpcap", "tshark", "ip", "ss"];

struct Meter {
    identity: Vec<u8>,
    psk: &'static str,
}

fn meters() -> Vec<Meter> {
    vec![
        Meter {
            identity: b"meter1".to_vec(),
            psk: "000102030405060708090a0b0c0d0e0f",
        },
        Meter {
            identity: b"m".to_vec(),
            psk: "00000000000000000000000000000000",
        },
        Meter {
            identity: "zähler-東京-7".as_bytes().to_vec(),
            psk: "ffffffffffffffffffffffffffffffff",
        },
        // The longest identity a RADIUS User-Name can carry; eapol_test copies the identity there.
        Meter {
            identity: vec![b'L'; 253],
            psk: "5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a",
        },
    ]
}

fn our_client(ns: &Netns, identity: &[u8], psk: &str) -> std::process::Output {
    ns.command(GRIDGUARD)
        .args([
            "eap-client",
            "--radius",
            "127.0.0.1:1812",
            "--secret",
            SECRET,
            "--identity",
        ])
        .arg(std::str::from_utf8(identity).unwrap())
        .args(["--psk", psk, "--print-keys"])
        .output()
        .unwrap()
}

#[test]
fn our_peer_authenticates_against_hostapd_and_recovers_its_msk() {
    if !tools_present(TOOLS) {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let ns = Netns::new("hapd");
    let table = meters();
    let refs: Vec<(&[u8], &str)> = table
        .iter()
        .map(|m| (m.identity.as_slice(), m.psk))
        .collect();
    let mut hostapd = start_hostapd(&ns, dir.path(), &refs, SECRET);
    let capture = dir.path().join("hostapd.pcapng");
    let mut dumpcap = start_capture(&ns, &capture);

    for meter in meters() {
        let out = our_client(&ns, &meter.identity, meter.psk);
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success(),
            "identity {:?}: {stdout}{}\nhostapd:\n{}",
            String::from_utf8_lossy(&meter.identity),
            String::from_utf8_lossy(&out.stderr),
            hostapd.log_text()
        );
        assert!(
            stdout.contains("the MS-MPPE keys carry our MSK"),
            "{stdout}"
        );
        let msk = stdout.lines().find_map(|l| l.strip_prefix("MSK ")).unwrap();
        assert_eq!(msk.len(), 128);
    }
    stop_capture(&mut dumpcap);
    hostapd.interrupt();
    let lines = check_radius_capture(&capture, SECRET, 4 * meters().len());
    let accepts = lines.iter().filter(|l| l.starts_with("2\t")).count();
    assert_eq!(accepts, meters().len());
}

#[test]
fn hostapd_rejects_a_wrong_psk_and_our_peer_says_why() {
    if !tools_present(TOOLS) {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let ns = Netns::new("hapdbad");
    let mut hostapd = start_hostapd(
        &ns,
        dir.path(),
        &[(b"meter1", "000102030405060708090a0b0c0d0e0f")],
        SECRET,
    );
    let capture = dir.path().join("wrong.pcapng");
    let mut dumpcap = start_capture(&ns, &capture);
    let out = our_client(&ns, b"meter1", "000102030405060708090a0b0c0d0e0e");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(!out.status.success());
    assert!(stdout.contains("rejected by the server"), "{stdout}");
    assert!(stdout.contains("MAC_P"), "{stdout}");
    stop_capture(&mut dumpcap);
    hostapd.interrupt();
    let lines = check_radius_capture(&capture, SECRET, 2);
    assert!(
        lines.iter().any(|l| l.starts_with("3\t4")),
        "no Access-Reject carrying EAP-Failure:\n{}",
        lines.join("\n")
    );
}

fn eapol_conf(dir: &std::path::Path, meter: &Meter) -> std::path::PathBuf {
    let path = dir.join(format!("eapol-{}.conf", meter.identity.len()));
    let conf = format!(
        "network={{\n\tkey_mgmt=IEEE8021X\n\teap=PSK\n\tidentity=\"{}\"\n\tpassword={}\n}}\n",
        String::from_utf8_lossy(&meter.identity),
        meter.psk
    );
    std::fs::write(&path, conf).unwrap();
    path
}

fn start_our_server(ns: &Netns, dir: &std::path::Path, table: &[Meter]) -> Guard {
    let mut creds = String::new();
    for m in table {
        creds.push_str(&format!(
            "{} {}\n",
            String::from_utf8_lossy(&m.identity),
            m.psk
        ));
    }
    let path = dir.join("credentials");
    std::fs::write(&path, creds).unwrap();
    let mut cmd = ns.command(GRIDGUARD);
    cmd.args([
        "eap-server",
        "--listen",
        "127.0.0.1:1812",
        "--secret",
        SECRET,
        "--credentials",
    ])
    .arg(&path);
    let guard = Guard::spawn(cmd, dir.join("server.log"));
    ns.wait_udp(1812);
    guard
}

fn hexdump_after(log: &str, prefix: &str) -> Vec<u8> {
    let line = log
        .lines()
        .find(|l| l.starts_with(prefix))
        .unwrap_or_else(|| panic!("no {prefix:?} in eapol_test output"));
    let hex: String = line
        .split("): ")
        .nth(1)
        .unwrap()
        .split_whitespace()
        .collect();
    hex::decode(hex).unwrap()
}

fn eapol_test(ns: &Netns, conf: &std::path::Path) -> (bool, String) {
    let out = ns
        .command("eapol_test")
        .arg(format!("-c{}", conf.display()))
        .args(["-a127.0.0.1", "-p1812", &format!("-s{SECRET}"), "-t10"])
        .output()
        .unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
    )
}

#[test]
fn eapol_test_authenticates_against_our_server_with_the_same_msk() {
    if !tools_present(TOOLS) {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let ns = Netns::new("ours");
    let table = meters();
    let mut server = start_our_server(&ns, dir.path(), &table);
    let capture = dir.path().join("ours.pcapng");
    let mut dumpcap = start_capture(&ns, &capture);
    for meter in &table {
        let (ok, log) = eapol_test(&ns, &eapol_conf(dir.path(), meter));
        assert!(
            ok,
            "eapol_test failed for {:?}:\n{log}",
            String::from_utf8_lossy(&meter.identity)
        );
        assert!(log.contains("MPPE keys OK: 1  mismatch: 0"), "{log}");
        // The MSK eapol_test derived equals the one our server sent in MS-MPPE-Recv-Key || Send-Key.
        let msk = hexdump_after(&log, "EAP-PSK: MSK - hexdump(len=64)");
        let recv = hexdump_after(&log, "MS-MPPE-Recv-Key (crypt) - hexdump(len=32)");
        let send = hexdump_after(&log, "MS-MPPE-Send-Key (sign) - hexdump(len=32)");
        assert_eq!(msk, [recv, send].concat());
    }
    stop_capture(&mut dumpcap);
    server.interrupt();
    let log = server.log_text();
    assert_eq!(log.matches("accept ").count(), table.len(), "{log}");
    check_radius_capture(&capture, SECRET, 4 * table.len());
}

#[test]
fn eapol_test_with_a_wrong_psk_fails_on_both_sides() {
    if !tools_present(TOOLS) {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let ns = Netns::new("oursbad");
    let mut server = start_our_server(&ns, dir.path(), &meters()[..1]);
    let wrong = Meter {
        identity: b"meter1".to_vec(),
        psk: "0f0e0d0c0b0a09080706050403020100",
    };
    let (ok, log) = eapol_test(&ns, &eapol_conf(dir.path(), &wrong));
    assert!(!ok, "{log}");
    assert!(
        log.contains("EAP-Failure") || log.contains("FAILURE"),
        "{log}"
    );
    server.interrupt();
    let server_log = server.log_text();
    assert!(
        server_log.contains("reject meter1: method failed: peer MAC (MAC_P) did not verify"),
        "{server_log}"
    );
}

#[test]
fn the_longest_identity_rfc_4764_allows_authenticates_through_radius() {
    // Our peer with the longest identity RFC 4764 allows (966 bytes) against our own server through
    // RADIUS: User-Name is truncated to 253 bytes, the EAP identity travels whole in EAP-Message.
    if !tools_present(&["ip", "ss"]) {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let ns = Netns::new("long");
    let long = Meter {
        identity: vec![b'Q'; 966],
        psk: "00112233445566778899aabbccddeeff",
    };
    let mut server = start_our_server(&ns, dir.path(), std::slice::from_ref(&long));
    let out = our_client(&ns, &long.identity, long.psk);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    server.interrupt();
    assert!(server
        .log_text()
        .contains(&format!("accept {}", "Q".repeat(966))));
}

#[test]
fn hostapd_accepts_the_longest_identity_rfc_4764_allows() {
    // 966 bytes: hostapd's user file cannot hold such a line, so it matches a wildcard prefix entry; the
    // RADIUS User-Name is truncated to 253 bytes while the EAP identity (ID_P) travels whole.
    if !tools_present(TOOLS) {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let ns = Netns::new("hapdlong");
    let psk = "00112233445566778899aabbccddeeff";
    let users = format!("\"{}\"* PSK {psk}\n", "Q".repeat(200));
    let mut hostapd = start_hostapd_with_users(&ns, dir.path(), &users, SECRET);
    let out = our_client(&ns, &[b'Q'; 966], psk);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}\nhostapd:\n{}",
        hostapd.log_text()
    );
    assert!(
        stdout.contains("the MS-MPPE keys carry our MSK"),
        "{stdout}"
    );
    hostapd.interrupt();
}
