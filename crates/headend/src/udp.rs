//! Thin tokio driver: the C12.22 host on a UDP socket (port 1153 in production).

use std::io;
use std::net::SocketAddr;
use std::sync::Arc;

use rand_core::{CryptoRng, RngCore};
use tokio::net::{ToSocketAddrs, UdpSocket};
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::shared::SharedHost;

/// A running UDP listener feeding a [`SharedHost`].
#[derive(Debug)]
pub struct UdpServer {
    socket: Arc<UdpSocket>,
    shutdown: watch::Sender<bool>,
    task: JoinHandle<()>,
}

impl UdpServer {
    /// Binds `addr` and serves: each datagram goes to `handle_apdu`, each reply back to its
    /// source. Refused datagrams get no answer (they are counted by the host).
    pub async fn bind<R>(addr: impl ToSocketAddrs, host: SharedHost<R>) -> io::Result<Self>
    where
        R: RngCore + CryptoRng + Send + 'static,
    {
        let socket = Arc::new(UdpSocket::bind(addr).await?);
        let (shutdown, mut stop) = watch::channel(false);
        let rx = Arc::clone(&socket);
        let task = tokio::spawn(async move {
            let mut buf = vec![0u8; 65_535];
            loop {
                tokio::select! {
                    r = rx.recv_from(&mut buf) => {
                        let (n, from) = match r {
                            Ok(x) => x,
                            Err(e) => {
                                tracing::debug!(error = %e, "UDP receive failed");
                                continue;
                            }
                        };
                        let datagram = buf.get(..n).unwrap_or_default();
                        let reply = host.with(|h| h.handle_apdu(from, datagram, tokio::time::Instant::now().into_std()));
                        if let Ok(crate::HostReply { to, bytes: Some(b), .. }) = reply {
                            if let Err(e) = rx.send_to(&b, to).await {
                                tracing::debug!(error = %e, "UDP send failed");
                            }
                        }
                    }
                    r = stop.changed() => {
                        if r.is_err() || *stop.borrow() {
                            break;
                        }
                    }
                }
            }
        });
        Ok(UdpServer {
            socket,
            shutdown,
            task,
        })
    }

    /// The bound address.
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.socket.local_addr()
    }

    /// Sends a host-originated APDU (from [`crate::C1222Host::request`]) to `to`.
    pub async fn send_to(&self, bytes: &[u8], to: SocketAddr) -> io::Result<usize> {
        self.socket.send_to(bytes, to).await
    }

    /// Stops the listener and waits for it.
    pub async fn shutdown(self) {
        let _ = self.shutdown.send(true);
        let _ = self.task.await;
    }
}
