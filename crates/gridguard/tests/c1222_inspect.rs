//! `gridguard inspect` on C12.22 captures of our real host and meter links talking (keys from
//! a real in-memory EAP-PSK exchange, key log written by `gridguard_keys::keylog::KeyLog`):
//! every message verifies and decrypts to what was sent, over UDP and over a TCP stream cut at
//! arbitrary points; one flipped byte makes exactly that message `MAC BAD`; a meter whose keys
//! are not in the log gives `no key`; tshark's own C12.22 dissector, keyed from the same log,
//! agrees message by message.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

use std::collections::BTreeMap;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};

use gridguard::inspect::c1222::{keylog_c1222_keys, MacCheck, Transport};
use gridguard::inspect::{inspect_bytes_with, InspectKeys, Inspection};
use gridguard_c1222::pcap::{PcapWriter, TCP_PSH, TCP_SYN};
use gridguard_c1222::{
    ApTitle, Epsem, EpsemControl, ObjectId, Request, ResponseControl, SecurityMode, Service,
    TableId, C1222_PORT,
};
use gridguard_eap::{
    Authenticator, AuthenticatorConfig, AuthenticatorEvent, MemoryCredentials, Peer, PeerConfig,
    PeerEvent, PeerMethod, Psk, PskPeer, PskServerConfig, ServerMethodFactory, SessionKeys,
};
use gridguard_headend::{C1222Host, HostConfig, MemoryTables, MeterLink, MeterLinkConfig};
use gridguard_keys::keylog::KeyLog;
use gridguard_keys::{Application, SessionFacts};
use rand::rngs::StdRng;
use rand::SeedableRng;

const GRIDGUARD: &str = env!("CARGO_BIN_EXE_gridguard");
const LIFETIME: Duration = Duration::from_secs(3600);
const GRACE: Duration = Duration::from_secs(300);
const HOST_IP: [u8; 4] = [192, 0, 2, 1];

fn title(n: u64) -> ApTitle {
    ApTitle::Absolute(ObjectId::from_arcs(&[2, 16, 124, 113620, 1, 22, 0, n]).unwrap())
}

