//! A blocking UDP driver for the sans-IO RADIUS server: one thread, `recv_from` → `handle_datagram` →
//! `send_to`. The AAA work is synchronous and short, so a plain loop costs fewer wake-ups and system
//! calls per request than an async runtime.

use std::io;
use std::net::UdpSocket;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use gridguard_radius::{AccessHandler, Server};
use rand_core::{CryptoRng, RngCore};

/// How often the loop looks at the stop flag while no datagram arrives.
const STOP_POLL: Duration = Duration::from_millis(100);

/// Serves `socket` until `stop` is set; returns the server with its handler and counters.
pub fn serve_blocking<H, R>(
    socket: &UdpSocket,
    server: &mut Server<H, R>,
    stop: &AtomicBool,
) -> io::Result<()>
where
    H: AccessHandler,
    R: RngCore + CryptoRng,
{
    socket.set_read_timeout(Some(STOP_POLL))?;
    let mut buf = vec![0u8; 65_535];
    while !stop.load(Ordering::Relaxed) {
        let (n, from) = match socket.recv_from(&mut buf) {
            Ok(x) => x,
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::WouldBlock
                        | io::ErrorKind::TimedOut
                        | io::ErrorKind::Interrupted
                ) =>
            {
                continue
            }
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::ConnectionRefused | io::ErrorKind::ConnectionReset
                ) =>
            {
                continue
            }
            Err(e) => return Err(e),
        };
        let Some(datagram) = buf.get(..n) else {
            continue;
        };
        if let Some(reply) = server.handle_datagram(from, datagram, Instant::now()) {
            if let Err(e) = socket.send_to(&reply, from) {
                tracing::debug!(%from, error = %e, "RADIUS reply not sent");
            }
        }
    }
    Ok(())
}
