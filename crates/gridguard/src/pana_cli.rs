//! The PANA subcommands of the `gridguard` tool: `serve`, `meter`, `simulate` and `inspect`.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use clap::Subcommand;
use gridguard_eap::{MemoryCredentials, Psk};
use gridguard_pana::PaaConfig;

use crate::inspect::c1222::{keylog_c1222_keys, MacCheck};
use crate::inspect::{inspect_file_with, AuthCheck, InspectKeys};
use crate::pana_paa::{
    bind_udp, resident_bytes, serve, BackendConfig, PaaAction, PaaOptions, ServeEvent,
};
use crate::pana_pac::{run_meter, MeterAction, MeterEvent, MeterOptions};
use crate::simulate::{credentials_text, simulate, SimulateOptions};

/// The PANA subcommands.
#[derive(Subcommand, Debug)]
pub enum PanaCommand {
    /// Run the PANA agent (PAA) on UDP, with a local EAP-PSK server or RADIUS pass-through.
    Serve {
        /// Address to listen on.
        #[arg(long, default_value = "127.0.0.1:716")]
        listen: SocketAddr,
        /// Credential file for the local EAP-PSK server: one meter a line, `IDENTITY HEXPSK`.
        #[arg(long, conflicts_with = "radius", required_unless_present = "radius")]
        credentials: Option<PathBuf>,
        /// Pass EAP through to this RADIUS AAA server instead.
        #[arg(long, requires = "secret")]
        radius: Option<SocketAddr>,
        /// RADIUS shared secret.
        #[arg(long)]
        secret: Option<String>,
        /// The local EAP server's identity ID_S.
        #[arg(long, default_value = "gridguard")]
        server_id: String,
        /// Session lifetime granted to meters, in seconds.
        #[arg(long, default_value_t = 3600)]
        lifetime: u64,
        /// Ping every session this many seconds after it was established.
        #[arg(long)]
        ping_after: Option<f64>,
        /// Re-authenticate every session this many seconds after it was established.
        #[arg(long)]
        reauth_after: Option<f64>,
        /// Terminate every session this many seconds after it was established.
        #[arg(long)]
        terminate_after: Option<f64>,
        /// Do not print a line per session event.
        #[arg(long)]
        quiet: bool,
    },
    /// Run one meter (PANA client with EAP-PSK) through its whole life.
    Meter {
        /// The meter identity, as UTF-8.
        #[arg(long)]
        identity: String,
        /// The 16-byte PSK as 32 hexadecimal digits.
        #[arg(long)]
        psk: String,
        /// The PAA.
        #[arg(long, default_value = "127.0.0.1:716")]
        paa: SocketAddr,
        /// Stop after the first authentication (and the actions below).
        #[arg(long)]
        once: bool,
        /// Start a re-authentication this many seconds before the lifetime ends.
        #[arg(long, default_value_t = 10)]
        reauth_margin: u64,
        /// Ping this many seconds after the session was established.
        #[arg(long)]
        ping_after: Option<f64>,
        /// Ask for a re-authentication this many seconds after the session was established.
        #[arg(long)]
        reauth_after: Option<f64>,
        /// Terminate the session this many seconds after it was established.
        #[arg(long)]
        terminate_after: Option<f64>,
        /// Print `MSK <hex>` for every authentication (an explicit key log, for Wireshark
        /// or `gridguard inspect --msk`; never use it in the field).
        #[arg(long)]
        print_keys: bool,
        /// Append `MSK <hex>` for every authentication to this file (an opt-in key log for
        /// `gridguard inspect --keylog`; never use it in the field).
        #[arg(long)]
        keylog: Option<PathBuf>,
    },
    /// Authenticate N simulated meters against a head-end over loopback UDP.
    Simulate {
        /// Number of meters.
        #[arg(long, default_value_t = 1000)]
        meters: usize,
        /// An external PAA (run `gridguard serve --credentials` with the file written by
        /// --write-credentials); without it a head-end runs in this process.
        #[arg(long)]
        paa: Option<SocketAddr>,
        /// Datagram loss in percent, each direction.
        #[arg(long, default_value_t = 0.0)]
        loss: f64,
        /// Sockets the meters are spread over.
        #[arg(long, default_value_t = 1024)]
        sockets: usize,
        /// Authentications in flight at once.
        #[arg(long, default_value_t = 4096)]
        concurrency: usize,
        /// Session lifetime of the in-process head-end, in seconds.
        #[arg(long, default_value_t = 3600)]
        lifetime: u64,
        /// Keep the sessions running this many seconds after all are established.
        #[arg(long, default_value_t = 0)]
        hold: u64,
        /// Give up after this many seconds.
        #[arg(long, default_value_t = 300)]
        timeout: u64,
        /// Seed of the meters' PSKs and of the loss.
        #[arg(long, default_value_t = 1)]
        seed: u64,
        /// Cap the retransmission interval at this many seconds (REQ_MRT of the in-process
        /// PAA and of the meters, PCI_MRT of the meters); RFC 5191's defaults otherwise.
        #[arg(long)]
        max_rt: Option<f64>,
        /// Only write the simulated meters' credentials to this file and exit.
        #[arg(long)]
        write_credentials: Option<PathBuf>,
    },
    /// Print every PANA, EAP, RADIUS and C12.22 message of a pcap/pcapng capture, one line
    /// each, verifying PANA AUTH AVPs and C12.22 MACs with the keys given.
    Inspect {
        /// The capture file.
        capture: PathBuf,
        /// An MSK (hex) to verify AUTH AVPs with; repeat for re-authentications.
        #[arg(long)]
        msk: Vec<String>,
        /// A key log; repeat for several files. `MSK <hex>` lines (`gridguard meter
        /// --keylog`) verify PANA AUTH AVPs; `"<key id>",<key>` lines (the UKMF key log,
        /// `GRIDGUARD_KEYLOG`, Wireshark's c1222_decryption_table format) verify and decrypt
        /// C12.22 messages; `#` lines and anything else are skipped.
        #[arg(long)]
        keylog: Vec<PathBuf>,
        /// Base OID for relative C12.22 AP titles (like Wireshark's c1222.baseoid), dotted.
        #[arg(long)]
        c1222_base_oid: Option<String>,
    },
}

