//! Thin tokio driver: the C12.22 host on TCP (port 1153 in production). An ACSE APDU is
//! self-delimiting (`AcseApdu::frame_len`), so frames are read back to back from the stream.
//! Host-originated requests go out on the connection that last carried an accepted APDU of
//! the meter ([`TcpServer::send_to_meter`]).

use std::collections::HashMap;
use std::io;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, PoisonError};

use gridguard_c1222::AcseApdu;
use gridguard_c1222::ApTitle;
use rand_core::{CryptoRng, RngCore};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream, ToSocketAddrs};
use tokio::sync::{mpsc, watch, Semaphore};
use tokio::task::JoinHandle;

use crate::shared::SharedHost;

/// Largest APDU accepted on a stream; a longer announced frame closes the connection.
pub const MAX_FRAME: usize = 64 * 1024;

/// Connections served at once by default.
pub const DEFAULT_MAX_CONNECTIONS: usize = 1024;

/// Which connection last carried an accepted APDU of each meter: (connection number, queue).
type Routes = Arc<Mutex<HashMap<ApTitle, (u64, mpsc::UnboundedSender<Vec<u8>>)>>>;

/// A running TCP listener feeding a [`SharedHost`].
#[derive(Debug)]
pub struct TcpServer {
    local_addr: SocketAddr,
    routes: Routes,
    shutdown: watch::Sender<bool>,
    task: JoinHandle<()>,
}

impl TcpServer {
    /// Binds `addr` and serves up to `max_connections` connections at once; each frame goes
    /// to `handle_apdu` and each reply is written back on the same connection. A refused
    /// frame gets no answer; a stream that is not C12.22 (or announces a frame over
    /// [`MAX_FRAME`]) is closed.
    pub async fn bind<R>(
        addr: impl ToSocketAddrs,
        host: SharedHost<R>,
        max_connections: usize,
    ) -> io::Result<Self>
    where
        R: RngCore + CryptoRng + Send + 'static,
    {
        let listener = TcpListener::bind(addr).await?;
        let local_addr = listener.local_addr()?;
        let (shutdown, mut stop) = watch::channel(false);
        let limit = Arc::new(Semaphore::new(max_connections.max(1)));
        let routes: Routes = Arc::default();
        let table = Arc::clone(&routes);
        let task = tokio::spawn(async move {
            let mut next_conn = 0u64;
            loop {
                let permit = tokio::select! {
                    p = Arc::clone(&limit).acquire_owned() => match p {
                        Ok(p) => p,
                        Err(_) => break,
                    },
                    _ = stop.changed() => break,
                };
                tokio::select! {
                    r = listener.accept() => match r {
                        Ok((stream, peer)) => {
                            let host = host.clone();
                            let stop = stop.clone();
                            next_conn += 1;
                            let conn = Conn { id: next_conn, peer, routes: Arc::clone(&table) };
                            tokio::spawn(async move {
                                if let Err(e) = serve(stream, conn, host, stop).await {
                                    tracing::debug!(error = %e, %peer, "C12.22 TCP connection closed");
                                }
                                drop(permit);
                            });
                        }
                        Err(e) => tracing::debug!(error = %e, "TCP accept failed"),
                    },
                    _ = stop.changed() => break,
                }
            }
        });
        Ok(TcpServer {
            local_addr,
            routes,
            shutdown,
            task,
        })
    }

    /// The bound address.
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// Queues a host-originated APDU (from [`crate::C1222Host::request`]) on the connection
    /// that last carried an accepted APDU of `meter`. Returns `false` if there is none open.
    pub fn send_to_meter(&self, meter: &ApTitle, bytes: Vec<u8>) -> bool {
        let routes = self.routes.lock().unwrap_or_else(PoisonError::into_inner);
        routes
            .get(meter)
            .is_some_and(|(_, tx)| tx.send(bytes).is_ok())
    }

    /// Stops accepting (open connections end at their next read) and waits.
    pub async fn shutdown(self) {
        let _ = self.shutdown.send(true);
        let _ = self.task.await;
    }
}

/// Splits the next complete APDU off the front of `buf`, if there is one.
///
/// # Errors
/// `InvalidData` when the stream is not C12.22 or the frame is over [`MAX_FRAME`].
pub fn next_frame(buf: &mut Vec<u8>) -> io::Result<Option<Vec<u8>>> {
    match AcseApdu::frame_len(buf) {
        Ok(Some(n)) if n > MAX_FRAME => Err(io::Error::new(
            io::ErrorKind::InvalidData,
            "C12.22 frame too large",
        )),
        Ok(Some(n)) if buf.len() >= n => {
            let rest = buf.split_off(n);
            Ok(Some(std::mem::replace(buf, rest)))
        }
        Ok(_) => Ok(None),
        Err(e) => Err(io::Error::new(io::ErrorKind::InvalidData, e)),
    }
}

struct Conn {
    id: u64,
    peer: SocketAddr,
    routes: Routes,
}

impl Drop for Conn {
    fn drop(&mut self) {
        let mut routes = self.routes.lock().unwrap_or_else(PoisonError::into_inner);
        routes.retain(|_, (id, _)| *id != self.id);
    }
}

async fn serve<R>(
    mut stream: TcpStream,
    conn: Conn,
    host: SharedHost<R>,
    mut stop: watch::Receiver<bool>,
) -> io::Result<()>
where
    R: RngCore + CryptoRng + Send + 'static,
{
    let (tx, mut outbound) = mpsc::unbounded_channel::<Vec<u8>>();
    let mut buf = Vec::with_capacity(4096);
    let mut chunk = vec![0u8; 8192];
    loop {
        while let Some(frame) = next_frame(&mut buf)? {
            let now = tokio::time::Instant::now().into_std();
            let reply = host.with(|h| h.handle_apdu(conn.peer, &frame, now));
            if let Ok(reply) = reply {
                {
                    let mut routes = conn.routes.lock().unwrap_or_else(PoisonError::into_inner);
                    routes.insert(reply.meter.clone(), (conn.id, tx.clone()));
                }
                if let Some(b) = reply.bytes {
                    stream.write_all(&b).await?;
                }
            }
        }
        let n = tokio::select! {
            r = stream.read(&mut chunk) => r?,
            Some(out) = outbound.recv() => {
                stream.write_all(&out).await?;
                continue;
            }
            _ = stop.changed() => return Ok(()),
        };
        if n == 0 {
            return Ok(());
        }
        buf.extend_from_slice(chunk.get(..n).unwrap_or_default());
    }
}
