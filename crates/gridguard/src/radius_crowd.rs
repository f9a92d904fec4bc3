//! `gridguard radius-crowd`: a crowd of simulated meters authenticating with EAP-PSK over RADIUS against the
//! local AAA server, all in one process on loopback.

use std::net::{Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::time::{Duration, Instant};

use gridguard_eap::{MemoryCredentials, Psk};
use gridguard_radius::{serve, AsyncClient, ClientConfig, Server, ServerConfig};
use indicatif::{ProgressBar, ProgressStyle};
use rand::rngs::OsRng;
use rand::RngCore;
use tokio::net::UdpSocket;
use tokio::sync::{oneshot, Semaphore};

use crate::aaa::EapAaa;
use crate::eap_client;

/// What the demo measured.
#[derive(Debug, Clone)]
pub struct DemoReport {
    /// Meters that tried.
    pub meters: usize,
    /// Authentications that succeeded with the server's MSK equal to the meter's.
    pub succeeded: usize,
    /// Authentications that failed.
    pub failed: usize,
    /// Wall-clock time for the whole crowd.
    pub elapsed: Duration,
}

impl DemoReport {
    /// Authentications per second.
    pub fn rate(&self) -> f64 {
        self.meters as f64 / self.elapsed.as_secs_f64().max(1e-9)
    }
}

/// Runs `meters` authentications, at most `concurrency` at a time, against an in-process server.
pub async fn run(meters: usize, concurrency: usize, progress: bool) -> anyhow::Result<DemoReport> {
    let secret = {
        let mut s = [0u8; 16];
        OsRng.fill_bytes(&mut s);
        hex::encode(s).into_bytes()
    };
    let mut credentials = MemoryCredentials::new();
    let mut fleet = Vec::with_capacity(meters);
    for i in 0..meters {
        let mut key = [0u8; 16];
        OsRng.fill_bytes(&mut key);
        let identity = format!("meter-{i:07}");
        credentials.insert(identity.clone(), Psk::new(key));
        fleet.push((identity, Psk::new(key)));
    }
    let aaa = EapAaa::psk(b"gridguard-demo", Arc::new(credentials))?;
    let socket = UdpSocket::bind((Ipv4Addr::LOCALHOST, 0)).await?;
    let server_addr: SocketAddr = socket.local_addr()?;
    let (stop, stopped) = oneshot::channel::<()>();
    let server = tokio::spawn(serve(
        socket,
        Server::new(secret.as_slice(), aaa, ServerConfig::default()),
        async {
            let _ = stopped.await;
        },
    ));

    // One RADIUS client (one socket, 256 identifiers) per 200 meters in flight.
    let concurrency = concurrency.max(1);
    let mut clients = Vec::new();
    for _ in 0..concurrency.div_ceil(200) {
        clients.push(
            AsyncClient::connect(server_addr, secret.as_slice(), ClientConfig::default()).await?,
        );
    }
    let bar = if progress {
        ProgressBar::new(meters as u64)
    } else {
        ProgressBar::hidden()
    };
    bar.set_style(ProgressStyle::with_template(
        "{bar:40} {pos}/{len} meters authenticated ({per_sec})",
    )?);
    let permits = Arc::new(Semaphore::new(concurrency));
    let started = Instant::now();
    let mut tasks = Vec::with_capacity(meters);
    for (i, (identity, psk)) in fleet.into_iter().enumerate() {
        let permit = permits.clone().acquire_owned().await?;
        let client = clients
            .get(i % clients.len())
            .cloned()
            .ok_or_else(|| anyhow::anyhow!("no client"))?;
        let bar = bar.clone();
        tasks.push(tokio::spawn(async move {
            let outcome = eap_client::authenticate(&client, identity.as_bytes(), &psk).await;
            drop(permit);
            bar.inc(1);
            matches!(outcome, Ok(o) if o.msk_agrees())
        }));
    }
    let mut succeeded = 0;
    for task in tasks {
        if task.await? {
            succeeded += 1;
        }
    }
    let elapsed = started.elapsed();
    bar.finish();
    let _ = stop.send(());
    server.await??;
    Ok(DemoReport {
        meters,
        succeeded,
        failed: meters - succeeded,
        elapsed,
    })
}
