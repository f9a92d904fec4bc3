//! Tokio driver for [`Server`]: receive, handle, send, until shutdown.

use std::future::Future;
use std::io;
use std::time::Instant;

use rand_core::{CryptoRng, RngCore};
use tokio::net::UdpSocket;

use crate::server::{AccessHandler, Server};

/// Serves RADIUS on `socket` until `shutdown` completes, then returns the server (with its
/// handler and counters). Transient socket errors (ICMP-induced refusals) are skipped; other
/// receive errors end the loop with the error.
///
/// `shutdown` may be any future: a `tokio::sync::watch` change, a oneshot, a signal.
pub async fn serve<H, R, S>(
    socket: UdpSocket,
    mut server: Server<H, R>,
    shutdown: S,
) -> io::Result<Server<H, R>>
where
    H: AccessHandler,
    R: RngCore + CryptoRng,
    S: Future<Output = ()>,
{
    tokio::pin!(shutdown);
    let mut buf = vec![0u8; 65_535];
    loop {
        tokio::select! {
            biased;
            () = &mut shutdown => return Ok(server),
            r = socket.recv_from(&mut buf) => {
                let (n, from) = match r {
                    Ok(x) => x,
                    Err(e) if matches!(
                        e.kind(),
                        io::ErrorKind::ConnectionRefused
                            | io::ErrorKind::ConnectionReset
                            | io::ErrorKind::Interrupted
                            | io::ErrorKind::WouldBlock
                    ) => continue,
                    Err(e) => return Err(e),
                };
                let Some(datagram) = buf.get(..n) else { continue };
                if let Some(reply) = server.handle_datagram(from, datagram, Instant::now()) {
                    if let Err(e) = socket.send_to(&reply, from).await {
                        tracing::debug!(%from, error = %e, "RADIUS reply not sent");
                    }
                }
            }
        }
    }
}