/// Runs our EAP-PSK peer against our authenticator in memory; returns (server, peer) keys.
fn eap_psk(identity: &[u8], seed: u64) -> (SessionKeys, SessionKeys) {
    let now = Instant::now();
    let psk = [seed as u8; 16];
    let mut rng = StdRng::seed_from_u64(seed);
    let mut creds = MemoryCredentials::new();
    creds.insert(identity.to_vec(), Psk::new(psk));
    let f: Arc<dyn ServerMethodFactory> =
        Arc::new(PskServerConfig::new(b"gridguard".to_vec(), Arc::new(creds)).unwrap());
    let mut auth = Authenticator::new(vec![f].into(), AuthenticatorConfig::default());
    let m: Box<dyn PeerMethod> = Box::new(PskPeer::new(identity.to_vec(), &Psk::new(psk)).unwrap());
    let mut peer = Peer::new(identity.to_vec(), vec![m], PeerConfig::default(), now);
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

/// A meter: its link, AP title, IP address and identity.
struct Meter {
    link: MeterLink<StdRng>,
    title: ApTitle,
    ip: [u8; 4],
    identity: Vec<u8>,
    mode: SecurityMode,
}

fn facts(identity: &[u8], key_id: u32) -> SessionFacts {
    SessionFacts::new(7, key_id, identity.to_vec())
}

/// Authenticates a meter (generation `generation`) and installs the keys on both sides.
fn authenticate(
    host: &mut C1222Host<StdRng>,
    meter: &mut Meter,
    generation: u32,
    seed: u64,
    now: Instant,
) {
    let (server, client) = eap_psk(&meter.identity, seed);
    host.install_session(
        meter.title.clone(),
        &facts(&meter.identity, generation),
        server.emsk(),
        LIFETIME,
        now,
    )
    .unwrap();
    meter
        .link
        .install_session(
            &facts(&meter.identity, generation),
            client.emsk(),
            LIFETIME,
            now,
        )
        .unwrap();
}

fn meter(n: u64, mode: SecurityMode) -> Meter {
    let title = title(n);
    let ip = [192, 0, 2, n as u8];
    Meter {
        link: MeterLink::new(
            MeterLinkConfig::new(title.clone(), title_host(), ip.to_vec())
                .with_grace(GRACE)
                .with_security_mode(mode),
            StdRng::seed_from_u64(n),
        ),
        title,
        ip,
        identity: format!("meter-{n:04}@gridguard.test").into_bytes(),
        mode,
    }
}

fn title_host() -> ApTitle {
    title(1)
}

/// What a captured APDU is expected to decrypt to, where the test knows it.
#[derive(Clone, Debug)]
enum Expect {
    /// The EPSEM services the sender built.
    Services(Vec<Service>),
    /// A registration of this AP title.
    Registration(ApTitle),
    /// A response of the host or a meter (decoded, content not predicted here).
    Response,
}

/// One captured APDU: sender IP, receiver IP (one of them the host's), the bytes, what they
/// should decrypt to and whether the inspector has its key.
#[derive(Clone, Debug)]
struct Captured {
    from: [u8; 4],
    to: [u8; 4],
    bytes: Vec<u8>,
    expect: Expect,
    keyed: bool,
    mode: SecurityMode,
}

struct Scenario {
    messages: Vec<Captured>,
    keylog: PathBuf,
    _dir: tempfile::TempDir,
}

fn write_request(table: u16, data: &[u8]) -> Vec<Service> {
    vec![Service::Request(Request::FullWrite {
        table: TableId(table),
        data: data.to_vec(),
    })]
}

fn host_request(service: Request) -> Epsem {
    Epsem {
        control: EpsemControl::new(SecurityMode::CIPHERTEXT_AUTH, ResponseControl::ALWAYS),
        ed_class: None,
        services: vec![Service::Request(service)],
        end_marker: false,
    }
}

/// Registration, interval writes, a host read, a demand-response write, a replay, a key
/// rollover with a late message under the old key, a mode-1 meter, and a meter whose keys are
/// not logged.
fn scenario() -> Scenario {
    let dir = tempfile::tempdir().unwrap();
    let keylog = dir.path().join("keys.log");
    let mut log = KeyLog::open(&keylog).unwrap();
    // The PANA key log's lines may share the file: inspect tells them apart.
    writeln!(
        std::fs::OpenOptions::new()
            .append(true)
            .open(&keylog)
            .unwrap(),
        "MSK {}",
        "ab".repeat(64)
    )
    .unwrap();

    let t0 = Instant::now();
    let mut host = C1222Host::new(
        HostConfig::new(title_host()).with_grace(GRACE),
        StdRng::seed_from_u64(1),
    );
    let mut a = meter(77, SecurityMode::CIPHERTEXT_AUTH);
    let mut b = meter(78, SecurityMode::CLEARTEXT_AUTH);
    authenticate(&mut host, &mut a, 1, 101, t0);
    authenticate(&mut host, &mut b, 1, 102, t0);
    log.log_current(&"meter-0077", a.link.ring(), t0).unwrap();
    log.log_current(&"meter-0078", b.link.ring(), t0).unwrap();
    let logged: Vec<u8> = keylog_c1222_keys(&std::fs::read_to_string(&keylog).unwrap())
        .iter()
        .map(|(id, _)| *id)
        .collect();

    // A meter whose keys are not logged, its C12.22 key id distinct from every logged one
    // (ids are six derived bits: pick the first session whose id does not collide).
    let mut c = meter(79, SecurityMode::CIPHERTEXT_AUTH);
    for seed in 103.. {
        authenticate(&mut host, &mut c, 1, seed, t0);
        let id = c
            .link
            .ring()
            .sending_key(Application::C1222Data, t0)
            .unwrap()
            .key_id
            .value();
        if !logged.contains(&id) {
            break;
        }
    }

    let mut tables = MemoryTables::default();
    tables.tables.insert(1, b"GRIDGUARD-0077".to_vec());
    tables.tables.insert(2049, vec![0; 2]);
    let mut out = Vec::new();
    let from_meter = |host: &mut C1222Host<StdRng>,
                      out: &mut Vec<Captured>,
                      m: &Meter,
                      bytes: Vec<u8>,
                      expect: Expect,
                      keyed: bool,
                      now: Instant| {
        let mode = m.mode;
        let reply = host
            .handle_apdu(
                format!("192.0.2.{}:50000", m.ip[3]).parse().unwrap(),
                &bytes,
                now,
            )
            .ok()
            .and_then(|r| r.bytes);
        out.push(Captured {
            from: m.ip,
            to: HOST_IP,
            bytes,
            expect,
            keyed,
            mode,
        });
        if let Some(r) = reply {
            out.push(Captured {
                from: HOST_IP,
                to: m.ip,
                bytes: r,
                expect: Expect::Response,
                keyed,
                mode,
            });
        }
    };

    for m in [&mut a, &mut b] {
        let reg = m.link.registration(t0).unwrap().bytes;
        let expect = Expect::Registration(m.title.clone());
        from_meter(&mut host, &mut out, m, reg, expect, true, t0);
        let data: Vec<u8> = (0..24).map(|i| i as u8 ^ m.ip[3]).collect();
        let w = m.link.write_intervals(64, &data, t0).unwrap().bytes;
        from_meter(
            &mut host,
            &mut out,
            m,
            w,
            Expect::Services(write_request(64, &data)),
            true,
            t0,
        );
    }
    // A replay of the last write of meter A (refused by the host, flagged by inspect).
    let replayed = out
        .iter()
        .find(|c| c.from == a.ip && matches!(c.expect, Expect::Services(_)))
        .unwrap()
        .clone();
    out.push(replayed);

    // The host reads a table and sends a demand-response write; meter A answers both.
    for (request, app) in [
        (
            Request::FullRead { table: TableId(1) },
            Application::C1222Data,
        ),
        (
            Request::FullWrite {
                table: TableId(2049),
                data: vec![0, 50],
            },
            Application::DemandResponse,
        ),
    ] {
        let epsem = host_request(request);
        let bytes = match app {
            Application::DemandResponse => host.demand_response(&a.title, &epsem, t0),
            _ => host.request(&a.title, &epsem, t0),
        }
        .unwrap();
        let answer = a
            .link
            .handle_apdu(&bytes, t0, &mut tables)
            .unwrap()
            .unwrap();
        out.push(Captured {
            from: HOST_IP,
            to: a.ip,
            bytes,
            expect: Expect::Services(epsem.services.clone()),
            keyed: true,
            mode: SecurityMode::CIPHERTEXT_AUTH,
        });
        from_meter(&mut host, &mut out, &a, answer, Expect::Response, true, t0);
    }

    // Rollover: re-authentication at t1; a message sealed under generation 1 before it is
    // delivered after it (inside the grace).
    let t1 = t0 + Duration::from_secs(3000);
    let late_data = vec![0x31; 24];
    let late = a.link.write_intervals(64, &late_data, t1).unwrap().bytes;
    authenticate(&mut host, &mut a, 2, 201, t1);
    log.log_current(&"meter-0077", a.link.ring(), t1).unwrap();
    let new_data = vec![0x41; 24];
    let new = a.link.write_intervals(64, &new_data, t1).unwrap().bytes;
    from_meter(
        &mut host,
        &mut out,
        &a,
        new,
        Expect::Services(write_request(64, &new_data)),
        true,
        t1,
    );
    from_meter(
        &mut host,
        &mut out,
        &a,
        late,
        Expect::Services(write_request(64, &late_data)),
        true,
        t1,
    );

    // Meter C, whose keys are not in the log.
    let reg = c.link.registration(t0).unwrap().bytes;
    let expect = Expect::Registration(c.title.clone());
    from_meter(&mut host, &mut out, &c, reg, expect, false, t1);

    drop(log);
    Scenario {
        messages: out,
        keylog,
        _dir: dir,
    }
}

fn endpoint(ip: [u8; 4], port: u16) -> ([u8; 4], u16) {
    (ip, port)
}

fn meter_port(ip: [u8; 4]) -> u16 {
    50_000 + u16::from(ip[3])
}

fn udp_capture(messages: &[Captured]) -> Vec<u8> {
    let mut w = PcapWriter::new();
    for (i, m) in messages.iter().enumerate() {
        let (src, dst) = if m.to == HOST_IP {
            (
                endpoint(m.from, meter_port(m.from)),
                endpoint(m.to, C1222_PORT),
            )
        } else {
            (
                endpoint(m.from, C1222_PORT),
                endpoint(m.to, meter_port(m.to)),
            )
        };
        w.push_udp(1_790_000_000_000_000 + i as u64 * 1000, src, dst, &m.bytes)
            .unwrap();
    }
    w.into_bytes()
}

/// One TCP connection per meter to the host's port 1153; each direction's APDUs are sent as
/// one byte stream cut into segments of `cut` bytes (so APDUs straddle segments and segments
/// hold several APDUs' ends and starts). Returns the capture and, per message, the number of
/// the frame that completes it.
fn tcp_capture(messages: &[Captured], cut: usize) -> (Vec<u8>, Vec<usize>) {
    let mut w = PcapWriter::new();
    let mut frame = 0usize;
    let mut time = 1_790_000_000_000_000u64;
    let mut next_seq: BTreeMap<([u8; 4], [u8; 4]), u32> = BTreeMap::new();
    let mut completes = Vec::new();
    let mut push = |w: &mut PcapWriter, from: [u8; 4], to: [u8; 4], seq, flags, payload: &[u8]| {
        let (src, dst) = if to == HOST_IP {
            (endpoint(from, meter_port(from)), endpoint(to, C1222_PORT))
        } else {
            (endpoint(from, C1222_PORT), endpoint(to, meter_port(to)))
        };
        time += 100;
        w.push_tcp(time, src, dst, seq, Some(1), flags, payload)
            .unwrap();
    };
    // Pending bytes per direction, flushed whenever the direction changes.
    let mut pending: Vec<u8> = Vec::new();
    let mut pending_ends: Vec<usize> = Vec::new(); // offsets where each message ends
    let mut dir: Option<([u8; 4], [u8; 4])> = None;
    let mut flush = |w: &mut PcapWriter,
                     frame: &mut usize,
                     dir: ([u8; 4], [u8; 4]),
                     pending: &mut Vec<u8>,
                     ends: &mut Vec<usize>,
                     completes: &mut Vec<usize>,
                     next_seq: &mut BTreeMap<([u8; 4], [u8; 4]), u32>| {
        let seq = next_seq.entry(dir).or_insert_with(|| {
            // A SYN starts each direction at an ISN near the wrap.
            let isn = (u32::MAX - 100).wrapping_add(u32::from(dir.0[3]) * 97);
            *frame += 1;
            push(w, dir.0, dir.1, isn, TCP_SYN, &[]);
            isn.wrapping_add(1)
        });
        let mut sent = 0usize;
        for chunk in pending.chunks(cut) {
            *frame += 1;
            push(w, dir.0, dir.1, *seq, TCP_PSH, chunk);
            *seq = seq.wrapping_add(chunk.len() as u32);
            sent += chunk.len();
            while ends.first().is_some_and(|e| *e <= sent) {
                ends.remove(0);
                completes.push(*frame);
            }
        }
        pending.clear();
    };
    for m in messages {
        let d = (m.from, m.to);
        if dir.is_some_and(|x| x != d) {
            flush(
                &mut w,
                &mut frame,
                dir.unwrap(),
                &mut pending,
                &mut pending_ends,
                &mut completes,
                &mut next_seq,
            );
        }
        dir = Some(d);
        pending.extend_from_slice(&m.bytes);
        pending_ends.push(pending.len());
    }
    if let Some(d) = dir {
        flush(
            &mut w,
            &mut frame,
            d,
            &mut pending,
            &mut pending_ends,
            &mut completes,
            &mut next_seq,
        );
    }
    (w.into_bytes(), completes)
}

fn keys(keylog: &Path) -> InspectKeys {
    let text = std::fs::read_to_string(keylog).unwrap();
    InspectKeys {
        c1222: keylog_c1222_keys(&text),
        ..InspectKeys::default()
    }
}

/// Checks every message of `found` against what was sent; `flipped` is the index of the one
/// message whose bytes were altered.
fn check(found: &Inspection, messages: &[Captured], flipped: Option<usize>) {
    assert_eq!(found.c1222.len(), messages.len(), "{:#?}", found.lines);
    for (i, (got, sent)) in found.c1222.iter().zip(messages).enumerate() {
        let line = &found
            .lines
            .iter()
            .find(|l| l.frame == got.frame)
            .unwrap()
            .text;
        assert_eq!(got.mode, Some(sent.mode), "{line}");
        if Some(i) == flipped {
            assert_eq!(got.mac, MacCheck::Bad, "message {i}: {line}");
            assert!(line.contains("MAC BAD"), "{line}");
            if sent.mode == SecurityMode::CIPHERTEXT_AUTH {
                assert!(got.plaintext.is_none(), "nothing decrypted under a bad MAC");
            }
            continue;
        }
        if !sent.keyed {
            assert_eq!(got.mac, MacCheck::NoKey, "message {i}: {line}");
            assert!(
                line.contains("no key") && line.ends_with("(encrypted)"),
                "{line}"
            );
            continue;
        }
        assert_eq!(got.mac, MacCheck::Ok, "message {i}: {line}");
        assert!(line.contains(" MAC ok"), "{line}");
        let epsem = got.epsem.as_ref().unwrap_or_else(|| panic!("{line}"));
        // The plaintext re-encodes to what inspect decoded: the decryption is exact.
        assert_eq!(&epsem.to_bytes().unwrap(), got.plaintext.as_ref().unwrap());
        match &sent.expect {
            Expect::Services(services) => assert_eq!(&epsem.services, services, "{line}"),
            Expect::Registration(t) => match &epsem.services[..] {
                [Service::Request(Request::Registration(r))] => {
                    assert_eq!(&r.ap_title, t);
                    assert!(line.contains(" registration ap-title "), "{line}");
                }
                other => panic!("{other:?}"),
            },
            Expect::Response => assert!(
                epsem
                    .services
                    .iter()
                    .all(|s| matches!(s, Service::Response(_))),
                "{line}"
            ),
        }
        let calling = if sent.to == HOST_IP { sent.from[3] } else { 1 };
        assert!(
            line.contains(&format!(" calling 2.16.124.113620.1.22.0.{calling} ")),
            "{line}"
        );
    }
}

/// With `GRIDGUARD_C1222_KEEP=DIR`, the captures and the key log are kept in DIR (`udp.pcap`,
/// `tcp.pcap`, `keys.log`) for opening by hand, as the README's Wireshark section shows.
fn keep(s: &Scenario) {
    let Some(dir) = std::env::var_os("GRIDGUARD_C1222_KEEP") else {
        return;
    };
    let dir = PathBuf::from(dir);
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("udp.pcap"), udp_capture(&s.messages)).unwrap();
    std::fs::write(dir.join("tcp.pcap"), tcp_capture(&s.messages, 61).0).unwrap();
    std::fs::copy(&s.keylog, dir.join("keys.log")).unwrap();
    eprintln!("kept udp.pcap, tcp.pcap and keys.log in {}", dir.display());
}

