//! `gridguard meters` against `gridguard headend`, each in a process of its own sharing a
//! simulated clock: the meters, with 30 days of history each, authenticate, register and
//! upload; the command reports what they did and the memory each takes.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

use std::net::UdpSocket;
use std::process::{Command, Stdio};

fn free_port() -> String {
    UdpSocket::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .to_string()
}

#[test]
fn a_fleet_in_its_own_process_authenticates_uploads_and_reports_its_memory() {
    let dir = tempfile::tempdir().unwrap();
    let (paa, host) = (free_port(), free_port());
    let start_ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis()
        + 3_000;
    let clock = [
        "--real-start-ms".to_string(),
        start_ms.to_string(),
        "--speed".to_string(),
        "3600".to_string(),
        "--lifetime".to_string(),
        "600".to_string(),
        "--grace".to_string(),
        "10".to_string(),
    ];
    let mut headend = Command::new(env!("CARGO_BIN_EXE_gridguard"))
        .args(["headend", "--data"])
        .arg(dir.path().join("data"))
        .args(["--paa", &paa, "--host", &host, "--meters", "20"])
        .args(&clock)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let meters = Command::new(env!("CARGO_BIN_EXE_gridguard"))
        .args(["meters", "--paa", &paa, "--host", &host, "--meters", "20"])
        .args(["--relays", "2", "--history-days", "30", "--run-for", "8"])
        .args(&clock)
        .output()
        .unwrap();
    let _ = Command::new("kill")
        .args(["-INT", &headend.id().to_string()])
        .status();
    let _ = headend.wait();
    let out = String::from_utf8_lossy(&meters.stdout);
    assert!(meters.status.success(), "{out}");
    let field = |name: &str| -> Vec<u64> {
        let line = out.lines().find(|l| l.starts_with(name)).unwrap();
        line[name.len()..]
            .split('/')
            .map(|v| v.trim().parse().unwrap())
            .collect()
    };
    assert_eq!(field("PANA sessions / re-authentications")[0], 20, "{out}");
    assert_eq!(field("meters that started over"), vec![0], "{out}");
    // Five simulated hours of uploads, at most: every meter has some acknowledged.
    assert!(field("intervals acknowledged")[0] >= 20, "{out}");
    let memory = out
        .lines()
        .find(|l| l.starts_with("memory per simulated meter, whole process, every meter online"))
        .unwrap_or_else(|| panic!("no memory figure: {out}"));
    assert!(memory.contains("(target <= 8192 B)"), "{memory}");
    // The model of a meter with a full 30-day load profile: the struct plus about one byte
    // per interval.
    let model = out
        .lines()
        .find(|l| l.contains("of which the meter model"))
        .unwrap();
    let bytes: f64 = model
        .rsplit(':')
        .next()
        .unwrap()
        .trim()
        .trim_end_matches(" B")
        .parse()
        .unwrap();
    assert!((3_000.0..8_192.0).contains(&bytes), "{model}");
}
