//! A blocking UDP driver for the sans-IO RADIUS server: one thread that takes every queued
//! datagram with one `recvmmsg` call, hands each to `handle_datagram`, and sends all replies with
//! one `sendmmsg` call. The AAA work is synchronous and short, so a plain loop costs fewer
//! wake-ups and system calls per request than an async runtime, and batching spreads each
//! wake-up and system call over every datagram that arrived meanwhile.

use std::io::{self, IoSlice, IoSliceMut};
use std::net::{SocketAddr, UdpSocket};
use std::os::fd::AsRawFd;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use gridguard_radius::{AccessHandler, Server};
use nix::errno::Errno;
use nix::sys::socket::{recvmmsg, sendmmsg, MsgFlags, MultiHeaders, SockaddrStorage};
use rand_core::{CryptoRng, RngCore};

/// How often the loop looks at the stop flag while no datagram arrives.
const STOP_POLL: Duration = Duration::from_millis(100);
/// Most datagrams taken (and replies sent) per system call.
const BATCH: usize = 64;
/// Receive slot per datagram: the largest RADIUS packet (RFC 2865 §3). Bytes of a longer
/// datagram past 4096 lie beyond any valid Length field and are ignored by the parser anyway.
const SLOT: usize = 4096;

fn to_std(addr: &SockaddrStorage) -> Option<SocketAddr> {
    if let Some(v4) = addr.as_sockaddr_in() {
        return Some(SocketAddr::V4((*v4).into()));
    }
    addr.as_sockaddr_in6()
        .map(|v6| SocketAddr::V6((*v6).into()))
}

/// Errors after which the loop just goes on: timeouts, signals, and ICMP-induced refusals
/// reported on the socket.
fn transient(e: Errno) -> bool {
    matches!(
        e,
        Errno::EAGAIN | Errno::EINTR | Errno::ECONNREFUSED | Errno::ECONNRESET
    )
}

/// Reusable buffers of the loop.
struct Batch {
    slots: Vec<[u8; SLOT]>,
    recv_headers: MultiHeaders<SockaddrStorage>,
    send_headers: MultiHeaders<SockaddrStorage>,
    /// (length, source) of each datagram of the current batch.
    received: Vec<(usize, Option<SocketAddr>)>,
    replies: Vec<Vec<u8>>,
    destinations: Vec<Option<SockaddrStorage>>,
}

impl Batch {
    fn new() -> Self {
        Batch {
            slots: vec![[0u8; SLOT]; BATCH],
            recv_headers: MultiHeaders::preallocate(BATCH, None),
            send_headers: MultiHeaders::preallocate(BATCH, None),
            received: Vec::with_capacity(BATCH),
            replies: Vec::with_capacity(BATCH),
            destinations: Vec::with_capacity(BATCH),
        }
    }

    /// Waits for at least one datagram, then takes all that are queued (up to [`BATCH`]).
    fn receive(&mut self, fd: i32) -> Result<usize, Errno> {
        self.received.clear();
        let mut iovs: Vec<[IoSliceMut<'_>; 1]> = self
            .slots
            .iter_mut()
            .map(|slot| [IoSliceMut::new(slot)])
            .collect();
        let results = recvmmsg(
            fd,
            &mut self.recv_headers,
            iovs.iter_mut(),
            MsgFlags::MSG_WAITFORONE,
            None,
        )?;
        for r in results {
            self.received
                .push((r.bytes, r.address.as_ref().and_then(to_std)));
        }
        Ok(self.received.len())
    }

    /// Sends every queued reply, as few system calls as the kernel allows.
    fn send(&mut self, fd: i32) {
        let mut start = 0;
        while start < self.replies.len() {
            let iovs: Vec<[IoSlice<'_>; 1]> = self
                .replies
                .get(start..)
                .unwrap_or_default()
                .iter()
                .map(|r| [IoSlice::new(r)])
                .collect();
            let addrs = self.destinations.get(start..).unwrap_or_default();
            match sendmmsg(
                fd,
                &mut self.send_headers,
                iovs.iter(),
                addrs,
                [],
                MsgFlags::empty(),
            ) {
                Ok(results) => start += results.count().max(1),
                Err(e) => {
                    // The first remaining reply could not be sent: skip it, send the rest.
                    tracing::debug!(to = ?addrs.first(), error = %e, "RADIUS reply not sent");
                    start += 1;
                }
            }
        }
        self.replies.clear();
        self.destinations.clear();
    }
}

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
    serve_with(socket, stop, |from, datagram, now| {
        server.handle_datagram(from, datagram, now)
    })
}

/// Benchmark anchor: answers every datagram with its own bytes, through the very loop
/// [`serve_blocking`] uses, until `stop` is set. Its CPU time is what the system calls, the
/// loopback path and the wake-ups cost without any RADIUS or EAP work.
pub fn echo_blocking(socket: &UdpSocket, stop: &AtomicBool) -> io::Result<()> {
    serve_with(socket, stop, |_, datagram, _| Some(datagram.to_vec()))
}

fn serve_with(
    socket: &UdpSocket,
    stop: &AtomicBool,
    mut handle: impl FnMut(SocketAddr, &[u8], Instant) -> Option<Vec<u8>>,
) -> io::Result<()> {
    socket.set_read_timeout(Some(STOP_POLL))?;
    let fd = socket.as_raw_fd();
    let mut batch = Box::new(Batch::new());
    while !stop.load(Ordering::Relaxed) {
        match batch.receive(fd) {
            Ok(_) => {}
            Err(e) if transient(e) => continue,
            Err(e) => return Err(e.into()),
        }
        let now = Instant::now();
        let Batch {
            slots,
            received,
            replies,
            destinations,
            ..
        } = &mut *batch;
        for (&(n, from), slot) in received.iter().zip(slots.iter()) {
            let (Some(from), Some(datagram)) = (from, slot.get(..n)) else {
                continue;
            };
            if let Some(reply) = handle(from, datagram, now) {
                replies.push(reply);
                destinations.push(Some(SockaddrStorage::from(from)));
            }
        }
        batch.send(fd);
    }
    Ok(())
}