#[test]
fn udp_capture_verifies_and_decrypts_every_message() {
    let s = scenario();
    keep(&s);
    let found = inspect_bytes_with(&udp_capture(&s.messages), keys(&s.keylog)).unwrap();
    check(&found, &s.messages, None);
    assert!(found.c1222.iter().all(|m| m.transport == Transport::Udp));
    // The replayed write is authentic and flagged as a replay; nothing else is.
    let replays: Vec<usize> = found
        .c1222
        .iter()
        .enumerate()
        .filter(|(_, m)| m.replayed)
        .map(|(i, _)| i)
        .collect();
    let expected: Vec<usize> = (0..s.messages.len())
        .filter(|&i| {
            s.messages[..i]
                .iter()
                .any(|p| p.bytes == s.messages[i].bytes)
        })
        .collect();
    assert_eq!(replays, expected);
    assert_eq!(replays.len(), 1);
    // A mode-2 write, line by line.
    let line = &found.lines[2].text;
    assert!(
        line.contains("192.0.2.77:50077 -> 192.0.2.1:1153 C12.22/UDP calling 2.16.124.113620.1.22.0.77 called 2.16.124.113620.1.22.0.1 inv ")
            && line.contains(" mode 2 (ciphertext+auth) key-id 0x")
            && line.ends_with(" MAC ok | full-write ST64 (24 bytes)"),
        "{line}"
    );
    // The mode-1 meter's write.
    assert!(
        found
            .lines
            .iter()
            .any(|l| l.text.contains(" mode 1 (cleartext+auth) ")
                && l.text.ends_with(" MAC ok | full-write ST64 (24 bytes)")),
        "{:#?}",
        found.lines
    );
    // The host's read and the meter's answer, which names the table read.
    let read = found
        .lines
        .iter()
        .position(|l| l.text.ends_with(" MAC ok | full-read ST1"))
        .unwrap();
    assert!(
        found.lines[read + 1]
            .text
            .ends_with(" MAC ok | response ok ST1 (14 bytes)"),
        "{}",
        found.lines[read + 1].text
    );
    assert_eq!(found.c1222[read + 1].answered_tables, vec![Some(1)]);
    // Without keys: nothing verifies, mode 1 is still readable, mode 2 is not.
    let blind = inspect_bytes_with(&udp_capture(&s.messages), InspectKeys::default()).unwrap();
    assert_eq!(
        blind.c1222_count(|m| *m == MacCheck::NoKey),
        s.messages.len()
    );
    for (m, sent) in blind.c1222.iter().zip(&s.messages) {
        assert_eq!(m.epsem.is_some(), sent.mode == SecurityMode::CLEARTEXT_AUTH);
    }
}

