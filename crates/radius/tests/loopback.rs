//! AsyncClient against `serve` over UDP on 127.0.0.1, with a two-round EAP-like handler.

#![allow(clippy::unwrap_used, clippy::indexing_slicing)] // test helpers fail loudly by design

use std::collections::HashMap;
use std::time::{Duration, Instant};

use gridguard_radius::{
    eap_message_attributes, serve, AccessHandler, AccessRequest, AsyncClient, Attribute,
    AttributeType, ClientConfig, Code, Error, Reply, Server, ServerConfig,
};
use tokio::net::UdpSocket;
use tokio::sync::oneshot;

const SECRET: &[u8] = b"loopback-secret";

/// Round 1: challenge with a State naming the user; round 2 (State echoed): accept with an
/// MSK derived from the user name, so every client can check it got its own keys.
#[derive(Default)]
struct TwoRounds {
    sessions: HashMap<Vec<u8>, Vec<u8>>,
}

fn msk_for(user: &[u8]) -> Vec<u8> {
    (0..64u8)
        .map(|i| i ^ user.iter().fold(0u8, |a, b| a.wrapping_add(*b)))
        .collect()
}

impl AccessHandler for TwoRounds {
    fn handle(&mut self, req: &AccessRequest, _now: Instant) -> Reply {
        let user = req.user_name().unwrap_or_default().to_vec();
        let eap = req.eap_message().unwrap_or_default();
        match req.state() {
            None => {
                let state = [b"st-".as_slice(), &user].concat();
                self.sessions.insert(state.clone(), user);
                // An EAP-Request echoing the identifier of the response.
                Reply::challenge(&[1, eap.get(1).copied().unwrap_or(0), 0, 5, 47], &state)
            }
            Some(state) => match self.sessions.remove(state) {
                Some(u) if u == user => Reply::accept_with_msk(
                    &[3, eap.get(1).copied().unwrap_or(0), 0, 4],
                    &msk_for(&u),
                )
                .unwrap_or_else(Reply::discard),
                _ => Reply::reject(&[4, 0, 0, 4]),
            },
        }
    }
}

