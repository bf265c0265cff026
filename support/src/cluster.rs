//! A private PostgreSQL cluster: `initdb` in a temporary directory, started with `pg_ctl` on a
//! free port of its own with the caller's settings, so a test may restart it and a bench may
//! tune and log it without touching the machine's shared server. As root the server runs as
//! the `postgres` user (PostgreSQL refuses root). Its database `scimbus` exists from the start.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use anyhow::{Context, bail};

/// The database every cluster starts with.
pub const DATABASE: &str = "scimbus";

/// A PostgreSQL server program, the newest installed: Debian keeps them out of `PATH`.
pub fn bin(name: &str) -> String {
    let mut found: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .flatten()
        .map(|d| d.path().join("bin").join(name))
        .filter(|p| p.exists())
        .collect();
    found.sort();
    found
        .pop()
        .map(|p| p.display().to_string())
        .unwrap_or_else(|| name.to_owned())
}

/// A free TCP port on 127.0.0.1 (free when asked; the caller binds it soon after).
pub fn free_port() -> anyhow::Result<u16> {
    let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
    Ok(listener.local_addr()?.port())
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
        .unwrap_or(false)
}

/// Where the server lives and how it runs: what `pg_ctl` needs, cloned into a blocking task
/// for a restart.
#[derive(Clone, Debug)]
struct Server {
    dir: PathBuf,
    port: u16,
    as_postgres: bool,
    /// `postgres` options: port, socket directory, listen address and the caller's settings.
    options: String,
}

impl Server {
    fn command(&self, program: &str) -> Command {
        if self.as_postgres {
            let mut c = Command::new("runuser");
            c.args(["-u", "postgres", "--", &bin(program)]);
            c
        } else {
            Command::new(bin(program))
        }
    }

    fn run(&self, program: &str, args: &[&str]) -> anyhow::Result<()> {
        let out = self
            .command(program)
            .args(args)
            .stdin(Stdio::null())
            .output()
            .with_context(|| format!("running {program}"))?;
        if !out.status.success() {
            bail!(
                "{program} {args:?} failed: {}{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            );
        }
        Ok(())
    }

    fn data(&self) -> String {
        self.dir.join("data").display().to_string()
    }

    fn start(&self) -> anyhow::Result<()> {
        let log = self.dir.join("server.log").display().to_string();
        let data = self.data();
        self.run(
            "pg_ctl",
            &["-D", &data, "-o", &self.options, "-l", &log, "-w", "start"],
        )
    }

    /// Fast: open connections are cut, as in a crash or a failover.
    fn stop(&self) -> anyhow::Result<()> {
        let data = self.data();
        self.run("pg_ctl", &["-D", &data, "-m", "fast", "-w", "stop"])
    }
}

/// A running private cluster; stopped and removed when dropped.
pub struct Cluster {
    server: Server,
}

impl Cluster {
    /// `initdb`, then starts the server with `settings` (each `name=value`, passed as
    /// `-c name=value`), and creates the database [`DATABASE`].
    pub fn start(settings: &[&str]) -> anyhow::Result<Self> {
        let port = free_port()?;
        let dir = std::env::temp_dir().join(format!("scimbus-pg-{}", uuid::Uuid::new_v4()));
        std::fs::create_dir_all(&dir)?;
        let as_postgres = is_root();
        if as_postgres {
            let status = Command::new("chown")
                .args(["-R", "postgres:postgres", &dir.display().to_string()])
                .status()?;
            if !status.success() {
                bail!("chown of {} failed", dir.display());
            }
        }
        let mut options = vec![
            format!("-p {port}"),
            format!("-k {}", dir.display()),
            "-c listen_addresses=127.0.0.1".to_owned(),
        ];
        options.extend(settings.iter().map(|s| format!("-c {s}")));
        let cluster = Self {
            server: Server {
                dir,
                port,
                as_postgres,
                options: options.join(" "),
            },
        };
        let data = cluster.server.data();
        cluster.server.run(
            "initdb",
            &[
                "-D",
                &data,
                "-A",
                "trust",
                "-U",
                "postgres",
                "--no-sync",
                "-E",
                "UTF8",
            ],
        )?;
        cluster.server.start()?;
        cluster.psql_as(
            "postgres",
            "postgres",
            &format!("CREATE DATABASE {DATABASE}"),
        )?;
        Ok(cluster)
    }

    /// The cluster's temporary directory (data directory, socket, server log).
    pub fn dir(&self) -> &Path {
        &self.server.dir
    }

    pub fn port(&self) -> u16 {
        self.server.port
    }

    /// The URL of [`DATABASE`] as `postgres`.
    pub fn url(&self) -> String {
        self.url_of("postgres", DATABASE)
    }

    /// The URL of [`DATABASE`] as `role`.
    pub fn url_as(&self, role: &str) -> String {
        self.url_of(role, DATABASE)
    }

    /// The URL of database `db` as `role`.
    pub fn url_of(&self, role: &str, db: &str) -> String {
        format!("postgres://{role}@127.0.0.1:{}/{db}", self.server.port)
    }

    /// The CSV statement log, when the cluster was started with `log_destination=csvlog`,
    /// `log_directory=log` and `log_filename=pg`.
    pub fn csv_log(&self) -> PathBuf {
        self.server.dir.join("data").join("log").join("pg.csv")
    }

    pub fn postmaster_pid(&self) -> Option<u32> {
        let text =
            std::fs::read_to_string(self.server.dir.join("data").join("postmaster.pid")).ok()?;
        text.lines().next()?.trim().parse().ok()
    }

    /// Stops the server (fast: connections are cut) and starts it again.
    pub async fn restart(&self) -> anyhow::Result<()> {
        let server = self.server.clone();
        tokio::task::spawn_blocking(move || {
            server.stop()?;
            server.start()
        })
        .await?
    }

    /// Runs SQL on [`DATABASE`] as `postgres` (see [`Cluster::psql_as`]).
    pub fn query(&self, sql: &str) -> anyhow::Result<String> {
        self.psql_as("postgres", DATABASE, sql)
    }

    /// Runs SQL through `psql` as `role` on `db`; returns unaligned, tuples-only output.
    pub fn psql_as(&self, role: &str, db: &str, sql: &str) -> anyhow::Result<String> {
        let out = Command::new(bin("psql"))
            .args([
                "-X",
                "-q",
                "-A",
                "-t",
                "-v",
                "ON_ERROR_STOP=1",
                "-h",
                "127.0.0.1",
                "-p",
                &self.server.port.to_string(),
                "-U",
                role,
                "-d",
                db,
                "-c",
                sql,
            ])
            .stdin(Stdio::null())
            .output()
            .context("running psql")?;
        if !out.status.success() {
            bail!(
                "psql failed: {}\n{}",
                String::from_utf8_lossy(&out.stderr),
                sql.chars().take(400).collect::<String>()
            );
        }
        Ok(String::from_utf8_lossy(&out.stdout).trim().to_owned())
    }

    /// `COPY (query) TO STDOUT (FORMAT csv)` into a file.
    pub fn copy_out(&self, query: &str, file: &Path) -> anyhow::Result<()> {
        let sql = format!("\\copy ({query}) TO '{}' WITH (FORMAT csv)", file.display());
        self.query(&sql)?;
        Ok(())
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        let _ = self.server.stop();
        let _ = std::fs::remove_dir_all(&self.server.dir);
    }
}