#[test]
fn one_flipped_byte_is_bad_for_exactly_that_message() {
    let s = scenario();
    // Flip one ciphertext byte of a mode-2 write of meter A, and (second run) one byte of the
    // mode-1 meter's EPSEM.
    for mode in [SecurityMode::CIPHERTEXT_AUTH, SecurityMode::CLEARTEXT_AUTH] {
        let target = s
            .messages
            .iter()
            .position(|m| {
                m.mode == mode && m.to == HOST_IP && matches!(m.expect, Expect::Services(_))
            })
            .unwrap();
        let mut messages = s.messages.clone();
        let n = messages[target].bytes.len();
        messages[target].bytes[n - 10] ^= 0x20;
        let found = inspect_bytes_with(&udp_capture(&messages), keys(&s.keylog)).unwrap();
        check(&found, &messages, Some(target));
        assert_eq!(found.c1222_count(|m| *m == MacCheck::Bad), 1);
    }
}

#[test]
fn tcp_streams_cut_anywhere_give_the_same_verdicts() {
    let s = scenario();
    let udp = inspect_bytes_with(&udp_capture(&s.messages), keys(&s.keylog)).unwrap();
    for cut in [1usize, 7, 61, 1500] {
        let (pcap, completes) = tcp_capture(&s.messages, cut);
        let found = inspect_bytes_with(&pcap, keys(&s.keylog)).unwrap();
        check(&found, &s.messages, None);
        assert_eq!(found.undecodable, 0);
        let frames: Vec<usize> = found.c1222.iter().map(|m| m.frame).collect();
        assert_eq!(frames, completes, "cut {cut}");
        for (t, u) in found.c1222.iter().zip(&udp.c1222) {
            assert_eq!(t.transport, Transport::Tcp);
            assert_eq!(
                (&t.mac, &t.plaintext, t.replayed),
                (&u.mac, &u.plaintext, u.replayed)
            );
        }
    }
}

