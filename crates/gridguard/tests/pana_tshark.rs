//! `gridguard serve` and `gridguard meter` on UDP 716 in a network namespace holding only `lo`,
//! captured with dumpcap and dissected by Debian's tshark (Wireshark's own PANA dissector):
//! initial authentication, ping / re-authentication / termination from each side, a wrong PSK.
//! No malformed packet, no expert error, every datagram on port 716 dissected as PANA, and
//! tshark's session ids, sequence numbers, message types and AVP codes equal our codec's for
//! the same bytes. `gridguard inspect` then verifies every AUTH AVP with the meters' MSKs.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod support;

use std::collections::BTreeSet;
use std::path::Path;

use gridguard_pana::{AvpCode, Flags, Message, MessageType};
use support::*;

const TOOLS: &[&str] = &["dumpcap", "tshark", "ip", "ss"];
const PSK: &str = "00112233445566778899aabbccddeeff";

fn meter(ns: &Netns, identity: &str, psk: &str, extra: &[&str]) -> (bool, String) {
    let out = ns
        .command(GRIDGUARD)
        .args(["meter", "--identity", identity, "--psk", psk])
        .args([
            "--paa",
            "127.0.0.1:716",
            "--once",
            "--print-keys",
            "--keylog",
        ])
        .arg(keylog_path())
        .args(extra)
        .output()
        .unwrap();
    let text =
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    (out.status.success(), text)
}

/// The key log every meter of this test process appends to (`meter --keylog`).
fn keylog_path() -> std::path::PathBuf {
    std::env::temp_dir().join(format!("gridguard-pana-keylog-{}.log", std::process::id()))
}

fn serve(ns: &Netns, dir: &Path, tag: &str, extra: &[&str]) -> Guard {
    let mut cmd = ns.command(GRIDGUARD);
    cmd.args(["serve", "--listen", "127.0.0.1:716", "--credentials"])
        .arg(dir.join("credentials"))
        .args(extra);
    let guard = Guard::spawn(cmd, dir.join(format!("serve-{tag}.log")));
    ns.wait_udp(716);
    guard
}

fn msks(text: &str) -> Vec<String> {
    text.lines()
        .filter_map(|l| l.strip_prefix("MSK "))
        .map(str::to_string)
        .collect()
}

/// What one PANA datagram looks like, as tshark dissected it and as our codec parses it.
#[derive(Debug, PartialEq, Eq)]
struct Seen {
    msg_type: u16,
    session_id: u32,
    seq: u32,
    avp_codes: Vec<u16>,
}

