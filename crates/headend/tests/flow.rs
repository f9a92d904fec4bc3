//! Sans-IO host and meter link against each other with keys from a real EAP-PSK exchange:
//! registration, interval writes, host reads, demand response, every refusal typed and
//! counted, and the key lifecycle (rollover, grace, expiry, revocation) in virtual time.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

mod common;

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use common::*;
use gridguard_c1222::{
    Epsem, EpsemControl, Request, ResponseCode, ResponseControl, SecurityMode, Service, TableId,
};
use gridguard_headend::{HostEvent, LinkError, MemoryTables, MeterEvent, Refusal, RefusalKind};
use gridguard_keys::{Application, KeyId};

fn from() -> SocketAddr {
    "192.0.2.77:50077".parse().unwrap()
}

fn drain(h: &mut gridguard_headend::C1222Host<rand::rngs::StdRng>) -> Vec<HostEvent> {
    std::iter::from_fn(|| h.poll_event()).collect()
}

fn data_events(events: &[HostEvent]) -> Vec<&HostEvent> {
    events
        .iter()
        .filter(|e| !matches!(e, HostEvent::Keys(_)))
        .collect()
}

fn tables() -> MemoryTables {
    let mut t = MemoryTables::default();
    t.tables.insert(1, b"GRIDGUARD-METER-0077".to_vec());
    t.tables.insert(2049, vec![0; 4]);
    t
}

/// A host and a meter with keys from EAP-PSK, the meter registered.
fn registered(
    seed: u64,
    now: Instant,
) -> (
    gridguard_headend::C1222Host<rand::rngs::StdRng>,
    gridguard_headend::MeterLink<rand::rngs::StdRng>,
    MemoryTables,
) {
    let (mut h, mut m) = pair(seed, now);
    let mut t = tables();
    let reg = m.registration(now).unwrap();
    let reply = h.handle_apdu(from(), &reg.bytes, now).unwrap();
    m.handle_apdu(&reply.bytes.unwrap(), now, &mut t).unwrap();
    (h, m, t)
}

fn read_request(table: u16) -> Epsem {
    Epsem {
        control: EpsemControl::new(SecurityMode::CIPHERTEXT_AUTH, ResponseControl::ALWAYS),
        ed_class: None,
        services: vec![Service::Request(Request::FullRead {
            table: TableId(table),
        })],
        end_marker: false,
    }
}

fn dr_write(data: &[u8]) -> Epsem {
    Epsem {
        control: EpsemControl::new(SecurityMode::CIPHERTEXT_AUTH, ResponseControl::ALWAYS),
        ed_class: None,
        services: vec![Service::Request(Request::FullWrite {
            table: TableId(2049),
            data: data.to_vec(),
        })],
        end_marker: false,
    }
}

