//! `scimbus-sidebyside`: scimbus side by side with the database and broker work it cannot avoid.
//!
//! One run, one machine: a private PostgreSQL cluster (`pg_stat_statements`, CSV statement
//! log), the shared RabbitMQ, the release `scimbus` binary serving with its relay on, and
//! for each scenario:
//!
//! 1. **capture** — the scenario's unit of work is sent to a second scimbus process whose
//!    database role logs every statement; the statements between two markers become a
//!    pgbench script (see `capture.rs`);
//! 2. **scimbus** — the load generator (`load.rs`) runs the scenario against the serving
//!    process over HTTP/1.1 keep-alive connections: warm-up, then measurement;
//! 3. **baseline** (the replay) — `pgbench -M prepared` runs the captured script with as
//!    many clients, for the same warm-up and measurement;
//! 4. **floor** — pgbench runs the hand-written script of the fewest statements that do the
//!    same work (`floor.rs`), the same way;
//!
//! and prints throughput, p50/p90/p99, the ratios scimbus/replay and scimbus/floor, the CPU
//! split and scimbus's peak RSS. The relay scenarios compare `scimbus relay` with a plain
//! lapin publisher (events of one tenant or of 8) and measure write-to-consumer latency;
//! `scaling.rs` probes request cost as a tenant grows (PostgreSQL and SQLite) and
//! `tenants.rs` the cost of idle tenants; `journal.rs` measures the request journal's cost
//! to the requests it journals, as a pair in one run. Data is seeded with SQL
//! (`INSERT … SELECT … generate_series`), not through the API. See docs/benchmarks.md.

mod adversarial;
mod broker;
mod capture;
mod cli;
mod cluster;
mod copy;
mod floor;
mod journal;
mod load;
mod pgbench;
mod procs;
mod scaling;
mod server;
mod tenants;

mod relay;
mod report;
mod requests;
mod scenario;
mod setup;

use report::*;
use requests::*;

use anyhow::{Context, bail};
use clap::Parser;
use rand::Rng;
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::broker::Consumer;
use crate::capture::{Bindings, Script};
use crate::cli::{Args, SCENARIOS};
use crate::cluster::Cluster;
use crate::load::{Conn, LoadResult, Req, Target};
use crate::procs::{CpuSplit, Groups};
use crate::server::Server;
use scimbus_support::stats::{Latency, histogram};

const TENANT: &str = "bench";
const BASE: &str = "/scim/v2/bench";
/// Seeded user number `g` has id and userName `USER_BASE + g` (decimal strings, so that
/// pgbench's integer variables can stand for them).
const USER_BASE: u64 = 1_000_000;
/// Users outside every group that a group PUT brings in.
const EXTRA: u64 = 1_000;
/// Users outside every group that add-member scenarios add and remove (one per connection).
const SPARES: u64 = 64;
/// The tenant's event sequence starts here, so sequence values never equal another
/// parameter of a captured statement.
const SEQ_START: i64 = 1_000_000_000;
/// Tenants of the multi-tenant scenarios: `bench`, `bench-2` … `bench-8`. The first two
/// hold `--users` users each; the others start empty.
const TENANTS: usize = 8;
/// GET, filter and PATCH pick users among the first `PROBED`: members of the groups of
/// 10 000 and 100 000 directly, and of two more through nesting (see `Bench::setup`).
const PROBED: u64 = 10_000;
/// The groups that nest the group of 10 000: it is a member of `NEST_B`, which is a member
/// of `NEST_C`.
const NEST_B: &str = "3100001";
const NEST_C: &str = "3100002";

type Make = Box<dyn Fn(usize, u64) -> Vec<Req> + Send + Sync>;

struct Plan {
    warm: Vec<Vec<Req>>,
    unit: Vec<Req>,
    bindings: Bindings,
    connections: usize,
    make: Make,
    /// The tenant (index into `Bench::tenants`) whose event counter the capture reads.
    tenant: usize,
}

/// What one scenario produced.
#[derive(Default)]
struct Row {
    name: String,
    connections: usize,
    scimbus: Option<LoadResult>,
    baseline: Option<pgbench::Run>,
    /// The hand-written floor (`floor.rs`), when the scenario has one.
    floor: Option<pgbench::Run>,
    floor_statements_per_unit: usize,
    /// Requests per pgbench transaction.
    requests_per_unit: usize,
    statements_per_unit: usize,
    /// Statements per request scimbus issued during its measurement (pg_stat_statements),
    /// split into the request's own and the relay's.
    sql_per_request: Option<(f64, f64)>,
    /// PostgreSQL's execution time per request (ms): the request's statements, and the
    /// background's (relay, sequencer, announcer).
    db_ms_per_request: Option<(f64, f64)>,
    rss_peak_kb: Option<u64>,
    notes: Vec<String>,
}

