//! Tokio driver for [`Client`]: one task owns the UDP socket and the sans-IO core; handles
//! send requests over a channel and get their response over a oneshot.

use std::collections::{HashMap, VecDeque};
use std::io;
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr};
use std::time::Instant;

use rand_core::OsRng;
use tokio::net::UdpSocket;
use tokio::sync::{mpsc, oneshot, watch};

use crate::attribute::Attribute;
use crate::auth::Secret;
use crate::client::{Client, ClientConfig, ClientEvent, ClientStats, RequestId, Response};
use crate::code::Code;
use crate::error::Error;

type Reply = oneshot::Sender<Result<Response, Error>>;

struct Command {
    code: Code,
    attributes: Vec<Attribute>,
    reply: Reply,
}

/// A cloneable handle to a RADIUS client task talking to one server.
///
/// The task stops when the last handle is dropped.
#[derive(Clone, Debug)]
pub struct AsyncClient {
    commands: mpsc::Sender<Command>,
    stats: watch::Receiver<ClientStats>,
    local_addr: SocketAddr,
}

impl AsyncClient {
    /// Binds a UDP socket on the loopback or unspecified address of the server's family
    /// (loopback when the server is on loopback), connects it to `server` and spawns the
    /// driver task on the current tokio runtime.
    pub async fn connect(
        server: SocketAddr,
        secret: impl Into<Secret>,
        config: ClientConfig,
    ) -> io::Result<AsyncClient> {
        let local: SocketAddr = match server {
            SocketAddr::V4(a) if a.ip().is_loopback() => (Ipv4Addr::LOCALHOST, 0).into(),
            SocketAddr::V4(_) => (Ipv4Addr::UNSPECIFIED, 0).into(),
            SocketAddr::V6(a) if a.ip().is_loopback() => (Ipv6Addr::LOCALHOST, 0).into(),
            SocketAddr::V6(_) => (Ipv6Addr::UNSPECIFIED, 0).into(),
        };
        let socket = UdpSocket::bind(local).await?;
        socket.connect(server).await?;
        let local_addr = socket.local_addr()?;
        let (commands, rx) = mpsc::channel(1024);
        let (stats_tx, stats) = watch::channel(ClientStats::default());
        let core = Client::new(secret, config);
        tokio::spawn(drive(socket, core, rx, stats_tx));
        Ok(AsyncClient {
            commands,
            stats,
            local_addr,
        })
    }

    /// Sends a request and waits for its verified response, or [`Error::Timeout`] once the
    /// retransmissions are used up. Many requests may run at once; beyond 256 they wait for
    /// a free identifier.
    pub async fn request(&self, code: Code, attributes: Vec<Attribute>) -> Result<Response, Error> {
        if !code.is_client_request() {
            return Err(Error::NotARequest(code));
        }
        let (reply, rx) = oneshot::channel();
        self.commands
            .send(Command {
                code,
                attributes,
                reply,
            })
            .await
            .map_err(|_| Error::ClientClosed)?;
        rx.await.map_err(|_| Error::ClientClosed)?
    }

    /// The core's counters as of its last step.
    pub fn stats(&self) -> ClientStats {
        *self.stats.borrow()
    }

    /// The local address of the client's socket.
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }
}

fn is_transient(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::ConnectionRefused
            | io::ErrorKind::ConnectionReset
            | io::ErrorKind::Interrupted
            | io::ErrorKind::WouldBlock
    )
}

async fn drive(
    socket: UdpSocket,
    mut core: Client,
    mut commands: mpsc::Receiver<Command>,
    stats: watch::Sender<ClientStats>,
) {
    let mut rng = OsRng;
    let mut waiting: HashMap<RequestId, Reply> = HashMap::new();
    let mut queued: VecDeque<Command> = VecDeque::new();
    let mut buf = vec![0u8; 65_535];
    let mut open = true;
    loop {
        // Forget requests whose caller went away.
        let gone: Vec<RequestId> = waiting
            .iter()
            .filter(|(_, r)| r.is_closed())
            .map(|(id, _)| *id)
            .collect();
        for id in gone {
            waiting.remove(&id);
            core.cancel(id);
        }
        // Start what fits in the identifier space (256 per socket).
        while core.in_flight() < 256 {
            let Some(cmd) = queued.pop_front() else { break };
            if cmd.reply.is_closed() {
                continue;
            }
            match core.start(cmd.code, cmd.attributes, Instant::now(), &mut rng) {
                Ok(id) => {
                    waiting.insert(id, cmd.reply);
                }
                Err(e) => {
                    let _ = cmd.reply.send(Err(e));
                }
            }
        }
        while let Some(bytes) = core.poll_transmit() {
            if let Err(e) = socket.send(&bytes).await {
                tracing::debug!(error = %e, "RADIUS send failed; retransmission will retry");
            }
        }
        while let Some(event) = core.poll_event() {
            match event {
                ClientEvent::Timeout(id) => {
                    if let Some(reply) = waiting.remove(&id) {
                        let _ = reply.send(Err(Error::Timeout));
                    }
                }
            }
        }
        stats.send_replace(core.stats());
        if !open && waiting.is_empty() && queued.is_empty() {
            return;
        }

        let deadline = core.poll_timeout();
        let sleep = async {
            match deadline {
                Some(d) => tokio::time::sleep_until(tokio::time::Instant::from_std(d)).await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            cmd = commands.recv(), if open => match cmd {
                Some(cmd) => queued.push_back(cmd),
                None => open = false,
            },
            r = socket.recv(&mut buf) => match r {
                Ok(n) => {
                    if let Some(datagram) = buf.get(..n) {
                        if let Some((id, response)) = core.handle_datagram(datagram, Instant::now()) {
                            if let Some(reply) = waiting.remove(&id) {
                                let _ = reply.send(Ok(response));
                            }
                        }
                    }
                }
                Err(e) if is_transient(&e) => {}
                Err(e) => {
                    tracing::warn!(error = %e, "RADIUS client socket failed");
                    for (_, reply) in waiting.drain() {
                        let _ = reply.send(Err(Error::ClientClosed));
                    }
                    return;
                }
            },
            () = sleep => core.handle_timeout(Instant::now()),
        }
    }
}
