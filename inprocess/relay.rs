//! Relay benchmark: `cargo bench --bench relay -- [options]` (see `docs/benchmarks.md`).
//!
//! 1. Throughput: a backlog of N `scimbus.user.created` events (~1 KB each) drained by
//!    `Relay::relay_once` until `Empty`, against a plain lapin publisher sending the same
//!    bodies, in the same order, with the same properties and the same confirm batching
//!    (500 pipelined, then await every confirm) to the same exchange. A consumer drains a
//!    queue bound to `#` throughout, so the broker never backs up. Runs alternate.
//! 2. Latency: a full `Application` (relay in-process) takes `POST /Users` at a steady
//!    rate; each 2xx is matched by `subject` (`Users/{id}`) with the consumer's receipt.
//!
//! Options (or `SCIMBUS_BENCH_*` variables): `--backend postgres|sqlite`, `--events N`
//! (100000), `--runs N` (3), `--rate R` writes/s (50), `--duration S` seconds (20),
//! `--skip-throughput`, `--skip-latency`, `--no-phases`, `--durable-queue`.
//! PostgreSQL: `SCIMBUS_BENCH_DATABASE_URL` (an existing database to connect to, default
//! `postgres://postgres@127.0.0.1:5432/test`); RabbitMQ: `SCIMBUS_BENCH_AMQP_URL`
//! (default `amqp://guest:guest@127.0.0.1:5672/%2f`).

#![allow(clippy::unwrap_used, clippy::expect_used)]

use scimbus::service::audit::Actor;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail, ensure};
use scimbus::clock::{Clock, SystemClock};
use scimbus::config::{RelaySettings, Settings};
use scimbus::domain::{Scope, Tenant};
use scimbus::events::leader::Leader;
use scimbus::events::publisher::{CLOUDEVENTS_JSON, Delivery, Publisher};
use scimbus::events::{Envelope, EventType, PendingEvent, Relay, RelayMetrics, RelayOutcome};
use scimbus::scim::time;
use scimbus::service::Context;
use scimbus::service::tenants::{self, TokenRequest};
use scimbus::startup::{Application, open_context};
use scimbus::store::outbox::{self, OutboxRow, Pending};
use scimbus::store::{Backend, Store, tenants as tenant_store};
use scimbus_support::amqp::{self, Message, Sink, SinkOptions};
use scimbus_support::database::Scratch;
use scimbus_support::stats::{median, percentile_of_sorted};
use sea_orm::ConnectionTrait;
use secrecy::{ExposeSecret, SecretString};
use serde_json::{Value, json};

const BATCH: u64 = 500;
const FILL_TRANSACTION: u64 = 1000;
const TENANT: &str = "bench";
const USER_URN: &str = "urn:ietf:params:scim:schemas:core:2.0:User";

// ---------------------------------------------------------------------------------------
// Options

#[derive(Debug, Clone)]
struct Options {
    backend: Backend,
    events: u64,
    runs: usize,
    rate: f64,
    duration: Duration,
    throughput: bool,
    latency: bool,
    phases: bool,
    durable_queue: bool,
    database_url: String,
    amqp_url: String,
}

fn env(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.trim().is_empty())
}

