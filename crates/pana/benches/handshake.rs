//! Cost of PANA itself: full in-memory handshakes between many PaCs and one PAA (canned EAP,
//! so only PANA work is measured), printed beside an anchor measured in the same run: one
//! PANA_AUTH_KEY derivation plus the AUTH computations a handshake needs at minimum.
//!
//! Run with `cargo bench -p gridguard-pana --bench handshake`.

use std::time::{Duration, Instant};

use gridguard_pana::{
    derive_auth_key, IntegrityAlgorithm, KeyInputs, Paa, PaaConfig, PaaEvent, Pac, PacConfig,
    PacEvent, PrfAlgorithm,
};
use rand::rngs::StdRng;
use rand::SeedableRng;

const MSK: [u8; 64] = [7; 64];

fn handshakes(n: u32) -> (Duration, Paa<u32, StdRng>) {
    let now = Instant::now();
    let mut paa = Paa::<u32, StdRng>::new(PaaConfig::default(), StdRng::seed_from_u64(1));
    let mut pacs: Vec<Pac<StdRng>> = (0..n)
        .map(|i| {
            Pac::new(
                PacConfig::default(),
                StdRng::seed_from_u64(u64::from(i) + 10),
            )
        })
        .collect();
    let start = Instant::now();
    for pac in &mut pacs {
        pac.start(now).ok();
    }
    let mut established = 0;
    while established < n {
        let mut progress = false;
        for (i, pac) in pacs.iter_mut().enumerate() {
            while let Some(b) = pac.poll_transmit() {
                progress = true;
                paa.handle_datagram(i as u32, &b, now);
            }
            while let Some(e) = pac.poll_event() {
                progress = true;
                match e {
                    PacEvent::EapRequest(b) if b.first() == Some(&1) => {
                        pac.send_eap_response(&[2, 1, 0, 5, 1], now).ok();
                    }
                    PacEvent::EapRequest(_) => {
                        pac.eap_success(Some(&MSK), now).ok();
                    }
                    _ => {}
                }
            }
        }
        while let Some((peer, b)) = paa.poll_transmit() {
            progress = true;
            if let Some(pac) = pacs.get_mut(peer as usize) {
                pac.handle_datagram(&b, now);
            }
        }
        while let Some(e) = paa.poll_event() {
            progress = true;
            match e {
                PaaEvent::StartEap { session } => {
                    paa.eap_request(session, &[1, 1, 0, 5, 1], now).ok();
                }
                PaaEvent::EapFromPac { session, .. } => {
                    paa.eap_success(session, &[3, 1, 0, 4], &MSK, now).ok();
                }
                PaaEvent::Established { .. } => established += 1,
                _ => {}
            }
        }
        assert!(progress, "stalled at {established} of {n}");
    }
    (start.elapsed(), paa)
}

fn anchor(iterations: u32) -> Duration {
    let par = [0u8; 40];
    let pan = [0u8; 40];
    let nonce = [1u8; 20];
    let start = Instant::now();
    for i in 0..iterations {
        let inputs = KeyInputs {
            i_par: &par,
            i_pan: &pan,
            pac_nonce: &nonce,
            paa_nonce: &nonce,
            key_id: i,
        };
        let key = derive_auth_key(
            PrfAlgorithm::HMAC_SHA2_256,
            IntegrityAlgorithm::HMAC_SHA2_256_128,
            &MSK,
            &inputs,
        )
        .ok();
        std::hint::black_box(key);
    }
    start.elapsed()
}

fn main() {
    let n = 20_000;
    let (t, paa) = handshakes(n);
    let a = anchor(n);
    let per = t / n;
    let per_anchor = a / n;
    println!(
        "PANA handshakes (PaC+PAA, both sides, canned EAP): {n} in {t:?} = {per:?} each, {:.0}/s",
        f64::from(n) / t.as_secs_f64()
    );
    println!("anchor, one PANA_AUTH_KEY derivation (HMAC-SHA-256 prf+): {per_anchor:?} each");
    println!(
        "ratio handshake / key derivation: {:.1}",
        per.as_secs_f64() / per_anchor.as_secs_f64()
    );
    println!(
        "PAA: {} sessions, inline {} B each",
        paa.session_count(),
        Paa::<u32, StdRng>::session_inline_bytes()
    );
}
