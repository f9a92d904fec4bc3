//! The gridguard command-line tool: servers, clients and the demo.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use anyhow::Context;
use clap::{Parser, Subcommand};
use gridguard::aaa::{EapAaa, Outcome};
use gridguard::{eap_client, radius_crowd, udp_driver};
use gridguard_eap::{MemoryCredentials, Psk};
use gridguard_radius::{AsyncClient, ClientConfig, Server, ServerConfig};
use rand::rngs::StdRng;
use rand::SeedableRng;

#[derive(Parser)]
#[command(
    name = "gridguard",
    version,
    about = "Security stack for smart-meter networks"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    #[command(flatten)]
    Pana(gridguard::pana_cli::PanaCommand),
    #[command(flatten)]
    Vault(gridguard::vault_cli::VaultCommand),
    #[command(flatten)]
    Amso(gridguard::amso_cli::AmsoCommand),
    /// Authenticate a crowd of simulated meters with EAP-PSK over RADIUS against an
    /// in-process AAA server on loopback.
    RadiusCrowd {
        /// Number of simulated meters.
        #[arg(long, default_value_t = 1000)]
        meters: usize,
        /// Authentications in flight at once (beyond ~100 a burst overflows the default loopback
        /// socket buffers and RADIUS retransmission, 2 s, has to recover the lost datagrams).
        #[arg(long, default_value_t = 64)]
        concurrency: usize,
    },
    /// Run our EAP-PSK server behind a RADIUS listener (a AAA server).
    EapServer {
        /// Address to listen on.
        #[arg(long, default_value = "127.0.0.1:1812")]
        listen: SocketAddr,
        /// RADIUS shared secret.
        #[arg(long)]
        secret: String,
        /// Credential file: one meter a line, `IDENTITY HEXPSK`.
        #[arg(long)]
        credentials: PathBuf,
        /// The server identity ID_S.
        #[arg(long, default_value = "gridguard")]
        server_id: String,
        /// Do not print a line per authentication.
        #[arg(long)]
        quiet: bool,
        /// Benchmark anchor: no RADIUS at all, answer every datagram with its own bytes through
        /// the same UDP loop (what the system calls and the loopback path alone cost).
        #[arg(long)]
        echo: bool,
    },
    /// Authenticate as a meter (EAP-PSK peer) through RADIUS.
    EapClient {
        /// The RADIUS server.
        #[arg(long)]
        radius: SocketAddr,
        /// RADIUS shared secret.
        #[arg(long)]
        secret: String,
        /// The meter identity (ID_P), as UTF-8.
        #[arg(long)]
        identity: String,
        /// The 16-byte PSK as 32 hexadecimal digits.
        #[arg(long)]
        psk: String,
        /// Print `MSK <hex>` and `EMSK <hex>` on success.
        #[arg(long)]
        print_keys: bool,
        /// Authenticate this many times (for load tests); prints a summary.
        #[arg(long, default_value_t = 1)]
        count: usize,
        /// Authentications in flight at once with --count.
        #[arg(long, default_value_t = 1)]
        concurrency: usize,
        /// Benchmark anchor, against `eap-server --echo`: instead of authenticating, send
        /// 3 x --count plain datagrams of a typical RADIUS size, --concurrency in flight, and
        /// wait for each echo (the same number of round trips as --count authentications).
        #[arg(long)]
        echo: bool,
    },
}

fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .with_writer(std::io::stderr)
        .init();
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(cli.command)) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

