//! A scimbus process (`serve` or `relay`) the bench starts on a free port, waits for until
//! it is ready, and stops gracefully.

use anyhow::{Context, bail};
use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

use crate::cluster::free_port;
use crate::load::{Conn, Req, Target};

/// A scimbus process.
pub(crate) struct Server {
    child: tokio::process::Child,
    pub(crate) addr: SocketAddr,
    pub(crate) pid: u32,
}

impl Server {
    pub(crate) async fn start(
        bin: &Path,
        command: &str,
        env: &[(String, String)],
    ) -> anyhow::Result<Self> {
        let port = free_port()?;
        let addr: SocketAddr = format!("127.0.0.1:{port}").parse()?;
        let mut c = tokio::process::Command::new(bin);
        c.arg(command)
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env("SCIMBUS_LISTEN", addr.to_string())
            .env("SCIMBUS_RATE_LIMIT", "off")
            .env("SCIMBUS_MAINTENANCE", "off")
            .env("SCIMBUS_LOG", "warn")
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null())
            .kill_on_drop(true);
        for (k, v) in env {
            c.env(k, v);
        }
        // The request journal's settings pass through, so a run can compare it on and off
        // (`SCIMBUS_JOURNAL_ENTRIES=0 sidebyside/run create-user patch-put`), and so do the
        // security event tokens' (`--set-receivers`).
        for (k, v) in std::env::vars()
            .filter(|(k, _)| k.starts_with("SCIMBUS_JOURNAL_") || k.starts_with("SCIMBUS_SET_"))
        {
            c.env(k, v);
        }
        let child = c
            .spawn()
            .with_context(|| format!("starting {}", bin.display()))?;
        let pid = child.id().context("scimbus exited at once")?;
        let server = Self { child, addr, pid };
        if command == "serve" {
            server.wait_ready().await?;
        }
        Ok(server)
    }

    async fn wait_ready(&self) -> anyhow::Result<()> {
        let probe = Req::get("ready", "/readyz".into());
        let target = Target {
            addr: self.addr,
            token: String::new(),
        };
        for _ in 0..300 {
            if let Ok(mut conn) = Conn::open(self.addr).await
                && let Ok((200, _)) = conn.send(&target, &probe).await
            {
                return Ok(());
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        bail!("scimbus on {} never became ready", self.addr)
    }

    /// SIGTERM, then wait for the graceful exit.
    pub(crate) async fn stop(mut self) -> anyhow::Result<()> {
        let _ = tokio::process::Command::new("kill")
            .args(["-TERM", &self.pid.to_string()])
            .status()
            .await;
        match tokio::time::timeout(Duration::from_secs(30), self.child.wait()).await {
            Ok(status) => {
                status?;
            }
            Err(_) => self.child.kill().await?,
        }
        Ok(())
    }
}
