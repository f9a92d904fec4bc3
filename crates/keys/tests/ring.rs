//! Key ring behaviour: rollover, grace, expiry, revocation, timers and events.

use std::time::{Duration, Instant};

use gridguard_keys::{
    kdf, AppKey, Application, Error, ExpiryCause, KeyConfig, KeyEvent, KeyId, KeyRing, KeyStore,
    MeterKeyEvent, SessionFacts,
};

const LIFETIME: Duration = Duration::from_secs(3600);
const GRACE: Duration = Duration::from_secs(120);

fn emsk(seed: u8) -> Vec<u8> {
    (0u8..64)
        .map(|i| i.wrapping_mul(31).wrapping_add(seed))
        .collect()
}

fn facts(key_id: u32) -> SessionFacts {
    SessionFacts::new(0xdead_0001, key_id, b"meter-7@gridguard.dev".to_vec())
}

fn store() -> KeyStore<u32> {
    KeyStore::new(KeyConfig::new().with_grace(GRACE))
}

fn secs(s: u64) -> Duration {
    Duration::from_secs(s)
}

fn drain(store: &mut KeyStore<u32>) -> Vec<MeterKeyEvent<u32>> {
    std::iter::from_fn(|| store.poll_event()).collect()
}

#[allow(clippy::expect_used)] // test helper
fn sending(store: &KeyStore<u32>, meter: u32, app: Application, now: Instant) -> (KeyId, AppKey) {
    let k = store.sending_key(&meter, app, now).expect("sending key");
    (k.key_id, k.key.clone())
}

#[test]
fn installed_keys_are_the_rfc5295_keys_and_both_ends_agree() {
    let t0 = Instant::now();
    let mut headend = store();
    let mut meter = KeyRing::new(KeyConfig::new().with_grace(GRACE));
    let info = headend
        .install_generation(7, &facts(1), &emsk(1), LIFETIME, t0)
        .unwrap();
    let meter_info = meter
        .install_generation(&facts(1), &emsk(1), LIFETIME, t0)
        .unwrap();
    assert_eq!(info.key_ids, meter_info.key_ids);
    assert_eq!(info.generation, 1);
    assert_eq!(info.created_at, t0);
    assert_eq!(info.expires_at, t0 + LIFETIME + GRACE);
    for app in Application::ALL {
        let expected = kdf::derive_app_key(&emsk(1), &facts(1), app).unwrap();
        let h = headend.sending_key(&7, app, t0).unwrap();
        let m = meter.sending_key(app, t0).unwrap();
        assert!(*h.key == expected);
        assert!(*m.key == expected);
        assert_eq!(h.key_id, m.key_id);
        assert_eq!(h.key_id.application(), Some(app));
        // The id is the derived one (nothing to collide with in a first generation).
        let bits = kdf::derive_key_id_bits(&emsk(1), &facts(1), app).unwrap();
        assert_eq!(h.key_id, KeyId::for_application(app, bits));
        // The meter's outgoing key is what the head-end accepts.
        let r = headend.receiving_key(&7, app, m.key_id, t0).unwrap();
        assert!(*r.key == *m.key);
    }
    assert_eq!(
        drain(&mut headend),
        vec![MeterKeyEvent {
            meter: 7,
            event: KeyEvent::Installed {
                generation: 1,
                key_ids: info.key_ids,
                expires_at: t0 + LIFETIME + GRACE,
            }
        }]
    );
}

