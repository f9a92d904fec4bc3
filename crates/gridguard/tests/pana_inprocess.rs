//! The PANA drivers end to end in one process over loopback UDP: `serve`'s PAA with the local
//! EAP-PSK server against `run_meter` PaCs and the simulator.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use gridguard::pana_paa::{
    bind_udp, serve, BackendConfig, PaaAction, PaaOptions, ServeEvent, ServeReport,
};
use gridguard::pana_pac::{run_meter, MeterAction, MeterEvent, MeterOptions};
use gridguard::simulate::{simulate, SimulateOptions};
use gridguard_eap::{MemoryCredentials, Psk};
use gridguard_pana::{FailReason, PaaConfig};
use tokio::sync::oneshot;

fn psk_of(i: usize) -> Psk {
    let mut k = [0u8; 16];
    k[0] = i as u8;
    k[15] = 0xa5;
    Psk::new(k)
}

struct Head {
    addr: SocketAddr,
    events: Arc<Mutex<Vec<ServeEvent>>>,
    stop: oneshot::Sender<()>,
    task: tokio::task::JoinHandle<anyhow::Result<ServeReport>>,
}

impl Head {
    async fn start(meters: usize, actions: Vec<(Duration, PaaAction)>) -> Head {
        Self::start_with(meters, actions, PaaConfig::default()).await
    }

    async fn start_with(
        meters: usize,
        actions: Vec<(Duration, PaaAction)>,
        config: PaaConfig,
    ) -> Head {
        let mut table = MemoryCredentials::new();
        for i in 0..meters {
            table.insert(format!("meter{i}").into_bytes(), psk_of(i));
        }
        let socket = bind_udp("127.0.0.1:0".parse().unwrap(), 1 << 20).unwrap();
        let addr = socket.local_addr().unwrap();
        let events = Arc::new(Mutex::new(Vec::new()));
        let sink = events.clone();
        let (stop, stopped) = oneshot::channel::<()>();
        let options = PaaOptions {
            config,
            backend: BackendConfig::Local {
                server_id: b"gridguard-test".to_vec(),
                credentials: Arc::new(table),
            },
            actions,
        };
        let task = tokio::spawn(serve(
            socket,
            options,
            move |e| sink.lock().unwrap().push(e.clone()),
            async move {
                let _ = stopped.await;
            },
        ));
        Head {
            addr,
            events,
            stop,
            task,
        }
    }

    /// Waits (at most five seconds) until the PAA reported an event matching `pred`.
    async fn wait_for(&self, pred: impl Fn(&ServeEvent) -> bool) {
        self.wait_for_n(pred, 1).await;
    }