impl Options {
    fn parse() -> anyhow::Result<Self> {
        let mut flags: HashMap<String, Option<String>> = HashMap::new();
        let mut args = std::env::args().skip(1).peekable();
        while let Some(arg) = args.next() {
            // `cargo bench` passes `--bench` to harness-less benches.
            if arg == "--bench" {
                continue;
            }
            let Some(name) = arg.strip_prefix("--") else {
                bail!("unexpected argument `{arg}`");
            };
            match name.split_once('=') {
                Some((k, v)) => {
                    flags.insert(k.to_owned(), Some(v.to_owned()));
                }
                None => {
                    let takes_value =
                        matches!(name, "backend" | "events" | "runs" | "rate" | "duration");
                    let value = if takes_value { args.next() } else { None };
                    if takes_value && value.is_none() {
                        bail!("--{name} needs a value");
                    }
                    flags.insert(name.to_owned(), value);
                }
            }
        }
        let value = |flag: &str, var: &str| -> Option<String> {
            flags
                .get(flag)
                .cloned()
                .flatten()
                .or_else(|| env(&format!("SCIMBUS_BENCH_{var}")))
        };
        let backend = match value("backend", "BACKEND").as_deref() {
            None | Some("postgres" | "pg" | "postgresql") => Backend::Postgres,
            Some("sqlite") => Backend::Sqlite,
            Some(other) => bail!("--backend must be postgres or sqlite, not `{other}`"),
        };
        let number = |flag: &str, var: &str, default: f64| -> anyhow::Result<f64> {
            match value(flag, var) {
                None => Ok(default),
                Some(v) => match v.parse::<f64>() {
                    Ok(n) if n > 0.0 && n.is_finite() => Ok(n),
                    _ => bail!("--{flag} must be a positive number, not `{v}`"),
                },
            }
        };
        let known = [
            "backend",
            "events",
            "runs",
            "rate",
            "duration",
            "skip-throughput",
            "skip-latency",
            "no-phases",
            "durable-queue",
        ];
        if let Some(unknown) = flags.keys().find(|k| !known.contains(&k.as_str())) {
            bail!("unknown option --{unknown} (known: {})", known.join(", --"));
        }
        Ok(Self {
            backend,
            events: number("events", "EVENTS", 100_000.0)? as u64,
            runs: number("runs", "RUNS", 3.0)? as usize,
            rate: number("rate", "RATE", 50.0)?,
            duration: Duration::from_secs_f64(number("duration", "DURATION", 20.0)?),
            throughput: !flags.contains_key("skip-throughput"),
            latency: !flags.contains_key("skip-latency"),
            phases: !flags.contains_key("no-phases"),
            durable_queue: flags.contains_key("durable-queue"),
            database_url: env("SCIMBUS_BENCH_DATABASE_URL")
                .or_else(|| env("SCIMBUS_TEST_DATABASE_URL"))
                .unwrap_or_else(|| "postgres://postgres@127.0.0.1:5432/test".to_owned()),
            amqp_url: env("SCIMBUS_BENCH_AMQP_URL")
                .or_else(|| env("SCIMBUS_TEST_AMQP_URL"))
                .unwrap_or_else(|| "amqp://guest:guest@127.0.0.1:5672/%2f".to_owned()),
        })
    }

    fn backend_name(&self) -> &'static str {
        match self.backend {
            Backend::Postgres => "postgres",
            Backend::Sqlite => "sqlite",
        }
    }
}

// ---------------------------------------------------------------------------------------
// A database of the bench's own

async fn bench_db(opts: &Options) -> anyhow::Result<Scratch> {
    match opts.backend {
        Backend::Postgres => Scratch::postgres(&opts.database_url, "scimbus_bench_").await,
        Backend::Sqlite => Scratch::sqlite("bench.db"),
    }
}

/// A service context over `url`, migrated, like `serve` builds it.
async fn context(url: &str) -> anyhow::Result<Context> {
    let vars: HashMap<&str, String> = [
        ("SCIMBUS_DATABASE_URL", url.to_owned()),
        ("SCIMBUS_LISTEN", "127.0.0.1:0".to_owned()),
        // Measure the service, not its per-token rate limit.
        ("SCIMBUS_RATE_LIMIT", "off".to_owned()),
    ]
    .into_iter()
    .collect();
    let settings = Settings::from_lookup(|k| vars.get(k).cloned())?;
    let public_url = url::Url::parse("http://127.0.0.1")?;
    open_context(&settings, Arc::new(SystemClock), public_url).await
}

// ---------------------------------------------------------------------------------------
// Realistic users

const GIVEN: [&str; 8] = [
    "Barbara", "Ahmed", "Mei", "Olusegun", "Ingrid", "Carlos", "Priya", "Jonas",
];
const FAMILY: [&str; 8] = [
    "Jensen", "Haddad", "Zhang", "Adeyemi", "Larsen", "Mendoza", "Raman", "Becker",
];

/// A User as an IdP (Okta-like) pushes it.
fn user_document(i: u64, unique: &str) -> Value {
    let given = GIVEN[(i % 8) as usize];
    let family = FAMILY[((i / 8) % 8) as usize];
    let email = format!(
        "{}.{}.{unique}@example.com",
        given.to_lowercase(),
        family.to_lowercase()
    );
    json!({
        "schemas": [USER_URN],
        "externalId": format!("00u{:017x}", i.wrapping_mul(7919) + 0x5eed),
        "userName": email,
        "name": {"givenName": given, "familyName": family},
        "displayName": format!("{given} {family}"),
        "title": "Software Engineer",
        "active": true,
        "emails": [{"value": email, "type": "work", "primary": true}],
    })
}