fn seconds(s: Option<f64>) -> Option<Duration> {
    s.filter(|v| v.is_finite() && *v >= 0.0)
        .map(Duration::from_secs_f64)
}

async fn interrupted() {
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).ok();
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = async {
            match term.as_mut() {
                Some(t) => { t.recv().await; }
                None => std::future::pending::<()>().await,
            }
        } => {}
    }
}

/// Runs one PANA subcommand.
pub async fn run(command: PanaCommand) -> anyhow::Result<ExitCode> {
    match command {
        PanaCommand::Serve {
            listen,
            credentials,
            radius,
            secret,
            server_id,
            lifetime,
            ping_after,
            reauth_after,
            terminate_after,
            quiet,
        } => {
            let rss_start = resident_bytes().unwrap_or(0);
            let backend = match (credentials, radius, secret) {
                (Some(path), _, _) => {
                    let text = std::fs::read_to_string(&path)
                        .with_context(|| format!("reading {}", path.display()))?;
                    let table = MemoryCredentials::parse(&text)
                        .with_context(|| format!("in {}", path.display()))?;
                    BackendConfig::Local {
                        server_id: server_id.into_bytes(),
                        credentials: Arc::new(table),
                    }
                }
                (None, Some(server), Some(secret)) => BackendConfig::Radius { server, secret },
                _ => anyhow::bail!("give --credentials FILE or --radius ADDR --secret S"),
            };
            let mut actions = Vec::new();
            for (after, action) in [
                (ping_after, PaaAction::Ping),
                (reauth_after, PaaAction::Reauthenticate),
                (terminate_after, PaaAction::Terminate),
            ] {
                if let Some(d) = seconds(after) {
                    actions.push((d, action));
                }
            }
            let mut config = PaaConfig::default();
            config.session_lifetime = Duration::from_secs(lifetime);
            let socket = bind_udp(listen, 4 << 20).with_context(|| format!("binding {listen}"))?;
            println!("PAA listening on {}", socket.local_addr()?);
            let rss_before = resident_bytes().unwrap_or(0);
            let report = serve(
                socket,
                PaaOptions {
                    config,
                    backend,
                    actions,
                },
                |event| {
                    if !quiet {
                        print_serve_event(event);
                    }
                },
                interrupted(),
            )
            .await?;
            // Measured inside `serve` while the sessions were still held.
            let rss_after = report.resident_at_end.unwrap_or(0);
            println!(
                "established {} re-authenticated {} failed {} terminated {} expired {} pings {}; sessions held {}",
                report.established,
                report.reauthenticated,
                report.failed,
                report.terminated,
                report.expired,
                report.pings,
                report.sessions
            );
            let s = report.stats;
            println!(
                "dropped: malformed {} unknown-session {} bad-sequence {} bad-auth {} unexpected {}; duplicates {} retransmissions {} refused {}",
                s.malformed, s.unknown_session, s.bad_sequence, s.auth_failures, s.unexpected,
                s.duplicates, s.retransmissions, s.sessions_refused
            );
            if report.sessions > 0 {
                let growth = rss_after.saturating_sub(rss_before);
                let with_table = rss_after.saturating_sub(rss_start);
                println!(
                    "memory: RSS grew {growth} bytes for {} sessions = {:.0} bytes/session \
                     ({:.0} bytes/session counting the credential table loaded at start)",
                    report.sessions,
                    growth as f64 / report.sessions as f64,
                    with_table as f64 / report.sessions as f64
                );
                println!(
                    "memory: the PAA core keeps {} bytes inline per session (hash-table slot \
                     and boxed handshake bytes come on top)",
                    gridguard_pana::Paa::<SocketAddr, rand::rngs::StdRng>::session_inline_bytes()
                );
            }
            Ok(ExitCode::SUCCESS)
        }
        PanaCommand::Meter {
            identity,
            psk,
            paa,
            once,
            reauth_margin,
            ping_after,
            reauth_after,
            terminate_after,
            print_keys,
            keylog,
        } => {
            let psk = Psk::from_hex(&psk)?;
            let mut keylog = match keylog {
                Some(path) => {
                    tracing::warn!(path = %path.display(), "writing session keys to a key log: for debugging only");
                    Some(
                        std::fs::OpenOptions::new()
                            .create(true)
                            .append(true)
                            .open(&path)
                            .with_context(|| format!("opening key log {}", path.display()))?,
                    )
                }
                None => None,
            };
            let mut options = MeterOptions::new(paa, Duration::from_secs(reauth_margin));
            options.once = once;
            if once {
                options.pac.restart_on_loss = false;
            }
            for (after, action) in [
                (ping_after, MeterAction::Ping),
                (reauth_after, MeterAction::Reauthenticate),
                (terminate_after, MeterAction::Terminate),
            ] {
                if let Some(d) = seconds(after) {
                    options.actions.push((d, action));
                }
            }
            let summary = run_meter(
                identity.as_bytes(),
                psk,
                options,
                |event| {
                    println!("{}", event.describe());
                    if print_keys {
                        match event {
                            MeterEvent::Established { msk, .. }
                            | MeterEvent::Reauthenticated { msk, .. } => {
                                println!("MSK {}", hex::encode(msk.as_bytes()))
                            }
                            _ => {}
                        }
                    }
                    if let (
                        Some(file),
                        MeterEvent::Established { msk, .. }
                        | MeterEvent::Reauthenticated { msk, .. },
                    ) = (keylog.as_mut(), event)
                    {
                        use std::io::Write;
                        if let Err(e) = writeln!(file, "MSK {}", hex::encode(msk.as_bytes())) {
                            tracing::warn!(error = %e, "key log not written");
                        }
                    }
                },
                interrupted(),
            )
            .await?;
            println!(
                "summary: established {} re-authenticated {} failed {} pings {} terminated {}",
                summary.established,
                summary.reauthenticated,
                summary.failed,
                summary.pings,
                summary.terminated
            );
            Ok(if summary.established > 0 && summary.failed == 0 {
                ExitCode::SUCCESS
            } else {
                ExitCode::FAILURE
            })
        }
        PanaCommand::Simulate {
            meters,
            paa,
            loss,
            sockets,
            concurrency,
            lifetime,
            hold,
            timeout,
            seed,
            max_rt,
            write_credentials,
        } => {
            if let Some(path) = write_credentials {
                std::fs::write(&path, credentials_text(seed, meters))
                    .with_context(|| format!("writing {}", path.display()))?;
                println!("wrote {meters} credentials to {}", path.display());
                return Ok(ExitCode::SUCCESS);
            }
            let options = SimulateOptions {
                meters,
                paa,
                loss: (loss / 100.0).clamp(0.0, 1.0),
                sockets,
                concurrency,
                lifetime: Duration::from_secs(lifetime),
                hold: Duration::from_secs(hold),
                timeout: Duration::from_secs(timeout),
                seed,
                progress: true,
                max_rt: seconds(max_rt),
            };
            let report = simulate(options).await?;
            println!(
                "meters {} established {} re-authenticated {} failed {} never-established {}",
                report.meters,
                report.established,
                report.reauthenticated,
                report.failed,
                report.never_established
            );
            println!(
                "time to establish all: {:.2} s ({:.0} meters/s); per meter p50 {:.1} ms p99 {:.1} ms; loss {loss}%",
                report.elapsed.as_secs_f64(),
                report.rate(),
                report.p50.as_secs_f64() * 1e3,
                report.p99.as_secs_f64() * 1e3
            );
            if let Some(p) = &report.paa {
                println!(
                    "head-end: sessions {} bad-auth {} retransmissions {} duplicates {}",
                    p.sessions, p.stats.auth_failures, p.stats.retransmissions, p.stats.duplicates
                );
            }
            Ok(if report.never_established == 0 && report.failed == 0 {
                ExitCode::SUCCESS
            } else {
                ExitCode::FAILURE
            })
        }
        PanaCommand::Inspect {
            capture,
            msk,
            keylog,
            c1222_base_oid,
        } => {
            let mut keys = InspectKeys {
                msks: msk
                    .iter()
                    .map(|m| hex::decode(m).context("--msk is not hexadecimal"))
                    .collect::<anyhow::Result<Vec<_>>>()?,
                ..InspectKeys::default()
            };
            for path in keylog {
                let text = zeroize::Zeroizing::new(
                    std::fs::read_to_string(&path)
                        .with_context(|| format!("reading key log {}", path.display()))?,
                );
                keys.msks.extend(keylog_msks(&text));
                keys.c1222.extend(keylog_c1222_keys(&text));
            }
            if let Some(oid) = c1222_base_oid {
                let arcs = oid
                    .split('.')
                    .map(str::parse::<u64>)
                    .collect::<Result<Vec<_>, _>>()
                    .context("--c1222-base-oid is not a dotted OID")?;
                keys.c1222_base_oid = Some(
                    gridguard_c1222::ObjectId::from_arcs(&arcs)
                        .context("--c1222-base-oid is not a valid OID")?,
                );
            }
            let checking = !keys.msks.is_empty();
            let checking_c1222 = !keys.c1222.is_empty();
            let found = inspect_file_with(&capture, keys)
                .with_context(|| format!("reading {}", capture.display()))?;
            for line in &found.lines {
                println!("{}", line.text);
            }
            let bad = found.count(AuthCheck::Bad);
            println!(
                "{} PANA, {} RADIUS messages, {} undecodable; AUTH ok {} BAD {} unchecked {}",
                found.pana,
                found.radius,
                found.undecodable,
                found.count(AuthCheck::Ok),
                bad,
                found.count(AuthCheck::Unchecked)
            );
            let mac_bad =
                found.c1222_count(|m| matches!(m, MacCheck::Bad | MacCheck::Unverifiable(_)));
            if !found.c1222.is_empty() {
                println!(
                    "{} C12.22 messages; MAC ok {} BAD {} no key {} cleartext {} unverifiable {} undecodable {}",
                    found.c1222.len(),
                    found.c1222_count(|m| *m == MacCheck::Ok),
                    found.c1222_count(|m| *m == MacCheck::Bad),
                    found.c1222_count(|m| *m == MacCheck::NoKey),
                    found.c1222_count(|m| *m == MacCheck::Cleartext),
                    found.c1222_count(|m| matches!(m, MacCheck::Unverifiable(_))),
                    found.c1222_count(|m| matches!(m, MacCheck::Undecodable(_))),
                );
            }
            Ok(
                if (checking && bad > 0) || (checking_c1222 && mac_bad > 0) {
                    ExitCode::FAILURE
                } else {
                    ExitCode::SUCCESS
                },
            )
        }
    }
}