#[test]
fn the_command_prints_verdicts_and_fails_on_a_bad_mac() {
    let s = scenario();
    let dir = tempfile::tempdir().unwrap();
    let good = dir.path().join("good.pcap");
    std::fs::write(&good, udp_capture(&s.messages)).unwrap();
    let run = |capture: &Path| {
        let out = Command::new(GRIDGUARD)
            .arg("inspect")
            .arg(capture)
            .arg("--keylog")
            .arg(&s.keylog)
            .output()
            .unwrap();
        (
            out.status.success(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
        )
    };
    let (ok, text) = run(&good);
    assert!(ok, "{text}");
    let c1222: Vec<&str> = text
        .lines()
        .filter(|l| l.contains(" C12.22/UDP "))
        .collect();
    assert_eq!(c1222.len(), s.messages.len(), "{text}");
    let unkeyed = s.messages.iter().filter(|m| !m.keyed).count();
    assert!(
        text.contains(&format!(
            "{} C12.22 messages; MAC ok {} BAD 0 no key {unkeyed} cleartext 0 unverifiable 0 undecodable 0",
            s.messages.len(),
            s.messages.len() - unkeyed
        )),
        "{text}"
    );
    let mut messages = s.messages.clone();
    let n = messages[2].bytes.len();
    messages[2].bytes[n - 6] ^= 1;
    let bad = dir.path().join("bad.pcap");
    std::fs::write(&bad, udp_capture(&messages)).unwrap();
    let (ok, text) = run(&bad);
    assert!(!ok, "{text}");
    assert_eq!(
        text.lines().filter(|l| l.contains("MAC BAD")).count(),
        1,
        "{text}"
    );
}

fn tshark_available() -> bool {
    Command::new("tshark")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success())
}