/// The `data` of `scimbus.user.created`, as `service::users::create` builds it.
fn created_data(i: u64, id: &str, now: &str) -> Value {
    let mut resource = user_document(i, &format!("{i}"));
    let mut changed: Vec<String> = resource
        .as_object()
        .map(|o| o.keys().cloned().collect())
        .unwrap_or_default();
    changed.sort();
    resource["id"] = json!(id);
    resource["meta"] = json!({
        "resourceType": "User",
        "created": now,
        "lastModified": now,
        "location": format!("https://scim.example.com/scim/v2/{TENANT}/Users/{id}"),
        "version": "W/\"1\"",
    });
    json!({"resource": resource, "version": 1, "changed": changed, "previous": {}})
}

/// Writes `n` created events in transactions of `FILL_TRANSACTION` rows, as `emit` does.
async fn fill(ctx: &Context, tenant: &Tenant, n: u64) -> anyhow::Result<()> {
    let slug = tenant.slug.as_str();
    let mut written = 0;
    while written < n {
        let k = FILL_TRANSACTION.min(n - written);
        let txn = ctx.store.begin_write().await?;
        let now = ctx.now();
        let last = tenant_store::advance_sequence(&txn, &tenant.id, k as i64, true, None).await?;
        let first = last - k as i64 + 1;
        let mut rows = Vec::with_capacity(k as usize);
        for j in 0..k {
            let i = written + j;
            let id = uuid::Uuid::new_v4().to_string();
            let event = PendingEvent {
                event_type: EventType::UserCreated,
                subject: format!("Users/{id}"),
                data: created_data(i, &id, &now),
            };
            let sequence = first + j as i64;
            let envelope = Envelope::new(slug, sequence, &now, event);
            rows.push(OutboxRow {
                sequence,
                id: envelope.id.clone(),
                event_type: envelope.event_type.clone(),
                routing_key: EventType::UserCreated.routing_key(slug),
                subject: envelope.subject.clone(),
                payload: serde_json::to_value(&envelope)?,
                created_at: now.clone(),
            });
        }
        outbox::insert(&txn, &tenant.id, rows).await?;
        txn.commit().await?;
        written += k;
    }
    Ok(())
}

/// The backlog as the relay will see it: same order, the same body bytes (the stored text).
async fn load_messages(store: &Store, _tenant_id: &str) -> anyhow::Result<Vec<Message>> {
    Ok(outbox::fetch_unpublished(store.conn(), u64::MAX)
        .await?
        .into_iter()
        .map(|e| Message {
            body: e.body.into_bytes(),
            id: e.id,
            routing_key: e.routing_key,
        })
        .collect())
}

/// Makes every event unpublished again, and tidies up after the mass update (untimed).
async fn reset(store: &Store) -> anyhow::Result<()> {
    let conn = store.conn();
    conn.execute_unprepared("UPDATE outbox SET published_at = NULL")
        .await?;
    settle(store).await
}

/// PostgreSQL: `VACUUM ANALYZE` (what autovacuum does in a steady state). SQLite: a WAL
/// checkpoint.
async fn settle(store: &Store) -> anyhow::Result<()> {
    let sql = match store.backend() {
        Backend::Postgres => "VACUUM ANALYZE outbox",
        Backend::Sqlite => "PRAGMA wal_checkpoint(TRUNCATE)",
    };
    store.conn().execute_unprepared(sql).await?;
    Ok(())
}

// ---------------------------------------------------------------------------------------
// Broker

/// Relay settings with exchange and queue names of this bench alone.
fn relay_settings(amqp: &str) -> RelaySettings {
    let id = uuid::Uuid::new_v4().simple().to_string();
    RelaySettings {
        amqp_url: SecretString::from(amqp.to_owned()),
        exchange: format!("bench.{id}.events"),
        unrouted_exchange: format!("bench.{id}.unrouted"),
        unrouted_queue: format!("bench.{id}.unrouted"),
        unrouted_max_length: 1000,
        batch_size: BATCH,
        poll_interval: Duration::from_millis(1000),
        max_message_bytes: 64 * 1024 * 1024,
    }
}