struct Bench {
    args: Args,
    cluster: Cluster,
    bin: PathBuf,
    dir: PathBuf,
    tenant_id: String,
    token: String,
    /// Every tenant of the multi-tenant scenarios, `bench` first.
    tenants: Vec<TenantRef>,
    /// The rows created through the API that the seeding copies.
    tpl_user: String,
    tpl_group: String,
    templates: floor::Templates,
    floors: BTreeMap<String, (PathBuf, Script)>,
    /// Outbox drains so far (each uses its own event ids).
    drains: u32,
    exchange: String,
    capture: Option<Server>,
    serve: Option<Server>,
    consumer: Option<Consumer>,
    scripts: BTreeMap<String, (PathBuf, Script)>,
    rows: Vec<Row>,
    marker: u64,
    idle_rss_kb: Option<u64>,
}

/// A tenant: slug, id and a `scim` token.
#[derive(Clone, Debug)]
struct TenantRef {
    slug: String,
    id: String,
    token: Arc<str>,
}

impl TenantRef {
    fn base(&self) -> String {
        format!("/scim/v2/{}", self.slug)
    }
}

fn median(v: &mut [f64]) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    if v.is_empty() {
        return 0.0;
    }
    v[v.len() / 2]
}

impl Bench {
    fn target(&self, server: &Server) -> Target {
        Target {
            addr: server.addr,
            token: self.token.clone(),
        }
    }

    fn scimbus_env(&self, role: &str, relay: bool) -> Vec<(String, String)> {
        let mut env = vec![("SCIMBUS_DATABASE_URL".to_owned(), self.cluster.url_as(role))];
        if relay {
            env.extend([
                ("SCIMBUS_AMQP_URL".to_owned(), self.args.amqp_url.clone()),
                ("SCIMBUS_AMQP_EXCHANGE".to_owned(), self.exchange.clone()),
                (
                    "SCIMBUS_AMQP_UNROUTED_EXCHANGE".to_owned(),
                    format!("{}.unrouted", self.exchange),
                ),
                (
                    "SCIMBUS_AMQP_UNROUTED_QUEUE".to_owned(),
                    format!("{}.unrouted", self.exchange),
                ),
            ]);
        }
        env
    }

    fn groups(&self) -> Groups {
        let mut pids = Vec::new();
        if let Some(s) = &self.serve {
            pids.push(("scimbus".to_owned(), s.pid));
        }
        Groups {
            pids,
            postmaster: self.cluster.postmaster_pid(),
        }
    }

    async fn cli(&self, args: &[&str]) -> anyhow::Result<String> {
        self.cli_at(&self.cluster.url(), args).await
    }

    /// `scimbus <args>` on the database at `url`.
    async fn cli_at(&self, url: &str, args: &[&str]) -> anyhow::Result<String> {
        let out = tokio::process::Command::new(&self.bin)
            .args(args)
            .env("SCIMBUS_DATABASE_URL", url)
            .env("SCIMBUS_LOG", "warn")
            .output()
            .await?;
        if !out.status.success() {
            bail!("scimbus {args:?}: {}", String::from_utf8_lossy(&out.stderr));
        }
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    }

    /// A `scim` token of tenant `slug` (on the database at `url`, by default the cluster).
    async fn issue_token(&self, url: Option<&str>, slug: &str) -> anyhow::Result<Arc<str>> {
        let args = ["token", "issue", "--tenant", slug, "--name", "bench"];
        let issued = match url {
            Some(u) => self.cli_at(u, &args).await?,
            None => self.cli(&args).await?,
        };
        // The token is on the second line of the output.
        Ok(issued
            .lines()
            .nth(1)
            .context("no token in `scimbus token issue` output")?
            .trim()
            .into())
    }
}

