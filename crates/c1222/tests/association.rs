//! The sans-IO Association: key lookup through the trait, replay refusal within the window,
//! expiry through poll_timeout/handle_timeout, policy on security modes.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

use std::time::{Duration, Instant};

use gridguard_c1222::security::{Association, AssociationConfig, KeyLookup};
use gridguard_c1222::{
    AcseApdu, ApTitle, Epsem, EpsemControl, Error, Integer, ObjectId, RelativeOid, Request,
    ResponseControl, SecurityMode, Service, TableId,
};
use gridguard_c1222::{ReplayCheck, SEQUENCE_WINDOW};
use rand::rngs::StdRng;
use rand::SeedableRng;
use zeroize::Zeroizing;

/// A key ring keyed by (AP title, key id): key ids 3 and 5 of either title.
struct Ring {
    meter: ApTitle,
    head_end: ApTitle,
}

impl KeyLookup for Ring {
    fn key(&self, ap_title: &ApTitle, key_id: u8) -> Option<Zeroizing<[u8; 16]>> {
        if (ap_title == &self.meter || ap_title == &self.head_end) && (key_id == 3 || key_id == 5) {
            Some(Zeroizing::new([0x42; 16]))
        } else {
            None
        }
    }
}

fn titles() -> (ApTitle, ApTitle) {
    (
        ApTitle::Relative(RelativeOid::from_arcs(&[7, 1001]).unwrap()),
        ApTitle::Absolute(ObjectId::from_arcs(&[2, 16, 124, 113620, 1, 22, 0, 9]).unwrap()),
    )
}

fn ring() -> Ring {
    let (meter, head_end) = titles();
    Ring { meter, head_end }
}

fn message(mode: SecurityMode, invocation: u32) -> AcseApdu {
    let (meter, head_end) = titles();
    let epsem = Epsem {
        control: EpsemControl::new(mode, ResponseControl::ON_EXCEPTION),
        ed_class: Some(*b"GGRD"),
        end_marker: false,
        services: vec![Service::Request(Request::FullWrite {
            table: TableId(2049),
            data: b"interval data".to_vec(),
        })],
    };
    let mut a = AcseApdu::new(epsem.to_bytes().unwrap());
    a.called_ap_title = Some(head_end);
    a.calling_ap_title = Some(meter);
    a.calling_ap_invocation_id = Some(Integer::from_u32(invocation));
    a
}

fn config() -> AssociationConfig {
    let mut c = AssociationConfig::default();
    c.replay_window = Duration::from_secs(60);
    c
}

#[test]
fn mode_2_round_trip_and_replay_refusal() {
    let mut meter = Association::new(config(), ring());
    let mut head_end = Association::new(config(), ring());
    let mut rng = StdRng::seed_from_u64(7);
    let t0 = Instant::now();

    let wire = meter
        .seal(message(SecurityMode::CIPHERTEXT_AUTH, 10), 3, &mut rng)
        .unwrap();
    // The table data is not visible on the wire.
    assert!(!wire.windows(8).any(|w| w == b"interval"));
    let got = head_end.receive(t0, &wire).unwrap();
    assert_eq!(got.verified.mode(), SecurityMode::CIPHERTEXT_AUTH);
    assert_eq!(got.epsem.ed_class, Some(*b"GGRD"));
    assert_eq!(
        got.epsem.services,
        vec![Service::Request(Request::FullWrite {
            table: TableId(2049),
            data: b"interval data".to_vec()
        })]
    );

    // The same bytes again: replay.
    assert_eq!(
        head_end
            .receive(t0 + Duration::from_secs(1), &wire)
            .unwrap_err(),
        Error::Replay
    );
    // Same invocation id, fresh IV: still a replay of (calling AP title, invocation id).
    let again = meter
        .seal(message(SecurityMode::CIPHERTEXT_AUTH, 10), 3, &mut rng)
        .unwrap();
    assert_ne!(again, wire);
    assert_eq!(
        head_end
            .receive(t0 + Duration::from_secs(2), &again)
            .unwrap_err(),
        Error::Replay
    );
    // Fresh invocation id but a reused IV: replay of the IV.
    let mut fixed = StdRng::seed_from_u64(7);
    let reused_iv = meter
        .seal(message(SecurityMode::CIPHERTEXT_AUTH, 11), 3, &mut fixed)
        .unwrap();
    assert_eq!(
        head_end
            .receive(t0 + Duration::from_secs(3), &reused_iv)
            .unwrap_err(),
        Error::Replay
    );

    // The window is a timer: it reports its deadline and forgets on time.
    let deadline = head_end.poll_timeout().unwrap();
    assert_eq!(deadline, t0 + Duration::from_secs(60));
    assert_eq!(head_end.tracked(), 2);
    head_end.handle_timeout(deadline - Duration::from_millis(1));
    assert_eq!(head_end.tracked(), 2);
    head_end.handle_timeout(deadline);
    assert_eq!(head_end.tracked(), 0);
    assert_eq!(head_end.poll_timeout(), None);
    // After the window the old message is accepted again (the window is the policy).
    assert!(head_end.receive(deadline, &wire).is_ok());
}