/// Declares the relay's topology, then a queue bound to `#` on its exchange, consumed with
/// auto-ack from the start; `on_message` sees every body with its arrival instant.
async fn sink(
    settings: &RelaySettings,
    durable: bool,
    on_message: impl Fn(&[u8], Instant) + Send + 'static,
) -> anyhow::Result<Sink> {
    Publisher::connect(settings).await?.close().await;
    let options = SinkOptions {
        durable,
        ..SinkOptions::new("scimbus-bench-consumer", "bench")
    };
    Sink::start(
        settings.amqp_url.expose_secret(),
        &settings.exchange,
        options,
        on_message,
    )
    .await
}

/// Deletes the sink's queue and the relay's exchanges and unrouted queue.
async fn remove(sink: Sink, settings: &RelaySettings) {
    sink.remove(
        &[&settings.unrouted_queue],
        &[&settings.exchange, &settings.unrouted_exchange],
    )
    .await;
}

// ---------------------------------------------------------------------------------------
// Throughput

/// (a) The relay drains the backlog: `relay_once` until `Empty`, from a fresh relay
/// (leadership, connection and topology declaration included, as at a restart).
async fn relay_run(store: &Store, settings: &RelaySettings, n: u64) -> anyhow::Result<Duration> {
    let mut relay = Relay::new(
        store.clone(),
        Arc::new(SystemClock),
        settings.clone(),
        Arc::new(RelayMetrics::default()),
    );
    let start = Instant::now();
    let mut published = 0u64;
    let mut held_back = 0u64;
    let max_steps = n / BATCH * 4 + 100;
    for _ in 0..max_steps {
        match relay.relay_once().await? {
            RelayOutcome::Published {
                published: p,
                held_back: h,
            } => {
                published += p as u64;
                held_back += h as u64;
            }
            RelayOutcome::Empty => break,
            RelayOutcome::NotLeader => bail!("the bench relay is not the leader"),
        }
    }
    let elapsed = start.elapsed();
    relay.shutdown().await;
    ensure!(
        published == n,
        "the relay published {published} of {n} events ({held_back} held back)"
    );
    Ok(elapsed)
}

/// (b) A plain lapin publisher: same connection setup (confirm mode), same properties,
/// same bodies in the same order, 500 pipelined then every confirm awaited.
async fn plain_run(settings: &RelaySettings, messages: &[Message]) -> anyhow::Result<Duration> {
    amqp::plain_publish(
        settings.amqp_url.expose_secret(),
        "scimbus-bench",
        &settings.exchange,
        CLOUDEVENTS_JSON,
        messages,
        BATCH as usize,
    )
    .await
}

/// Where a relay step's time goes, measured by replaying `relay_once` with the same
/// public pieces (leader check ×2, fetch, publish with confirms, mark). The relay
/// publishes the stored payload text as it is, so there is no encode step; the size check
/// and the range bookkeeping fall into "other".
#[derive(Debug, Default)]
struct Phases {
    leader: Duration,
    fetch: Duration,
    publish: Duration,
    mark: Duration,
    total: Duration,
    steps: u64,
    /// Per full step: fetch and mark times, to see whether they grow along the drain.
    fetch_steps: Vec<Duration>,
    mark_steps: Vec<Duration>,
}

async fn phases_run(store: &Store, settings: &RelaySettings, n: u64) -> anyhow::Result<Phases> {
    let clock = SystemClock;
    let mut leader = match store.backend() {
        Backend::Postgres => Leader::postgres(store.url(), settings.poll_interval),
        Backend::Sqlite => Leader::InProcess,
    };
    let publisher = Publisher::connect(settings).await?;
    let mut p = Phases::default();
    let mut published = 0u64;
    let start = Instant::now();
    for _ in 0..(n / BATCH * 4 + 100) {
        p.steps += 1;
        let t = Instant::now();
        ensure!(leader.ensure().await?, "not the leader");
        p.leader += t.elapsed();

        let t = Instant::now();
        let batch = outbox::fetch_unpublished(store.conn(), BATCH).await?;
        let fetched = t.elapsed();
        p.fetch += fetched;
        if batch.is_empty() {
            break;
        }

        // As `relay_once`: the timestamp for the mark, the size check (untimed: "other").
        // The stored text is published as it is, so nothing is encoded.
        let now = time::format(clock.now());
        let sendable: Vec<Pending> = batch
            .into_iter()
            .filter(|e| e.body.len() <= settings.max_message_bytes)
            .collect();

        let t = Instant::now();
        ensure!(leader.ensure().await?, "not the leader");
        p.leader += t.elapsed();

        let t = Instant::now();
        let deliveries = publisher.publish(&sendable).await;
        p.publish += t.elapsed();
        ensure!(
            deliveries
                .iter()
                .all(|d| matches!(d, Delivery::Acked { .. })),
            "a message was not confirmed"
        );

        let t = Instant::now();
        let mut ranges: Vec<(String, i64, i64)> = Vec::new();
        for event in &sendable {
            match ranges.iter_mut().find(|r| r.0 == event.tenant_id) {
                Some(r) => r.2 = event.sequence,
                None => ranges.push((event.tenant_id.clone(), event.sequence, event.sequence)),
            }
        }
        published += outbox::mark_published(store.conn(), &ranges, &now).await?;
        p.mark += t.elapsed();
        p.fetch_steps.push(fetched);
        p.mark_steps.push(t.elapsed());
    }
    p.total = start.elapsed();
    leader.release().await;
    publisher.close().await;
    ensure!(published == n, "replay published {published} of {n}");
    Ok(p)
}

