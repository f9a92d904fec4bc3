//! Test harness for interoperability tests: network namespaces holding only `lo`, child processes
//! killed on drop, packet captures with dumpcap and checks with tshark.
#![allow(
    dead_code,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

/// The gridguard binary under test.
pub const GRIDGUARD: &str = env!("CARGO_BIN_EXE_gridguard");

/// Whether the external peers are installed. When they are not, the test fails if
/// `GRIDGUARD_REQUIRE_INTEROP` is set (as `scripts/test.sh` does) and is skipped with a message otherwise.
pub fn tools_present(tools: &[&str]) -> bool {
    let missing: Vec<&str> = tools
        .iter()
        .copied()
        .filter(|t| which(t).is_none())
        .collect();
    let root = Command::new("id")
        .arg("-u")
        .output()
        .map(|o| o.stdout == b"0\n")
        .unwrap_or(false);
    if missing.is_empty() && root {
        return true;
    }
    let why = format!("missing tools {missing:?}, root: {root} (scripts/test.sh installs the tools; tests need root for ip netns)");
    if std::env::var_os("GRIDGUARD_REQUIRE_INTEROP").is_some() {
        panic!("{why}");
    }
    eprintln!("SKIPPED: {why}");
    false
}

fn which(tool: &str) -> Option<PathBuf> {
    std::env::var_os("PATH")?
        .to_str()?
        .split(':')
        .chain(["/usr/sbin", "/sbin"])
        .map(|dir| Path::new(dir).join(tool))
        .find(|p| p.is_file())
}

/// A network namespace with only a loopback interface, deleted on drop.
pub struct Netns {
    pub name: String,
}

static COUNTER: AtomicUsize = AtomicUsize::new(0);

impl Netns {
    pub fn new(tag: &str) -> Netns {
        let name = format!(
            "gg-{tag}-{}-{}",
            std::process::id(),
            COUNTER.fetch_add(1, Ordering::SeqCst)
        );
        run_ok(Command::new("ip").args(["netns", "add", &name]));
        let ns = Netns { name };
        run_ok(Command::new("ip").args(["-n", &ns.name, "link", "set", "lo", "up"]));
        ns
    }

    /// A command that runs `program` inside the namespace.
    pub fn command(&self, program: &str) -> Command {
        let mut c = Command::new("ip");
        c.args(["netns", "exec", &self.name, program]);
        c
    }

    /// Waits until something listens on UDP `port` inside the namespace.
    pub fn wait_udp(&self, port: u16) {
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            let out = self
                .command("ss")
                .args(["-Hlun", &format!("sport = :{port}")])
                .output()
                .unwrap();
            if !out.stdout.is_empty() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!("nothing listens on udp/{port} in {}", self.name);
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        let _ = Command::new("ip")
            .args(["netns", "del", &self.name])
            .status();
    }
}

