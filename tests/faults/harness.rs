//! The pieces of a fault run: a private PostgreSQL cluster, the real binary as a child
//! process, a consumer of the run's own exchange, and the report.

use std::collections::HashSet;
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use scimbus::config::RelaySettings;
use scimbus::events::publisher::Publisher;
use scimbus_support::amqp::{Sink, SinkOptions, test_url as amqp_url};
use scimbus_support::cluster::Cluster;
use secrecy::SecretString;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};
use tokio::sync::Notify;

pub const ADMIN_TOKEN: &str = "faults-admin-token-0123456789";

/// `SCIMBUS_FAULTS_LONG=1`: the long variant `scripts/fault-injection` runs.
pub fn long_run() -> bool {
    std::env::var("SCIMBUS_FAULTS_LONG").is_ok_and(|v| v == "1")
}

/// A private PostgreSQL cluster (fsync off: the faults are the server's restarts and the
/// service's kill, not the machine's crash).
pub fn private_cluster() -> Cluster {
    Cluster::start(&["fsync=off"]).unwrap()
}

#[derive(Debug, Clone)]
pub struct Tenant {
    pub slug: String,
    pub token: String,
}

/// A `scimbus serve` process.
pub struct Scimbus {
    child: Child,
    pub base: String,
}

impl Scimbus {
    /// Starts `serve` on `database_url` with a relay to the run's exchange (through
    /// `amqp_url` when given, e.g. a proxy).
    pub async fn start(database_url: &str, relay: &RelaySettings, amqp: Option<&str>) -> Self {
        Self::start_with(database_url, relay, amqp, &[]).await
    }

    /// As [`Self::start`], with more settings.
    pub async fn start_with(
        database_url: &str,
        relay: &RelaySettings,
        amqp: Option<&str>,
        extra: &[(&str, &str)],
    ) -> Self {
        let mut child = Command::new(env!("CARGO_BIN_EXE_scimbus"))
            .arg("serve")
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env("SCIMBUS_DATABASE_URL", database_url)
            .env("SCIMBUS_LISTEN", "127.0.0.1:0")
            .env("SCIMBUS_ADMIN_TOKEN", ADMIN_TOKEN)
            .env("SCIMBUS_RATE_LIMIT", "off")
            .env("SCIMBUS_LOG", "error")
            .env(
                "SCIMBUS_AMQP_URL",
                amqp.map_or_else(amqp_url, str::to_owned),
            )
            .env("SCIMBUS_AMQP_EXCHANGE", &relay.exchange)
            .env("SCIMBUS_AMQP_UNROUTED_EXCHANGE", &relay.unrouted_exchange)
            .env("SCIMBUS_AMQP_UNROUTED_QUEUE", &relay.unrouted_queue)
            .env(
                "SCIMBUS_AMQP_UNROUTED_MAX_LENGTH",
                relay.unrouted_max_length.to_string(),
            )
            .env("SCIMBUS_RELAY_POLL_MS", "200")
            .envs(extra.iter().copied())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .kill_on_drop(true)
            .spawn()
            .unwrap();
        let stdout = child.stdout.take().unwrap();
        let mut lines = BufReader::new(stdout).lines();
        let line = tokio::time::timeout(Duration::from_secs(60), lines.next_line())
            .await
            .expect("scimbus starts within 60 s")
            .unwrap()
            .unwrap_or_default();
        let base = line
            .split("serving on ")
            .nth(1)
            .and_then(|r| r.split_whitespace().next())
            .unwrap_or_else(|| panic!("no serving line: {line}"))
            .to_owned();
        tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
        Self { child, base }
    }

    /// A tenant (created if absent) and a fresh SCIM token of it.
    pub async fn tenant(&self, slug: &str) -> Tenant {
        let client = {
            scimbus::telemetry::install_tls_provider();
            reqwest::Client::new()
        };
        let _ = client
            .post(format!("{}/admin/v1/tenants", self.base))
            .bearer_auth(ADMIN_TOKEN)
            .json(&serde_json::json!({"slug": slug}))
            .send()
            .await
            .unwrap();
        let issued: serde_json::Value = client
            .post(format!("{}/admin/v1/tenants/{slug}/tokens", self.base))
            .bearer_auth(ADMIN_TOKEN)
            .json(&serde_json::json!({"name": "faults"}))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        Tenant {
            slug: slug.to_owned(),
            token: issued["token"].as_str().unwrap().to_owned(),
        }
    }

    pub async fn status_of(&self, tenant: &Tenant, id: &str) -> u16 {
        {
            scimbus::telemetry::install_tls_provider();
            reqwest::Client::new()
        }
        .get(format!("{}/scim/v2/{}/Users/{id}", self.base, tenant.slug))
        .bearer_auth(&tenant.token)
        .send()
        .await
        .unwrap()
        .status()
        .as_u16()
    }

    /// SIGKILL: no shutdown, no last batch.
    pub fn kill9(&mut self) {
        let pid = self.child.id().unwrap().to_string();
        let status = std::process::Command::new("kill")
            .args(["-9", &pid])
            .status()
            .unwrap();
        assert!(status.success());
    }
}

/// One delivered event.
#[derive(Debug, Clone)]
pub struct Delivered {
    pub id: String,
    pub subject: String,
    pub event_type: String,
    pub version: i64,
}