struct Throughput {
    relay: Vec<Duration>,
    relay_consumed: Vec<Option<Duration>>,
    plain: Vec<Duration>,
    plain_consumed: Vec<Option<Duration>>,
    mean_body: f64,
    phases: Option<Phases>,
}

fn rate(n: u64, d: Duration) -> f64 {
    n as f64 / d.as_secs_f64()
}

async fn throughput(opts: &Options) -> anyhow::Result<Throughput> {
    let db = bench_db(opts).await?;
    let settings = relay_settings(&opts.amqp_url);
    let sink = sink(&settings, opts.durable_queue, |_, _| {}).await;
    let sink = match sink {
        Ok(s) => s,
        Err(e) => {
            db.remove().await;
            return Err(e);
        }
    };
    let result = throughput_in(opts, &db, &settings, &sink).await;
    remove(sink, &settings).await;
    db.remove().await;
    result
}

async fn throughput_in(
    opts: &Options,
    db: &Scratch,
    settings: &RelaySettings,
    sink: &Sink,
) -> anyhow::Result<Throughput> {
    let n = opts.events;
    let ctx = context(db.url()).await?;
    let tenant = tenants::create_tenant(&ctx, &Actor::system(), TENANT).await?;
    let t = Instant::now();
    fill(&ctx, &tenant, n).await?;
    settle(&ctx.store).await?;
    let messages = load_messages(&ctx.store, &tenant.id).await?;
    ensure!(
        messages.len() as u64 == n,
        "the outbox holds {}",
        messages.len()
    );
    let mean_body = messages.iter().map(|m| m.body.len()).sum::<usize>() as f64 / n as f64;
    println!(
        "setup: {n} events of {mean_body:.0} bytes on average written in {:.1} s (untimed)",
        t.elapsed().as_secs_f64()
    );

    let consumer_timeout = Duration::from_secs(300);
    let mut out = Throughput {
        relay: Vec::new(),
        relay_consumed: Vec::new(),
        plain: Vec::new(),
        plain_consumed: Vec::new(),
        mean_body,
        phases: None,
    };
    let mut expected = 0u64;
    for run in 1..=opts.runs {
        // Odd runs start with the relay, even runs with the plain publisher.
        let order: [bool; 2] = if run % 2 == 1 {
            [true, false]
        } else {
            [false, true]
        };
        for relay_turn in order {
            expected += n;
            let start = Instant::now();
            let elapsed = if relay_turn {
                relay_run(&ctx.store, settings, n).await?
            } else {
                plain_run(settings, &messages).await?
            };
            let consumed = sink
                .wait_for(expected, consumer_timeout)
                .await
                .map(|at| at - start);
            let name = if relay_turn { "relay" } else { "plain" };
            println!(
                "run {run} {name:>5}: {:>7.3} s  {:>8.0} events/s  (consumer had all after {})",
                elapsed.as_secs_f64(),
                rate(n, elapsed),
                consumed.map_or("—".to_owned(), |d| format!("{:.3} s", d.as_secs_f64()))
            );
            if consumed.is_none() {
                bail!(
                    "the consumer got {} of {expected} messages in {consumer_timeout:?}",
                    sink.count()
                );
            }
            if relay_turn {
                out.relay.push(elapsed);
                out.relay_consumed.push(consumed);
                reset(&ctx.store).await?;
            } else {
                out.plain.push(elapsed);
                out.plain_consumed.push(consumed);
            }
        }
    }
    if opts.phases {
        let phases = phases_run(&ctx.store, settings, n).await?;
        expected += n;
        sink.wait_for(expected, consumer_timeout).await;
        out.phases = Some(phases);
    }
    ctx.store.close().await?;
    Ok(out)
}

