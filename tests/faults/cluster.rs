//! A private PostgreSQL cluster: `initdb` in a temporary directory, started with `pg_ctl` on
//! a free port of its own, so a test may restart it without touching the machine's shared
//! server. As root, the server runs as the `postgres` user (PostgreSQL refuses root).

use std::path::PathBuf;
use std::process::Command;

pub struct Cluster {
    dir: PathBuf,
    port: u16,
    as_postgres: bool,
}

fn bin(name: &str) -> String {
    // Debian keeps the server tools out of PATH.
    for dir in std::fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .flatten()
    {
        let candidate = dir.path().join("bin").join(name);
        if candidate.exists() {
            return candidate.display().to_string();
        }
    }
    name.to_owned()
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
        .unwrap_or(false)
}

impl Cluster {
    fn run(&self, program: &str, args: &[&str]) {
        let status = if self.as_postgres {
            Command::new("runuser")
                .args(["-u", "postgres", "--", &bin(program)])
                .args(args)
                .status()
        } else {
            Command::new(bin(program)).args(args).status()
        }
        .unwrap_or_else(|e| panic!("{program}: {e}"));
        assert!(status.success(), "{program} {args:?} failed");
    }

    pub async fn start() -> Self {
        let port = {
            let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            listener.local_addr().unwrap().port()
        };
        let dir = std::env::temp_dir().join(format!("scimbus-faults-pg-{}", uuid::Uuid::new_v4()));
        std::fs::create_dir_all(&dir).unwrap();
        let as_postgres = is_root();
        if as_postgres {
            let status = Command::new("chown")
                .args(["-R", "postgres:postgres", &dir.display().to_string()])
                .status()
                .unwrap();
            assert!(status.success());
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
        );
        cluster.pg_ctl("start");
        cluster.run(
            "psql",
            &[
                "-h",
                "127.0.0.1",
                "-p",
                &port.to_string(),
                "-U",
                "postgres",
                "-qc",
                "CREATE DATABASE scimbus",
            ],
        );
        cluster
    }

    fn data(&self) -> String {
        self.dir.join("data").display().to_string()
    }

    fn pg_ctl(&self, action: &str) {
        let options = format!(
            "-p {} -k {} -c listen_addresses=127.0.0.1 -c fsync=off",
            self.port,
            self.dir.display()
        );
        let log = self.dir.join("server.log").display().to_string();
        let data = self.data();
        let mut args = vec![
            "-D",
            data.as_str(),
            "-o",
            options.as_str(),
            "-l",
            log.as_str(),
            "-w",
        ];
        if action == "stop" {
            // Fast: open connections are cut, as in a crash or a failover.
            args.extend(["-m", "fast"]);
        }
        args.push(action);
        self.run("pg_ctl", &args);
    }

    pub fn url(&self) -> String {
        format!("postgres://postgres@127.0.0.1:{}/scimbus", self.port)
    }

    /// Stops the server (fast: connections are cut) and starts it again.
    pub async fn restart(&self) {
        let cluster = Self {
            dir: self.dir.clone(),
            port: self.port,
            as_postgres: self.as_postgres,
        };
        tokio::task::spawn_blocking(move || {
            cluster.pg_ctl("stop");
            cluster.pg_ctl("start");
            std::mem::forget(cluster);
        })
        .await
        .unwrap();
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| self.pg_ctl("stop")));
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