fn run_ok(cmd: &mut Command) {
    let out = cmd.output().unwrap();
    assert!(
        out.status.success(),
        "{cmd:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A child process killed (and reaped) on drop.
pub struct Guard {
    pub child: Child,
    pub log: PathBuf,
}

impl Guard {
    pub fn spawn(mut cmd: Command, log: PathBuf) -> Guard {
        let file = std::fs::File::create(&log).unwrap();
        let child = cmd
            .stdout(file.try_clone().unwrap())
            .stderr(file)
            .stdin(Stdio::null())
            .spawn()
            .unwrap();
        Guard { child, log }
    }

    /// Interrupts the process (SIGINT, so it can flush) and waits for it, at most five seconds.
    pub fn interrupt(&mut self) {
        let _ = Command::new("kill")
            .args(["-INT", &self.child.id().to_string()])
            .status();
        let deadline = Instant::now() + Duration::from_secs(5);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for Guard {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// hostapd as a RADIUS server with its EAP-PSK server, inside `ns`, listening on 1812.
pub fn start_hostapd(ns: &Netns, dir: &Path, users: &[(&[u8], &str)], secret: &str) -> Guard {
    let mut user_file = String::new();
    for (identity, psk) in users {
        user_file.push_str(&format!(
            "\"{}\" PSK {psk}\n",
            String::from_utf8_lossy(identity)
        ));
    }
    start_hostapd_with_users(ns, dir, &user_file, secret)
}

/// hostapd as in [`start_hostapd`], with an `eap_user_file` given verbatim (for wildcard entries such as
/// `"prefix"* PSK <hex>`, which hostapd matches against identities longer than its line buffer).
pub fn start_hostapd_with_users(ns: &Netns, dir: &Path, user_file: &str, secret: &str) -> Guard {
    std::fs::write(dir.join("eap_user"), user_file).unwrap();
    std::fs::write(dir.join("radius_clients"), format!("127.0.0.1 {secret}\n")).unwrap();
    let conf = format!(
        "driver=none\ninterface=ggas\nlogger_stdout=-1\nlogger_stdout_level=2\neap_server=1\neap_user_file={}\n\
         radius_server_clients={}\nradius_server_auth_port=1812\n",
        dir.join("eap_user").display(),
        dir.join("radius_clients").display()
    );
    std::fs::write(dir.join("hostapd.conf"), conf).unwrap();
    let mut cmd = ns.command("hostapd");
    cmd.arg(dir.join("hostapd.conf"));
    let guard = Guard::spawn(cmd, dir.join("hostapd.log"));
    ns.wait_udp(1812);
    guard
}

/// A dumpcap capture of UDP on the namespace's loopback, written to `path`.
pub fn start_capture(ns: &Netns, path: &Path) -> Guard {
    let mut cmd = ns.command("dumpcap");
    cmd.args(["-q", "-i", "lo", "-f", "udp", "-w"]).arg(path);
    let guard = Guard::spawn(cmd, path.with_extension("dumpcap.log"));
    let deadline = Instant::now() + Duration::from_secs(10);
    while Instant::now() < deadline {
        if std::fs::metadata(path)
            .map(|m| m.len() > 0)
            .unwrap_or(false)
        {
            // dumpcap writes the file header as the capture starts.
            std::thread::sleep(Duration::from_millis(200));
            return guard;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    panic!("dumpcap did not start: {}", guard.log_text());
}

/// Stops a capture. libpcap hands packets to dumpcap in blocks on a timer; packets of a block not yet
/// handed over when dumpcap is interrupted are lost, so wait a block timeout first.
pub fn stop_capture(capture: &mut Guard) {
    std::thread::sleep(Duration::from_millis(1200));
    capture.interrupt();
}

/// Runs tshark over a capture with extra arguments and returns its standard output.
pub fn tshark(capture: &Path, args: &[&str]) -> String {
    let out: Output = Command::new("tshark")
        .arg("-r")
        .arg(capture)
        .args(args)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "tshark failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// Checks a capture of RADIUS/EAP traffic: no malformed packet, no expert error, every RADIUS response
/// authenticator valid under `secret`, and at least `min_psk` EAP-PSK messages dissected. Returns the
/// one-line summaries for the test's own assertions.
pub fn check_radius_capture(capture: &Path, secret: &str, min_psk: usize) -> Vec<String> {
    let prefs = [
        "-o".to_string(),
        format!("radius.shared_secret:{secret}"),
        "-o".to_string(),
        "radius.validate_authenticator:TRUE".to_string(),
    ];
    let mut args: Vec<&str> = prefs.iter().map(String::as_str).collect();
    let bad_filter = [
        "-Y",
        "_ws.malformed || _ws.expert.severity >= error || radius.authenticator.invalid == 1",
    ];
    let bad = tshark(capture, &[args.as_slice(), &bad_filter].concat());
    assert!(bad.trim().is_empty(), "tshark flags problems:\n{bad}");
    args.extend([
        "-Y",
        "radius",
        "-T",
        "fields",
        "-e",
        "radius.code",
        "-e",
        "eap.code",
        "-e",
        "eap.type",
        "-e",
        "eap.psk.flags.t",
        "-e",
        "radius.authenticator.valid",
    ]);
    let lines: Vec<String> = tshark(capture, &args).lines().map(str::to_string).collect();
    let psk = lines
        .iter()
        .filter(|l| l.split('\t').nth(2) == Some("47"))
        .count();
    assert!(
        psk >= min_psk,
        "only {psk} EAP-PSK messages dissected:\n{}\n{}",
        lines.join("\n"),
        tshark(capture, &[])
    );
    let responses = lines
        .iter()
        .filter(|l| matches!(l.split('\t').next(), Some("2" | "3" | "11")))
        .count();
    let valid = lines
        .iter()
        .filter(|l| l.split('\t').nth(4) == Some("1") || l.split('\t').nth(4) == Some("True"))
        .count();
    assert_eq!(
        valid,
        responses,
        "tshark did not validate every response authenticator:\n{}",
        lines.join("\n")
    );
    lines
}