#[test]
fn forged_messages_do_not_poison_the_window() {
    let mut meter = Association::new(config(), ring());
    let mut head_end = Association::new(config(), ring());
    let mut rng = StdRng::seed_from_u64(9);
    let now = Instant::now();
    let wire = meter
        .seal(message(SecurityMode::CLEARTEXT_AUTH, 5), 3, &mut rng)
        .unwrap();
    let mut forged = wire.clone();
    let n = forged.len();
    forged[n - 5] ^= 0x04;
    assert_eq!(
        head_end.receive(now, &forged).unwrap_err(),
        Error::AuthenticationFailed
    );
    assert_eq!(head_end.tracked(), 0);
    assert!(head_end.receive(now, &wire).is_ok());
}

#[test]
fn policy_and_key_errors() {
    let mut meter = Association::new(config(), ring());
    let mut head_end = Association::new(config(), ring());
    let mut rng = StdRng::seed_from_u64(11);
    let now = Instant::now();

    // Mode 0 is refused by the default policy (minimum mode 1).
    let clear = meter
        .seal(message(SecurityMode::CLEARTEXT, 1), 3, &mut rng)
        .unwrap();
    assert_eq!(
        head_end.receive(now, &clear).unwrap_err(),
        Error::SecurityBelowPolicy(0)
    );
    // Unknown key id on the sending side and on the receiving side.
    assert_eq!(
        meter
            .seal(message(SecurityMode::CIPHERTEXT_AUTH, 2), 4, &mut rng)
            .unwrap_err(),
        Error::UnknownKey { key_id: 4 }
    );
    let other = Association::new(config(), |_: &ApTitle, _: u8| {
        Some(Zeroizing::new([0x42u8; 16]))
    });
    let mut other = other;
    let wire = other
        .seal(message(SecurityMode::CIPHERTEXT_AUTH, 3), 9, &mut rng)
        .unwrap();
    assert_eq!(
        head_end.receive(now, &wire).unwrap_err(),
        Error::UnknownKey { key_id: 9 }
    );
    // Mode 3 is reserved.
    let mut apdu = message(SecurityMode::CLEARTEXT, 4);
    apdu.user_information.epsem[0] |= 0x0c;
    assert_eq!(
        meter.seal(apdu, 3, &mut rng).unwrap_err(),
        Error::UnsupportedSecurityMode(3)
    );
    // A called AE qualifier is not covered by the MAC: refused rather than left unprotected.
    let mut apdu = message(SecurityMode::CIPHERTEXT_AUTH, 5);
    apdu.called_ae_qualifier = Some(Integer::from_u32(1));
    assert_eq!(
        meter.seal(apdu, 3, &mut rng).unwrap_err(),
        Error::UncoveredElement { tag: 0xa3 }
    );
}