#[test]
fn eap_psk_keys_register_write_read_and_demand_response() {
    let t0 = Instant::now();
    let (mut h, mut m) = pair(11, t0);
    let mut t = tables();
    drain(&mut h);

    // Registration.
    let reg = m.registration(t0).unwrap();
    let reply = h.handle_apdu(from(), &reg.bytes, t0).unwrap();
    assert_eq!(reply.meter, meter_title());
    assert_eq!(reply.to, from());
    assert_eq!(h.native_address(&meter_title()), Some(&[10, 0, 0, 77][..]));
    assert_eq!(
        data_events(&drain(&mut h)),
        vec![&HostEvent::Registered {
            meter: meter_title(),
            native_address: vec![10, 0, 0, 77],
            from: from(),
        }]
    );
    assert_eq!(
        m.handle_apdu(&reply.bytes.unwrap(), t0, &mut t).unwrap(),
        None
    );
    match m.poll_event() {
        Some(MeterEvent::Response {
            invocation,
            responses,
            ..
        }) => {
            assert_eq!(invocation, reg.invocation);
            assert_eq!(responses.len(), 1);
            assert_eq!(responses[0].code, ResponseCode::OK);
        }
        other => panic!("{other:?}"),
    }

    // Interval data, three writes.
    for i in 0..3u8 {
        let now = t0 + Duration::from_secs(900 * u64::from(i));
        let data: Vec<u8> = (0..96).map(|k| k ^ i).collect();
        let w = m.write_intervals(64, &data, now).unwrap();
        let reply = h.handle_apdu(from(), &w.bytes, now).unwrap();
        assert_eq!(
            data_events(&drain(&mut h)),
            vec![&HostEvent::Intervals {
                meter: meter_title(),
                table: 64,
                data
            }]
        );
        m.handle_apdu(&reply.bytes.unwrap(), now, &mut t).unwrap();
        match m.poll_event() {
            Some(MeterEvent::Response {
                invocation,
                responses,
                ..
            }) => {
                assert_eq!(invocation, w.invocation);
                assert_eq!(responses[0].code, ResponseCode::OK);
            }
            other => panic!("{other:?}"),
        }
    }

    // A host-originated read.
    let q = h.request(&meter_title(), &read_request(1), t0).unwrap();
    let answer = m.handle_apdu(&q, t0, &mut t).unwrap().unwrap();
    assert!(matches!(m.poll_event(), Some(MeterEvent::Request { .. })));
    let reply = h.handle_apdu(from(), &answer, t0).unwrap();
    assert_eq!(reply.bytes, None, "responses are not answered");
    match data_events(&drain(&mut h))[..] {
        [HostEvent::Response {
            table, code, data, ..
        }] => {
            assert_eq!(*table, Some(1));
            assert_eq!(*code, ResponseCode::OK);
            assert_eq!(data, b"GRIDGUARD-METER-0077");
        }
        ref other => panic!("{other:?}"),
    }

    // A demand-response write, under the demand-response key.
    let dr = h
        .demand_response(&meter_title(), &dr_write(&[1, 2, 3, 4]), t0)
        .unwrap();
    let answer = m.handle_apdu(&dr, t0, &mut t).unwrap().unwrap();
    match m.poll_event() {
        Some(MeterEvent::Request { key_id, requests }) => {
            assert_eq!(
                KeyId(key_id).application(),
                Some(Application::DemandResponse)
            );
            assert_eq!(requests.len(), 1);
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(t.tables[&2049], vec![1, 2, 3, 4]);
    h.handle_apdu(from(), &answer, t0).unwrap();
    assert!(matches!(
        data_events(&drain(&mut h))[..],
        [HostEvent::Response {
            code: ResponseCode::OK,
            table: None,
            ..
        }]
    ));

    let s = h.stats();
    assert_eq!((s.accepted, s.registrations, s.interval_writes), (6, 1, 3));
    assert_eq!((s.responses, s.requests_sent, s.total_refused()), (2, 2, 0));
}

#[test]
fn write_before_registration_is_answered_isss_and_not_ingested() {
    let t0 = Instant::now();
    let (mut h, mut m) = pair(12, t0);
    drain(&mut h);
    let w = m.write_intervals(64, &[1, 2, 3], t0).unwrap();
    let reply = h.handle_apdu(from(), &w.bytes, t0).unwrap();
    assert!(data_events(&drain(&mut h)).is_empty());
    m.handle_apdu(&reply.bytes.unwrap(), t0, &mut tables())
        .unwrap();
    match m.poll_event() {
        Some(MeterEvent::Response { responses, .. }) => {
            assert_eq!(responses[0].code, ResponseCode::ISSS)
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn writes_while_the_ingest_is_busy_are_answered_bsy_but_never_twice_in_a_row() {
    let t0 = Instant::now();
    let (mut h, mut m, mut t) = registered(13, t0);
    drain(&mut h);
    while m.poll_event().is_some() {}

    let mut write = |h: &mut gridguard_headend::C1222Host<rand::rngs::StdRng>, data: &[u8]| {
        let w = m.write_intervals(64, data, t0).unwrap();
        let reply = h.handle_apdu(from(), &w.bytes, t0).unwrap();
        m.handle_apdu(&reply.bytes.unwrap(), t0, &mut t).unwrap();
        match m.poll_event() {
            Some(MeterEvent::Response {
                invocation,
                responses,
                ..
            }) => {
                assert_eq!(invocation, w.invocation);
                responses[0].code
            }
            other => panic!("{other:?}"),
        }
    };
    let taken = |h: &mut gridguard_headend::C1222Host<rand::rngs::StdRng>, data: &[u8]| {
        assert_eq!(
            data_events(&drain(h)),
            vec![&HostEvent::Intervals {
                meter: meter_title(),
                table: 64,
                data: data.to_vec()
            }]
        );
    };
    h.set_ingest_busy(true);
    assert_eq!(write(&mut h, &[1, 2, 3]), ResponseCode::BSY);
    assert!(data_events(&drain(&mut h)).is_empty());
    // Turned away once, taken the next time even while busy: no meter is starved.
    assert_eq!(write(&mut h, &[1, 2, 3, 4]), ResponseCode::OK);
    taken(&mut h, &[1, 2, 3, 4]);
    assert_eq!(write(&mut h, &[5]), ResponseCode::BSY);
    h.set_ingest_busy(false);
    assert_eq!(write(&mut h, &[5, 6]), ResponseCode::OK);
    taken(&mut h, &[5, 6]);
    assert_eq!(write(&mut h, &[7]), ResponseCode::OK);
    taken(&mut h, &[7]);
    let s = h.stats();
    assert_eq!((s.interval_writes, s.busy_writes), (3, 2));
}

fn refused_kinds(h: &mut gridguard_headend::C1222Host<rand::rngs::StdRng>) -> Vec<RefusalKind> {
    drain(h)
        .into_iter()
        .filter_map(|e| match e {
            HostEvent::Refused { kind, .. } => Some(kind),
            _ => None,
        })
        .collect()
}

#[test]
fn refusals_are_typed_counted_and_leave_state_alone() {
    let t0 = Instant::now();
    let (mut h, mut m) = pair(13, t0);
    let reg = m.registration(t0).unwrap();

    // No session: a host that never installed this meter's keys.
    let mut stranger = host(99);
    assert_eq!(
        stranger.handle_apdu(from(), &reg.bytes, t0),
        Err(Refusal::NoSession {
            meter: meter_title()
        })
    );
    assert_eq!(stranger.stats().refused(RefusalKind::NoSession), 1);
    assert_eq!(refused_kinds(&mut stranger), vec![RefusalKind::NoSession]);

    // Bad MAC: one byte of ciphertext flipped. Then the genuine message still passes.
    let mut flipped = reg.bytes.clone();
    let n = flipped.len();
    flipped[n - 6] ^= 0x01;
    assert_eq!(
        h.handle_apdu(from(), &flipped, t0),
        Err(Refusal::BadMac {
            meter: meter_title()
        })
    );
    assert_eq!(h.native_address(&meter_title()), None);
    h.handle_apdu(from(), &reg.bytes, t0).unwrap();

    // Replay.
    assert_eq!(
        h.handle_apdu(from(), &reg.bytes, t0),
        Err(Refusal::Replay {
            meter: meter_title()
        })
    );

    // Not addressed to us, malformed, cleartext.
    let mut other = gridguard_headend::MeterLink::new(
        gridguard_headend::MeterLinkConfig::new(meter_title(), meter_title(), vec![1]),
        <rand::rngs::StdRng as rand::SeedableRng>::seed_from_u64(5),
    );
    let (server, _) = eap_psk(13);
    other
        .install_session(&facts(1), server.emsk(), LIFETIME, t0)
        .unwrap();
    let misaddressed = other.registration(t0).unwrap();
    assert_eq!(
        h.handle_apdu(from(), &misaddressed.bytes, t0),
        Err(Refusal::NotForUs)
    );
    assert!(matches!(
        h.handle_apdu(from(), &reg.bytes[..reg.bytes.len() - 1], t0),
        Err(Refusal::Malformed(_))
    ));
    let (_, client) = eap_psk(13);
    let mut clear_m_cfg =
        gridguard_headend::MeterLinkConfig::new(meter_title(), host_title(), vec![1]);
    clear_m_cfg = clear_m_cfg.with_security_mode(SecurityMode::CLEARTEXT);
    let mut clear = gridguard_headend::MeterLink::new(
        clear_m_cfg,
        <rand::rngs::StdRng as rand::SeedableRng>::seed_from_u64(6),
    );
    clear
        .install_session(&facts(1), client.emsk(), LIFETIME, t0)
        .unwrap();
    let c = clear.write_intervals(64, &[9], t0).unwrap();
    assert_eq!(
        h.handle_apdu(from(), &c.bytes, t0),
        Err(Refusal::BelowPolicy {
            meter: meter_title(),
            mode: 0
        })
    );

    // Revoked: refused at once, even a message sealed before the revocation.
    let w = m.write_intervals(64, &[7; 8], t0).unwrap();
    assert!(h.revoke(&meter_title(), t0));
    assert_eq!(
        h.handle_apdu(from(), &w.bytes, t0),
        Err(Refusal::Revoked {
            meter: meter_title()
        })
    );
    assert!(h.request(&meter_title(), &read_request(1), t0).is_err());

    let s = h.stats().clone();
    assert_eq!(s.accepted, 1);
    for (kind, n) in [
        (RefusalKind::BadMac, 1),
        (RefusalKind::Replay, 1),
        (RefusalKind::NotForUs, 1),
        (RefusalKind::Malformed, 1),
        (RefusalKind::BelowPolicy, 1),
        (RefusalKind::Revoked, 1),
    ] {
        assert_eq!(s.refused(kind), n, "{kind:?}");
    }
    assert_eq!(s.total_refused(), 6);
    assert_eq!(
        refused_kinds(&mut h),
        vec![
            RefusalKind::BadMac,
            RefusalKind::Replay,
            RefusalKind::NotForUs,
            RefusalKind::Malformed,
            RefusalKind::BelowPolicy,
            RefusalKind::Revoked
        ]
    );
}

#[test]
fn expired_session_is_refused() {
    let t0 = Instant::now();
    let (mut h, mut m) = pair(14, t0);
    let reg = m.registration(t0).unwrap();
    h.handle_apdu(from(), &reg.bytes, t0).unwrap();
    let end = t0 + LIFETIME + GRACE;
    let w = m
        .write_intervals(64, &[1; 4], end - Duration::from_secs(1))
        .unwrap();
    assert_eq!(
        h.poll_timeout(),
        Some(end),
        "key expiry comes before the replay window"
    );
    h.handle_timeout(end);
    assert!(
        !h.keys().contains(&meter_title()),
        "keys destroyed at expiry"
    );
    assert_eq!(
        h.handle_apdu(from(), &w.bytes, end),
        Err(Refusal::SessionExpired {
            meter: meter_title()
        })
    );
    assert!(
        m.write_intervals(64, &[1], end).is_err(),
        "meter cannot send either"
    );
    assert_eq!(h.stats().refused(RefusalKind::SessionExpired), 1);
}

#[test]
fn reauthentication_rolls_keys_and_previous_generation_has_a_grace() {
    let t0 = Instant::now();
    let (mut h, mut m, mut t) = registered(15, t0);
    let gen1_id = m.ring().current().unwrap().key_ids[0].1;

    // Messages sealed under generation 1, delivered later.
    let t1 = t0 + Duration::from_secs(3000);
    let early = m.write_intervals(64, &[1; 4], t1).unwrap();
    let late = m.write_intervals(64, &[2; 4], t1).unwrap();
    let host_old = h.request(&meter_title(), &read_request(1), t1).unwrap();

    // Re-authentication: a fresh EAP-PSK run, installed on both sides.
    let (server, client) = eap_psk(1015);
    let g2 = h
        .install_session(meter_title(), &facts(2), server.emsk(), LIFETIME, t1)
        .unwrap();
    m.install_session(&facts(2), client.emsk(), LIFETIME, t1)
        .unwrap();
    let gen2_id = m.ring().current().unwrap().key_ids[0].1;
    assert_ne!(gen1_id, gen2_id);
    assert_eq!(
        g2.key_ids[0].1, gen2_id,
        "both sides derive the same key id"
    );

    // New messages use generation 2 on both sides.
    let now = t1 + Duration::from_secs(10);
    let w = m.write_intervals(64, &[3; 4], now).unwrap();
    let reply = h.handle_apdu(from(), &w.bytes, now).unwrap().bytes.unwrap();
    let reply_apdu = gridguard_c1222::AcseApdu::parse(&reply).unwrap();
    assert_eq!(reply_apdu.key_id_and_iv().0, Some(gen2_id.value()));
    m.handle_apdu(&reply, now, &mut t).unwrap();

    // Generation 1 is accepted inside the grace ...
    let inside = t1 + GRACE - Duration::from_secs(1);
    h.handle_apdu(from(), &early.bytes, inside).unwrap();
    m.handle_apdu(&host_old, inside, &mut t).unwrap();
    // ... and refused after it, on both sides.
    let after = t1 + GRACE;
    h.handle_timeout(after);
    assert_eq!(
        h.handle_apdu(from(), &late.bytes, after),
        Err(Refusal::KeyExpired {
            meter: meter_title(),
            key_id: gen1_id.value()
        })
    );
    // The host's generation-1 request (already used inside the grace) is now refused by key id
    // before the replay check is even reached.
    assert!(matches!(
        m.handle_apdu(&host_old, after, &mut t),
        Err(LinkError::UnknownKey { key_id }) if key_id == gen1_id.value()
    ));
    assert_eq!(h.stats().refused(RefusalKind::KeyExpired), 1);
}

#[test]
fn meter_refuses_bad_mac_replay_and_foreign_keys() {
    let t0 = Instant::now();
    let (mut h, mut m) = pair(16, t0);
    let mut t = tables();
    let q = h.request(&meter_title(), &read_request(1), t0).unwrap();
    let mut bad = q.clone();
    let n = bad.len();
    bad[n - 1] ^= 0x80;
    assert!(matches!(
        m.handle_apdu(&bad, t0, &mut t),
        Err(LinkError::BadMac)
    ));
    assert!(m.handle_apdu(&q, t0, &mut t).unwrap().is_some());
    assert!(matches!(
        m.handle_apdu(&q, t0, &mut t),
        Err(LinkError::Replay)
    ));

    // A host holding another EAP session's keys.
    let (other_server, _) = eap_psk(2016);
    let mut h2 = host(3);
    h2.install_session(meter_title(), &facts(1), other_server.emsk(), LIFETIME, t0)
        .unwrap();
    let q2 = h2.request(&meter_title(), &read_request(1), t0).unwrap();
    assert!(matches!(
        m.handle_apdu(&q2, t0, &mut t),
        Err(LinkError::BadMac | LinkError::UnknownKey { .. })
    ));
    m.revoke(t0);
    let q3 = h.request(&meter_title(), &read_request(1), t0).unwrap();
    assert!(matches!(
        m.handle_apdu(&q3, t0, &mut t),
        Err(LinkError::NoSession)
    ));
}

#[test]
fn registration_naming_another_title_is_answered_iar_and_not_recorded() {
    use gridguard_c1222::epsem::Registration;
    use gridguard_c1222::security::{Association, AssociationConfig};
    use gridguard_c1222::{AcseApdu, ApTitle, Integer};

    let t0 = Instant::now();
    let (mut h, mut m) = pair(17, t0);
    // Seal by hand, with the meter's real key, a registration that names another AP title.
    let key = m.ring().sending_key(Application::C1222Data, t0).unwrap();
    let (key_id, key_bytes) = (key.key_id.value(), *key.key.as_bytes());
    let mut assoc = Association::new(AssociationConfig::default(), move |_: &ApTitle, id: u8| {
        (id == key_id).then(|| zeroize::Zeroizing::new(key_bytes))
    });
    let epsem = Epsem {
        control: EpsemControl::new(SecurityMode::CIPHERTEXT_AUTH, ResponseControl::ALWAYS),
        ed_class: None,
        services: vec![Service::Request(Request::Registration(Registration {
            node_type: 0,
            connection_type: 0,
            device_class: *b"GGRD",
            ap_title: host_title(),
            electronic_serial_number: host_title(),
            native_address: vec![6, 6],
            registration_period: 0,
            my_domain_pattern: None,
        }))],
        end_marker: false,
    };
    let mut apdu = AcseApdu::new(epsem.to_bytes().unwrap());
    apdu.called_ap_title = Some(host_title());
    apdu.calling_ap_title = Some(meter_title());
    apdu.calling_ap_invocation_id = Some(Integer::from_u32(900));
    let mut rng = <rand::rngs::StdRng as rand::SeedableRng>::seed_from_u64(9);
    let bytes = assoc.seal(apdu, key_id, &mut rng).unwrap();

    let reply = h.handle_apdu(from(), &bytes, t0).unwrap();
    assert_eq!(h.native_address(&meter_title()), None);
    assert_eq!(h.stats().registrations, 0);
    m.handle_apdu(&reply.bytes.unwrap(), t0, &mut tables())
        .unwrap();
    match m.poll_event() {
        Some(MeterEvent::Response { responses, .. }) => {
            assert_eq!(responses[0].code, ResponseCode::IAR)
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn forget_drops_the_meter() {
    let t0 = Instant::now();
    let (mut h, mut m) = pair(18, t0);
    let reg = m.registration(t0).unwrap();
    h.handle_apdu(from(), &reg.bytes, t0).unwrap();
    assert_eq!(h.native_address(&meter_title()), Some(&[10, 0, 0, 77][..]));
    assert!(h.forget(&meter_title(), t0));
    assert_eq!(h.native_address(&meter_title()), None);
    assert!(!h.keys().contains(&meter_title()));
    let w = m.write_intervals(64, &[1], t0).unwrap();
    assert_eq!(
        h.handle_apdu(from(), &w.bytes, t0),
        Err(Refusal::NoSession {
            meter: meter_title()
        })
    );
}

#[test]
fn replay_is_refused_for_as_long_as_the_key_lives() {
    let t0 = Instant::now();
    let (mut h, mut m) = pair(19, t0);
    let reg = m.registration(t0).unwrap();
    h.handle_apdu(from(), &reg.bytes, t0).unwrap();
    let w = m.write_intervals(64, &[4; 8], t0).unwrap();
    h.handle_apdu(from(), &w.bytes, t0).unwrap();
    // Long after a 5-minute window, still under the same live key.
    for later in [600, 1800, 3600 + 299] {
        let now = t0 + Duration::from_secs(later);
        h.handle_timeout(now);
        assert_eq!(
            h.handle_apdu(from(), &w.bytes, now),
            Err(Refusal::Replay {
                meter: meter_title()
            }),
            "at +{later}s"
        );
    }
}

#[test]
fn sessions_whose_keys_outlive_the_replay_window_are_refused() {
    let t0 = Instant::now();
    let (server, client) = eap_psk(20);
    let mut h = host(20);
    let too_long = Duration::from_secs(25 * 3600);
    assert!(matches!(
        h.install_session(meter_title(), &facts(1), server.emsk(), too_long, t0),
        Err(gridguard_headend::HostError::LifetimeBeyondReplayWindow { .. })
    ));
    assert!(!h.keys().contains(&meter_title()));
    let mut m = meter(20);
    assert!(matches!(
        m.install_session(&facts(1), client.emsk(), too_long, t0),
        Err(LinkError::LifetimeBeyondReplayWindow { .. })
    ));
    assert!(m.ring().is_empty());
    // 24 hours plus the grace fits.
    h.install_session(
        meter_title(),
        &facts(1),
        server.emsk(),
        Duration::from_secs(24 * 3600),
        t0,
    )
    .unwrap();
}

#[test]
fn expired_replay_entries_of_idle_meters_are_forgotten_a_slice_at_a_time() {
    use gridguard_c1222::{ApTitle, ObjectId};
    use gridguard_headend::{C1222Host, HostConfig, MeterLink, MeterLinkConfig};
    use rand::SeedableRng;
    let t0 = Instant::now();
    let mut config = HostConfig::new(host_title()).with_grace(GRACE);
    config.replay_sweep_per_call = 2;
    let mut h = C1222Host::new(config, rand::rngs::StdRng::seed_from_u64(30));
    for i in 0..5u64 {
        let title = ApTitle::Absolute(
            ObjectId::from_arcs(&[2, 16, 124, 113620, 1, 22, 0, 100 + i]).unwrap(),
        );
        let (server, client) = eap_psk(30 + i);
        h.install_session(title.clone(), &facts(1), server.emsk(), LIFETIME, t0)
            .unwrap();
        let mut m = MeterLink::new(
            MeterLinkConfig::new(title, host_title(), vec![10, 0, 0, 1]).with_grace(GRACE),
            rand::rngs::StdRng::seed_from_u64(40 + i),
        );
        m.install_session(&facts(1), client.emsk(), LIFETIME, t0)
            .unwrap();
        let reg = m.registration(t0).unwrap();
        h.handle_apdu(from(), &reg.bytes, t0).unwrap();
    }
    let tracked = h.replay_entries();
    assert!(tracked >= 5, "{tracked}");
    let after_window = t0 + gridguard_headend::DEFAULT_REPLAY_WINDOW + Duration::from_secs(1);
    let mut left = vec![tracked];
    for _ in 0..3 {
        h.handle_timeout(after_window);
        left.push(h.replay_entries());
    }
    let per_meter = tracked / 5;
    assert_eq!(
        left,
        vec![tracked, 3 * per_meter, per_meter, 0],
        "two meters a call"
    );
}