fn identity(user: &[u8], eap_id: u8) -> Vec<Attribute> {
    let mut eap = vec![2, eap_id, 0, 0, 1];
    eap.extend_from_slice(user);
    let len = eap.len() as u16;
    eap[2..4].copy_from_slice(&len.to_be_bytes());
    let mut attrs = vec![Attribute::new(AttributeType::USER_NAME, user.to_vec())];
    attrs.extend(eap_message_attributes(&eap));
    attrs
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn many_concurrent_two_round_exchanges() {
    let socket = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let addr = socket.local_addr().unwrap();
    let (stop, stopped) = oneshot::channel::<()>();
    let server = Server::new(SECRET, TwoRounds::default(), ServerConfig::default());
    let task = tokio::spawn(serve(socket, server, async {
        let _ = stopped.await;
    }));

    let client = AsyncClient::connect(addr, SECRET, ClientConfig::default())
        .await
        .unwrap();
    // 300 sessions at once: more than the 256 identifiers, so some wait for a free one.
    let mut joins = Vec::new();
    for i in 0..300u32 {
        let client = client.clone();
        joins.push(tokio::spawn(async move {
            let user = format!("meter{i}").into_bytes();
            let r1 = client
                .request(Code::ACCESS_REQUEST, identity(&user, 1))
                .await
                .unwrap();
            assert_eq!(r1.code(), Code::ACCESS_CHALLENGE);
            assert_eq!(r1.eap_message().unwrap(), [1, 1, 0, 5, 47]);
            let state = r1.state().unwrap().to_vec();
            let mut attrs = identity(&user, 2);
            attrs.push(Attribute::new(AttributeType::STATE, state));
            let r2 = client.request(Code::ACCESS_REQUEST, attrs).await.unwrap();
            assert_eq!(r2.code(), Code::ACCESS_ACCEPT);
            assert_eq!(r2.eap_message().unwrap(), [3, 2, 0, 4]);
            assert_eq!(*r2.mppe_keys().unwrap().msk(), msk_for(&user));
        }));
    }
    for j in joins {
        j.await.unwrap();
    }
    let stats = client.stats();
    assert_eq!(stats.responses, 600);
    assert_eq!(stats.dropped_bad_authenticator, 0);
    assert_eq!(stats.dropped_bad_message_authenticator, 0);

    // Status-Server is answered too.
    let st = client.request(Code::STATUS_SERVER, vec![]).await.unwrap();
    assert_eq!(st.code(), Code::ACCESS_ACCEPT);

    stop.send(()).unwrap();
    let server = task.await.unwrap().unwrap();
    assert_eq!(server.stats().requests, 600);
    assert_eq!(server.stats().status_server, 1);
    assert!(server.handler().sessions.is_empty());
}

#[tokio::test]
async fn silent_server_times_out_after_retransmissions() {
    // A bound socket that never answers.
    let silent = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let config = ClientConfig::default()
        .with_initial_timeout(Duration::from_millis(20))
        .with_max_timeout(Duration::from_millis(40))
        .with_max_retransmissions(2)
        .with_max_duration(None);
    let client = AsyncClient::connect(silent.local_addr().unwrap(), SECRET, config)
        .await
        .unwrap();
    let r = client
        .request(Code::ACCESS_REQUEST, identity(b"m", 1))
        .await;
    assert_eq!(r.unwrap_err(), Error::Timeout);
    // The server socket received the first transmission and both retransmissions, all
    // byte-identical.
    let mut buf = [0u8; 4096];
    let mut seen = Vec::new();
    for _ in 0..3 {
        let n = silent.recv(&mut buf).await.unwrap();
        seen.push(buf[..n].to_vec());
    }
    assert!(seen.windows(2).all(|w| w[0] == w[1]));
    let stats = client.stats();
    assert_eq!((stats.retransmissions, stats.timeouts), (2, 1));
}

#[tokio::test]
async fn server_with_wrong_secret_is_not_believed() {
    let socket = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let addr = socket.local_addr().unwrap();
    // A raw socket plays a server that signs with another secret.
    let config = ClientConfig::default()
        .with_initial_timeout(Duration::from_millis(50))
        .with_max_retransmissions(0)
        .with_max_duration(None);
    let client = AsyncClient::connect(addr, SECRET, config).await.unwrap();
    let c2 = client.clone();
    let pending =
        tokio::spawn(async move { c2.request(Code::ACCESS_REQUEST, identity(b"m", 1)).await });
    // Answer the request with a Challenge signed under another secret.
    let mut buf = [0u8; 4096];
    let (n, from) = socket.recv_from(&mut buf).await.unwrap();
    let req = gridguard_radius::Packet::parse(&buf[..n]).unwrap();
    let mut resp = gridguard_radius::Packet::new(Code::ACCESS_CHALLENGE, req.identifier);
    resp.attributes
        .push(gridguard_radius::auth::message_authenticator_placeholder());
    resp.attributes
        .extend(eap_message_attributes(&[1, 1, 0, 4]));
    let forged =
        gridguard_radius::auth::encode_response(&resp, &req.authenticator, b"other").unwrap();
    socket.send_to(&forged, from).await.unwrap();
    assert_eq!(pending.await.unwrap().unwrap_err(), Error::Timeout);
    assert_eq!(client.stats().dropped_bad_authenticator, 1);
}

#[tokio::test]
async fn abandoned_request_is_withdrawn_not_retransmitted() {
    let silent = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let config = ClientConfig::default()
        .with_initial_timeout(Duration::from_millis(20))
        .with_max_retransmissions(3)
        .with_max_duration(None);
    let client = AsyncClient::connect(silent.local_addr().unwrap(), SECRET, config)
        .await
        .unwrap();
    // The caller gives up long before the first retransmission timer.
    let abandoned = tokio::time::timeout(
        Duration::from_millis(1),
        client.request(Code::ACCESS_REQUEST, identity(b"gone", 1)),
    )
    .await;
    assert!(abandoned.is_err());
    // A later request completes its whole retransmission schedule; by then the driver has
    // woken on several timers and must have withdrawn the abandoned request.
    let r = client
        .request(Code::ACCESS_REQUEST, identity(b"kept", 1))
        .await;
    assert_eq!(r.unwrap_err(), Error::Timeout);
    let stats = client.stats();
    assert_eq!(stats.timeouts, 1, "only the kept request timed out");
    assert_eq!(
        stats.retransmissions, 3,
        "only the kept request was retransmitted"
    );
    // The silent server saw at most one copy of the abandoned request.
    let mut buf = [0u8; 4096];
    let mut users = Vec::new();
    while let Ok(n) = silent.try_recv(&mut buf) {
        let p = gridguard_radius::Packet::parse(&buf[..n]).unwrap();
        users.push(p.user_name().unwrap().to_vec());
    }
    assert!(users.iter().filter(|u| u.as_slice() == b"gone").count() <= 1);
    assert_eq!(users.iter().filter(|u| u.as_slice() == b"kept").count(), 4);
}

#[tokio::test]
async fn works_over_ipv6_loopback() {
    let socket = UdpSocket::bind("[::1]:0").await.unwrap();
    let addr = socket.local_addr().unwrap();
    let (stop, stopped) = oneshot::channel::<()>();
    let server = Server::new(SECRET, TwoRounds::default(), ServerConfig::default());
    let task = tokio::spawn(serve(socket, server, async {
        let _ = stopped.await;
    }));
    let client = AsyncClient::connect(addr, SECRET, ClientConfig::default())
        .await
        .unwrap();
    assert!(client.local_addr().ip().is_loopback() && client.local_addr().is_ipv6());
    let attrs =
        gridguard_radius::eap_request_attributes(&[2, 1, 0, 7, 1, b'v', b'6'], Some(b"v6"), None);
    let r = client.request(Code::ACCESS_REQUEST, attrs).await.unwrap();
    assert_eq!(r.code(), Code::ACCESS_CHALLENGE);
    assert_eq!(r.state(), Some(&b"st-v6"[..]));
    stop.send(()).unwrap();
    let server = task.await.unwrap().unwrap();
    assert_eq!(server.stats().requests, 1);
}
