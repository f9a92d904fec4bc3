//! How many small C12.22 messages the host verifies and decodes per second on one core
//! (issue 4 asks for at least 200,000), printed beside an anchor measured in the same run over
//! the same messages: the bare EAX′ open (the canonified cleartext and the ciphertext already
//! cut out, one prebuilt cipher per meter), which is the cryptographic floor of verifying them.
//! Between the two, the bare `gridguard-c1222` `Association::receive` (parse, EAX′ open,
//! replay check, EPSEM decode) with the key handed over directly. The host adds the key-ring
//! lookup, refusal bookkeeping, service handling and events (and, with response control
//! "always", sealing a response for every message).
//!
//! Every figure is the best of `ROUNDS` rounds, the rounds of the three measurements
//! interleaved so that a load change on the machine hits all of them alike.
//!
//! Run with `cargo run --release -p gridguard-headend --example host_throughput`.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use gridguard_c1222::security::{canonical_cleartext, Association, AssociationConfig};
use gridguard_c1222::{AcseApdu, ApTitle, EaxPrime, ObjectId, ResponseControl, MAC_LEN};
use gridguard_headend::{C1222Host, HostConfig, MeterLink, MeterLinkConfig};
use gridguard_keys::{Application, SessionFacts};
use rand::rngs::StdRng;
use rand::SeedableRng;
use zeroize::Zeroizing;

const METERS: u64 = 64;
const PER_METER: usize = 2000;
const ROUNDS: usize = 5;
const TARGET: f64 = 200_000.0;

fn title(last: u64) -> ApTitle {
    ApTitle::Absolute(ObjectId::from_arcs(&[2, 16, 124, 113620, 1, 22, 0, last]).unwrap())
}

fn config() -> AssociationConfig {
    let mut c = AssociationConfig::default();
    c.max_tracked = 10_000_000;
    c.replay_window = gridguard_headend::DEFAULT_REPLAY_WINDOW;
    c
}

fn main() {
    for rc in [ResponseControl::ON_EXCEPTION, ResponseControl::ALWAYS] {
        run(rc);
    }
}

const LIFETIME: Duration = Duration::from_secs(3600);

fn facts(m: u64) -> (SessionFacts, [u8; 64]) {
    (
        SessionFacts::new(7, 1, format!("meter-{m}").into_bytes()),
        [m as u8 ^ 0x5a; 64],
    )
}

/// A host with every meter's session installed and registered.
fn fresh_host(now: Instant, registrations: &[Vec<u8>]) -> C1222Host<StdRng> {
    let mut cfg = HostConfig::new(title(1));
    cfg.association = config();
    let mut host = C1222Host::new(cfg, StdRng::seed_from_u64(1));
    for (m, reg) in (0..METERS).zip(registrations) {
        let (f, emsk) = facts(m);
        host.install_session(title(100 + m), &f, &emsk, LIFETIME, now)
            .unwrap();
        host.handle_apdu("127.0.0.1:1".parse().unwrap(), reg, now)
            .unwrap();
    }
    while host.poll_event().is_some() {}
    host
}

/// One message cut up for the bare EAX′ open: meter index, canonified cleartext,
/// ciphertext, MAC.
struct Cut {
    meter: usize,
    cleartext: Vec<u8>,
    ciphertext: Vec<u8>,
    mac: [u8; MAC_LEN],
}

fn cut(apdu_bytes: &[u8], meter: usize) -> Cut {
    let apdu = AcseApdu::parse(apdu_bytes).unwrap();
    let epsem = &apdu.user_information.epsem;
    let cleartext = canonical_cleartext(&apdu, epsem.len(), &config().canon).unwrap();
    let mac_at = epsem.len() - MAC_LEN;
    Cut {
        meter,
        cleartext,
        ciphertext: epsem[1..mac_at].to_vec(),
        mac: epsem[mac_at..].try_into().unwrap(),
    }
}