/// Per C12.22 message of the capture, tshark's (crypto_good, crypto_bad), keyed with the
/// table lines of the key log (`-o uat:c1222_decryption_table:...`, as the README shows).
fn tshark_verdicts(pcap: &[u8], keylog: &Path) -> Vec<(bool, bool)> {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("c.pcap");
    std::fs::write(&path, pcap).unwrap();
    let mut cmd = Command::new("tshark");
    cmd.arg("-n")
        .arg("-r")
        .arg(&path)
        .args(["-o", "c1222.decrypt:TRUE"]);
    for line in std::fs::read_to_string(keylog).unwrap().lines() {
        if line.starts_with('"') {
            cmd.arg("-o")
                .arg(format!("uat:c1222_decryption_table:{line}"));
        }
    }
    cmd.args([
        "-Y",
        "c1222",
        "-T",
        "fields",
        "-E",
        "occurrence=a",
        "-E",
        "aggregator=,",
    ]);
    cmd.args(["-e", "c1222.crypto_good", "-e", "c1222.crypto_bad"]);
    let out = cmd.output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let mut v = Vec::new();
    for row in String::from_utf8(out.stdout).unwrap().lines() {
        let cols: Vec<&str> = row.split('\t').collect();
        let goods: Vec<&str> = cols[0].split(',').filter(|s| !s.is_empty()).collect();
        let bads: Vec<&str> = cols
            .get(1)
            .map_or(vec![], |c| c.split(',').filter(|s| !s.is_empty()).collect());
        // One entry per APDU in the packet (a TCP segment may complete several).
        for k in 0..goods.len().max(bads.len()) {
            let t = |s: Option<&&str>| s.is_some_and(|s| *s == "1" || *s == "True");
            v.push((t(goods.get(k)), t(bads.get(k))));
        }
    }
    v
}

