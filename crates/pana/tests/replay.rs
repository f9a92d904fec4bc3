//! Our PaC and our PAA replay the recorded OpenPANA exchange (/work/shared/vectors/pana-auth.txt):
//! given the randoms the recording used (session id, sequence numbers, nonce, Key-Id) and the
//! recorded EAP-PSK packets as the EAP stand-ins' answers, each side must produce the recorded
//! frames of its role byte for byte, AUTH values included.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)] // test helpers

use std::collections::{BTreeMap, VecDeque};
use std::path::PathBuf;
use std::time::{Duration, Instant};

use gridguard_pana::{
    IntegrityAlgorithm, Message, Paa, PaaConfig, PaaEvent, Pac, PacConfig, PacEvent, PrfAlgorithm,
};
use rand_core::{CryptoRng, RngCore};

/// Hands out the recorded randoms in the order the machines draw them (zeros afterwards,
/// which only affect retransmission jitter).
struct Scripted {
    words: VecDeque<u32>,
    bytes: VecDeque<Vec<u8>>,
}

impl RngCore for Scripted {
    fn next_u32(&mut self) -> u32 {
        self.words.pop_front().unwrap_or(0)
    }
    fn next_u64(&mut self) -> u64 {
        u64::from(self.next_u32())
    }
    fn fill_bytes(&mut self, dest: &mut [u8]) {
        let b = self
            .bytes
            .pop_front()
            .expect("an unexpected fill_bytes draw");
        dest.copy_from_slice(&b);
    }
    fn try_fill_bytes(&mut self, dest: &mut [u8]) -> Result<(), rand_core::Error> {
        self.fill_bytes(dest);
        Ok(())
    }
}
impl CryptoRng for Scripted {}

struct Recording {
    msk: Vec<u8>,
    frames: BTreeMap<u32, Vec<u8>>,
}

fn load() -> Option<Recording> {
    let path =
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared/vectors/pana-auth.txt");
    let Ok(text) = std::fs::read_to_string(&path) else {
        eprintln!("SKIPPED: PANA vector file {} is absent", path.display());
        return None;
    };
    let mut r = Recording {
        msk: Vec::new(),
        frames: BTreeMap::new(),
    };
    for line in text.lines().filter(|l| !l.starts_with('#')) {
        match line.split_whitespace().collect::<Vec<_>>().as_slice() {
            ["MSK", h] => r.msk = hex::decode(h).unwrap(),
            ["FRAME", n, h] => {
                r.frames.insert(n.parse().unwrap(), hex::decode(h).unwrap());
            }
            _ => {}
        }
    }
    Some(r)
}

fn field(frame: &[u8], f: impl Fn(&Message) -> Option<Vec<u8>>) -> Vec<u8> {
    f(&Message::parse(frame).unwrap()).unwrap()
}

fn eap(frame: &[u8]) -> Vec<u8> {
    field(frame, |m| m.eap_payload().map(<[u8]>::to_vec))
}

fn u32_at(frame: &[u8], at: usize) -> u32 {
    u32::from_be_bytes(frame[at..at + 4].try_into().unwrap())
}

fn sha1_only() -> (Vec<PrfAlgorithm>, Vec<IntegrityAlgorithm>) {
    (
        vec![PrfAlgorithm::HMAC_SHA1],
        vec![IntegrityAlgorithm::HMAC_SHA1_160],
    )
}