// ---------------------------------------------------------------------------------------
// Latency

#[derive(serde::Deserialize)]
struct Subject {
    subject: String,
}

struct Latency {
    target_rate: f64,
    sent: u64,
    ok: u64,
    failed: u64,
    achieved_rate: f64,
    /// 2xx → consumer receipt, ms (negative when the event arrived before the response).
    after_response: Vec<f64>,
    /// request sent → consumer receipt, ms.
    after_request: Vec<f64>,
    missing: u64,
}

fn signed_ms(later: Instant, earlier: Instant) -> f64 {
    if later >= earlier {
        (later - earlier).as_secs_f64() * 1e3
    } else {
        -((earlier - later).as_secs_f64() * 1e3)
    }
}

struct Writer {
    client: reqwest::Client,
    url: String,
    token: String,
}

impl Writer {
    /// POSTs a user; on 2xx, its id and the instant the response arrived.
    async fn create(&self, i: u64) -> anyhow::Result<(String, Instant)> {
        let body = user_document(i, &uuid::Uuid::new_v4().simple().to_string()[..12]);
        let response = self
            .client
            .post(&self.url)
            .bearer_auth(&self.token)
            .header("Content-Type", "application/scim+json")
            .body(body.to_string())
            .send()
            .await?;
        let at = Instant::now();
        let status = response.status();
        if !status.is_success() {
            bail!("{status}: {}", response.text().await.unwrap_or_default());
        }
        let from_location = response
            .headers()
            .get("location")
            .and_then(|v| v.to_str().ok())
            .and_then(|l| l.rsplit('/').next())
            .map(str::to_owned);
        let id = match from_location {
            Some(id) => id,
            None => response.json::<Value>().await?["id"]
                .as_str()
                .context("no id in the response")?
                .to_owned(),
        };
        Ok((id, at))
    }
}

async fn latency(opts: &Options) -> anyhow::Result<Latency> {
    let db = bench_db(opts).await?;
    let settings = relay_settings(&opts.amqp_url);
    let receipts: Arc<Mutex<HashMap<String, Instant>>> = Arc::default();
    let seen = receipts.clone();
    let sink = sink(&settings, opts.durable_queue, move |body, at| {
        if let Ok(s) = serde_json::from_slice::<Subject>(body) {
            seen.lock().unwrap().insert(s.subject, at);
        }
    })
    .await;
    let sink = match sink {
        Ok(s) => s,
        Err(e) => {
            db.remove().await;
            return Err(e);
        }
    };
    let result = latency_in(opts, &db, &settings, &sink, receipts).await;
    remove(sink, &settings).await;
    db.remove().await;
    result
}