#[test]
fn replay_window_capacity_is_a_hard_limit() {
    let mut cfg = config();
    cfg.max_tracked = 4;
    let mut meter = Association::new(config(), ring());
    let mut head_end = Association::new(cfg, ring());
    let mut rng = StdRng::seed_from_u64(13);
    let now = Instant::now();
    for i in 0..2 {
        let w = meter
            .seal(message(SecurityMode::CLEARTEXT_AUTH, i), 3, &mut rng)
            .unwrap();
        head_end.receive(now, &w).unwrap();
    }
    let w = meter
        .seal(message(SecurityMode::CLEARTEXT_AUTH, 2), 3, &mut rng)
        .unwrap();
    assert_eq!(
        head_end.receive(now, &w).unwrap_err(),
        Error::ReplayWindowFull
    );
    head_end.handle_timeout(now + Duration::from_secs(60));
    assert!(head_end.receive(now + Duration::from_secs(60), &w).is_ok());
}

#[test]
fn cleartext_policy_accepts_mode_0_without_tracking() {
    let mut cfg = config();
    cfg.min_security_mode = SecurityMode::CLEARTEXT;
    let mut meter = Association::new(config(), ring());
    let mut head_end = Association::new(cfg, ring());
    let mut rng = StdRng::seed_from_u64(17);
    let now = Instant::now();
    let wire = meter
        .seal(message(SecurityMode::CLEARTEXT, 1), 3, &mut rng)
        .unwrap();
    // The table data travels in clear.
    assert!(wire.windows(8).any(|w| w == b"interval"));
    let got = head_end.receive(now, &wire).unwrap();
    assert_eq!(got.verified.mode(), SecurityMode::CLEARTEXT);
    assert_eq!(head_end.tracked(), 0);
    // Authenticated messages are still verified under this policy.
    let mut forged = meter
        .seal(message(SecurityMode::CLEARTEXT_AUTH, 2), 3, &mut rng)
        .unwrap();
    let n = forged.len();
    forged[n - 1] ^= 1;
    assert_eq!(
        head_end.receive(now, &forged).unwrap_err(),
        Error::AuthenticationFailed
    );
}

#[test]
fn replay_entries_are_per_peer_and_survive_peer_turnover() {
    let (meter_title, head_end_title) = titles();
    let mut meter = Association::new(config(), ring());
    let mut head_end = Association::new(config(), ring());
    let mut rng = StdRng::seed_from_u64(19);
    let t0 = Instant::now();
    // The same invocation id from two different peers: both accepted (the window is per peer).
    let from_meter = meter
        .seal(message(SecurityMode::CIPHERTEXT_AUTH, 7), 3, &mut rng)
        .unwrap();
    let mut other = message(SecurityMode::CIPHERTEXT_AUTH, 7);
    other.calling_ap_title = Some(head_end_title.clone());
    other.called_ap_title = Some(meter_title.clone());
    // Sealing looks the key up by the called title; both titles share key 3 in `ring`.
    let from_other = meter.seal(other, 3, &mut rng).unwrap();
    let got = head_end
        .receive_parsed(t0, AcseApdu::parse(&from_meter).unwrap())
        .unwrap();
    assert_eq!(got.apdu.calling_ap_title, Some(meter_title.clone()));
    head_end.receive(t0, &from_other).unwrap();
    assert_eq!(head_end.tracked(), 4);
    assert_eq!(
        head_end.receive(t0, &from_meter).unwrap_err(),
        Error::Replay
    );
    assert_eq!(
        head_end.receive(t0, &from_other).unwrap_err(),
        Error::Replay
    );

    // The first peer's entries expire; a new message of the second peer arrives later, so its
    // entries outlive the first peer's. Replays of the second peer stay refused and the
    // first peer (forgotten, its number reused) starts afresh.
    let t1 = t0 + Duration::from_secs(30);
    let later = meter
        .seal(
            {
                let mut m = message(SecurityMode::CIPHERTEXT_AUTH, 8);
                m.calling_ap_title = Some(head_end_title.clone());
                m.called_ap_title = Some(meter_title.clone());
                m
            },
            3,
            &mut rng,
        )
        .unwrap();
    head_end.receive(t1, &later).unwrap();
    head_end.handle_timeout(t0 + Duration::from_secs(60));
    assert_eq!(head_end.tracked(), 2);
    let t2 = t0 + Duration::from_secs(61);
    assert_eq!(head_end.receive(t2, &later).unwrap_err(), Error::Replay);
    assert!(head_end.receive(t2, &from_meter).is_ok());
    assert_eq!(
        head_end.receive(t2, &from_meter).unwrap_err(),
        Error::Replay
    );
    assert_eq!(head_end.receive(t2, &later).unwrap_err(), Error::Replay);
    head_end.handle_timeout(t2 + Duration::from_secs(60));
    assert_eq!(head_end.tracked(), 0);
}

