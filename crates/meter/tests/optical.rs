//! Optical port rules over random sequences of logon attempts: a wrong password never logs
//! on, the port locks after the configured number of consecutive failures for the configured
//! time (refusing even the right password), and every attempt is logged in order.
#![allow(clippy::unwrap_used, clippy::indexing_slicing)]

use gridguard_meter::optical::{AccessLevel, LogonError, LogonOutcome, OpticalConfig, OpticalPort};
use proptest::prelude::*;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

#[derive(Clone, Copy, Debug)]
enum Attempt {
    Right,
    WrongPassword,
    UnknownUser,
    Logoff,
}

fn arb_attempt() -> impl Strategy<Value = Attempt> {
    prop_oneof![
        2 => Just(Attempt::Right),
        4 => Just(Attempt::WrongPassword),
        1 => Just(Attempt::UnknownUser),
        1 => Just(Attempt::Logoff),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    #[test]
    fn lockout_and_audit_follow_the_rules(
        max_failures in 1u8..6,
        lockout_s in 1u32..600,
        salt_seed in any::<u64>(),
        steps in proptest::collection::vec((arb_attempt(), 0u64..300), 1..60),
    ) {
        let mut rng = ChaCha8Rng::seed_from_u64(salt_seed);
        let cfg = OpticalConfig::default().with_lockout(max_failures, lockout_s).with_audit_capacity(1_000);
        let mut port = OpticalPort::new(cfg);
        port.set_user(&mut rng, "field", b"s3cret-pass", AccessLevel::Operator);

        let mut now = 1_000u64;
        let mut failures = 0u8;
        let mut locked_until: Option<u64> = None;
        let mut attempts = 0usize;
        for (a, dt) in steps {
            now += dt;
            if let Attempt::Logoff = a {
                port.logoff();
                continue;
            }
            let (user, pw) = match a {
                Attempt::Right => ("field", &b"s3cret-pass"[..]),
                Attempt::WrongPassword => ("field", &b"s3cret-pas"[..]),
                _ => ("intruder", &b"s3cret-pass"[..]),
            };
            let busy = port.session(now).is_some();
            let r = port.logon(user, pw, now);
            attempts += 1;
            let last = *port.audit_log().last().unwrap();
            prop_assert_eq!(last.time, now);
            match locked_until.filter(|&u| now < u) {
                Some(u) => {
                    prop_assert_eq!(r, Err(LogonError::LockedOut { until: u }));
                    prop_assert_eq!(last.outcome, LogonOutcome::RefusedLocked);
                    continue;
                }
                None if locked_until.is_some() => {
                    locked_until = None;
                    failures = 0;
                }
                None => {}
            }
            if busy {
                prop_assert_eq!(r, Err(LogonError::Busy));
                continue;
            }
            if matches!(a, Attempt::Right) {
                prop_assert!(r.is_ok());
                prop_assert_eq!(last.outcome, LogonOutcome::Success);
                failures = 0;
            } else {
                prop_assert_eq!(r, Err(LogonError::BadCredentials));
                failures += 1;
                if failures >= max_failures {
                    locked_until = Some(now + u64::from(lockout_s));
                    failures = 0;
                    prop_assert_eq!(last.outcome, LogonOutcome::BadCredentialsLockedOut);
                    prop_assert_eq!(port.locked_until(now), locked_until);
                } else {
                    prop_assert_eq!(last.outcome, LogonOutcome::BadCredentials);
                }
            }
        }
        prop_assert_eq!(port.audit_log().count(), attempts);
    }
}
