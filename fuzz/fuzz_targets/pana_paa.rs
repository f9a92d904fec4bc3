//! PANA state machines under garbage: a PAA and a PaC that authenticate each other through
//! canned EAP packets while the input injects datagrams (from several peers) and advances the
//! clock. Nothing may panic.
#![no_main]

use std::time::{Duration, Instant};

use gridguard_pana::{Paa, PaaConfig, PaaEvent, Pac, PacConfig, PacEvent};
use libfuzzer_sys::fuzz_target;
use rand::rngs::StdRng;
use rand::SeedableRng;

const MSK: [u8; 64] = [7; 64];

fn pump(paa: &mut Paa<u8, StdRng>, pac: &mut Pac<StdRng>, now: Instant) {
    for _ in 0..16 {
        let mut progress = false;
        while let Some(b) = pac.poll_transmit() {
            progress = true;
            paa.handle_datagram(0, &b, now);
        }
        while let Some((peer, b)) = paa.poll_transmit() {
            progress = true;
            if peer == 0 {
                pac.handle_datagram(&b, now);
            }
        }
        while let Some(e) = paa.poll_event() {
            progress = true;
            let _ = match e {
                PaaEvent::StartEap { session } => paa.eap_request(session, &[1, 1, 0, 5, 1], now),
                PaaEvent::EapFromPac { session, .. } => {
                    paa.eap_success(session, &[3, 1, 0, 4], &MSK, now)
                }
                _ => Ok(()),
            };
        }
        while let Some(e) = pac.poll_event() {
            progress = true;
            let _ = match e {
                PacEvent::EapRequest(b) => match b.first() {
                    Some(1) => pac.send_eap_response(&[2, 1, 0, 5, 1], now),
                    Some(3) => pac.eap_success(Some(&MSK), now),
                    Some(4) => pac.eap_failure(now),
                    _ => pac.eap_invalid(now),
                },
                _ => Ok(()),
            };
        }
        if !progress {
            break;
        }
    }
}

fuzz_target!(|data: &[u8]| {
    let mut now = Instant::now();
    let mut paa = Paa::<u8, StdRng>::new(PaaConfig::default(), StdRng::seed_from_u64(1));
    let mut pac = Pac::new(PacConfig::default(), StdRng::seed_from_u64(2));
    let _ = pac.start(now);
    pump(&mut paa, &mut pac, now);
    // Records: [peer][clock advance][length][datagram ...].
    let mut rest = data;
    while let [peer, advance, len, tail @ ..] = rest {
        let n = usize::from(*len).min(tail.len());
        let (datagram, next) = tail.split_at(n);
        rest = next;
        now += Duration::from_millis(u64::from(*advance) * 50);
        paa.handle_datagram(*peer & 3, datagram, now);
        if *peer & 4 != 0 {
            pac.handle_datagram(datagram, now);
        }
        match *peer >> 5 {
            1 => {
                let _ = pac.ping(now);
            }
            2 => {
                let _ = pac.reauthenticate(now);
            }
            3 => {
                let _ = paa.reauthenticate(pac.session_id(), now);
            }
            4 => {
                let _ = paa.ping(pac.session_id(), now);
            }
            5 => {
                let _ = pac.terminate(now);
            }
            _ => {}
        }
        paa.handle_timeout(now);
        pac.handle_timeout(now);
        pump(&mut paa, &mut pac, now);
        let _ = paa.poll_timeout();
        let _ = pac.poll_timeout();
    }
});