/// A queue of the run's own, bound to every routing key of the run's exchange.
pub struct Consumer {
    pub settings: RelaySettings,
    received: Arc<Mutex<Vec<Delivered>>>,
    arrived: Arc<Notify>,
    sink: Sink,
}

impl Consumer {
    pub async fn bind() -> Self {
        let id = uuid::Uuid::new_v4().simple().to_string();
        let settings = RelaySettings {
            amqp_url: SecretString::from(amqp_url()),
            exchange: format!("faults.{id}.events"),
            unrouted_exchange: format!("faults.{id}.unrouted"),
            unrouted_queue: format!("faults.{id}.unrouted"),
            unrouted_max_length: 100_000,
            batch_size: 500,
            poll_interval: Duration::from_millis(200),
            max_message_bytes: 64 * 1024 * 1024,
        };
        // The topology exactly as the relay declares it.
        Publisher::connect(&settings).await.unwrap().close().await;
        let options = SinkOptions {
            queue: format!("faults.{id}.all"),
            ack: true,
            ..SinkOptions::new("faults", "faults")
        };
        let received = Arc::new(Mutex::new(Vec::new()));
        let arrived = Arc::new(Notify::new());
        let (r, a) = (received.clone(), arrived.clone());
        let sink = Sink::start(&amqp_url(), &settings.exchange, options, move |data, _| {
            let body: serde_json::Value = serde_json::from_slice(data).unwrap_or_default();
            r.lock().unwrap().push(Delivered {
                id: body["id"].as_str().unwrap_or_default().to_owned(),
                subject: body["subject"].as_str().unwrap_or_default().to_owned(),
                event_type: body["type"].as_str().unwrap_or_default().to_owned(),
                version: body["data"]["version"].as_i64().unwrap_or_default(),
            });
            a.notify_waiters();
        })
        .await
        .unwrap();
        Self {
            settings,
            received,
            arrived,
            sink,
        }
    }

    fn snapshot(&self) -> Vec<Delivered> {
        self.received.lock().unwrap().clone()
    }

    async fn until(
        &self,
        timeout: Duration,
        done: impl Fn(&[Delivered]) -> bool,
    ) -> Vec<Delivered> {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let notified = self.arrived.notified();
            let now = self.snapshot();
            if done(&now) || tokio::time::Instant::now() >= deadline {
                return now;
            }
            let _ = tokio::time::timeout_at(deadline, notified).await;
        }
    }

    /// Waits until `n` events arrived.
    pub async fn wait_for(&self, n: usize, timeout: Duration) {
        let got = self.until(timeout, |d| d.len() >= n).await;
        assert!(
            got.len() >= n,
            "only {} of {n} events within {timeout:?}",
            got.len()
        );
    }

    /// Waits until every id in `ids` has its `user.created` event; returns all delivered.
    pub async fn until_subjects(
        &self,
        ids: &HashSet<&String>,
        timeout: Duration,
    ) -> Vec<Delivered> {
        self.until(timeout, |d| {
            let seen: HashSet<&str> = d
                .iter()
                .filter(|e| e.event_type == "scimbus.user.created")
                .filter_map(|e| e.subject.strip_prefix("Users/"))
                .collect();
            ids.iter().all(|id| seen.contains(id.as_str()))
        })
        .await
    }

    /// As `until_subjects`, and `updates` more `user.updated` events.
    pub async fn until_versions(
        &self,
        ids: &HashSet<&String>,
        updates: usize,
        timeout: Duration,
    ) -> Vec<Delivered> {
        self.until(timeout, |d| {
            let seen: HashSet<&str> = d
                .iter()
                .filter(|e| e.event_type == "scimbus.user.created")
                .filter_map(|e| e.subject.strip_prefix("Users/"))
                .collect();
            let updated: HashSet<&str> = d
                .iter()
                .filter(|e| e.event_type == "scimbus.user.updated")
                .map(|e| e.id.as_str())
                .collect();
            ids.iter().all(|id| seen.contains(id.as_str())) && updated.len() >= updates
        })
        .await
    }

    pub async fn cleanup(&self) {
        let _ = self
            .sink
            .delete(
                &[self.sink.queue(), &self.settings.unrouted_queue],
                &[&self.settings.exchange, &self.settings.unrouted_exchange],
            )
            .await;
    }
}

/// Acknowledged writes, delivered events, lost and duplicated ones.
#[derive(Debug)]
pub struct Report {
    pub fault: &'static str,
    pub acknowledged: usize,
    pub delivered: usize,
    pub lost: usize,
    pub duplicates: usize,
}

impl std::fmt::Display for Report {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{}: {} writes acknowledged, {} events delivered, {} lost, {} duplicates",
            self.fault, self.acknowledged, self.delivered, self.lost, self.duplicates
        )
    }
}

pub fn report(fault: &'static str, acknowledged: &[String], delivered: &[Delivered]) -> Report {
    let created: HashSet<&str> = delivered
        .iter()
        .filter(|e| e.event_type == "scimbus.user.created")
        .filter_map(|e| e.subject.strip_prefix("Users/"))
        .collect();
    let lost = acknowledged
        .iter()
        .filter(|id| !created.contains(id.as_str()))
        .count();
    let unique: HashSet<&str> = delivered.iter().map(|e| e.id.as_str()).collect();
    Report {
        fault,
        acknowledged: acknowledged.len(),
        delivered: delivered.len(),
        lost,
        duplicates: delivered.len() - unique.len(),
    }
}