    /// Waits (at most five seconds) until the PAA reported `n` events matching `pred`.
    async fn wait_for_n(&self, pred: impl Fn(&ServeEvent) -> bool, n: usize) {
        for _ in 0..500 {
            if self
                .events
                .lock()
                .unwrap()
                .iter()
                .filter(|e| pred(e))
                .count()
                >= n
            {
                return;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        panic!("the PAA never reported the expected event");
    }

    async fn finish(self) -> (ServeReport, Vec<ServeEvent>) {
        let _ = self.stop.send(());
        let report = self.task.await.unwrap().unwrap();
        let events = std::mem::take(&mut *self.events.lock().unwrap());
        (report, events)
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn meters_establish_and_both_sides_agree_on_key_ids() {
    const N: usize = 20;
    let head = Head::start(N, Vec::new()).await;
    let mut tasks = Vec::new();
    for i in 0..N {
        let paa = head.addr;
        tasks.push(tokio::spawn(async move {
            let mut options = MeterOptions::new(paa, Duration::from_secs(10));
            options.once = true;
            options.pac.restart_on_loss = false;
            let mut got = Vec::new();
            let summary = run_meter(
                format!("meter{i}").as_bytes(),
                psk_of(i),
                options,
                |e| {
                    if let MeterEvent::Established {
                        session_id,
                        key_id,
                        msk,
                        lifetime,
                        keys,
                    } = e
                    {
                        let eap_keys = keys.as_ref().expect("EAP keys with the session");
                        assert!(eap_keys.msk_eq(msk.as_bytes()), "PANA MSK is EAP's MSK");
                        got.push((*session_id, *key_id, msk.as_bytes().len(), *lifetime));
                    }
                },
                std::future::pending(),
            )
            .await
            .unwrap();
            (i, summary, got)
        }));
    }
    let mut pac_side: HashMap<u32, (usize, u32)> = HashMap::new();
    for t in tasks {
        let (i, summary, got) = tokio::time::timeout(Duration::from_secs(30), t)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(summary.established, 1, "meter{i}");
        assert_eq!(summary.failed, 0, "meter{i}");
        let (sid, key_id, msk_len, lifetime) = got[0];
        assert_eq!(msk_len, 64, "EAP-PSK MSK is 64 bytes");
        assert_eq!(lifetime, Some(Duration::from_secs(3600)));
        pac_side.insert(sid, (i, key_id));
    }
    // A meter is done once its PAN with C left; the PAA counts it when that arrives.
    head.wait_for_n(|e| matches!(e, ServeEvent::Established { .. }), N)
        .await;
    let (report, events) = head.finish().await;
    assert_eq!(report.established, N as u64);
    assert_eq!(report.failed, 0);
    assert_eq!(report.sessions, N);
    // Every AUTH AVP the PAA received verified (a bad one is dropped and counted).
    assert_eq!(report.stats.auth_failures, 0);
    assert_eq!(report.stats.malformed, 0);
    let mut seen = 0;
    for e in events {
        if let ServeEvent::Established {
            session,
            key_id,
            identity,
            ..
        } = e
        {
            let (i, pac_key) = pac_side[&session];
            assert_eq!(key_id, pac_key, "Key-Id of session {session:#x}");
            assert_eq!(identity.unwrap(), format!("meter{i}").into_bytes());
            seen += 1;
        }
    }
    assert_eq!(seen, N);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_psk_fails_with_a_reason_on_both_sides() {
    let head = Head::start(1, Vec::new()).await;
    let mut options = MeterOptions::new(head.addr, Duration::from_secs(10));
    options.once = true;
    options.pac.restart_on_loss = false;
    let mut failure = None;
    let summary = tokio::time::timeout(
        Duration::from_secs(20),
        run_meter(
            b"meter0",
            psk_of(99),
            options,
            |e| {
                if let MeterEvent::Failed { reason, eap } = e {
                    failure = Some((*reason, eap.clone()));
                }
            },
            std::future::pending(),
        ),
    )
    .await
    .unwrap()
    .unwrap();
    assert_eq!(summary.established, 0);
    assert_eq!(summary.failed, 1);
    let (reason, eap) = failure.unwrap();
    assert_eq!(reason, FailReason::AuthenticationRejected);
    let eap = eap.expect("the EAP peer's reason");
    assert!(eap.contains("MAC_P"), "{eap}");
    head.wait_for(|e| matches!(e, ServeEvent::Failed { .. }))
        .await;
    let (report, events) = head.finish().await;
    assert_eq!(report.failed, 1);
    assert_eq!(report.established, 0);
    assert_eq!(report.sessions, 0, "a failed session is not kept");
    let paa_reason = events
        .iter()
        .find_map(|e| match e {
            ServeEvent::Failed { reason, eap, .. } => Some((*reason, eap.clone())),
            _ => None,
        })
        .unwrap();
    assert_eq!(paa_reason.0, FailReason::AuthenticationRejected);
    assert!(paa_reason.1.unwrap().contains("MAC_P"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn meter_pings_reauthenticates_and_terminates() {
    let head = Head::start(1, Vec::new()).await;
    let actions = vec![
        (Duration::from_millis(100), MeterAction::Ping),
        (Duration::from_millis(300), MeterAction::Reauthenticate),
        (Duration::from_millis(800), MeterAction::Terminate),
    ];
    let mut keys = Vec::new();
    let mut options = MeterOptions::new(head.addr, Duration::from_secs(10));
    options.once = true;
    options.pac.restart_on_loss = false;
    options.actions = actions;
    let summary = tokio::time::timeout(
        Duration::from_secs(20),
        run_meter(
            b"meter0",
            psk_of(0),
            options,
            |e| match e {
                MeterEvent::Established { key_id, msk, .. }
                | MeterEvent::Reauthenticated { key_id, msk, .. } => {
                    keys.push((*key_id, msk.clone()))
                }
                _ => {}
            },
            std::future::pending(),
        ),
    )
    .await
    .unwrap()
    .unwrap();
    assert_eq!(summary.established, 1);
    assert_eq!(summary.pings, 1);
    assert_eq!(summary.reauthenticated, 1);
    assert!(summary.terminated);
    assert_eq!(keys.len(), 2);
    assert_ne!(
        keys[0].0, keys[1].0,
        "a re-authentication brings a new Key-Id"
    );
    assert_ne!(keys[0].1, keys[1].1, "and a new MSK");
    head.wait_for(|e| matches!(e, ServeEvent::Terminated { .. }))
        .await;
    let (report, events) = head.finish().await;
    assert_eq!(report.reauthenticated, 1);
    assert_eq!(report.terminated, 1);
    assert_eq!(report.sessions, 0);
    assert_eq!(report.stats.auth_failures, 0);
    let reauth_key = events.iter().find_map(|e| match e {
        ServeEvent::Reauthenticated { key_id, .. } => Some(*key_id),
        _ => None,
    });
    assert_eq!(reauth_key, Some(keys[1].0));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn paa_pings_reauthenticates_and_terminates() {
    let head = Head::start(
        1,
        vec![
            (Duration::from_millis(100), PaaAction::Ping),
            (Duration::from_millis(300), PaaAction::Reauthenticate),
            (Duration::from_millis(800), PaaAction::Terminate),
        ],
    )
    .await;
    // A late ping of its own keeps the meter running until the PAA terminates it.
    let actions = vec![(Duration::from_secs(10), MeterAction::Ping)];
    let mut options = MeterOptions::new(head.addr, Duration::from_secs(10));
    options.once = true;
    options.pac.restart_on_loss = false;
    options.actions = actions;
    let summary = tokio::time::timeout(
        Duration::from_secs(20),
        run_meter(
            b"meter0",
            psk_of(0),
            options,
            |_| {},
            std::future::pending(),
        ),
    )
    .await
    .unwrap()
    .unwrap();
    assert_eq!(summary.established, 1);
    assert_eq!(summary.reauthenticated, 1);
    assert!(
        summary.terminated,
        "the PAA's termination reached the meter"
    );
    head.wait_for(|e| matches!(e, ServeEvent::Terminated { .. }))
        .await;
    let (report, _) = head.finish().await;
    assert_eq!(report.pings, 1, "the PAA's ping was answered");
    assert_eq!(report.reauthenticated, 1);
    assert_eq!(report.terminated, 1);
    assert_eq!(report.stats.auth_failures, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn simulator_establishes_every_meter_under_ten_percent_loss() {
    let report = simulate(SimulateOptions {
        meters: 100,
        loss: 0.10,
        sockets: 50,
        concurrency: 100,
        seed: 7,
        timeout: Duration::from_secs(45),
        hold: Duration::from_secs(2),
        ..SimulateOptions::default()
    })
    .await
    .unwrap();
    assert_eq!(report.established, 100, "{report:?}");
    assert_eq!(report.never_established, 0);
    let paa = report.paa.unwrap();
    // The PAA counts a session once the PaC's PAN with C arrives; the simulation may stop
    // while the last of those is being retransmitted after a loss.
    assert!(paa.established >= 95, "{paa:?}");
    assert!(paa.sessions >= 100, "{paa:?}");
    assert!(
        paa.stats.retransmissions > 0,
        "10% loss must have cost retransmissions"
    );
    assert_eq!(paa.stats.auth_failures, 0);
    assert!(report.p50 <= report.p99);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn meter_reauthenticates_before_its_lifetime_ends() {
    let mut config = PaaConfig::default();
    config.session_lifetime = Duration::from_secs(2);
    let head = Head::start_with(1, Vec::new(), config).await;
    // A meter living on (not `once`): it re-authenticates one second before each expiry.
    let options = MeterOptions::new(head.addr, Duration::from_secs(1));
    let (stop, stopped) = oneshot::channel::<()>();
    let mut stop = Some(stop);
    let mut key_ids = Vec::new();
    let summary = tokio::time::timeout(
        Duration::from_secs(20),
        run_meter(
            b"meter0",
            psk_of(0),
            options,
            |e| match e {
                MeterEvent::Established { key_id, .. }
                | MeterEvent::Reauthenticated { key_id, .. } => {
                    key_ids.push(*key_id);
                    if key_ids.len() == 3 {
                        if let Some(s) = stop.take() {
                            let _ = s.send(());
                        }
                    }
                }
                other => panic!("unexpected {other:?}"),
            },
            async move {
                let _ = stopped.await;
            },
        ),
    )
    .await
    .unwrap()
    .unwrap();
    assert_eq!(summary.established, 1);
    assert_eq!(summary.reauthenticated, 2);
    assert_eq!(summary.failed, 0);
    key_ids.dedup();
    assert_eq!(
        key_ids.len(),
        3,
        "every re-authentication brings a new Key-Id"
    );
    head.wait_for_n(|e| matches!(e, ServeEvent::Reauthenticated { .. }), 2)
        .await;
    let (report, _) = head.finish().await;
    assert_eq!(report.expired, 0, "the session never reached its lifetime");
    assert_eq!(report.sessions, 1);
}
