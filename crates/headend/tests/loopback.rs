//! The tokio drivers on loopback: a meter keyed from a real EAP-PSK exchange registers and
//! writes interval data over UDP and over TCP; the host verifies, answers and hands out the
//! data; the host reads a table over UDP; a forged datagram gets no answer and is counted.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

mod common;

use std::time::{Duration, Instant};

use common::*;
use gridguard_c1222::{
    Epsem, EpsemControl, Request, ResponseCode, ResponseControl, SecurityMode, Service, TableId,
};
use gridguard_headend::tcp::{next_frame, TcpServer};
use gridguard_headend::udp::UdpServer;
use gridguard_headend::{HostEvent, MemoryTables, MeterEvent, RefusalKind, SharedHost};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpStream, UdpSocket};
use tokio::time::timeout;

const WAIT: Duration = Duration::from_secs(5);

fn events(host: &SharedHost<rand::rngs::StdRng>) -> Vec<HostEvent> {
    host.with(|h| std::iter::from_fn(|| h.poll_event()).collect::<Vec<_>>())
        .into_iter()
        .filter(|e| !matches!(e, HostEvent::Keys(_)))
        .collect()
}

fn ok_response(m: &mut gridguard_headend::MeterLink<rand::rngs::StdRng>, invocation: u64) {
    match m.poll_event() {
        Some(MeterEvent::Response {
            invocation: i,
            responses,
            ..
        }) => {
            assert_eq!(i, invocation);
            assert_eq!(responses[0].code, ResponseCode::OK);
        }
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn udp_register_write_and_host_read() {
    let t0 = Instant::now();
    let (h, mut m) = pair(21, t0);
    let host = SharedHost::new(h);
    let server = UdpServer::bind("127.0.0.1:0", host.clone()).await.unwrap();
    let addr = server.local_addr().unwrap();
    let sock = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let me = sock.local_addr().unwrap();
    let mut tables = MemoryTables::default();
    tables.tables.insert(1, b"GG-0077".to_vec());
    let mut buf = vec![0u8; 4096];

    let reg = m.registration(Instant::now()).unwrap();
    sock.send_to(&reg.bytes, addr).await.unwrap();
    let n = timeout(WAIT, sock.recv(&mut buf)).await.unwrap().unwrap();
    assert_eq!(
        m.handle_apdu(&buf[..n], Instant::now(), &mut tables)
            .unwrap(),
        None
    );
    ok_response(&mut m, reg.invocation);

    let data: Vec<u8> = (0..=255).collect();
    let w = m.write_intervals(64, &data, Instant::now()).unwrap();
    sock.send_to(&w.bytes, addr).await.unwrap();
    let n = timeout(WAIT, sock.recv(&mut buf)).await.unwrap().unwrap();
    m.handle_apdu(&buf[..n], Instant::now(), &mut tables)
        .unwrap();
    ok_response(&mut m, w.invocation);

    assert_eq!(
        events(&host),
        vec![
            HostEvent::Registered {
                meter: meter_title(),
                native_address: vec![10, 0, 0, 77],
                from: me
            },
            HostEvent::Intervals {
                meter: meter_title(),
                table: 64,
                data
            },
        ]
    );

    // The host reads table 1 from the meter at the address it last heard it from.
    let read = Epsem {
        control: EpsemControl::new(SecurityMode::CIPHERTEXT_AUTH, ResponseControl::ALWAYS),
        ed_class: None,
        services: vec![Service::Request(Request::FullRead { table: TableId(1) })],
        end_marker: false,
    };
    let (q, to) = host.with(|h| {
        (
            h.request(&meter_title(), &read, Instant::now()).unwrap(),
            h.meter_address(&meter_title()).unwrap(),
        )
    });
    assert_eq!(to, me);
    server.send_to(&q, to).await.unwrap();
    let n = timeout(WAIT, sock.recv(&mut buf)).await.unwrap().unwrap();
    let answer = m
        .handle_apdu(&buf[..n], Instant::now(), &mut tables)
        .unwrap()
        .unwrap();
    sock.send_to(&answer, addr).await.unwrap();
    let got = timeout(WAIT, async {
        loop {
            let e = events(&host);
            if !e.is_empty() {
                return e;
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    })
    .await
    .unwrap();
    assert!(
        matches!(&got[..], [HostEvent::Response { table: Some(1), data, .. }] if data == b"GG-0077")
    );

    // A forged datagram: no answer, counted.
    let mut forged = m.write_intervals(64, &[1], Instant::now()).unwrap().bytes;
    let last = forged.len() - 1;
    forged[last] ^= 1;
    sock.send_to(&forged, addr).await.unwrap();
    assert!(timeout(Duration::from_millis(200), sock.recv(&mut buf))
        .await
        .is_err());
    assert_eq!(host.with(|h| h.stats().refused(RefusalKind::BadMac)), 1);
    server.shutdown().await;
}

#[tokio::test]
async fn tcp_register_and_writes_back_to_back() {
    let t0 = Instant::now();
    let (h, mut m) = pair(22, t0);
    let host = SharedHost::new(h);
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let timers = host.spawn_timers(stop_rx);
    let server = TcpServer::bind("127.0.0.1:0", host.clone(), 8)
        .await
        .unwrap();
    let mut stream = TcpStream::connect(server.local_addr()).await.unwrap();
    let mut tables = MemoryTables::default();

    // Registration and two writes in one TCP write: the host must split the frames.
    let reg = m.registration(Instant::now()).unwrap();
    let w1 = m.write_intervals(64, &[1; 48], Instant::now()).unwrap();
    let w2 = m.write_intervals(65, &[2; 48], Instant::now()).unwrap();
    let mut burst = reg.bytes.clone();
    burst.extend_from_slice(&w1.bytes);
    burst.extend_from_slice(&w2.bytes);
    stream.write_all(&burst).await.unwrap();

    let mut buf = Vec::new();
    let mut replies = Vec::new();
    let mut chunk = [0u8; 1024];
    while replies.len() < 3 {
        let n = timeout(WAIT, stream.read(&mut chunk))
            .await
            .unwrap()
            .unwrap();
        assert!(n > 0, "host closed the connection");
        buf.extend_from_slice(&chunk[..n]);
        while let Some(f) = next_frame(&mut buf).unwrap() {
            replies.push(f);
        }
    }
    for (reply, inv) in replies
        .iter()
        .zip([reg.invocation, w1.invocation, w2.invocation])
    {
        m.handle_apdu(reply, Instant::now(), &mut tables).unwrap();
        ok_response(&mut m, inv);
    }
    let e = events(&host);
    assert_eq!(e.len(), 3);
    assert!(matches!(&e[0], HostEvent::Registered { .. }));
    assert_eq!(
        e[1],
        HostEvent::Intervals {
            meter: meter_title(),
            table: 64,
            data: vec![1; 48]
        }
    );
    assert_eq!(
        e[2],
        HostEvent::Intervals {
            meter: meter_title(),
            table: 65,
            data: vec![2; 48]
        }
    );

    // The host reads table 1 over the meter's connection.
    tables.tables.insert(1, b"GG-TCP".to_vec());
    let read = Epsem {
        control: EpsemControl::new(SecurityMode::CIPHERTEXT_AUTH, ResponseControl::ALWAYS),
        ed_class: None,
        services: vec![Service::Request(Request::FullRead { table: TableId(1) })],
        end_marker: false,
    };
    let q = host.with(|h| h.request(&meter_title(), &read, Instant::now()).unwrap());
    assert!(server.send_to_meter(&meter_title(), q));
    let frame = loop {
        if let Some(f) = next_frame(&mut buf).unwrap() {
            break f;
        }
        let n = timeout(WAIT, stream.read(&mut chunk))
            .await
            .unwrap()
            .unwrap();
        assert!(n > 0);
        buf.extend_from_slice(&chunk[..n]);
    };
    let answer = m
        .handle_apdu(&frame, Instant::now(), &mut tables)
        .unwrap()
        .unwrap();
    stream.write_all(&answer).await.unwrap();
    let got = timeout(WAIT, async {
        loop {
            let e = events(&host);
            if !e.is_empty() {
                return e;
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    })
    .await
    .unwrap();
    assert!(
        matches!(&got[..], [HostEvent::Response { table: Some(1), data, .. }] if data == b"GG-TCP")
    );

    // A stream that is not C12.22 is closed.
    assert!(
        !server.send_to_meter(&host_title(), vec![1]),
        "no connection for that title"
    );
    let mut junk = TcpStream::connect(server.local_addr()).await.unwrap();
    junk.write_all(b"GET / HTTP/1.0\r\n\r\n").await.unwrap();
    let n = timeout(WAIT, junk.read(&mut chunk))
        .await
        .unwrap()
        .unwrap_or(0);
    assert_eq!(n, 0);

    stop_tx.send(true).unwrap();
    timers.await.unwrap();
    server.shutdown().await;
}

#[tokio::test(start_paused = true)]
async fn timer_task_destroys_keys_at_expiry_in_virtual_time() {
    let now = tokio::time::Instant::now().into_std();
    let (h, mut m) = pair(23, now);
    let host = SharedHost::new(h);
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let timers = host.spawn_timers(stop_rx);
    let server = UdpServer::bind("127.0.0.1:0", host.clone()).await.unwrap();
    let reg = m.registration(now).unwrap();
    let w = m.write_intervals(64, &[1; 8], now).unwrap();

    // Just before lifetime + grace the keys are there; the timer fires at the deadline.
    tokio::time::sleep(LIFETIME + GRACE - Duration::from_secs(1)).await;
    assert!(host.with(|h| h.keys().contains(&meter_title())));
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert!(
        !host.with(|h| h.keys().contains(&meter_title())),
        "destroyed by the timer task"
    );
    let expired = host.with(|h| {
        std::iter::from_fn(|| h.poll_event()).any(|e| {
            matches!(e, HostEvent::Keys(k) if matches!(
                k.event,
                gridguard_keys::KeyEvent::Expired { cause: gridguard_keys::ExpiryCause::LifetimeEnded, .. }
            ))
        })
    });
    assert!(expired);

    // A message sealed before expiry, delivered after, is refused with no answer.
    let sock = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    sock.send_to(&reg.bytes, server.local_addr().unwrap())
        .await
        .unwrap();
    sock.send_to(&w.bytes, server.local_addr().unwrap())
        .await
        .unwrap();
    let mut buf = [0u8; 512];
    assert!(timeout(Duration::from_millis(200), sock.recv(&mut buf))
        .await
        .is_err());
    let refused = timeout(WAIT, async {
        loop {
            let n = host.with(|h| h.stats().refused(RefusalKind::SessionExpired));
            if n == 2 {
                return n;
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    })
    .await
    .unwrap();
    assert_eq!(refused, 2);
    stop_tx.send(true).unwrap();
    timers.await.unwrap();
    server.shutdown().await;
}
