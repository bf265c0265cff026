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
use scimbus::domain::{Scope, Tenant, TenantId, Timestamp};
use scimbus::events::leader::Leader;
use scimbus::events::publisher::{CLOUDEVENTS_JSON, Delivery, Publisher};
use scimbus::events::{Envelope, EventType, PendingEvent, Relay, RelayMetrics, RelayOutcome};
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

mod broker;
mod latency;
mod options;
mod report;
mod throughput;
mod users;

use broker::*;
use latency::*;
use options::*;
use report::*;
use throughput::*;
use users::*;

const BATCH: u64 = 500;
const FILL_TRANSACTION: u64 = 1000;
const TENANT: &str = "bench";
const USER_URN: &str = "urn:ietf:params:scim:schemas:core:2.0:User";

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