fn run(rc: ResponseControl) {
    let now = Instant::now();
    // Mode 2 writes of 24 bytes of interval data. First with response control "on exception"
    // (the host verifies and decodes, no answer is due: the in-process decode rate), then with
    // "always" (every message also gets a sealed answer).
    let mut messages = Vec::new();
    let mut keys = Vec::new();
    let mut registrations = Vec::new();
    let mut ciphers = Vec::new();
    let mut cuts = Vec::new();
    for m in 0..METERS {
        let (f, emsk) = facts(m);
        let mut link = MeterLink::new(
            MeterLinkConfig::new(title(100 + m), title(1), vec![10, 0, 0, m as u8])
                .with_response_control(rc),
            StdRng::seed_from_u64(1000 + m),
        );
        link.install_session(&f, &emsk, LIFETIME, now).unwrap();
        let k = link
            .ring()
            .sending_key(Application::C1222Data, now)
            .unwrap();
        keys.push((title(100 + m), k.key_id.value(), *k.key.as_bytes()));
        ciphers.push(EaxPrime::new(k.key.as_bytes()));
        registrations.push(link.registration(now).unwrap().bytes);
        for _ in 0..PER_METER {
            let bytes = link.write_intervals(64, &[0x42; 24], now).unwrap().bytes;
            cuts.push(cut(&bytes, m as usize));
            messages.push(bytes);
        }
    }
    let from: SocketAddr = "127.0.0.1:50000".parse().unwrap();
    let n = messages.len();
    let size = messages[0].len();
    let lookup = move |t: &ApTitle, id: u8| {
        keys.iter()
            .find(|(kt, kid, _)| kt == t && *kid == id)
            .map(|(_, _, k)| Zeroizing::new(*k))
    };

    let mut best = [Duration::MAX; 3];
    let (mut opened, mut received, mut accepted, mut replies) = (0, 0, 0, 0);
    let mut scratch = Vec::with_capacity(256);
    for _ in 0..ROUNDS {
        // Anchor: the bare EAX′ open of the same messages.
        let start = Instant::now();
        opened = 0usize;
        for c in &cuts {
            scratch.clear();
            scratch.extend_from_slice(&c.ciphertext);
            opened += usize::from(
                ciphers[c.meter]
                    .open(&c.cleartext, &mut scratch, &c.mac)
                    .is_ok(),
            );
        }
        best[0] = best[0].min(start.elapsed());

        // The bare association.
        let mut bare = Association::new(config(), &lookup);
        let start = Instant::now();
        received = 0usize;
        for m in &messages {
            received += usize::from(bare.receive(now, m).is_ok());
        }
        best[1] = best[1].min(start.elapsed());
        drop(bare);

        // The host.
        let mut host = fresh_host(now, &registrations);
        let start = Instant::now();
        accepted = 0usize;
        replies = 0usize;
        for m in &messages {
            if let Ok(r) = host.handle_apdu(from, m, now) {
                accepted += 1;
                replies += usize::from(r.bytes.is_some());
            }
            while host.poll_event().is_some() {}
        }
        best[2] = best[2].min(start.elapsed());
    }
    assert_eq!((opened, received, accepted), (n, n, n));

    let rate = |d: Duration| n as f64 / d.as_secs_f64();
    let ratio = |d: Duration| d.as_secs_f64() / best[0].as_secs_f64();
    println!();
    println!(
        "{n} mode-2 write APDUs of {size} bytes from {METERS} meters, one core, response control {rc:?}, best of {ROUNDS}"
    );
    println!(
        "anchor  bare EAX' open (cleartext, ciphertext, MAC precut):  {:>10.0} msg/s",
        rate(best[0])
    );
    println!(
        "assoc   Association::receive (parse+EAX'+replay+EPSEM):   {:>10.0} msg/s  {:.2}x anchor time",
        rate(best[1]),
        ratio(best[1])
    );
    println!(
        "host    C1222Host::handle_apdu:                           {:>10.0} msg/s  {:.2}x anchor time ({accepted} accepted, {replies} answered)",
        rate(best[2]),
        ratio(best[2])
    );
    if rc == ResponseControl::ALWAYS {
        println!("        (the host also seals a response per message here; the target is for the run above)");
    } else {
        println!(
            "target  {TARGET:.0} msg/s per core to verify and decode (issue 4): {}",
            if rate(best[2]) >= TARGET {
                "met"
            } else {
                "NOT met"
            }
        );
    }
}