fn increasing() -> AssociationConfig {
    let mut c = config();
    c.replay = ReplayCheck::Increasing;
    c
}

#[test]
fn increasing_ids_are_accepted_out_of_order_within_the_window_and_never_twice() {
    let mut host = Association::new(config(), ring());
    let mut meter = Association::new(increasing(), ring());
    let mut rng = StdRng::seed_from_u64(9);
    let t0 = Instant::now();
    let mut sealed = |id: u32, key_id: u8| {
        host.seal(message(SecurityMode::CIPHERTEXT_AUTH, id), key_id, &mut rng)
            .unwrap()
    };
    let (m100, m90, m101, m30, m36) = (
        sealed(100, 3),
        sealed(90, 3),
        sealed(101, 3),
        sealed(30, 3),
        sealed(36, 3),
    );
    let other_key = sealed(5, 5);
    assert!(meter.receive(t0, &m100).is_ok());
    // Behind the highest id but within the window, first time: accepted; then never again.
    assert!(meter.receive(t0, &m90).is_ok());
    assert_eq!(meter.receive(t0, &m90).unwrap_err(), Error::Replay);
    assert_eq!(meter.receive(t0, &m100).unwrap_err(), Error::Replay);
    assert!(meter.receive(t0, &m101).is_ok());
    // 101 − 36 = 65 ≥ 64 behind: refused, never seen or not.
    assert_eq!(meter.receive(t0, &m36).unwrap_err(), Error::Replay);
    assert_eq!(meter.receive(t0, &m30).unwrap_err(), Error::Replay);
    // Another key has a window of its own.
    assert!(meter.receive(t0, &other_key).is_ok());
    assert_eq!(meter.receive(t0, &other_key).unwrap_err(), Error::Replay);
    // Nothing is remembered per message, and nothing waits for a timer.
    assert_eq!(meter.tracked(), 0);
    assert_eq!(meter.poll_timeout(), None);
}

proptest::proptest! {
    /// Against a model that remembers every id: a message is accepted exactly when its id was
    /// never accepted and is less than the window behind the highest accepted.
    #[test]
    fn increasing_window_matches_a_model_that_remembers_everything(
        ids in proptest::collection::vec(1u32..400, 1..120)
    ) {
        let mut host = Association::new(config(), ring());
        let mut meter = Association::new(increasing(), ring());
        let mut rng = StdRng::seed_from_u64(3);
        let t0 = Instant::now();
        let mut accepted = std::collections::BTreeSet::new();
        for id in ids {
            let wire = host
                .seal(message(SecurityMode::CIPHERTEXT_AUTH, id), 3, &mut rng)
                .unwrap();
            let highest = accepted.last().copied().unwrap_or(0u32);
            let fresh = !accepted.contains(&id)
                && u64::from(id) + SEQUENCE_WINDOW > u64::from(highest);
            let got = meter.receive(t0, &wire);
            proptest::prop_assert_eq!(got.is_ok(), fresh, "id {}", id);
            if fresh {
                accepted.insert(id);
            }
        }
    }
}
