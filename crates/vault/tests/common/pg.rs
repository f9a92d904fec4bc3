//! Throw-away PostgreSQL servers for tests: `initdb` in a temporary folder (run as the
//! `postgres` system user when we are root, since initdb refuses root), listening on
//! 127.0.0.1 on a free port, unix socket in the same folder, password authentication with a
//! password of its own. Stopped (`pg_ctl stop -m immediate`) and removed on drop, also when a
//! test fails.

use std::path::{Path, PathBuf};
use std::process::Command;

const BIN: &str = "/usr/lib/postgresql/15/bin";

/// Why PostgreSQL tests cannot run here, if they cannot.
pub fn unavailable() -> Option<String> {
    for tool in ["initdb", "pg_ctl", "postgres"] {
        if !Path::new(BIN).join(tool).exists() {
            return Some(format!(
                "{BIN}/{tool} not found (install Debian's postgresql-15)"
            ));
        }
    }
    if is_root()
        && Command::new("id")
            .args(["-u", "postgres"])
            .output()
            .map_or(true, |o| !o.status.success())
    {
        return Some("running as root but there is no `postgres` system user for initdb".into());
    }
    None
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
        .unwrap_or(false)
}

fn as_postgres(tool: &str) -> Command {
    let path = Path::new(BIN).join(tool);
    if is_root() {
        let mut c = Command::new("runuser");
        c.args(["-u", "postgres", "--"]).arg(path);
        c
    } else {
        Command::new(path)
    }
}

fn run(mut c: Command, what: &str) {
    let out = c.output().unwrap_or_else(|e| panic!("{what}: {e}"));
    assert!(
        out.status.success(),
        "{what} failed: {}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// One running PostgreSQL server.
pub struct PgServer {
    dir: PathBuf,
    pub port: u16,
    pub password: String,
    running: bool,
    options: String,
}

impl PgServer {
    /// Creates and starts a server; `extra` are additional `-c name=value` settings.
    pub fn start(name: &str, extra: &[&str]) -> PgServer {
        Self::start_from(name, extra, None)
    }

    /// Like `start`, but copies the data folder of `template` (a stopped, freshly initialised
    /// cluster) instead of running initdb again, then gives the server a password of its own.
    fn start_from(name: &str, extra: &[&str], template: Option<(&Path, &str)>) -> PgServer {
        let dir = std::env::temp_dir().join(format!(
            "gg-vault-pg-{name}-{}-{}",
            std::process::id(),
            free_port()
        ));
        std::fs::create_dir_all(&dir).unwrap();
        let password = format!("pw-{name}-{}", free_port());
        std::fs::write(dir.join("pwfile"), &password).unwrap();
        if is_root() {
            run(
                {
                    let mut c = Command::new("chown");
                    c.args(["-R", "postgres:postgres"]).arg(&dir);
                    c
                },
                "chown",
            );
        }
        let mut server = PgServer {
            dir: dir.clone(),
            port: free_port(),
            password,
            running: false,
            options: String::new(),
        };
        match template {
            None => {
                let mut init = as_postgres("initdb");
                init.arg("-D")
                    .arg(dir.join("data"))
                    .args([
                        "-U",
                        "postgres",
                        "--auth=scram-sha-256",
                        "-E",
                        "UTF8",
                        "--no-sync",
                    ])
                    .arg(format!("--pwfile={}", dir.join("pwfile").display()));
                run(init, "initdb");
            }
            Some((data, _)) => {
                let mut cp = Command::new("cp");
                cp.arg("-a").arg(data).arg(dir.join("data"));
                run(cp, "cp template cluster");
            }
        }
        let mut opts = format!(
            "-c listen_addresses=127.0.0.1 -p {} -k {}",
            server.port,
            dir.display()
        );
        for e in extra {
            opts.push_str(&format!(" -c {e}"));
        }
        server.options = opts;
        server.resume();
        if let Some((_, template_password)) = template {
            let own = std::mem::replace(&mut server.password, template_password.to_string());
            server
                .client("postgres")
                .batch_execute(&format!("ALTER USER postgres PASSWORD '{own}'"))
                .unwrap();
            server.password = own;
        }
        server
    }

    /// The data folder (to scan its files).
    pub fn data_dir(&self) -> PathBuf {
        self.dir.join("data")
    }

    /// A libpq connection string for database `db`.
    pub fn conninfo(&self, db: &str) -> String {
        format!(
            "host=127.0.0.1 port={} user=postgres password={} dbname={db}",
            self.port, self.password
        )
    }

    /// A client connected to database `db`.
    pub fn client(&self, db: &str) -> postgres::Client {
        postgres::Client::connect(&self.conninfo(db), postgres::NoTls).unwrap()
    }

    /// Stops the server (fast shutdown); `resume` starts it again.
    pub fn pause(&mut self) {
        let mut c = as_postgres("pg_ctl");
        c.arg("-D")
            .arg(self.data_dir())
            .args(["-w", "-m", "fast", "stop"]);
        run(c, "pg_ctl stop");
        self.running = false;
    }

    /// Starts the server and waits until it accepts connections.
    pub fn resume(&mut self) {
        let mut c = as_postgres("pg_ctl");
        c.arg("-D")
            .arg(self.data_dir())
            .arg("-l")
            .arg(self.dir.join("log"))
            .args(["-w", "-o", &self.options, "start"]);
        run(c, "pg_ctl start");
        self.running = true;
    }
}

impl Drop for PgServer {
    fn drop(&mut self) {
        if self.running {
            let _ = as_postgres("pg_ctl")
                .arg("-D")
                .arg(self.data_dir())
                .args(["-m", "immediate", "stop"])
                .output();
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Starts `n` servers: one initdb, then copies of that fresh cluster (initdb is the slow
/// part), each with its own port and password.
pub fn start_many(n: usize, extra: &[&str]) -> Vec<PgServer> {
    let mut first = PgServer::start("s0", extra);
    if n <= 1 {
        return vec![first];
    }
    // Copy the cluster while it is stopped, so the copies are consistent.
    first.pause();
    let template = first.data_dir();
    let password = first.password.clone();
    let rest: Vec<PgServer> = std::thread::scope(|s| {
        let handles: Vec<_> = (1..n)
            .map(|i| {
                let (t, p) = (&template, &password);
                s.spawn(move || PgServer::start_from(&format!("s{i}"), extra, Some((t, p))))
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    first.resume();
    let mut all = vec![first];
    all.extend(rest);
    all
}