async fn run(command: Command) -> anyhow::Result<ExitCode> {
    match command {
        Command::Pana(pana) => gridguard::pana_cli::run(pana).await,
        Command::Vault(vault) => {
            tokio::task::spawn_blocking(move || gridguard::vault_cli::run(vault)).await?
        }
        Command::Amso(command) => gridguard::amso_cli::run(command).await,
        Command::RadiusCrowd {
            meters,
            concurrency,
        } => {
            let report = radius_crowd::run(meters, concurrency, true).await?;
            println!(
                "{} of {} meters authenticated (EAP-PSK over RADIUS, MSK checked) in {:.2} s: {:.0} authentications/s; {} failed",
                report.succeeded,
                report.meters,
                report.elapsed.as_secs_f64(),
                report.rate(),
                report.failed
            );
            Ok(if report.failed == 0 {
                ExitCode::SUCCESS
            } else {
                ExitCode::FAILURE
            })
        }
        Command::EapServer {
            listen,
            secret,
            credentials,
            server_id,
            quiet,
            echo,
        } => {
            let text = std::fs::read_to_string(&credentials)
                .with_context(|| format!("reading {}", credentials.display()))?;
            let table = MemoryCredentials::parse(&text)
                .with_context(|| format!("in {}", credentials.display()))?;
            let meters = table.len();
            let mut aaa = EapAaa::psk(server_id.as_bytes(), Arc::new(table))?;
            if !quiet {
                aaa = aaa.on_outcome(|outcome| match outcome {
                    Outcome::Accepted { identity } => {
                        println!("accept {}", String::from_utf8_lossy(&identity))
                    }
                    Outcome::Rejected { identity, reason } => println!(
                        "reject {}: {reason}",
                        identity
                            .map(|i| String::from_utf8_lossy(&i).into_owned())
                            .unwrap_or_default()
                    ),
                });
            }
            let socket =
                std::net::UdpSocket::bind(listen).with_context(|| format!("binding {listen}"))?;
            println!("listening on {} with {meters} meters", socket.local_addr()?);
            let stop = Arc::new(AtomicBool::new(false));
            let flag = stop.clone();
            if echo {
                let worker =
                    tokio::task::spawn_blocking(move || udp_driver::echo_blocking(&socket, &flag));
                tokio::signal::ctrl_c().await?;
                stop.store(true, Ordering::Relaxed);
                worker.await??;
                return Ok(ExitCode::SUCCESS);
            }
            let worker = tokio::task::spawn_blocking(move || {
                // MPPE salts from a user-space CSPRNG seeded once by the OS: no system call per reply.
                let mut server = Server::with_rng(
                    secret.as_str(),
                    aaa,
                    ServerConfig::default(),
                    StdRng::from_entropy(),
                );
                udp_driver::serve_blocking(&socket, &mut server, &flag).map(|()| server)
            });
            tokio::signal::ctrl_c().await?;
            stop.store(true, Ordering::Relaxed);
            let server = worker.await??;
            let stats = server.handler().stats();
            println!(
                "accepted {} rejected {} discarded {}",
                stats.accepted, stats.rejected, stats.discarded
            );
            Ok(ExitCode::SUCCESS)
        }
        Command::EapClient {
            radius,
            secret,
            identity,
            psk,
            print_keys,
            count,
            concurrency,
            echo,
        } => {
            if echo {
                return echo_load(radius, count, concurrency).await;
            }
            let psk = Psk::from_hex(&psk)?;
            let client =
                AsyncClient::connect(radius, secret.as_str(), ClientConfig::default()).await?;
            if count > 1 {
                return load(client, identity, psk, count, concurrency).await;
            }
            let outcome = eap_client::authenticate(&client, identity.as_bytes(), &psk).await?;
            match &outcome.result {
                Ok(keys) if outcome.msk_agrees() => {
                    println!(
                        "success: authenticated in {} round trips; the MS-MPPE keys carry our MSK",
                        outcome.round_trips
                    );
                    if print_keys {
                        println!("MSK {}", hex::encode(keys.msk()));
                        println!("EMSK {}", hex::encode(keys.emsk()));
                    }
                    Ok(ExitCode::SUCCESS)
                }
                Ok(_) => {
                    println!(
                        "failure: the server's MS-MPPE keys do not carry the MSK this peer derived"
                    );
                    Ok(ExitCode::FAILURE)
                }
                Err(reason) => {
                    println!("failure: {reason}");
                    Ok(ExitCode::FAILURE)
                }
            }
        }
    }
}

async fn load(
    client: AsyncClient,
    identity: String,
    psk: Psk,
    count: usize,
    concurrency: usize,
) -> anyhow::Result<ExitCode> {
    let permits = Arc::new(tokio::sync::Semaphore::new(concurrency.max(1)));
    let started = std::time::Instant::now();
    let mut tasks = Vec::with_capacity(count);
    for _ in 0..count {
        let permit = permits.clone().acquire_owned().await?;
        let (client, identity, psk) = (client.clone(), identity.clone(), psk.clone());
        tasks.push(tokio::spawn(async move {
            let outcome = eap_client::authenticate(&client, identity.as_bytes(), &psk).await;
            drop(permit);
            matches!(outcome, Ok(o) if o.msk_agrees())
        }));
    }
    let mut ok = 0usize;
    for task in tasks {
        ok += usize::from(task.await?);
    }
    let elapsed = started.elapsed().as_secs_f64();
    println!(
        "{ok} of {count} succeeded in {elapsed:.3} s ({:.0}/s)",
        count as f64 / elapsed.max(1e-9)
    );
    Ok(if ok == count {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

/// Round trips of one EAP-PSK authentication through RADIUS.
const ROUND_TRIPS_PER_AUTHENTICATION: usize = 3;
/// Size of each echo datagram: about an EAP-PSK Access-Request.
const ECHO_DATAGRAM_LEN: usize = 128;

/// The echo anchor's load: `count` x 3 round trips, `concurrency` in flight on one socket.
async fn echo_load(
    server: SocketAddr,
    count: usize,
    concurrency: usize,
) -> anyhow::Result<ExitCode> {
    let socket = tokio::net::UdpSocket::bind(match server {
        SocketAddr::V4(_) => SocketAddr::from(([127, 0, 0, 1], 0)),
        SocketAddr::V6(_) => SocketAddr::from((std::net::Ipv6Addr::LOCALHOST, 0)),
    })
    .await?;
    socket.connect(server).await?;
    let socket = Arc::new(socket);
    let total = count.saturating_mul(ROUND_TRIPS_PER_AUTHENTICATION);
    let lanes = concurrency.clamp(1, total.max(1));
    let started = std::time::Instant::now();
    let mut tasks = Vec::with_capacity(lanes);
    for lane in 0..lanes {
        let socket = socket.clone();
        let rounds = total / lanes + usize::from(lane < total % lanes);
        tasks.push(tokio::spawn(async move {
            let datagram = [0x5au8; ECHO_DATAGRAM_LEN];
            let mut buf = [0u8; 2 * ECHO_DATAGRAM_LEN];
            let mut answered = 0usize;
            for _ in 0..rounds {
                socket.send(&datagram).await?;
                // Echoes are interchangeable: any one answers any lane.
                let wait =
                    tokio::time::timeout(std::time::Duration::from_secs(1), socket.recv(&mut buf));
                if matches!(wait.await, Ok(Ok(_))) {
                    answered += 1;
                }
            }
            anyhow::Ok(answered)
        }));
    }
    let mut answered = 0usize;
    for task in tasks {
        answered += task.await??;
    }
    let elapsed = started.elapsed().as_secs_f64();
    println!(
        "{answered} of {total} echoed in {elapsed:.3} s ({:.0} round trips/s)",
        total as f64 / elapsed.max(1e-9)
    );
    Ok(if answered == total {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}