async fn run(args: Args) -> anyhow::Result<()> {
    if args.list {
        for (name, what) in SCENARIOS {
            println!("{name:18} {what}");
        }
        return Ok(());
    }
    let selected: Vec<String> = if args.scenarios.is_empty() {
        SCENARIOS.iter().map(|(n, _)| (*n).to_owned()).collect()
    } else {
        for s in &args.scenarios {
            if !SCENARIOS.iter().any(|(n, _)| n == s) {
                bail!("unknown scenario {s}; --list shows them");
            }
        }
        // Each once, in the order given: scaling and many-tenants create what they measure.
        let mut seen = std::collections::BTreeSet::new();
        args.scenarios
            .iter()
            .filter(|s| seen.insert(s.as_str()))
            .cloned()
            .collect()
    };
    let bin = match &args.scimbus {
        Some(b) => b.clone(),
        None => std::env::current_exe()?
            .parent()
            .context("no directory")?
            .join("scimbus"),
    };
    if !bin.exists() {
        bail!(
            "{} not found: build it (`cargo build --release`) or set SCIMBUS_BIN",
            bin.display()
        );
    }
    let dir = std::env::temp_dir().join(format!(
        "scimbus-sidebyside-{}",
        uuid::Uuid::new_v4().simple()
    ));
    std::fs::create_dir_all(&dir)?;
    println!("# scimbus-sidebyside");
    println!(
        "scenarios: {}; {} connections; warm-up {} s, measurement {} s per side; {} users",
        selected.join(", "),
        args.connections,
        args.warmup,
        args.measure,
        args.users
    );
    let load = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    println!("load average at start: {}", load.trim());
    let cluster = tokio::task::spawn_blocking(cluster::start).await??;
    let exchange = format!("bench.{}", uuid::Uuid::new_v4().simple());
    let mut bench = Bench {
        args,
        cluster,
        bin,
        dir: dir.clone(),
        tenant_id: String::new(),
        token: String::new(),
        tenants: Vec::new(),
        tpl_user: String::new(),
        tpl_group: String::new(),
        templates: floor::Templates::default(),
        floors: BTreeMap::new(),
        drains: 0,
        exchange,
        capture: None,
        serve: None,
        consumer: None,
        scripts: BTreeMap::new(),
        rows: Vec::new(),
        marker: 0,
        idle_rss_kb: None,
    };
    let result = run_all(&mut bench, &selected).await;
    if let Some(c) = &bench.consumer {
        c.delete_exchange(&bench.exchange).await;
        c.delete_exchange(&format!("{}.unrouted", bench.exchange))
            .await;
    }
    let _ = bench.stop_serve().await;
    if let Some(c) = bench.capture.take() {
        let _ = c.stop().await;
    }
    if bench.args.keep {
        println!("work directory kept: {}", dir.display());
    } else {
        let _ = std::fs::remove_dir_all(&dir);
    }
    result
}

async fn run_all(bench: &mut Bench, selected: &[String]) -> anyhow::Result<()> {
    bench.setup().await?;
    bench.start_serve().await?;
    let mut extra = Vec::new();
    for name in selected {
        match name.as_str() {
            "relay-drain" => extra.push(("drain", bench.relay_drain(1).await?)),
            "relay-drain-8t" => extra.push(("drain", bench.relay_drain(TENANTS).await?)),
            "write-latency" => extra.push(("latency", bench.write_latency().await?)),
            "journal-paired" => extra.push(("journal", bench.journal_paired().await?)),
            "scaling" => extra.push(("scaling", bench.scaling().await?)),
            "many-tenants" => extra.push(("tenants", bench.many_tenants().await?)),
            "adversarial" => {
                let serve = bench.serve.as_ref().context("scimbus is not serving")?;
                let report = adversarial::run(bench.target(serve), BASE, serve.pid).await?;
                extra.push(("adversarial", report));
            }
            other => bench.scenario(other).await?,
        }
    }
    let idle_after = bench
        .serve
        .as_ref()
        .and_then(|s| procs::status_kb(s.pid, "VmRSS"));
    let peak = bench
        .serve
        .as_ref()
        .and_then(|s| procs::status_kb(s.pid, "VmHWM"));
    println!("\n# Results\n");
    if !bench.rows.is_empty() {
        println!("{HEADER}");
        for row in &bench.rows {
            println!("{}", render_row(row));
        }
    }
    for (kind, e) in &extra {
        match *kind {
            "drain" => println!(
                "\n| drain | scimbus relay | plain lapin publisher | ratio | CPU, relay run | CPU, plain run |\n|---|---|---|---|---|---|"
            ),
            "latency" => println!(
                "\n| latency | rate | writes | 2xx → consumer | request → consumer | CPU |\n|---|---|---|---|---|---|"
            ),
            // The other reports carry their own headers.
            _ => println!(),
        }
        println!("{e}");
    }
    let mb = |k: Option<u64>| {
        k.map(|k| format!("{:.1} MB", k as f64 / 1024.0))
            .unwrap_or("-".into())
    };
    let max_peak = bench.rows.iter().filter_map(|r| r.rss_peak_kb).max();
    println!(
        "\nscimbus resident set: idle after start {} (target ≤ 30 MB); highest peak under load {} (target ≤ 100 MB); \
         idle after the runs {}; process peak {}",
        mb(bench.idle_rss_kb),
        mb(max_peak),
        mb(idle_after),
        mb(peak)
    );
    let load = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    println!("load average at the end: {}", load.trim());
    Ok(())
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> anyhow::Result<()> {
    run(Args::parse()).await
}