fn print_serve_event(event: &ServeEvent) {
    match event {
        ServeEvent::Established {
            session,
            peer,
            key_id,
            identity,
            ..
        } => println!(
            "established session {session:#010x} peer {peer} key-id {key_id:#010x} identity {}",
            identity
                .as_deref()
                .map(String::from_utf8_lossy)
                .unwrap_or_default()
        ),
        ServeEvent::Reauthenticated {
            session, key_id, ..
        } => {
            println!("re-authenticated session {session:#010x} key-id {key_id:#010x}")
        }
        ServeEvent::Failed {
            session,
            reason,
            eap,
        } => println!(
            "failed session {session:#010x}: {reason:?}{}",
            eap.as_deref()
                .map(|e| format!(" (EAP: {e})"))
                .unwrap_or_default()
        ),
        ServeEvent::KeysReady { .. } => {}
        ServeEvent::Terminated { session } => println!("terminated session {session:#010x}"),
        ServeEvent::Expired { session } => println!("expired session {session:#010x}"),
        ServeEvent::PingAnswered { session } => {
            println!("ping answered session {session:#010x}")
        }
    }
}

/// The MSKs of a key log: every line `MSK <128 hex digits>`; other lines are ignored.
pub fn keylog_msks(text: &str) -> Vec<Vec<u8>> {
    text.lines()
        .filter_map(|line| line.trim().strip_prefix("MSK "))
        .filter_map(|hex| hex::decode(hex.trim()).ok())
        .filter(|msk| msk.len() == 64)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::keylog_msks;

    #[test]
    fn key_log_lines_are_read_and_others_ignored() {
        let msk = "ab".repeat(64);
        let text =
            format!("# comment\nMSK {msk}\nMSK nothex\nMSK abcd\nEMSK {msk}\n  MSK {msk}  \n");
        assert_eq!(keylog_msks(&text), vec![vec![0xab; 64], vec![0xab; 64]]);
    }
}
