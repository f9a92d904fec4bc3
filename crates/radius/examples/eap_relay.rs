//! EAP pass-through relay, for interoperability checks.
//!
//! A RADIUS server ([`Server`] driven by [`serve`]) whose handler forwards the EAP of each
//! Access-Request to an upstream RADIUS server with the sans-IO [`Client`] over a blocking
//! socket, and maps the answer back: Access-Challenge with State, Access-Reject, and
//! Access-Accept with the MS-MPPE keys decrypted from upstream and re-encrypted downstream.
//!
//! ```text
//! eapol_test ──RADIUS──▶ eap_relay (Server) ──RADIUS──▶ hostapd (EAP server)
//! ```
//!
//! Usage: `eap_relay LISTEN_ADDR DOWNSTREAM_SECRET UPSTREAM_ADDR UPSTREAM_SECRET [--dump] [--once]`
//!
//! `--dump` prints the upstream datagrams in hex (they hold MPPE keys only in encrypted
//! form); `--once` exits after the first Access-Accept or Access-Reject. The handler
//! blocks while it waits for upstream: fine for a test relay, not for production.

use std::net::{SocketAddr, UdpSocket};
use std::time::{Duration, Instant};

use gridguard_radius::{
    eap_message_attributes, serve, AccessHandler, AccessRequest, Attribute, AttributeType, Client,
    ClientConfig, ClientEvent, Code, Reply, Response, Server, ServerConfig,
};
use rand_core::OsRng;
use tokio::sync::watch;

struct Relay {
    upstream: UdpSocket,
    client: Client,
    dump: bool,
    finished: watch::Sender<bool>,
    once: bool,
}

const FORWARDED: [AttributeType; 6] = [
    AttributeType::USER_NAME,
    AttributeType::STATE,
    AttributeType::CALLING_STATION_ID,
    AttributeType::CALLED_STATION_ID,
    AttributeType::NAS_IDENTIFIER,
    AttributeType::FRAMED_MTU,
];

impl Relay {
    fn exchange(&mut self, attributes: Vec<Attribute>) -> Option<Response> {
        let id = self
            .client
            .start(Code::ACCESS_REQUEST, attributes, Instant::now(), &mut OsRng)
            .ok()?;
        let mut buf = [0u8; 4096];
        loop {
            while let Some(bytes) = self.client.poll_transmit() {
                if self.dump {
                    println!("upstream request  {}", hex::encode(&bytes));
                }
                let _ = self.upstream.send(&bytes);
            }
            if let Some(ClientEvent::Timeout(t)) = self.client.poll_event() {
                if t == id {
                    eprintln!("upstream timed out");
                    return None;
                }
            }
            let deadline = self.client.poll_timeout()?;
            let wait = deadline
                .saturating_duration_since(Instant::now())
                .max(Duration::from_millis(1));
            let _ = self.upstream.set_read_timeout(Some(wait));
            match self.upstream.recv(&mut buf) {
                Ok(n) => {
                    let datagram = buf.get(..n).unwrap_or_default();
                    if self.dump {
                        println!("upstream response {}", hex::encode(datagram));
                    }
                    if let Some((got, response)) =
                        self.client.handle_datagram(datagram, Instant::now())
                    {
                        if got == id {
                            return Some(response);
                        }
                    }
                }
                Err(_) => self.client.handle_timeout(Instant::now()),
            }
        }
    }
}

impl AccessHandler for Relay {
    fn handle(&mut self, request: &AccessRequest, _now: Instant) -> Reply {
        let mut attributes: Vec<Attribute> = request
            .attributes()
            .iter()
            .filter(|a| FORWARDED.contains(&a.typ))
            .cloned()
            .collect();
        attributes.extend(eap_message_attributes(
            &request.eap_message().unwrap_or_default(),
        ));
        let Some(response) = self.exchange(attributes) else {
            return Reply::discard();
        };
        let eap = response.eap_message().unwrap_or_default();
        let stats = self.client.stats();
        println!(
            "upstream {:?} verified (Response Authenticator + Message-Authenticator); \
             dropped so far: bad auth {}, bad MA {}, malformed {}",
            response.code(),
            stats.dropped_bad_authenticator,
            stats.dropped_bad_message_authenticator,
            stats.dropped_malformed
        );
        let reply = match response.code() {
            Code::ACCESS_CHALLENGE => Reply::challenge(&eap, response.state().unwrap_or_default()),
            Code::ACCESS_ACCEPT => match response.mppe_keys() {
                Some(keys) => {
                    println!(
                        "MS-MPPE keys decrypted: recv {} bytes, send {} bytes",
                        keys.recv.len(),
                        keys.send.len()
                    );
                    Reply::accept_with_mppe(&eap, &keys.recv, &keys.send)
                }
                None => Reply::accept(&eap),
            },
            _ => Reply::reject(&eap),
        };
        if self.once && response.code() != Code::ACCESS_CHALLENGE {
            let _ = self.finished.send(true);
        }
        reply
    }
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> std::io::Result<()> {
    let args: Vec<String> = std::env::args().collect();
    let usage = || {
        std::io::Error::new(
            std::io::ErrorKind::InvalidInput,
            "usage: eap_relay LISTEN DOWN_SECRET UPSTREAM UP_SECRET [--dump] [--once]",
        )
    };
    let listen: SocketAddr = args.get(1).and_then(|s| s.parse().ok()).ok_or_else(usage)?;
    let down_secret = args.get(2).ok_or_else(usage)?.clone();
    let upstream_addr: SocketAddr = args.get(3).and_then(|s| s.parse().ok()).ok_or_else(usage)?;
    let up_secret = args.get(4).ok_or_else(usage)?.clone();
    let dump = args.iter().any(|a| a == "--dump");
    let once = args.iter().any(|a| a == "--once");

    let upstream = UdpSocket::bind(SocketAddr::new(listen.ip(), 0))?;
    upstream.connect(upstream_addr)?;
    let (finished, mut done) = watch::channel(false);
    let relay = Relay {
        upstream,
        client: Client::new(up_secret.as_str(), ClientConfig::default()),
        dump,
        finished,
        once,
    };
    let socket = tokio::net::UdpSocket::bind(listen).await?;
    println!("relaying {listen} -> {upstream_addr}");
    let server = Server::new(down_secret.as_str(), relay, ServerConfig::default());
    let server = serve(socket, server, async move {
        let _ = done.wait_for(|d| *d).await;
        // Let the final reply go out before stopping.
        tokio::time::sleep(Duration::from_millis(200)).await;
    })
    .await?;
    println!("server stats: {:?}", server.stats());
    println!("client stats: {:?}", server.handler().client.stats());
    Ok(())
}
