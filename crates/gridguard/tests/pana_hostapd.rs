//! The PAA passing EAP through RADIUS to hostapd's EAP-PSK server (an implementation nobody
//! here wrote), in a network namespace holding only `lo`: `gridguard meter` establishes and
//! re-authenticates through `gridguard serve --radius`, the MSK hostapd sends back in the
//! MS-MPPE keys keys PANA's AUTH AVPs on the PAA side and agrees with the meter's own EAP-PSK
//! MSK (every AUTH in the capture verifies under it), and a wrong PSK is rejected.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod support;

use support::*;

const TOOLS: &[&str] = &["hostapd", "dumpcap", "tshark", "ip", "ss"];
const SECRET: &str = "gridguard-pana-secret";
const PSK: &str = "0f0e0d0c0b0a09080706050403020100";

#[test]
fn paa_passes_eap_through_to_hostapd() {
    if !tools_present(TOOLS) {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let ns = Netns::new("panarad");
    let _hostapd = start_hostapd(&ns, dir.path(), &[(b"meter-77", PSK)], SECRET);
    let capture = dir.path().join("pana-radius.pcapng");
    let mut dumpcap = start_capture(&ns, &capture);

    let mut cmd = ns.command(GRIDGUARD);
    cmd.args([
        "serve",
        "--listen",
        "127.0.0.1:716",
        "--radius",
        "127.0.0.1:1812",
        "--secret",
        SECRET,
    ]);
    let mut paa = Guard::spawn(cmd, dir.path().join("serve.log"));
    ns.wait_udp(716);

    let out = ns
        .command(GRIDGUARD)
        .args(["meter", "--identity", "meter-77", "--psk", PSK])
        .args(["--paa", "127.0.0.1:716", "--once", "--print-keys"])
        .args(["--reauth-after", "0.2", "--terminate-after", "0.8"])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "{text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(text.contains("established session"), "{text}");
    assert!(text.contains("re-authenticated"), "{text}");
    let msks: Vec<&str> = text
        .lines()
        .filter_map(|l| l.strip_prefix("MSK "))
        .collect();
    assert_eq!(msks.len(), 2, "{text}");

    let wrong = ns
        .command(GRIDGUARD)
        .args(["meter", "--identity", "meter-77", "--psk"])
        .arg("1".repeat(32))
        .args(["--paa", "127.0.0.1:716", "--once"])
        .output()
        .unwrap();
    let wrong_text = String::from_utf8_lossy(&wrong.stdout);
    assert!(!wrong.status.success(), "{wrong_text}");
    assert!(
        wrong_text.contains("AuthenticationRejected"),
        "{wrong_text}"
    );

    paa.interrupt();
    stop_capture(&mut dumpcap);
    let log = paa.log_text();
    assert!(log.contains("identity meter-77"), "{log}");
    assert!(log.contains("re-authenticated session"), "{log}");
    assert!(
        log.contains("established 1 re-authenticated 1 failed 1"),
        "{log}"
    );
    // The PAA dropped no message for a bad AUTH: the PaC's AUTH AVPs verified under the MSK
    // hostapd returned.
    assert!(log.contains("bad-auth 0"), "{log}");

    // hostapd's RADIUS side as tshark sees it: valid authenticators, EAP-PSK inside.
    check_radius_capture(&capture, SECRET, 2 * 4 + 2);
    let undissected = tshark(&capture, &["-Y", "udp.port == 716 && !pana"]);
    assert!(undissected.trim().is_empty(), "{undissected}");

    // Every AUTH AVP of both sides verifies under the meter's MSKs.
    let out = std::process::Command::new(GRIDGUARD)
        .arg("inspect")
        .arg(&capture)
        .args(["--msk", msks[0], "--msk", msks[1]])
        .output()
        .unwrap();
    let report = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{report}");
    assert!(!report.contains("AUTH BAD"), "{report}");
    let ok = report.lines().filter(|l| l.ends_with("AUTH ok")).count();
    // PAR/PAN with C of both runs, the re-authentication's PAR/PAN, PTR, PTA at least.
    assert!(ok >= 12, "{report}");
    assert!(report.contains("RADIUS Access-Accept"), "{report}");
    assert!(report.contains("RADIUS Access-Reject"), "{report}");
}