#[test]
fn rollover_sends_new_at_once_accepts_previous_within_grace_only() {
    let t0 = Instant::now();
    let mut s = store();
    s.install_generation(7, &facts(1), &emsk(1), LIFETIME, t0)
        .unwrap();
    let (old_id, old_key) = sending(&s, 7, Application::C1222Data, t0);
    drain(&mut s);

    let t1 = t0 + secs(3000);
    let info2 = s
        .install_generation(7, &facts(2), &emsk(2), LIFETIME, t1)
        .unwrap();
    assert_eq!(info2.generation, 2);
    let (new_id, new_key) = sending(&s, 7, Application::C1222Data, t1);
    assert!(
        new_key != old_key,
        "new generation is used for sending at once"
    );
    assert_ne!(new_id, old_id, "generations differ in key id");
    assert!(new_key == kdf::derive_app_key(&emsk(2), &facts(2), Application::C1222Data).unwrap());

    assert_eq!(
        drain(&mut s),
        vec![
            MeterKeyEvent {
                meter: 7,
                event: KeyEvent::Installed {
                    generation: 2,
                    key_ids: info2.key_ids,
                    expires_at: t1 + LIFETIME + GRACE,
                }
            },
            MeterKeyEvent {
                meter: 7,
                event: KeyEvent::Rolled {
                    from_generation: 1,
                    to_generation: 2,
                    previous_accepted_until: t1 + GRACE,
                }
            },
        ]
    );

    // Previous generation accepted for receiving up to the end of the grace (exclusive).
    let just_before = t1 + GRACE - Duration::from_millis(1);
    let r = s
        .receiving_key(&7, Application::C1222Data, old_id, just_before)
        .unwrap();
    assert!(*r.key == old_key);
    assert_eq!(r.generation, 1);
    assert_eq!(r.usable_until, t1 + GRACE);
    // ... and never for sending.
    assert_eq!(
        s.sending_key(&7, Application::C1222Data, t1)
            .unwrap()
            .generation,
        2
    );
    assert_eq!(s.poll_timeout(), Some(t1 + GRACE));

    // At the end of the grace the lookup refuses it even before handle_timeout ran.
    assert!(matches!(
        s.receiving_key(&7, Application::C1222Data, old_id, t1 + GRACE),
        Err(Error::UnknownKeyId { app: Application::C1222Data, key_id }) if key_id == old_id
    ));
    s.handle_timeout(t1 + GRACE);
    assert_eq!(
        drain(&mut s),
        vec![MeterKeyEvent {
            meter: 7,
            event: KeyEvent::Expired {
                generation: 1,
                cause: ExpiryCause::GraceEnded
            }
        }]
    );
    // Destroyed: gone through the API for every application, even at an earlier `now`.
    assert!(s
        .receiving_key(&7, Application::C1222Data, old_id, t1)
        .is_err());
    assert!(s.ring(&7).unwrap().previous().is_none());
    // The new generation is unaffected.
    let r = s
        .receiving_key(&7, Application::C1222Data, new_id, t1 + GRACE)
        .unwrap();
    assert!(*r.key == new_key);
    assert_eq!(s.poll_timeout(), Some(t1 + LIFETIME + GRACE));
}

#[test]
fn expiry_is_at_lifetime_plus_grace_and_destroys_the_ring() {
    let t0 = Instant::now();
    let mut s = store();
    let info = s
        .install_generation(7, &facts(1), &emsk(1), LIFETIME, t0)
        .unwrap();
    let end = t0 + LIFETIME + GRACE;
    assert_eq!(s.poll_timeout(), Some(end));
    let (id, _) = sending(&s, 7, Application::DemandResponse, t0);
    let before = end - Duration::from_millis(1);
    assert!(s
        .sending_key(&7, Application::DemandResponse, before)
        .is_ok());
    assert!(s
        .receiving_key(&7, Application::DemandResponse, id, before)
        .is_ok());
    assert!(matches!(
        s.sending_key(&7, Application::DemandResponse, end),
        Err(Error::NoCurrentKey(Application::DemandResponse))
    ));
    assert!(s
        .receiving_key(&7, Application::DemandResponse, id, end)
        .is_err());
    drain(&mut s);

    // Calling handle_timeout early does nothing.
    s.handle_timeout(before);
    assert!(drain(&mut s).is_empty());
    assert!(s.contains(&7));

    s.handle_timeout(end);
    assert_eq!(
        drain(&mut s),
        vec![MeterKeyEvent {
            meter: 7,
            event: KeyEvent::Expired {
                generation: info.generation,
                cause: ExpiryCause::LifetimeEnded
            }
        }]
    );
    assert!(!s.contains(&7));
    assert!(s.is_empty());
    assert_eq!(s.poll_timeout(), None);
    assert!(matches!(
        s.receiving_key(&7, Application::DemandResponse, id, t0),
        Err(Error::UnknownMeter)
    ));
    // Calling it again, or too often, is harmless.
    s.handle_timeout(end + secs(10));
    assert!(drain(&mut s).is_empty());
}

