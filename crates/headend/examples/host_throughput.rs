//! How many small C12.22 messages the host verifies and decodes per second on one core,
//! printed beside the anchor measured in the same run: the bare `gridguard-c1222`
//! `Association::receive` (parse, EAX′ open, replay check, EPSEM decode) over the same
//! messages with the key handed over directly. The host adds the key-ring lookup, refusal
//! bookkeeping, service handling, events, and sealing its response.
//!
//! Run with `cargo run --release -p gridguard-headend --example host_throughput`.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use gridguard_c1222::security::{Association, AssociationConfig};
use gridguard_c1222::{ApTitle, ObjectId, ResponseControl};
use gridguard_headend::{C1222Host, HostConfig, MeterLink, MeterLinkConfig};
use gridguard_keys::{Application, SessionFacts};
use rand::rngs::StdRng;
use rand::SeedableRng;
use zeroize::Zeroizing;

const METERS: u64 = 64;
const PER_METER: usize = 2000;

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

fn run(rc: ResponseControl) {
    let now = Instant::now();
    let lifetime = Duration::from_secs(3600);
    let mut host_cfg = HostConfig::new(title(1));
    host_cfg.association = config();
    let mut host = C1222Host::new(host_cfg, StdRng::seed_from_u64(1));
    // Mode 2 writes of 24 bytes of interval data. First with response control "on exception"
    // (the host verifies and decodes, no answer is due: the in-process decode rate), then with
    // "always" (every message also gets a sealed answer).
    let mut messages = Vec::new();
    let mut keys = Vec::new();
    for m in 0..METERS {
        let emsk = [m as u8 ^ 0x5a; 64];
        let facts = SessionFacts::new(7, 1, format!("meter-{m}").into_bytes());
        host.install_session(title(100 + m), &facts, &emsk, lifetime, now)
            .unwrap();
        let mut link = MeterLink::new(
            MeterLinkConfig::new(title(100 + m), title(1), vec![10, 0, 0, m as u8])
                .with_response_control(rc),
            StdRng::seed_from_u64(1000 + m),
        );
        link.install_session(&facts, &emsk, lifetime, now).unwrap();
        let k = link
            .ring()
            .sending_key(Application::C1222Data, now)
            .unwrap();
        keys.push((title(100 + m), k.key_id.value(), *k.key.as_bytes()));
        let reg = link.registration(now).unwrap();
        host.handle_apdu("127.0.0.1:1".parse().unwrap(), &reg.bytes, now)
            .unwrap();
        for _ in 0..PER_METER {
            messages.push(link.write_intervals(64, &[0x42; 24], now).unwrap().bytes);
        }
    }
    let from: SocketAddr = "127.0.0.1:50000".parse().unwrap();
    let n = messages.len();
    let size = messages[0].len();

    // Anchor: the bare association.
    let lookup = move |t: &ApTitle, id: u8| {
        keys.iter()
            .find(|(kt, kid, _)| kt == t && *kid == id)
            .map(|(_, _, k)| Zeroizing::new(*k))
    };
    let mut bare = Association::new(config(), lookup);
    let start = Instant::now();
    let mut ok = 0usize;
    for m in &messages {
        ok += usize::from(bare.receive(now, m).is_ok());
    }
    let anchor = start.elapsed();

    let start = Instant::now();
    let mut accepted = 0usize;
    let mut replies = 0usize;
    for m in &messages {
        if let Ok(r) = host.handle_apdu(from, m, now) {
            accepted += 1;
            replies += usize::from(r.bytes.is_some());
        }
        while host.poll_event().is_some() {}
    }
    let full = start.elapsed();

    let rate = |d: Duration| n as f64 / d.as_secs_f64();
    println!();
    println!("{n} mode-2 write APDUs of {size} bytes from {METERS} meters, one core, response control {rc:?}");
    println!(
        "anchor  Association::receive (parse+EAX'+replay+EPSEM): {:>10.0} msg/s ({ok} ok)",
        rate(anchor)
    );
    println!(
        "host    C1222Host::handle_apdu:                         {:>10.0} msg/s ({accepted} accepted, {replies} answered)",
        rate(full)
    );
    println!(
        "host cost = {:.2}x anchor",
        full.as_secs_f64() / anchor.as_secs_f64()
    );
}