/// Our verdicts in tshark's terms: tshark has no "no key" verdict, it flags a message whose
/// key id is not in its table as crypto_bad (inspect says `no key` there).
fn ours(found: &Inspection) -> Vec<(bool, bool)> {
    found
        .c1222
        .iter()
        .map(|m| {
            (
                m.mac == MacCheck::Ok,
                matches!(m.mac, MacCheck::Bad | MacCheck::NoKey),
            )
        })
        .collect()
}

#[test]
fn tshark_agrees_message_by_message() {
    if !tshark_available() {
        eprintln!("skipping: tshark is not installed");
        return;
    }
    let s = scenario();
    let mut messages = s.messages.clone();
    let n = messages[2].bytes.len();
    messages[2].bytes[n - 10] ^= 0x20;
    let keyed: Vec<Captured> = messages.iter().filter(|m| m.keyed).cloned().collect();
    for (name, pcap) in [
        ("udp", udp_capture(&messages)),
        ("tcp", tcp_capture(&keyed, 61).0),
    ] {
        let found = inspect_bytes_with(&pcap, keys(&s.keylog)).unwrap();
        let theirs = tshark_verdicts(&pcap, &s.keylog);
        assert_eq!(ours(&found), theirs, "{name}: {:#?}", found.lines);
        assert_eq!(found.c1222_count(|m| *m == MacCheck::Bad), 1, "{name}");
        let unkeyed = if name == "udp" {
            messages.iter().filter(|m| !m.keyed).count()
        } else {
            0
        };
        assert_eq!(
            found.c1222_count(|m| *m == MacCheck::NoKey),
            unkeyed,
            "{name}"
        );
    }
}