#[test]
fn our_pac_reproduces_the_recorded_pac_frames() {
    let Some(r) = load() else { return };
    let f = &r.frames;
    let now = Instant::now();
    let (prf, integ) = sha1_only();
    let mut config = PacConfig::default();
    config.prf_algorithms = prf;
    config.integrity_algorithms = integ;
    let rng = Scripted {
        // Initial request sequence number (first PNR, frame 18), then jitter.
        words: VecDeque::from(vec![u32_at(&f[&18], 12)]),
        bytes: VecDeque::from(vec![field(&f[&5], |m| m.nonce().map(<[u8]>::to_vec))]),
    };
    let mut pac = Pac::new(config, rng);
    pac.start(now).unwrap();
    assert_eq!(pac.poll_transmit().unwrap(), f[&1], "PCI");
    // (PAA frame in, PaC frame expected out, EAP answer of the peer)
    let steps: [(u32, u32); 5] = [(2, 3), (4, 5), (8, 9), (12, 13), (16, 17)];
    let mut established = None;
    for (paa_frame, pac_frame) in steps {
        pac.handle_datagram(&f[&paa_frame], now);
        while let Some(e) = pac.poll_event() {
            match e {
                PacEvent::EapRequest(req) => {
                    assert_eq!(req, eap(&f[&paa_frame]));
                    if req[0] == 3 {
                        pac.eap_success(Some(&r.msk), now).unwrap();
                    } else {
                        pac.send_eap_response(&eap(&f[&pac_frame]), now).unwrap();
                    }
                }
                PacEvent::Established {
                    key_id,
                    lifetime,
                    msk,
                    ..
                } => established = Some((key_id, lifetime, msk)),
                other => panic!("unexpected {other:?}"),
            }
        }
        assert_eq!(
            pac.poll_transmit().unwrap(),
            f[&pac_frame],
            "frame {pac_frame}"
        );
    }
    let (key_id, lifetime, msk) = established.expect("Established after PAR(C)");
    assert_eq!(key_id, 0x4788_9e39);
    assert_eq!(lifetime, Some(Duration::from_secs(30)));
    assert_eq!(msk.as_bytes(), r.msk.as_slice());
    for (ping, answer) in [(18, 19), (20, 21)] {
        pac.ping(now).unwrap();
        assert_eq!(pac.poll_transmit().unwrap(), f[&ping], "frame {ping}");
        pac.handle_datagram(&f[&answer], now);
        assert!(matches!(pac.poll_event(), Some(PacEvent::PingAnswered)));
    }
    assert_eq!(pac.stats().auth_failures, 0);
}

#[test]
fn our_paa_reproduces_the_recorded_paa_frames() {
    let Some(r) = load() else { return };
    let f = &r.frames;
    let now = Instant::now();
    let (prf, integ) = sha1_only();
    let mut config = PaaConfig::default();
    config.prf_algorithms = prf;
    config.integrity_algorithms = integ;
    config.session_lifetime = Duration::from_secs(30);
    let par_s = &f[&2];
    let rng = Scripted {
        // Session id, initial sequence number, jitter of PAR(S), PAR, PAR, PAR, then Key-Id.
        words: VecDeque::from(vec![
            u32_at(par_s, 8),
            u32_at(par_s, 12),
            0,
            0,
            0,
            0,
            field(&f[&16], |m| m.key_id().map(|k| k.to_be_bytes().to_vec()))
                .iter()
                .fold(0, |a, b| a << 8 | u32::from(*b)),
        ]),
        bytes: VecDeque::from(vec![field(&f[&4], |m| m.nonce().map(<[u8]>::to_vec))]),
    };
    let mut paa: Paa<u8, _> = Paa::new(config, rng);
    paa.handle_datagram(1, &f[&1], now);
    assert_eq!(paa.poll_transmit().unwrap(), (1, f[&2].clone()), "PAR(S)");
    // (PaC frame in, PAA frame expected out; the EAP backend answers with that frame's EAP)
    for (pac_frame, paa_frame) in [(3, 4), (5, 8), (9, 12), (13, 16)] {
        paa.handle_datagram(1, &f[&pac_frame], now);
        while let Some(e) = paa.poll_event() {
            match e {
                PaaEvent::StartEap { session } | PaaEvent::EapFromPac { session, .. } => {
                    let reply = eap(&f[&paa_frame]);
                    if reply[0] == 3 {
                        paa.eap_success(session, &reply, &r.msk, now).unwrap();
                    } else {
                        paa.eap_request(session, &reply, now).unwrap();
                    }
                }
                other => panic!("unexpected {other:?}"),
            }
        }
        assert_eq!(
            paa.poll_transmit().unwrap().1,
            f[&paa_frame],
            "frame {paa_frame}"
        );
    }
    paa.handle_datagram(1, &f[&17], now);
    assert!(matches!(
        paa.poll_event(),
        Some(PaaEvent::Established {
            key_id: 0x4788_9e39,
            ..
        })
    ));
    for (ping, answer) in [(18, 19), (20, 21)] {
        paa.handle_datagram(1, &f[&ping], now);
        assert_eq!(paa.poll_transmit().unwrap().1, f[&answer], "frame {answer}");
    }
    assert_eq!(paa.stats().auth_failures, 0);
}
