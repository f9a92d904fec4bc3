//! Property test: random sequences of install / advance time / revoke / handle_timeout never
//! hand out a key past its expiry, and the store agrees with a simple model of the rules.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use gridguard_keys::{kdf, Application, KeyConfig, KeyStore, SessionFacts};
use proptest::prelude::*;

#[derive(Clone, Debug)]
enum Op {
    Install {
        meter: u8,
        lifetime_s: u64,
    },
    Advance {
        ms: u64,
    },
    /// Jump exactly to the next deadline, as a driver's timer would.
    AdvanceToDeadline,
    Revoke {
        meter: u8,
    },
    HandleTimeout,
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        3 => (0u8..3, 1u64..2_000).prop_map(|(meter, lifetime_s)| Op::Install { meter, lifetime_s }),
        3 => (0u64..1_500_000).prop_map(|ms| Op::Advance { ms }),
        2 => Just(Op::AdvanceToDeadline),
        1 => (0u8..3).prop_map(|meter| Op::Revoke { meter }),
        2 => Just(Op::HandleTimeout),
    ]
}

/// What the model knows about one generation.
#[derive(Clone, Debug)]
struct ModelGen {
    generation: u64,
    facts: SessionFacts,
    emsk: Vec<u8>,
    key_ids: [(Application, gridguard_keys::KeyId); 3],
    /// End of validity: `expires` while current, `min(expires, roll + grace)` once previous.
    valid_until: Instant,
}

#[derive(Default, Debug)]
struct ModelRing {
    current: Option<ModelGen>,
    previous: Option<ModelGen>,
    next_generation: u64,
}

fn emsk_for(counter: u32) -> Vec<u8> {
    (0u8..64)
        .map(|i| i ^ (counter as u8).wrapping_mul(7) ^ 0xa5)
        .collect()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn no_key_is_ever_handed_out_past_its_expiry(
        grace_s in 0u64..600,
        ops in proptest::collection::vec(op(), 1..40),
    ) {
        let grace = Duration::from_secs(grace_s);
        let t0 = Instant::now();
        let mut now = t0;
        let mut store: KeyStore<u8> = KeyStore::new(KeyConfig::new().with_grace(grace));
        let mut model: BTreeMap<u8, ModelRing> = BTreeMap::new();
        let mut counter = 0u32;

        for op in ops {
            match op {
                Op::Install { meter, lifetime_s } => {
                    counter += 1;
                    let facts = SessionFacts::new(u32::from(meter), counter, vec![meter; 5]);
                    let emsk = emsk_for(counter);
                    let lifetime = Duration::from_secs(lifetime_s);
                    let info = store
                        .install_generation(meter, &facts, &emsk, lifetime, now)
                        .unwrap();
                    let m = model.entry(meter).or_default();
                    if m.current.as_ref().is_some_and(|g| now >= g.valid_until) {
                        m.current = None;
                    }
                    if m.previous.as_ref().is_some_and(|g| now >= g.valid_until) {
                        m.previous = None;
                    }
                    if m.current.is_none() && m.previous.is_none() {
                        m.next_generation = 1;
                    }
                    prop_assert_eq!(info.generation, m.next_generation.max(1));
                    m.next_generation = info.generation + 1;
                    prop_assert_eq!(info.expires_at, now + lifetime + grace);
                    m.previous = m.current.take().map(|mut g| {
                        g.valid_until = g.valid_until.min(now + grace);
                        g
                    });
                    m.current = Some(ModelGen {
                        generation: info.generation,
                        facts,
                        emsk,
                        key_ids: info.key_ids,
                        valid_until: info.expires_at,
                    });
                }
                Op::Advance { ms } => now += Duration::from_millis(ms),
                Op::AdvanceToDeadline => {
                    // An overdue deadline (handle_timeout not called yet) fires at once.
                    if let Some(t) = store.poll_timeout() {
                        now = now.max(t);
                    }
                }
                Op::Revoke { meter } => {
                    store.revoke(&meter, now);
                    model.remove(&meter);
                }
                Op::HandleTimeout => {
                    store.handle_timeout(now);
                    // Everything past its time is destroyed: the ring no longer lists it.
                    if let Some(t) = store.poll_timeout() {
                        prop_assert!(t > now);
                    }
                    for (meter, m) in model.iter_mut() {
                        if m.previous.as_ref().is_some_and(|g| now >= g.valid_until) {
                            m.previous = None;
                        }
                        if m.current.as_ref().is_some_and(|g| now >= g.valid_until) {
                            m.current = None;
                        }
                        let ring = store.ring(meter);
                        prop_assert_eq!(
                            ring.and_then(|r| r.current()).map(|g| g.generation),
                            m.current.as_ref().map(|g| g.generation)
                        );
                        prop_assert_eq!(
                            ring.and_then(|r| r.previous()).map(|(g, _)| g.generation),
                            m.previous.as_ref().map(|g| g.generation)
                        );
                    }
                }
            }

            // After every step, check every lookup against the model at `now`, whether or
            // not handle_timeout ran.
            while store.poll_event().is_some() {}
            for meter in 0u8..3 {
                let m = model.get(&meter);
                for app in Application::ALL {
                    let live_current = m
                        .and_then(|m| m.current.as_ref())
                        .filter(|g| now < g.valid_until);
                    match (store.sending_key(&meter, app, now), live_current) {
                        (Ok(k), Some(g)) => {
                            prop_assert!(k.usable_until > now);
                            prop_assert_eq!(k.generation, g.generation);
                            let expected = kdf::derive_app_key(&g.emsk, &g.facts, app).unwrap();
                            prop_assert!(*k.key == expected);
                        }
                        (Err(_), None) => {}
                        (got, want) => prop_assert!(
                            false,
                            "sending {:?}: store {:?}, model {:?}",
                            app,
                            got.map(|k| k.generation),
                            want.map(|g| g.generation)
                        ),
                    }
                    let gens = m
                        .into_iter()
                        .flat_map(|m| m.current.iter().chain(m.previous.iter()));
                    for g in gens {
                        let (_, id) = g.key_ids.iter().copied().find(|(a, _)| *a == app).unwrap();
                        let got = store.receiving_key(&meter, app, id, now);
                        if now < g.valid_until {
                            let k = got.unwrap();
                            prop_assert!(k.usable_until > now);
                            prop_assert_eq!(k.generation, g.generation);
                            let expected = kdf::derive_app_key(&g.emsk, &g.facts, app).unwrap();
                            prop_assert!(*k.key == expected);
                        } else if let Ok(k) = got {
                            // Only acceptable if another, live generation has the same id.
                            prop_assert!(k.usable_until > now);
                            prop_assert_ne!(k.generation, g.generation);
                        }
                    }
                }
            }
        }
    }
}