#[test]
fn previous_grace_never_outlives_its_own_expiry() {
    let t0 = Instant::now();
    let mut s = store();
    s.install_generation(7, &facts(1), &emsk(1), secs(60), t0)
        .unwrap();
    let (old_id, _) = sending(&s, 7, Application::LinkLayer, t0);
    // Re-authentication late, inside the old generation's grace: the old one may not be
    // accepted past t0 + 60 + GRACE even though t1 + GRACE is later.
    let t1 = t0 + secs(100);
    s.install_generation(7, &facts(2), &emsk(2), LIFETIME, t1)
        .unwrap();
    let (_, prev_until) = s.ring(&7).unwrap().previous().unwrap();
    assert_eq!(prev_until, t0 + secs(60) + GRACE);
    assert!(s
        .receiving_key(&7, Application::LinkLayer, old_id, t0 + secs(60) + GRACE)
        .is_err());
}

#[test]
fn install_after_expiry_reports_expired_then_installed_without_roll() {
    let t0 = Instant::now();
    let mut s = store();
    s.install_generation(7, &facts(1), &emsk(1), secs(60), t0)
        .unwrap();
    drain(&mut s);
    let late = t0 + secs(60) + GRACE + secs(1);
    let info = s
        .install_generation(7, &facts(2), &emsk(2), LIFETIME, late)
        .unwrap();
    let events: Vec<KeyEvent> = drain(&mut s).into_iter().map(|e| e.event).collect();
    assert_eq!(
        events,
        vec![
            KeyEvent::Expired {
                generation: 1,
                cause: ExpiryCause::LifetimeEnded
            },
            // The ring was empty, so numbering starts again.
            KeyEvent::Installed {
                generation: 1,
                key_ids: info.key_ids,
                expires_at: late + LIFETIME + GRACE
            },
        ]
    );
    assert!(s.ring(&7).unwrap().previous().is_none());
}

#[test]
fn third_generation_within_grace_supersedes_the_oldest() {
    let t0 = Instant::now();
    let mut s = store();
    s.install_generation(7, &facts(1), &emsk(1), LIFETIME, t0)
        .unwrap();
    let (id1, _) = sending(&s, 7, Application::C1222Data, t0);
    s.install_generation(7, &facts(2), &emsk(2), LIFETIME, t0 + secs(10))
        .unwrap();
    let (id2, k2) = sending(&s, 7, Application::C1222Data, t0 + secs(10));
    drain(&mut s);
    let t3 = t0 + secs(20);
    s.install_generation(7, &facts(3), &emsk(3), LIFETIME, t3)
        .unwrap();
    let (id3, _) = sending(&s, 7, Application::C1222Data, t3);
    let events: Vec<KeyEvent> = drain(&mut s).into_iter().map(|e| e.event).collect();
    assert_eq!(
        events.first(),
        Some(&KeyEvent::Expired {
            generation: 1,
            cause: ExpiryCause::Superseded
        })
    );
    assert_ne!(id3, id2);
    // Generation 2 is still accepted; generation 1 is gone unless its id is reused by gen 3.
    assert!(
        *s.receiving_key(&7, Application::C1222Data, id2, t3)
            .unwrap()
            .key
            == k2
    );
    if id1 != id3 {
        assert!(s
            .receiving_key(&7, Application::C1222Data, id1, t3)
            .is_err());
    }
    let r = s.ring(&7).unwrap();
    assert_eq!(r.current().unwrap().generation, 3);
    assert_eq!(r.previous().unwrap().0.generation, 2);
}

