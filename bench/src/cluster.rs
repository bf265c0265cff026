//! The benchmark's own PostgreSQL cluster: `initdb` in a temporary directory, started on a
//! free port with `pg_stat_statements` preloaded and a CSV statement log, so that the SQL
//! scimbus issues can be captured (role `capture`, which logs every statement) and
//! counted (`pg_stat_statements`) without touching the machine's shared server. As root the
//! server runs as the `postgres` user (PostgreSQL refuses root). Both sides of every
//! comparison run against this one cluster with the same settings.

use anyhow::{Context, bail};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

pub struct Cluster {
    pub dir: PathBuf,
    pub port: u16,
    as_postgres: bool,
}

/// A PostgreSQL server program: Debian keeps them out of `PATH`.
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

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
        .unwrap_or(false)
}

pub fn free_port() -> anyhow::Result<u16> {
    let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
    Ok(listener.local_addr()?.port())
}

impl Cluster {
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

    pub fn start() -> anyhow::Result<Self> {
        let port = free_port()?;
        let dir = std::env::temp_dir().join(format!("scimbus-bench-pg-{}", uuid::Uuid::new_v4()));
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
        let cluster = Self {
            dir,
            port,
            as_postgres,
        };
        let data = cluster.data();
        cluster.run(
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
        let options = [
            format!("-p {port}"),
            format!("-k {}", cluster.dir.display()),
            "-c listen_addresses=127.0.0.1".into(),
            "-c max_connections=200".into(),
            "-c shared_buffers=512MB".into(),
            // Vacuum runs between phases (Bench::quiesce), not in the middle of one.
            "-c autovacuum=off".into(),
            "-c shared_preload_libraries=pg_stat_statements".into(),
            "-c pg_stat_statements.max=10000".into(),
            "-c logging_collector=on".into(),
            "-c log_destination=csvlog".into(),
            "-c log_directory=log".into(),
            "-c log_filename=pg".into(),
        ]
        .join(" ");
        let log = cluster.dir.join("server.log").display().to_string();
        cluster.run(
            "pg_ctl",
            &["-D", &data, "-o", &options, "-l", &log, "-w", "start"],
        )?;
        cluster.psql_as("postgres", "postgres", "CREATE DATABASE scimbus")?;
        cluster.psql_as(
            "postgres",
            "scimbus",
            "CREATE EXTENSION pg_stat_statements; \
             CREATE ROLE capture SUPERUSER LOGIN; \
             ALTER ROLE capture SET log_statement = 'all'",
        )?;
        Ok(cluster)
    }

    fn data(&self) -> String {
        self.dir.join("data").display().to_string()
    }

    pub fn url(&self, role: &str) -> String {
        self.url_of(role, "scimbus")
    }

    /// The URL of database `db` (the many-tenants variant has a database of its own).
    pub fn url_of(&self, role: &str, db: &str) -> String {
        format!("postgres://{role}@127.0.0.1:{}/{db}", self.port)
    }

    /// The CSV statement log.
    pub fn csv_log(&self) -> PathBuf {
        self.dir.join("data").join("log").join("pg.csv")
    }

    pub fn postmaster_pid(&self) -> Option<u32> {
        let text = std::fs::read_to_string(self.dir.join("data").join("postmaster.pid")).ok()?;
        text.lines().next()?.trim().parse().ok()
    }

    /// Runs SQL on the bench database as `postgres` (see [`Cluster::psql_as`]).
    pub fn query(&self, sql: &str) -> anyhow::Result<String> {
        self.psql_as("postgres", "scimbus", sql)
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
                &self.port.to_string(),
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
        let data = self.data();
        let _ = self.run("pg_ctl", &["-D", &data, "-m", "fast", "-w", "stop"]);
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