#[test]
fn garbage_and_mutated_captures_never_panic() {
    use gridguard::inspect::c1222::C1222Inspector;
    use gridguard::inspect::tcp::Segment;
    use rand::Rng;
    use std::net::{IpAddr, Ipv4Addr};

    let s = scenario();
    let keys = || keys(&s.keylog);
    let udp = udp_capture(&s.messages);
    let (tcp, _) = tcp_capture(&s.messages, 61);
    let mut rng = StdRng::seed_from_u64(44);
    for capture in [&udp, &tcp] {
        for _ in 0..300 {
            let mut bytes = capture.clone();
            for _ in 0..rng.gen_range(1..16) {
                let i = rng.gen_range(0..bytes.len());
                bytes[i] = rng.gen();
            }
            bytes.truncate(rng.gen_range(0..=bytes.len()));
            let _ = inspect_bytes_with(&bytes, keys());
        }
    }
    // Random and mutated APDUs and segments straight into the C12.22 inspector.
    let ends = (
        (IpAddr::V4(Ipv4Addr::new(10, 0, 0, 2)), 40000),
        (IpAddr::V4(Ipv4Addr::new(10, 0, 0, 1)), C1222_PORT),
    );
    let mut inspector = C1222Inspector::new(&keys().c1222, None);
    for i in 0..3000 {
        let mut apdu = s.messages[i % s.messages.len()].bytes.clone();
        for _ in 0..rng.gen_range(0..4) {
            let j = rng.gen_range(0..apdu.len());
            apdu[j] = rng.gen();
        }
        apdu.truncate(rng.gen_range(0..=apdu.len()));
        let m = inspector.message(i, Transport::Udp, ends.0, ends.1, &apdu);
        assert!(m.mac != MacCheck::Ok || apdu == s.messages[i % s.messages.len()].bytes);
        let noise: Vec<u8> = (0..rng.gen_range(0..80)).map(|_| rng.gen()).collect();
        let segment = Segment {
            seq: rng.gen(),
            syn: rng.gen_ratio(1, 10),
            rst: rng.gen_ratio(1, 50),
            payload: if rng.gen() { &apdu } else { &noise },
        };
        let _ = inspector.tcp_segment(i, ends.0, ends.1, &segment);
    }
}