#[test]
fn key_id_of_new_generation_is_bumped_on_collision() {
    // Search a few key ids for an EMSK pair whose derived C12.22 ids collide, then check
    // the ring bumps the new one and that the head-end and meter rings agree on it.
    let t0 = Instant::now();
    let base = kdf::derive_key_id_bits(&emsk(1), &facts(1), Application::C1222Data).unwrap();
    let colliding = (2u32..10_000)
        .find(|&k| {
            kdf::derive_key_id_bits(&emsk(1), &facts(k), Application::C1222Data).unwrap() == base
        })
        .expect("a collision among 10000 six-bit values");
    let config = KeyConfig::new().with_grace(GRACE);
    let mut a = KeyRing::new(config);
    let mut b = KeyRing::new(config);
    for ring in [&mut a, &mut b] {
        ring.install_generation(&facts(1), &emsk(1), LIFETIME, t0)
            .unwrap();
        ring.install_generation(&facts(colliding), &emsk(1), LIFETIME, t0 + secs(5))
            .unwrap();
    }
    let first = KeyId::for_application(Application::C1222Data, base);
    let now = t0 + secs(5);
    let current = a.sending_key(Application::C1222Data, now).unwrap().key_id;
    assert_eq!(current, first.bumped());
    assert_eq!(
        b.sending_key(Application::C1222Data, now).unwrap().key_id,
        current
    );
    // Both generations stay reachable by their distinct ids.
    assert_eq!(
        a.receiving_key(Application::C1222Data, first, now)
            .unwrap()
            .generation,
        1
    );
    assert_eq!(
        a.receiving_key(Application::C1222Data, current, now)
            .unwrap()
            .generation,
        2
    );
}

#[test]
fn revocation_destroys_at_once() {
    let t0 = Instant::now();
    let mut s = store();
    s.install_generation(7, &facts(1), &emsk(1), LIFETIME, t0)
        .unwrap();
    s.install_generation(7, &facts(2), &emsk(2), LIFETIME, t0 + secs(10))
        .unwrap();
    s.install_generation(8, &facts(1), &emsk(9), LIFETIME, t0)
        .unwrap();
    let now = t0 + secs(11);
    let ring = s.ring(&7).unwrap();
    // key_ids[0] is the C12.22 data key id of a generation.
    let ids = [
        ring.previous().unwrap().0.key_ids[0].1,
        ring.current().unwrap().key_ids[0].1,
    ];
    drain(&mut s);

    assert!(s.revoke(&7, now));
    assert_eq!(
        drain(&mut s),
        vec![MeterKeyEvent {
            meter: 7,
            event: KeyEvent::Revoked {
                generations: vec![1, 2]
            }
        }]
    );
    for id in ids {
        assert!(matches!(
            s.receiving_key(&7, Application::C1222Data, id, now),
            Err(Error::UnknownMeter)
        ));
    }
    assert!(matches!(
        s.sending_key(&7, Application::C1222Data, now),
        Err(Error::UnknownMeter)
    ));
    // The other meter is untouched, and the timer queue now only holds meter 8.
    assert!(s.sending_key(&8, Application::C1222Data, now).is_ok());
    assert_eq!(s.len(), 1);
    assert_eq!(s.poll_timeout(), Some(t0 + LIFETIME + GRACE));
    // Revoking an unknown meter is a no-op.
    assert!(!s.revoke(&7, now));
    assert!(drain(&mut s).is_empty());
    // The meter can authenticate again later and starts a fresh ring.
    let info = s
        .install_generation(7, &facts(3), &emsk(3), LIFETIME, now)
        .unwrap();
    assert_eq!(info.generation, 1);
}