#[test]
fn tshark_dissects_every_pana_exchange() {
    if !tools_present(TOOLS) {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let ns = Netns::new("pana");
    std::fs::write(
        dir.path().join("credentials"),
        format!("meter-a {PSK}\nmeter-b {PSK}\nmeter-c {PSK}\n"),
    )
    .unwrap();
    let capture = dir.path().join("pana.pcapng");
    let mut dumpcap = start_capture(&ns, &capture);

    // Round 1: a PAA without actions. Initial authentication; ping, re-authentication and
    // termination started by the meter; a wrong PSK.
    let mut paa = serve(&ns, dir.path(), "1", &[]);
    let (ok_a, out_a) = meter(&ns, "meter-a", PSK, &[]);
    assert!(ok_a, "{out_a}");
    assert!(out_a.contains("established session"), "{out_a}");
    let (ok_b, out_b) = meter(
        &ns,
        "meter-b",
        PSK,
        &[
            "--ping-after",
            "0.1",
            "--reauth-after",
            "0.3",
            "--terminate-after",
            "0.8",
        ],
    );
    assert!(ok_b, "{out_b}");
    assert!(out_b.contains("ping answered"), "{out_b}");
    assert!(out_b.contains("re-authenticated"), "{out_b}");
    assert!(out_b.contains("terminated"), "{out_b}");
    let (ok_bad, out_bad) = meter(&ns, "meter-a", "ffeeddccbbaa99887766554433221100", &[]);
    assert!(!ok_bad, "a wrong PSK must fail: {out_bad}");
    assert!(out_bad.contains("AuthenticationRejected"), "{out_bad}");
    paa.interrupt();
    let log1 = paa.log_text();
    assert!(log1.contains("bad-auth 0"), "{log1}");

    // Round 2: the PAA pings, re-authenticates and terminates.
    let mut paa = serve(
        &ns,
        dir.path(),
        "2",
        &[
            "--ping-after",
            "0.1",
            "--reauth-after",
            "0.3",
            "--terminate-after",
            "0.8",
        ],
    );
    let (ok_c, out_c) = meter(&ns, "meter-c", PSK, &["--ping-after", "30"]);
    assert!(ok_c, "{out_c}");
    assert!(out_c.contains("re-authenticated"), "{out_c}");
    assert!(out_c.contains("terminated"), "{out_c}");
    paa.interrupt();
    let log2 = paa.log_text();
    assert!(log2.contains("pings 1"), "{log2}");
    assert!(log2.contains("bad-auth 0"), "{log2}");
    stop_capture(&mut dumpcap);

    // No malformed packet, no expert error, nothing on 716 that tshark did not take as PANA.
    let bad = tshark(
        &capture,
        &["-Y", "_ws.malformed || _ws.expert.severity >= error"],
    );
    assert!(bad.trim().is_empty(), "tshark flags problems:\n{bad}");
    let undissected = tshark(&capture, &["-Y", "udp.port == 716 && !pana"]);
    assert!(
        undissected.trim().is_empty(),
        "datagrams on 716 not dissected as PANA:\n{undissected}"
    );

    // tshark's fields against our codec's reading of the same bytes.
    let fields = tshark(
        &capture,
        &[
            "-Y",
            "pana",
            "-T",
            "fields",
            "-E",
            "aggregator=,",
            "-e",
            "pana.type",
            "-e",
            "pana.sid",
            "-e",
            "pana.seq",
            "-e",
            "pana.avp.code",
            "-e",
            "udp.payload",
        ],
    );
    let mut kinds = BTreeSet::new();
    let mut count = 0;
    for line in fields.lines() {
        let cols: Vec<&str> = line.split('\t').collect();
        assert_eq!(cols.len(), 5, "{line}");
        let parse_num = |s: &str| -> u32 {
            match s.strip_prefix("0x") {
                Some(h) => u32::from_str_radix(h, 16).unwrap(),
                None => s.parse().unwrap(),
            }
        };
        let dissected = Seen {
            msg_type: parse_num(cols[0]) as u16,
            session_id: parse_num(cols[1]),
            seq: parse_num(cols[2]),
            avp_codes: cols[3]
                .split(',')
                .filter(|s| !s.is_empty())
                .map(|s| parse_num(s) as u16)
                .collect(),
        };
        let bytes = hex::decode(cols[4].replace(':', "")).unwrap();
        let msg = Message::parse(&bytes).unwrap();
        let ours = Seen {
            msg_type: msg.msg_type.0,
            session_id: msg.session_id,
            seq: msg.seq,
            avp_codes: msg
                .avps
                .iter()
                .flat_map(|a| {
                    // Wireshark 4.0 files a Result-Code's value under pana.avp.code too.
                    let quirk = (a.code == AvpCode::RESULT_CODE)
                        .then(|| a.value_u32().map(|v| v as u16))
                        .flatten();
                    std::iter::once(a.code.0).chain(quirk)
                })
                .collect(),
        };
        assert_eq!(dissected, ours, "tshark and our codec disagree on {line}");
        // Flags from the bytes: tshark 4.0's flag fields never match.
        let flags = u16::from_be_bytes([bytes[4], bytes[5]]);
        assert_eq!(flags, msg.flags.0);
        kinds.insert((msg.msg_type.0, flags));
        count += 1;
    }
    let r = Flags::REQUEST.0;
    let expect = [
        (MessageType::CLIENT_INITIATION.0, 0, "PCI"),
        (MessageType::AUTH.0, r | Flags::START.0, "PAR S"),
        (MessageType::AUTH.0, Flags::START.0, "PAN S"),
        (MessageType::AUTH.0, r, "PAR with EAP"),
        (MessageType::AUTH.0, 0, "PAN with EAP"),
        (MessageType::AUTH.0, r | Flags::COMPLETE.0, "PAR C"),
        (MessageType::AUTH.0, Flags::COMPLETE.0, "PAN C"),
        (MessageType::NOTIFICATION.0, r | Flags::PING.0, "PNR P"),
        (MessageType::NOTIFICATION.0, Flags::PING.0, "PNA P"),
        (MessageType::NOTIFICATION.0, r | Flags::REAUTH.0, "PNR A"),
        (MessageType::NOTIFICATION.0, Flags::REAUTH.0, "PNA A"),
        (MessageType::TERMINATION.0, r, "PTR"),
        (MessageType::TERMINATION.0, 0, "PTA"),
    ];
    for (t, f, name) in expect {
        assert!(
            kinds.contains(&(t, f)),
            "no {name} in the capture:\n{fields}"
        );
    }
    // Three authentications of 11 messages, the rejected one of 9, re-authentications of 8
    // (+ PNR/PNA with A when the meter asks), two pings and two terminations of 2 each.
    assert!(
        count >= 3 * 11 + 9 + (8 + 2) + 8 + 2 * 2 + 2 * 2,
        "only {count} PANA messages"
    );

    // `gridguard inspect` with every MSK the meters printed: every AUTH verifies.
    let mut args = vec!["inspect".to_string(), capture.display().to_string()];
    for m in msks(&out_a)
        .into_iter()
        .chain(msks(&out_b))
        .chain(msks(&out_c))
    {
        args.push("--msk".to_string());
        args.push(m);
    }
    assert_eq!(
        args.len(),
        2 + 2 * 5,
        "five MSKs: a, b, b re-auth, c, c re-auth"
    );
    let out = std::process::Command::new(GRIDGUARD)
        .args(&args)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{text}");
    let lines: Vec<&str> = text.lines().filter(|l| l.contains(" PANA ")).collect();
    assert_eq!(lines.len(), count, "one line per PANA message:\n{text}");
    let ok = lines.iter().filter(|l| l.ends_with("AUTH ok")).count();
    assert!(ok >= 20, "{text}");
    assert!(!text.contains("AUTH BAD"), "{text}");
    assert!(!text.contains("AUTH unchecked"), "{text}");
    // The key log the meters wrote gives the same verdicts through `inspect --keylog`.
    let out = std::process::Command::new(GRIDGUARD)
        .args(["inspect", &capture.display().to_string(), "--keylog"])
        .arg(keylog_path())
        .output()
        .unwrap();
    let _ = std::fs::remove_file(keylog_path());
    let from_keylog = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{from_keylog}");
    assert_eq!(
        from_keylog
            .lines()
            .filter(|l| l.ends_with("AUTH ok"))
            .count(),
        ok,
        "{from_keylog}"
    );
    // With a wrong MSK every AUTH is BAD and inspect says so.
    let out = std::process::Command::new(GRIDGUARD)
        .args(["inspect", &capture.display().to_string(), "--msk"])
        .arg("00".repeat(64))
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(!out.status.success());
    let bad = text.lines().filter(|l| l.ends_with("AUTH BAD")).count();
    assert_eq!(bad, ok, "{text}");
}