async fn latency_in(
    opts: &Options,
    db: &Scratch,
    relay: &RelaySettings,
    sink: &Sink,
    receipts: Arc<Mutex<HashMap<String, Instant>>>,
) -> anyhow::Result<Latency> {
    let vars: HashMap<&str, String> = [
        ("SCIMBUS_DATABASE_URL", db.url().to_owned()),
        ("SCIMBUS_LISTEN", "127.0.0.1:0".to_owned()),
        // Measure the service, not its per-token rate limit.
        ("SCIMBUS_RATE_LIMIT", "off".to_owned()),
        ("SCIMBUS_AMQP_URL", opts.amqp_url.clone()),
        ("SCIMBUS_AMQP_EXCHANGE", relay.exchange.clone()),
        (
            "SCIMBUS_AMQP_UNROUTED_EXCHANGE",
            relay.unrouted_exchange.clone(),
        ),
        ("SCIMBUS_AMQP_UNROUTED_QUEUE", relay.unrouted_queue.clone()),
        (
            "SCIMBUS_AMQP_UNROUTED_MAX_LENGTH",
            relay.unrouted_max_length.to_string(),
        ),
    ]
    .into_iter()
    .collect();
    let settings = Settings::from_lookup(|k| vars.get(k).cloned())?;
    let app = Application::build(settings).await?;
    let address = format!("http://127.0.0.1:{}", app.port());
    let ctx = app.context().clone();
    let server = tokio::spawn(app.run_until_stopped());
    tenants::create_tenant(&ctx, &Actor::system(), TENANT).await?;
    let (_, secret) = tenants::issue_token(
        &ctx,
        &Actor::system(),
        TENANT,
        TokenRequest {
            name: "bench".to_owned(),
            scopes: vec![Scope::Scim],
            expires_at: None,
        },
    )
    .await?;
    let writer = Arc::new(Writer {
        client: {
            scimbus::telemetry::install_tls_provider();
            reqwest::Client::builder()
        }
        .timeout(Duration::from_secs(30))
        .build()?,
        url: format!("{address}/scim/v2/{TENANT}/Users"),
        token: secret.expose_secret().to_owned(),
    });

    // Warm-up (not measured): HTTP connections, the relay's broker connection.
    let warm_up = 20u64;
    for i in 0..warm_up {
        writer.create(1_000_000 + i).await?;
    }
    if sink
        .wait_for(warm_up, Duration::from_secs(30))
        .await
        .is_none()
    {
        bail!(
            "the relay published {} of {warm_up} warm-up events",
            sink.count()
        );
    }

    let total = (opts.rate * opts.duration.as_secs_f64()).round().max(1.0) as u64;
    let mut interval = tokio::time::interval(Duration::from_secs_f64(1.0 / opts.rate));
    interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
    let mut tasks = Vec::with_capacity(total as usize);
    let started = Instant::now();
    for i in 0..total {
        interval.tick().await;
        let writer = writer.clone();
        tasks.push(tokio::spawn(async move {
            let sent = Instant::now();
            writer.create(i).await.map(|(id, ok)| (id, sent, ok))
        }));
    }
    let mut acked = Vec::with_capacity(tasks.len());
    let mut failed = 0u64;
    for task in tasks {
        match task.await {
            Ok(Ok(a)) => acked.push(a),
            Ok(Err(e)) => {
                failed += 1;
                if failed <= 3 {
                    eprintln!("write failed: {e:#}");
                }
            }
            Err(e) => {
                failed += 1;
                eprintln!("writer task failed: {e}");
            }
        }
    }
    let last_ok = acked.iter().map(|a| a.2).max().unwrap_or(started);
    let achieved_rate = acked.len() as f64 / (last_ok - started).as_secs_f64().max(1e-9);

    // Every acknowledged write's event should arrive; wait a bounded time for stragglers.
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let all = {
            let r = receipts.lock().unwrap();
            acked
                .iter()
                .all(|(id, _, _)| r.contains_key(&format!("Users/{id}")))
        };
        if all || Instant::now() >= deadline {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let r = receipts.lock().unwrap().clone();
    let mut out = Latency {
        target_rate: opts.rate,
        sent: total,
        ok: acked.len() as u64,
        failed,
        achieved_rate,
        after_response: Vec::new(),
        after_request: Vec::new(),
        missing: 0,
    };
    for (id, sent, ok) in &acked {
        match r.get(&format!("Users/{id}")) {
            Some(&received) => {
                out.after_response.push(signed_ms(received, *ok));
                out.after_request.push(signed_ms(received, *sent));
            }
            None => out.missing += 1,
        }
    }
    server.abort();
    Ok(out)
}

fn summary(values: &[f64]) -> String {
    let mut v = values.to_vec();
    v.sort_by(f64::total_cmp);
    format!(
        "p50 {:.1} ms  p90 {:.1} ms  p99 {:.1} ms  max {:.1} ms",
        percentile_of_sorted(&v, 50.0),
        percentile_of_sorted(&v, 90.0),
        percentile_of_sorted(&v, 99.0),
        v.last().copied().unwrap_or(f64::NAN)
    )
}

// ---------------------------------------------------------------------------------------
// Report

fn report_throughput(opts: &Options, t: &Throughput) {
    let n = opts.events;
    let relay: Vec<f64> = t.relay.iter().map(|d| rate(n, *d)).collect();
    let plain: Vec<f64> = t.plain.iter().map(|d| rate(n, *d)).collect();
    let (r, p) = (median(&relay), median(&plain));
    let per_run = |v: &[Duration]| {
        v.iter()
            .map(|d| format!("{:.2}", d.as_secs_f64()))
            .collect::<Vec<_>>()
            .join(" / ")
    };
    println!();
    println!(
        "== throughput ({}, {n} events of {:.0} B, batches of {BATCH}, {} runs) ==",
        opts.backend_name(),
        t.mean_body,
        opts.runs
    );
    println!(
        "relay  runs {} s   median {r:.0} events/s",
        per_run(&t.relay)
    );
    println!(
        "plain  runs {} s   median {p:.0} events/s",
        per_run(&t.plain)
    );
    let consumed = |v: &[Option<Duration>]| {
        median(
            &v.iter()
                .flatten()
                .map(|d| rate(n, *d))
                .collect::<Vec<f64>>(),
        )
    };
    println!(
        "consumer side (run start → last message received): relay median {:.0} events/s, plain median {:.0} events/s",
        consumed(&t.relay_consumed),
        consumed(&t.plain_consumed)
    );
    let ratio = r / p;
    println!(
        "ratio relay/plain (median throughput): {ratio:.2}×  (target ≥ 0.70×: {})",
        if ratio >= 0.7 { "met" } else { "NOT met" }
    );
    if let Some(ph) = &t.phases {
        let total = ph.total.as_secs_f64();
        let share = |d: Duration| {
            format!(
                "{:>7.3} s {:>5.1} %",
                d.as_secs_f64(),
                100.0 * d.as_secs_f64() / total
            )
        };
        let accounted = ph.leader + ph.fetch + ph.publish + ph.mark;
        println!(
            "phases (one replay of relay_once's steps, {} steps, {total:.3} s = {:.0} events/s):",
            ph.steps,
            rate(n, ph.total)
        );
        println!("  leader checks   {}", share(ph.leader));
        println!("  fetch           {}", share(ph.fetch));
        println!("  publish+confirm {}", share(ph.publish));
        println!("  mark            {}", share(ph.mark));
        println!(
            "  other           {}",
            share(ph.total.saturating_sub(accounted))
        );
        let tenth = (ph.fetch_steps.len() / 10).max(1);
        let mean_ms = |v: &[Duration]| {
            v.iter().map(Duration::as_secs_f64).sum::<f64>() * 1e3 / v.len().max(1) as f64
        };
        let (f, m) = (&ph.fetch_steps, &ph.mark_steps);
        println!(
            "  per step, first vs last tenth of the drain: fetch {:.1} → {:.1} ms, mark {:.1} → {:.1} ms",
            mean_ms(&f[..tenth.min(f.len())]),
            mean_ms(&f[f.len().saturating_sub(tenth)..]),
            mean_ms(&m[..tenth.min(m.len())]),
            mean_ms(&m[m.len().saturating_sub(tenth)..]),
        );
    }
}

fn report_latency(opts: &Options, l: &Latency) {
    println!();
    println!(
        "== latency ({}, POST /Users at {} /s for {:.0} s, relay in-process) ==",
        opts.backend_name(),
        l.target_rate,
        opts.duration.as_secs_f64()
    );
    println!(
        "writes: {} sent, {} 2xx, {} failed; achieved {:.1} writes/s; {} events matched, {} missing",
        l.sent,
        l.ok,
        l.failed,
        l.achieved_rate,
        l.after_response.len(),
        l.missing
    );
    println!("2xx → consumer receipt:     {}", summary(&l.after_response));
    println!("request → consumer receipt: {}", summary(&l.after_request));
    let early = l.after_response.iter().filter(|v| **v < 0.0).count();
    if early > 0 {
        println!(
            "({early} events reached the consumer before their write's 2xx reached the client)"
        );
    }
}

async fn bench(opts: &Options) -> anyhow::Result<()> {
    println!(
        "scimbus relay bench: backend {}, {} events × {} runs, latency {} writes/s for {:.0} s",
        opts.backend_name(),
        opts.events,
        opts.runs,
        opts.rate,
        opts.duration.as_secs_f64()
    );
    let throughput = if opts.throughput {
        Some(throughput(opts).await?)
    } else {
        None
    };
    let latency = if opts.latency {
        Some(latency(opts).await?)
    } else {
        None
    };
    if let Some(t) = &throughput {
        report_throughput(opts, t);
    }
    if let Some(l) = &latency {
        report_latency(opts, l);
    }
    Ok(())
}

fn main() -> anyhow::Result<()> {
    let opts = Options::parse()?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    let result = runtime.block_on(bench(&opts));
    runtime.shutdown_timeout(Duration::from_secs(2));
    result
}