#[test]
fn poll_timeout_is_the_earliest_deadline_across_meters() {
    let t0 = Instant::now();
    let mut s = store();
    assert_eq!(s.poll_timeout(), None);
    s.install_generation(1, &facts(1), &emsk(1), secs(1000), t0)
        .unwrap();
    s.install_generation(2, &facts(1), &emsk(2), secs(500), t0)
        .unwrap();
    s.install_generation(3, &facts(1), &emsk(3), secs(800), t0)
        .unwrap();
    assert_eq!(s.poll_timeout(), Some(t0 + secs(500) + GRACE));
    // A rollover of meter 1 puts its grace end first.
    s.install_generation(1, &facts(2), &emsk(4), secs(1000), t0 + secs(10))
        .unwrap();
    assert_eq!(s.poll_timeout(), Some(t0 + secs(10) + GRACE));
    // Drive the virtual clock from deadline to deadline, as a driver would.
    let mut seen = Vec::new();
    while let Some(t) = s.poll_timeout() {
        s.handle_timeout(t);
        for e in std::iter::from_fn(|| s.poll_event()) {
            if let KeyEvent::Expired { generation, cause } = e.event {
                seen.push((t.duration_since(t0).as_secs(), e.meter, generation, cause));
            }
        }
    }
    let g = GRACE.as_secs();
    assert_eq!(
        seen,
        vec![
            (10 + g, 1, 1, ExpiryCause::GraceEnded),
            (500 + g, 2, 1, ExpiryCause::LifetimeEnded),
            (800 + g, 3, 1, ExpiryCause::LifetimeEnded),
            (1010 + g, 1, 2, ExpiryCause::LifetimeEnded),
        ]
    );
    assert!(s.is_empty());
}

#[test]
fn invalid_installs_leave_the_store_unchanged() {
    let t0 = Instant::now();
    let mut s = store();
    s.install_generation(7, &facts(1), &emsk(1), LIFETIME, t0)
        .unwrap();
    drain(&mut s);
    let (id, key) = sending(&s, 7, Application::C1222Data, t0);
    assert!(matches!(
        s.install_generation(7, &facts(2), &emsk(2), Duration::ZERO, t0),
        Err(Error::InvalidLifetime)
    ));
    assert!(matches!(
        s.install_generation(7, &facts(2), &emsk(2), Duration::MAX, t0),
        Err(Error::InvalidLifetime)
    ));
    assert!(matches!(
        s.install_generation(7, &facts(2), &[0u8; 32], LIFETIME, t0),
        Err(Error::EmskTooShort(32))
    ));
    assert!(drain(&mut s).is_empty());
    let (id2, key2) = sending(&s, 7, Application::C1222Data, t0);
    assert_eq!(id, id2);
    assert!(key == key2);
    assert_eq!(s.ring(&7).unwrap().current().unwrap().generation, 1);
    // A failed first install does not leave an empty ring behind.
    assert!(s
        .install_generation(9, &facts(1), &[0u8; 8], LIFETIME, t0)
        .is_err());
    assert!(!s.contains(&9));
    assert_eq!(s.len(), 1);
}

#[test]
fn key_ref_debug_does_not_print_the_key() {
    let t0 = Instant::now();
    let mut ring = KeyRing::default();
    ring.install_generation(&facts(1), &emsk(1), LIFETIME, t0)
        .unwrap();
    let k = ring.sending_key(Application::C1222Data, t0).unwrap();
    let text = format!("{k:?} {ring:?}");
    let hex_key: String = k
        .key
        .as_bytes()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    assert!(!text.contains(&hex_key));
    assert!(!text.contains(&format!("{:?}", k.key.as_bytes())));
    assert!(text.contains("redacted"));
}
