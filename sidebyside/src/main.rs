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
//! `tenants.rs` the cost of idle tenants. Data is seeded with SQL
//! (`INSERT … SELECT … generate_series`), not through the API. See docs/benchmarks.md.

mod adversarial;
mod broker;
mod capture;
mod cluster;
mod copy;
mod floor;
mod load;
mod pgbench;
mod procs;
mod scaling;
mod tenants;

use anyhow::{Context, bail};
use clap::Parser;
use rand::Rng;
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::broker::Consumer;
use crate::capture::{Bindings, Script};
use crate::cluster::{Cluster, free_port};
use crate::load::{Conn, LoadResult, Req, Target};
use crate::procs::{CpuSplit, Groups};
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

const SCENARIOS: &[(&str, &str)] = &[
    (
        "create-user",
        "POST /Users (Okta-style body, new userName each)",
    ),
    (
        "create-user-8t",
        "POST /Users spread evenly over 8 tenants (round robin per connection)",
    ),
    (
        "get-user",
        "GET /Users/{id} of a random probed user (in ≥ 4 groups, 2 through nesting)",
    ),
    (
        "filter-username",
        "GET /Users?filter=userName eq \"…\" of a random probed user",
    ),
    ("list-index", "GET /Users?startIndex=<random>&count=100"),
    (
        "list-cursor",
        "GET /Users?cursor=&count=100 (first cursor page)",
    ),
    (
        "patch-put",
        "PATCH active=false then PUT the whole user (Okta AIW), random probed user",
    ),
    (
        "add-member-100",
        "PATCH add one member to a group of 100, then remove it",
    ),
    (
        "add-member-10k",
        "PATCH add one member to a group of 10 000, then remove it",
    ),
    (
        "add-member-100k",
        "PATCH add one member to a group of 100 000, then remove it",
    ),
    (
        "group-put",
        "PUT a group of 100 000 replacing 1 000 members (1 connection)",
    ),
    (
        "mixed",
        "40% get-user, 40% filter-username, 20% create-user",
    ),
    (
        "scaling",
        "p50 of GET, filter, list, add/remove member at 1 000 vs --scaling-rows memberships (PostgreSQL and SQLite)",
    ),
    (
        "many-tenants",
        "relay cost per event, idle cost and /metrics size: 2 tenants vs 2 + --idle-tenants",
    ),
    (
        "adversarial",
        "scimbus CPU per adversarial body at the 8 MiB limit, one per entry point (target ≤ 200 ms)",
    ),
    (
        "relay-drain",
        "scimbus relay draining 100 000 events vs a plain lapin publisher",
    ),
    (
        "relay-drain-8t",
        "the same drain with the events spread over 8 tenants",
    ),
    (
        "write-latency",
        "POST /Users at a steady rate: 2xx → event at a consumer",
    ),
];

#[derive(Parser, Debug)]
#[command(about = "scimbus side by side with its own SQL (pgbench) and a plain publisher")]
struct Args {
    /// Scenarios to run, by name (default: all). `--list` shows them.
    scenarios: Vec<String>,
    /// List the scenarios and exit.
    #[arg(long)]
    list: bool,
    /// Concurrent connections (HTTP) and clients (pgbench).
    #[arg(long, default_value_t = 16)]
    connections: usize,
    /// Warm-up seconds per side and scenario.
    #[arg(long, default_value_t = 5)]
    warmup: u64,
    /// Measured seconds per side and scenario.
    #[arg(long, default_value_t = 15)]
    measure: u64,
    /// Seeded users (the largest group has this many members).
    #[arg(long, default_value_t = 100_000)]
    users: u64,
    /// Events in the relay drain.
    #[arg(long, default_value_t = 100_000)]
    events: u64,
    /// Alternating runs of each side in the relay drain.
    #[arg(long, default_value_t = 3)]
    drain_runs: usize,
    /// Membership rows of the scaling probe's grown tenant.
    #[arg(long, default_value_t = 1_000_000)]
    scaling_rows: u64,
    /// Requests of each kind per round of the scaling probe (sequential, one connection).
    #[arg(long, default_value_t = 300)]
    probe_requests: u64,
    /// Idle tenants added beside the 2 active ones in many-tenants.
    #[arg(long, default_value_t = 9_998)]
    idle_tenants: u64,
    /// Writes/s for write-latency (default: 40% of create-user's throughput, else 100).
    #[arg(long)]
    rate: Option<f64>,
    #[arg(
        long,
        env = "SCIMBUS_BENCH_AMQP_URL",
        default_value = "amqp://guest:guest@127.0.0.1:5672/%2f"
    )]
    amqp_url: String,
    /// Keep the work directory (captured scripts, pgbench files) and print its path.
    #[arg(long)]
    keep: bool,
    /// The scimbus binary (default: next to this one, i.e. target/release/scimbus).
    #[arg(long, env = "SCIMBUS_BIN")]
    scimbus: Option<PathBuf>,
}

/// A scimbus process.
struct Server {
    child: tokio::process::Child,
    addr: SocketAddr,
    pid: u32,
}

impl Server {
    async fn start(bin: &Path, command: &str, env: &[(String, String)]) -> anyhow::Result<Self> {
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
        // (`SCIMBUS_JOURNAL_ENTRIES=0 sidebyside/run create-user patch-put`).
        for (k, v) in std::env::vars().filter(|(k, _)| k.starts_with("SCIMBUS_JOURNAL_")) {
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
    async fn stop(mut self) -> anyhow::Result<()> {
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

fn tenant_slug(k: usize) -> String {
    if k == 0 {
        TENANT.to_owned()
    } else {
        format!("{TENANT}-{}", k + 1)
    }
}

fn user_body(user_name: &str, external_id: &str, active: bool) -> Value {
    json!({
        "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"],
        "userName": user_name,
        "externalId": external_id,
        "name": {"givenName": "Ada", "familyName": "Lovelace", "formatted": "Ada Lovelace"},
        "displayName": "Ada Lovelace",
        "title": "Engineer",
        "locale": "en-US",
        "emails": [{"value": format!("{user_name}@example.com"), "type": "work", "primary": true}],
        "active": active
    })
}

fn patch_body(ops: Value) -> Value {
    json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"], "Operations": ops})
}

fn seeded_id(g: u64) -> String {
    (USER_BASE + g).to_string()
}

fn new_name() -> String {
    format!("u{}", uuid::Uuid::new_v4().simple())
}

fn create_req() -> Req {
    create_req_in(BASE)
}

fn create_req_in(base: &str) -> Req {
    let name = new_name();
    Req::with_body(
        "POST /Users",
        "POST",
        format!("{base}/Users"),
        &user_body(&name, &format!("x{}", uuid::Uuid::new_v4().simple()), true),
        201,
    )
}

fn random_user(users: u64) -> String {
    seeded_id(rand::rng().random_range(1..=users))
}

fn get_req(id: &str) -> Req {
    Req::get("GET /Users/{id}", format!("{BASE}/Users/{id}"))
}

fn filter_req(id: &str) -> Req {
    Req::get(
        "GET /Users?filter",
        format!("{BASE}/Users?filter=userName%20eq%20%22{id}%22"),
    )
}

fn patch_put_unit(id: &str) -> Vec<Req> {
    vec![
        Req::with_body(
            "PATCH active=false",
            "PATCH",
            format!("{BASE}/Users/{id}"),
            &patch_body(json!([{"op": "replace", "value": {"active": false}}])),
            200,
        ),
        Req::with_body(
            "PUT /Users/{id}",
            "PUT",
            format!("{BASE}/Users/{id}"),
            &user_body(id, &format!("ext-{id}"), true),
            200,
        ),
    ]
}

fn group_id(size: u64) -> String {
    (3_000_000 + size).to_string()
}

fn spare(worker: u64, users: u64) -> String {
    seeded_id(users + EXTRA + 1 + worker)
}

fn add_remove_unit(gid: &str, member: &str) -> Vec<Req> {
    vec![
        Req::with_body(
            "PATCH add member",
            "PATCH",
            format!("{BASE}/Groups/{gid}"),
            &patch_body(json!([{"op": "add", "path": "members", "value": [{"value": member}]}])),
            204,
        ),
        Req::with_body(
            "PATCH remove member",
            "PATCH",
            format!("{BASE}/Groups/{gid}"),
            &patch_body(
                json!([{"op": "remove", "path": format!("members[value eq \"{member}\"]")}]),
            ),
            204,
        ),
    ]
}

/// SQL for the last sequence a tenant (`id_sql`, an SQL expression) has used: its event
/// counter or its highest outbox row, whichever is higher, so that copied events follow
/// whatever numbering scimbus uses.
fn last_sequence(id_sql: &str) -> String {
    format!(
        "SELECT greatest(t.event_seq, coalesce((SELECT max(o.sequence) FROM outbox o \
         WHERE o.tenant_id = t.id), 0)) FROM tenants t WHERE t.id = {id_sql}"
    )
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

    /// `INSERT INTO table SELECT …` copying the template row once per value of `series`,
    /// with `replacements` (template text → SQL expression) applied to every text and JSON
    /// column: rows exactly as the service writes them, in bulk.
    fn replicate(
        &self,
        table: &str,
        template: &str,
        series: &str,
        replacements: &[(&str, String)],
        overrides: &[(&str, &str)],
    ) -> anyhow::Result<()> {
        self.replicate_in("scimbus", table, template, series, replacements, overrides)
    }

    /// [`Bench::replicate`] in database `db` of the bench cluster.
    fn replicate_in(
        &self,
        db: &str,
        table: &str,
        template: &str,
        series: &str,
        replacements: &[(&str, String)],
        overrides: &[(&str, &str)],
    ) -> anyhow::Result<()> {
        let query = |sql: &str| self.cluster.psql_as("postgres", db, sql);
        let columns = query(&format!(
            "SELECT column_name || ':' || data_type FROM information_schema.columns \
             WHERE table_name = '{table}' ORDER BY ordinal_position"
        ))?;
        let (names, exprs) = copy::columns(&columns, &copy::POSTGRES, replacements, overrides)?;
        query(&format!(
            "INSERT INTO {table} ({names}) SELECT {exprs} FROM {table} t, {series} WHERE {template}"
        ))?;
        Ok(())
    }

    async fn setup(&mut self) -> anyhow::Result<()> {
        let t0 = Instant::now();
        self.cli(&["migrate"]).await?;
        for k in 0..TENANTS {
            let slug = tenant_slug(k);
            self.cli(&["tenant", "create", &slug]).await?;
            let token = self.issue_token(None, &slug).await?;
            let id = self
                .cluster
                .query(&format!("SELECT id FROM tenants WHERE slug = '{slug}'"))?;
            self.cluster.query(&format!(
                "UPDATE tenants SET event_seq = {SEQ_START} WHERE slug = '{slug}'"
            ))?;
            self.tenants.push(TenantRef { slug, id, token });
        }
        self.token = self.tenants[0].token.to_string();
        self.tenant_id = self.tenants[0].id.clone();

        let capture =
            Server::start(&self.bin, "serve", &self.scimbus_env("capture", false)).await?;
        let target = self.target(&capture);
        let mut conn = Conn::open(capture.addr).await?;
        let mut create = async |path: &str, body: Value| -> anyhow::Result<String> {
            let req = Req::with_body("seed", "POST", format!("{BASE}/{path}"), &body, 201);
            let created: Value = serde_json::from_slice(&conn.expect(&target, &req).await?)?;
            Ok(created["id"].as_str().context("no id")?.to_owned())
        };
        let tpl_user = create("Users", user_body("zzuserzz", "zzextzz", true)).await?;
        let tpl_group = create(
            "Groups",
            json!({
                "schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group"],
                "displayName": "zzgroupzz",
                "members": [{"value": tpl_user}]
            }),
        )
        .await?;
        self.capture = Some(capture);
        self.tpl_user = tpl_user.clone();
        self.tpl_group = tpl_group.clone();

        let users = self.args.users;
        let total = users + EXTRA + SPARES;
        let g = format!("(g + {USER_BASE})::text");
        let user_replacements = [
            (tpl_user.as_str(), g.clone()),
            ("zzuserzz", g.clone()),
            ("zzextzz", format!("'ext-' || {g}")),
        ];
        self.replicate(
            "users",
            &format!("t.id = '{tpl_user}'"),
            &format!("generate_series(1, {total}) AS g"),
            &user_replacements,
            &[],
        )?;
        // The second tenant of the same size: its rows share the first one's tables and
        // indexes, as on a real multi-tenant server.
        let second = format!("'{}'", self.tenants[1].id);
        self.replicate(
            "users",
            &format!("t.id = '{tpl_user}'"),
            &format!("generate_series(1, {users}) AS g"),
            &user_replacements,
            &[("tenant_id", &second)],
        )?;
        let mut sizes = vec![100.min(users), 10_000.min(users), users];
        sizes.dedup();
        for size in sizes {
            let gid = group_id(size);
            self.copy_group(&gid)?;
            self.replicate(
                "group_members",
                &format!("t.group_id = '{tpl_group}' AND t.member_id = '{tpl_user}'"),
                &format!("generate_series(1, {size}) AS g"),
                &[
                    (tpl_group.as_str(), format!("'{gid}'")),
                    (tpl_user.as_str(), g.clone()),
                ],
                &[],
            )?;
        }
        // Nesting three deep: the group of 10 000 is a member of B, B of C; so a probed
        // user is in the groups of 10 000 and 100 000 directly and in B and C indirectly.
        let a = group_id(10_000.min(users));
        for (parent, child) in [(NEST_B, a.as_str()), (NEST_C, NEST_B)] {
            self.copy_group(parent)?;
            self.replicate(
                "group_members",
                &format!("t.group_id = '{tpl_group}' AND t.member_id = '{tpl_user}'"),
                "(SELECT 1) AS g",
                &[
                    (tpl_group.as_str(), format!("'{parent}'")),
                    (tpl_user.as_str(), format!("'{child}'")),
                ],
                &[("member_type", "'Group'")],
            )?;
        }
        self.event_templates().await?;
        self.cluster.query(&format!(
            "CREATE SEQUENCE {} START {}",
            floor::SEQ_NAME,
            floor::SEQ_START
        ))?;
        self.cluster.query("VACUUM ANALYZE")?;
        println!(
            "seeded {total} + {users} users in 2 tenants, groups of 100 / 10 000 / {users} members, \
             nested 3 deep, {TENANTS} tenants in all, in {:.1} s",
            t0.elapsed().as_secs_f64()
        );
        Ok(())
    }

    /// A copy of the template group with id `gid` and name `Group <gid>`, no members.
    fn copy_group(&self, gid: &str) -> anyhow::Result<()> {
        self.replicate(
            "groups",
            &format!("t.id = '{}'", self.tpl_group),
            "(SELECT 1) AS g",
            &[
                (self.tpl_group.as_str(), format!("'{gid}'")),
                ("zzgroupzz", format!("'Group {gid}'")),
            ],
            &[],
        )
    }

    async fn start_serve(&mut self) -> anyhow::Result<()> {
        let serve = Server::start(&self.bin, "serve", &self.scimbus_env("postgres", true)).await?;
        // A first request, then the idle resident set.
        let target = self.target(&serve);
        let mut conn = Conn::open(serve.addr).await?;
        let body = conn.expect(&target, &get_req(&seeded_id(1))).await?;
        if self.idle_rss_kb.is_none() {
            self.idle_rss_kb = procs::status_kb(serve.pid, "VmRSS");
            // The seeding's memberships as scimbus reports them: user 1 is in the groups of
            // 100, 10 000 and 100 000 directly and in B and C through nesting.
            let user: Value = serde_json::from_slice(&body)?;
            let u = self.args.users;
            let mut direct = vec![100.min(u), 10_000.min(u), u];
            direct.dedup();
            println!(
                "probed user {} is in {} groups ({} expected)",
                seeded_id(1),
                user["groups"].as_array().map_or(0, Vec::len),
                direct.len() + 2
            );
        }
        println!("scimbus serving on {} (pid {})", serve.addr, serve.pid);
        self.serve = Some(serve);
        if self.consumer.is_none() {
            self.consumer = Some(Consumer::start(&self.args.amqp_url, &self.exchange).await?);
        }
        Ok(())
    }

    /// Marks every unpublished event published: the replay's copies must not be
    /// published, and a scenario must not start with the last one's backlog.
    fn settle_outbox(&self) -> anyhow::Result<()> {
        self.cluster
            .query("UPDATE outbox SET published_at = created_at WHERE published_at IS NULL")?;
        // The replay's events wait unnumbered (its script has no numbering, which runs in
        // scimbus's background); they are copies, never to be numbered or published.
        self.cluster.query("DELETE FROM outbox_pending")?;
        Ok(())
    }

    /// Between phases: vacuum and analyze what the last phase wrote and write it out, so
    /// no phase pays for the previous one's dead rows or dirty pages (autovacuum is off in
    /// the bench cluster).
    fn quiesce(&self) -> anyhow::Result<()> {
        self.cluster.query("VACUUM ANALYZE")?;
        self.cluster.query("CHECKPOINT")?;
        Ok(())
    }

    async fn stop_serve(&mut self) -> anyhow::Result<()> {
        if let Some(s) = self.serve.take() {
            s.stop().await?;
        }
        Ok(())
    }

    async fn marker(&mut self, what: &str) -> anyhow::Result<String> {
        let m = format!("bench-mark-{}-{what}", self.marker);
        self.cluster
            .psql_as("capture", "scimbus", &format!("SELECT '{m}'"))?;
        Ok(m)
    }

    /// Captures the SQL of `unit` (after `warm` units) and writes the pgbench script.
    async fn capture(
        &mut self,
        name: &str,
        warm: Vec<Vec<Req>>,
        unit: Vec<Req>,
        mut bindings: Bindings,
        tenant: usize,
    ) -> anyhow::Result<()> {
        let capture = self.capture.as_ref().context("no capture server")?;
        let target = self.target(capture);
        let mut conn = Conn::open(capture.addr).await?;
        for u in warm {
            for r in u {
                conn.expect(&target, &r).await?;
            }
        }
        let slug = &self.tenants.get(tenant).context("no such tenant")?.slug;
        bindings.seq_before = self
            .cluster
            .query(&format!(
                "SELECT event_seq FROM tenants WHERE slug = '{slug}'"
            ))?
            .parse()?;
        bindings
            .constant_uuids
            .extend(self.tenants.iter().map(|t| t.id.clone()));
        bindings.constant_uuids.extend(
            self.cluster
                .query("SELECT id FROM tokens")?
                .lines()
                .map(str::to_owned),
        );
        self.marker += 1;
        let begin = self.marker("begin").await?;
        for r in &unit {
            conn.expect(&target, r).await?;
        }
        let end = self.marker("end").await?;
        // The logging collector writes asynchronously: wait for the end marker.
        let log = self.cluster.csv_log();
        let mut statements = None;
        for _ in 0..100 {
            if let Ok(s) = capture::read_between(&log, &begin, &end) {
                statements = Some(s);
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let statements = statements.context("captured statements never reached the log")?;
        let prefix = name.replace('-', "_");
        let script = capture::script(&prefix, &statements, &bindings, unit.len())?;
        let path = self.dir.join(format!("{name}.sql"));
        std::fs::write(&path, &script.text)?;
        println!(
            "  captured {} statements for {} request(s) → {}",
            script.statements,
            unit.len(),
            path.display()
        );
        self.scripts.insert(name.to_owned(), (path, script));
        Ok(())
    }

    async fn measure_scimbus<F>(
        &self,
        row: &mut Row,
        connections: usize,
        make: F,
    ) -> anyhow::Result<()>
    where
        F: Fn(usize, u64) -> Vec<Req> + Send + Sync + 'static,
    {
        let serve = self.serve.as_ref().context("scimbus is not serving")?;
        let target = self.target(serve);
        self.cluster.query("SELECT pg_stat_statements_reset()")?;
        procs::reset_peak(serve.pid);
        let result = load::closed_loop(
            &target,
            connections,
            Duration::from_secs(self.args.warmup),
            Duration::from_secs(self.args.measure),
            &self.groups(),
            make,
        )
        .await?;
        row.rss_peak_kb = procs::status_kb(serve.pid, "VmHWM");
        // Statements scimbus issued in the whole run (warm-up included), per request, and
        // PostgreSQL's execution time per request: the request's own statements, and the
        // background's (the relay reading and marking the outbox, the sequencer numbering
        // `outbox_pending` into it, the announcer's NOTIFY).
        let relay = "(query ILIKE '%outbox%' AND (query ILIKE 'SELECT%' OR query ILIKE 'UPDATE%') \
             OR query ILIKE '%pg_try_advisory%' OR query ILIKE '%pg_advisory%' OR query ILIKE 'LISTEN%')";
        let background = format!(
            "({relay} OR (query ILIKE '%outbox_pending%' AND query NOT ILIKE '%INSERT INTO outbox_pending%') \
             OR query ILIKE '%pg_notify(%')"
        );
        let stats = self.cluster.query(&format!(
            "SELECT coalesce(sum(calls) FILTER (WHERE {relay}), 0) || ' ' || \
             coalesce(sum(calls), 0) || ' ' || \
             coalesce(sum(total_exec_time) FILTER (WHERE {background}), 0) || ' ' || \
             coalesce(sum(total_exec_time), 0) \
             FROM pg_stat_statements s JOIN pg_roles r ON r.oid = s.userid \
             WHERE r.rolname = 'postgres' AND query NOT ILIKE '%pg_stat_statements%'",
        ))?;
        let mut parts = stats
            .split_whitespace()
            .filter_map(|v| v.parse::<f64>().ok());
        let total_requests = result.completed.max(1) as f64;
        if let (Some(relay), Some(all)) = (parts.next(), parts.next()) {
            row.sql_per_request = Some(((all - relay) / total_requests, relay / total_requests));
        }
        if let (Some(background), Some(all)) = (parts.next(), parts.next()) {
            row.db_ms_per_request = Some((
                (all - background) / total_requests,
                background / total_requests,
            ));
        }
        if result.errors > 0 {
            row.notes.push(format!(
                "{} failed requests, first: {}",
                result.errors,
                result.first_error.clone().unwrap_or_default()
            ));
        }
        row.scimbus = Some(result);
        Ok(())
    }

    /// Runs `scripts` (names in `from`, with weights) with pgbench, as many clients as
    /// scimbus had connections; returns the run, requests and statements per transaction.
    async fn pgbench(
        &self,
        from: &BTreeMap<String, (PathBuf, Script)>,
        scripts: &[(String, u32)],
        clients: usize,
    ) -> anyhow::Result<(pgbench::Run, usize, usize)> {
        let mut files = Vec::new();
        let mut defines = Vec::new();
        let mut requests = 0;
        let mut statements = 0;
        for (name, weight) in scripts {
            let (path, script) = from
                .get(name)
                .with_context(|| format!("no script {name}"))?;
            files.push((path.clone(), *weight));
            defines.extend(script.defines.iter().cloned());
            requests = requests.max(script.requests);
            statements = statements.max(script.statements);
        }
        let job = pgbench::Job {
            scripts: files,
            defines,
            clients,
            dir: &self.dir,
        };
        let run = pgbench::run(
            &self.cluster,
            &job,
            Duration::from_secs(self.args.warmup),
            Duration::from_secs(self.args.measure),
            &self.groups(),
        )
        .await?;
        Ok((run, requests, statements))
    }

    async fn measure_baseline(
        &self,
        row: &mut Row,
        scripts: &[(String, u32)],
        clients: usize,
    ) -> anyhow::Result<()> {
        let (run, requests, statements) = self.pgbench(&self.scripts, scripts, clients).await?;
        if run.failed > 0 {
            row.notes
                .push(format!("pgbench: {} failed transactions", run.failed));
        }
        row.requests_per_unit = requests;
        row.statements_per_unit = statements;
        row.baseline = Some(run);
        Ok(())
    }

    /// What a scenario sends: warm-up units for the capture, the captured unit and how its
    /// values map to pgbench variables, and the load generator's units.
    fn plan(&self, name: &str) -> anyhow::Result<Plan> {
        let users = self.args.users;
        let probed = PROBED.min(users);
        let c = self.args.connections;
        let uid = |id: &str| Bindings {
            vars: vec![(id.to_owned(), "uid".into())],
            prelude: vec![format!(
                "\\set uid random({}, {})",
                USER_BASE + 1,
                USER_BASE + probed
            )],
            ..Default::default()
        };
        let create_bindings = |unit: &[Req]| -> anyhow::Result<Bindings> {
            let body: Value = serde_json::from_slice(unit[0].body.as_deref().unwrap_or_default())?;
            let text = |k: &str| body[k].as_str().unwrap_or_default().to_owned();
            Ok(Bindings {
                vars: vec![
                    (text("userName"), "un".into()),
                    (text("externalId"), "ext".into()),
                ],
                prelude: vec![
                    "\\set un random(1000000000000, 9000000000000000000)".into(),
                    "\\set ext random(1000000000000, 9000000000000000000)".into(),
                ],
                ..Default::default()
            })
        };
        // One tenant's part of create-user-8t: its own capture and script.
        if let Some(k) = name.strip_prefix("create-user-t") {
            let k: usize = k.parse::<usize>()?.checked_sub(1).context("tenant 0")?;
            let t = self.tenants.get(k).context("no such tenant")?.clone();
            let req = move || create_req_in(&t.base()).with_token(&t.token);
            let unit = vec![req()];
            return Ok(Plan {
                warm: vec![vec![req()], vec![req()]],
                bindings: create_bindings(&unit)?,
                unit,
                connections: c,
                make: Box::new(move |_, _| vec![req()]),
                tenant: k,
            });
        }
        let plan = match name {
            "create-user" => {
                let unit = vec![create_req()];
                Plan {
                    warm: vec![vec![create_req()], vec![create_req()]],
                    bindings: create_bindings(&unit)?,
                    unit,
                    connections: c,
                    make: Box::new(|_, _| vec![create_req()]),
                    tenant: 0,
                }
            }
            "create-user-8t" => {
                // Each connection takes the tenants in turn, starting at its own.
                let tenants: Vec<(String, Arc<str>)> = self
                    .tenants
                    .iter()
                    .map(|t| (t.base(), t.token.clone()))
                    .collect();
                Plan {
                    warm: vec![],
                    unit: vec![],
                    bindings: Bindings::default(),
                    connections: c,
                    make: Box::new(move |w, n| {
                        let (base, token) = &tenants[(w + n as usize) % tenants.len()];
                        vec![create_req_in(base).with_token(token)]
                    }),
                    tenant: 0,
                }
            }
            "get-user" | "filter-username" => {
                let req = if name == "get-user" {
                    get_req
                } else {
                    filter_req
                };
                let id = random_user(probed);
                Plan {
                    warm: vec![
                        vec![req(&random_user(probed))],
                        vec![req(&random_user(probed))],
                    ],
                    unit: vec![req(&id)],
                    bindings: uid(&id),
                    connections: c,
                    make: Box::new(move |_, _| vec![req(&random_user(probed))]),
                    tenant: 0,
                }
            }
            "list-index" => {
                // A random page (what startIndex costs is the OFFSET); the capture takes
                // the last page, whose OFFSET the replay draws at random like the load.
                let last = users.saturating_sub(100);
                let page = |off: u64| {
                    Req::get(
                        "GET /Users page",
                        format!("{BASE}/Users?startIndex={}&count=100", off + 1),
                    )
                };
                Plan {
                    warm: vec![vec![page(0)], vec![page(last / 2)]],
                    unit: vec![page(last)],
                    bindings: Bindings {
                        vars: vec![(last.to_string(), "off".into())],
                        prelude: vec![format!("\\set off random(0, {last})")],
                        ..Default::default()
                    },
                    connections: c,
                    make: Box::new(move |_, _| vec![page(rand::rng().random_range(0..=last))]),
                    tenant: 0,
                }
            }
            "list-cursor" => {
                let req = Req::get("GET /Users page", format!("{BASE}/Users?cursor=&count=100"));
                let r = req.clone();
                Plan {
                    warm: vec![vec![req.clone()], vec![req.clone()]],
                    unit: vec![req],
                    bindings: Bindings::default(),
                    connections: c,
                    make: Box::new(move |_, _| vec![r.clone()]),
                    tenant: 0,
                }
            }
            "patch-put" => {
                let id = random_user(probed);
                Plan {
                    warm: vec![patch_put_unit(&random_user(probed))],
                    unit: patch_put_unit(&id),
                    bindings: uid(&id),
                    connections: c,
                    make: Box::new(move |_, _| patch_put_unit(&random_user(probed))),
                    tenant: 0,
                }
            }
            "add-member-100" | "add-member-10k" | "add-member-100k" => {
                let size = match name {
                    "add-member-100" => 100.min(users),
                    "add-member-10k" => 10_000.min(users),
                    _ => users,
                };
                let gid = group_id(size);
                // The capture uses a spare no load worker uses.
                let member = spare(SPARES - 1, users);
                Plan {
                    warm: vec![add_remove_unit(&gid, &member)],
                    unit: add_remove_unit(&gid, &member),
                    bindings: Bindings {
                        vars: vec![(member.clone(), "spare".into())],
                        prelude: vec![format!(
                            "\\set spare {} + :client_id",
                            USER_BASE + users + EXTRA + 1
                        )],
                        ..Default::default()
                    },
                    connections: c,
                    make: Box::new(move |w, _| add_remove_unit(&gid, &spare(w as u64, users))),
                    tenant: 0,
                }
            }
            "group-put" => {
                let gid = group_id(users);
                let members = |ids: &mut dyn Iterator<Item = u64>| -> Value {
                    Value::Array(ids.map(|g| json!({"value": seeded_id(g)})).collect())
                };
                let body = |m: Value| {
                    json!({
                        "schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group"],
                        "displayName": format!("Group {gid}"),
                        "members": m
                    })
                };
                // A: the last EXTRA members out, the EXTRA outsiders in; B: back.
                let a = body(members(
                    &mut (1..=users - EXTRA).chain(users + 1..=users + EXTRA),
                ));
                let b = body(members(&mut (1..=users)));
                let put = |v: &Value| {
                    Req::with_body(
                        "PUT /Groups/{id}",
                        "PUT",
                        format!("{BASE}/Groups/{gid}"),
                        v,
                        200,
                    )
                };
                let unit = vec![put(&a), put(&b)];
                let shared = Arc::new(unit.clone());
                Plan {
                    warm: vec![],
                    unit,
                    bindings: Bindings::default(),
                    connections: 1,
                    make: Box::new(move |_, _| shared.as_ref().clone()),
                    tenant: 0,
                }
            }
            "mixed" => Plan {
                warm: vec![],
                unit: vec![],
                bindings: Bindings::default(),
                connections: c,
                make: Box::new(move |_, _| {
                    let r: f64 = rand::rng().random();
                    if r < 0.4 {
                        vec![get_req(&random_user(probed))]
                    } else if r < 0.8 {
                        vec![filter_req(&random_user(probed))]
                    } else {
                        vec![create_req()]
                    }
                }),
                tenant: 0,
            },
            other => bail!("unknown scenario {other}"),
        };
        Ok(plan)
    }

    async fn scenario(&mut self, name: &str) -> anyhow::Result<()> {
        println!("\n## {name}");
        let plan = self.plan(name)?;
        let mut row = Row {
            name: name.to_owned(),
            connections: plan.connections,
            requests_per_unit: 1,
            ..Default::default()
        };
        // The mixed load replays the scripts of its parts, weighted as it mixes them; the
        // load over 8 tenants, each tenant's own capture, equally weighted.
        let scripts: Vec<(String, u32)> = match name {
            "mixed" => vec![
                ("get-user".into(), 40),
                ("filter-username".into(), 40),
                ("create-user".into(), 20),
            ],
            "create-user-8t" => (1..=self.tenants.len())
                .map(|k| (format!("create-user-t{k}"), 1))
                .collect(),
            _ => vec![(name.to_owned(), 1)],
        };
        for (part, _) in &scripts {
            if !self.scripts.contains_key(part) {
                let p = if part == name {
                    None
                } else {
                    Some(self.plan(part)?)
                };
                let p = p.as_ref().unwrap_or(&plan);
                self.capture(
                    part,
                    p.warm.clone(),
                    p.unit.clone(),
                    p.bindings.clone(),
                    p.tenant,
                )
                .await?;
            }
        }
        let connections = plan.connections;
        self.quiesce()?;
        self.measure_scimbus(&mut row, connections, plan.make)
            .await?;
        // pgbench runs alone: the serving process (and its relay, which would publish the
        // replay's events) is stopped, and what either side left unpublished is marked.
        self.stop_serve().await?;
        self.settle_outbox()?;
        self.quiesce()?;
        self.measure_baseline(&mut row, &scripts, connections)
            .await?;
        self.settle_outbox()?;
        self.quiesce()?;
        self.measure_floor(&mut row, name, connections).await?;
        self.start_serve().await?;
        if name == "group-put" {
            let size = self.cluster.query(&format!(
                "SELECT count(*) FROM group_members WHERE group_id = '{}'",
                group_id(self.args.users)
            ))?;
            row.notes.push(format!("group size after the runs: {size}"));
        }
        print_row(&row);
        self.rows.push(row);
        Ok(())
    }

    /// The relay draining `events` unpublished events (spread evenly over the first
    /// `spread` tenants), against a plain publisher of the same messages in the same order;
    /// alternating runs, medians.
    async fn relay_drain(&mut self, spread: usize) -> anyhow::Result<String> {
        let name = if spread > 1 {
            format!("relay-drain-{spread}t")
        } else {
            "relay-drain".to_owned()
        };
        println!("\n## {name}");
        self.stop_serve().await?;
        // Only the drain's events are to publish: earlier writes' events that the serving
        // relay had not published yet are marked, and the consumer has gone quiet.
        self.settle_outbox()?;
        if let Some(consumer) = &self.consumer {
            let mut last = u64::MAX;
            while consumer.count() != last {
                last = consumer.count();
                tokio::time::sleep(Duration::from_millis(500)).await;
            }
        }
        let n = self.args.events;
        let tid = self.tenant_id.clone();
        let template = self.cluster.query(&format!(
            "SELECT sequence FROM outbox WHERE tenant_id = '{tid}' AND event_type = 'scimbus.user.created' \
             ORDER BY sequence LIMIT 1"
        ))?;
        let template: i64 = template.parse().context("no user.created event to copy")?;
        let tpl_id = self.cluster.query(&format!(
            "SELECT id FROM outbox WHERE tenant_id = '{tid}' AND sequence = {template}"
        ))?;
        // Event ids of this drain: its own prefix, then the event's number, so that the
        // copies are told apart from every other row and ordered by id across tenants.
        self.drains += 1;
        let prefix = format!("00000000-0000-4000-{:04x}-", 0x8000 + self.drains);
        let spread = spread.clamp(1, self.tenants.len());
        for (k, t) in self.tenants.iter().take(spread).enumerate() {
            let count = n / spread as u64 + u64::from((k as u64) < n % spread as u64);
            let seq: i64 = self
                .cluster
                .query(&last_sequence(&format!("'{}'", t.id)))?
                .parse()?;
            let mut replacements = vec![(
                tpl_id.as_str(),
                format!("'{prefix}' || lpad(((g - 1) * {spread} + {k} + 1)::text, 12, '0')"),
            )];
            let (routing, source, tenant) = (
                format!("{TENANT}.user."),
                format!("/scim/v2/{TENANT}\""),
                format!("\"tenant\": \"{TENANT}\""),
            );
            if k > 0 {
                replacements.extend([
                    (routing.as_str(), format!("'{}.user.'", t.slug)),
                    (source.as_str(), format!("'/scim/v2/{}\"'", t.slug)),
                    (tenant.as_str(), format!("'\"tenant\": \"{}\"'", t.slug)),
                ]);
            }
            self.replicate(
                "outbox",
                &format!("t.tenant_id = '{tid}' AND t.sequence = {template}"),
                &format!("generate_series(1, {count}) AS g"),
                &replacements,
                &[
                    ("tenant_id", &format!("'{}'", t.id)),
                    ("sequence", &format!("{seq} + g")),
                    ("published_at", "NULL"),
                    ("attempts", "0"),
                ],
            )?;
            self.cluster.query(&format!(
                "UPDATE tenants SET event_seq = {} WHERE id = '{}'",
                seq + count as i64,
                t.id
            ))?;
        }
        let file = self.dir.join("messages.csv");
        self.cluster.copy_out(
            &format!(
                "SELECT id, routing_key, payload::text FROM outbox WHERE id LIKE '{prefix}%' ORDER BY id"
            ),
            &file,
        )?;
        let mut messages = Vec::new();
        let mut reader = csv::ReaderBuilder::new()
            .has_headers(false)
            .from_path(&file)?;
        for record in reader.records() {
            let r = record?;
            messages.push(broker::Message {
                id: r.get(0).unwrap_or_default().to_owned(),
                routing_key: r.get(1).unwrap_or_default().to_owned(),
                body: r.get(2).unwrap_or_default().as_bytes().to_vec(),
            });
        }
        let consumer = self.consumer.as_ref().context("no consumer")?;
        let mut relay_rates = Vec::new();
        let mut plain_rates = Vec::new();
        let mut relay_cpu = Vec::new();
        let mut plain_cpu = Vec::new();
        let mut lines = String::new();
        for run in 0..self.args.drain_runs {
            for side in if run % 2 == 0 {
                ["relay", "plain"]
            } else {
                ["plain", "relay"]
            } {
                self.cluster.query(&format!(
                    "UPDATE outbox SET published_at = NULL WHERE id LIKE '{prefix}%'"
                ))?;
                self.cluster.query("VACUUM ANALYZE outbox")?;
                let target = consumer.count() + n;
                let mut groups = self.groups();
                let start = Instant::now();
                let (elapsed, cpu) = if side == "relay" {
                    let relay =
                        Server::start(&self.bin, "relay", &self.scimbus_env("postgres", true))
                            .await?;
                    groups.pids.push(("scimbus relay".into(), relay.pid));
                    let before = groups.snapshot();
                    let done = consumer
                        .wait_for(target, Duration::from_secs(60))
                        .await
                        .context("the relay stopped delivering")?;
                    let after = groups.snapshot();
                    relay.stop().await?;
                    (
                        done.duration_since(start),
                        CpuSplit::between(&before, &after),
                    )
                } else {
                    let before = groups.snapshot();
                    broker::plain_publish(&self.args.amqp_url, &self.exchange, &messages, 500)
                        .await?;
                    consumer
                        .wait_for(target, Duration::from_secs(60))
                        .await
                        .context("the consumer stopped receiving")?;
                    let after = groups.snapshot();
                    (start.elapsed(), CpuSplit::between(&before, &after))
                };
                let rate = n as f64 / elapsed.as_secs_f64();
                writeln!(
                    lines,
                    "  run {} {side}: {:.2} s, {rate:.0} events/s; CPU: {}",
                    run + 1,
                    elapsed.as_secs_f64(),
                    cpu.render()
                )?;
                println!("{}", lines.lines().last().unwrap_or_default());
                if side == "relay" {
                    relay_rates.push(rate);
                    relay_cpu.push(cpu);
                } else {
                    plain_rates.push(rate);
                    plain_cpu.push(cpu);
                }
            }
        }
        let r = median(&mut relay_rates);
        let p = median(&mut plain_rates);
        let summary = format!(
            "| {name} ({n} events) | {r:.0} events/s | {p:.0} events/s | **{:.2}×** (target ≥ 0.7) | {} | {} |",
            r / p,
            relay_cpu.first().map(|c| c.render()).unwrap_or_default(),
            plain_cpu.first().map(|c| c.render()).unwrap_or_default(),
        );
        println!("{summary}");
        // The last run may have been the plain publisher's: the copies stay unpublished.
        self.settle_outbox()?;
        self.start_serve().await?;
        Ok(format!("{lines}\n{summary}"))
    }

    /// Open loop at `rate` writes/s: time from each 201 (and from sending) to the
    /// consumer's receipt of the event.
    async fn write_latency(&mut self) -> anyhow::Result<String> {
        println!("\n## write-latency");
        let rate = self.args.rate.unwrap_or_else(|| {
            self.rows
                .iter()
                .find(|r| r.name == "create-user")
                .and_then(|r| r.scimbus.as_ref())
                .map(|s| (s.throughput() * 0.4).max(10.0))
                .unwrap_or(100.0)
        });
        // The drain before it leaves 100 000 updated outbox rows behind.
        self.quiesce()?;
        let serve = self.serve.as_ref().context("scimbus is not serving")?;
        let target = self.target(serve);
        let consumer = self.consumer.as_ref().context("no consumer")?;
        consumer
            .track
            .store(true, std::sync::atomic::Ordering::Relaxed);
        let pool: Arc<tokio::sync::Mutex<Vec<Conn>>> =
            Arc::new(tokio::sync::Mutex::new(Vec::new()));
        let total = (rate * self.args.measure as f64) as u64;
        let warm = (rate * self.args.warmup as f64) as u64;
        let mut interval = tokio::time::interval(Duration::from_secs_f64(1.0 / rate));
        interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
        let mut tasks = Vec::new();
        let groups = self.groups();
        let mut before = None;
        let started = Instant::now();
        for i in 0..warm + total {
            interval.tick().await;
            if i == warm {
                before = Some(groups.snapshot());
            }
            let pool = pool.clone();
            let target = target.clone();
            let measured = i >= warm;
            tasks.push(tokio::spawn(async move {
                let conn = pool.lock().await.pop();
                let mut conn = match conn {
                    Some(c) => c,
                    None => Conn::open(target.addr).await?,
                };
                let req = create_req();
                let sent = Instant::now();
                let body = conn.expect(&target, &req).await?;
                let ok = Instant::now();
                pool.lock().await.push(conn);
                let v: Value = serde_json::from_slice(&body)?;
                let id = v["id"].as_str().unwrap_or_default().to_owned();
                anyhow::Ok((measured, id, sent, ok))
            }));
        }
        let mut done = Vec::new();
        for t in tasks {
            done.push(t.await??);
        }
        let after = groups.snapshot();
        let achieved = (warm + total) as f64 / started.elapsed().as_secs_f64().max(1e-9);
        let cpu = before
            .map(|b| CpuSplit::between(&b, &after))
            .unwrap_or_default();
        // Wait for the events of every measured write.
        let expected: Vec<_> = done.into_iter().filter(|d| d.0).collect();
        let deadline = Instant::now() + Duration::from_secs(30);
        let mut missing = expected.len();
        while Instant::now() < deadline {
            missing = {
                let seen = consumer
                    .seen
                    .lock()
                    .map_err(|_| anyhow::anyhow!("poisoned"))?;
                expected
                    .iter()
                    .filter(|(_, id, _, _)| !seen.contains_key(&format!("Users/{id}")))
                    .count()
            };
            if missing == 0 {
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let mut from_ok = histogram();
        let mut from_sent = histogram();
        let mut early = 0;
        {
            let seen = consumer
                .seen
                .lock()
                .map_err(|_| anyhow::anyhow!("poisoned"))?;
            for (_, id, sent, ok) in &expected {
                if let Some(at) = seen.get(&format!("Users/{id}")) {
                    if at < ok {
                        early += 1;
                    }
                    let _ =
                        from_ok.record(at.saturating_duration_since(*ok).as_micros().max(1) as u64);
                    let _ = from_sent
                        .record(at.saturating_duration_since(*sent).as_micros().max(1) as u64);
                }
            }
        }
        consumer
            .track
            .store(false, std::sync::atomic::Ordering::Relaxed);
        let a = Latency::of(&from_ok);
        let b = Latency::of(&from_sent);
        let out = format!(
            "| write-latency | {rate:.0}/s asked, {:.0}/s sent | {} writes, {missing} events missing, {early} before their 201 | 2xx → event p50/p90/p99 {} ms (max {:.1}) | request → event {} ms (max {:.1}) | {} |",
            achieved,
            expected.len(),
            a.render(),
            a.max,
            b.render(),
            b.max,
            cpu.render()
        );
        println!("{out}");
        Ok(out)
    }
}

fn print_row(row: &Row) {
    println!("{}", render_row(row));
    if let Some(s) = &row.scimbus {
        for (tag, l) in &s.per_tag {
            println!("    {tag}: p50/p90/p99 {} ms", l.render());
        }
        println!("    CPU scimbus side: {}", s.cpu.render());
    }
    if let Some(b) = &row.baseline {
        println!("    CPU pgbench side (replay): {}", b.cpu.render());
    }
    if let Some(f) = &row.floor {
        println!("    CPU pgbench side (floor): {}", f.cpu.render());
    }
    for n in &row.notes {
        println!("    note: {n}");
    }
}

fn render_row(row: &Row) -> String {
    let (thr, lat) = row
        .scimbus
        .as_ref()
        .map(|s| (s.throughput(), s.latency.render()))
        .unwrap_or_default();
    let per = row.requests_per_unit.max(1) as f64;
    // A pgbench run as requests/s and per-request latency (a transaction stands for
    // `per` requests).
    let side = |run: Option<&pgbench::Run>| {
        run.map(|b| {
            let l = &b.latency;
            (
                b.tps * per,
                format!(
                    "{:.2} / {:.2} / {:.2}",
                    l.p50 / per,
                    l.p90 / per,
                    l.p99 / per
                ),
            )
        })
    };
    let rate = |r: f64| {
        if r < 10.0 {
            format!("{r:.2} req/s")
        } else {
            format!("{r:.0} req/s")
        }
    };
    let ratio = |other: f64| {
        if other > 0.0 {
            format!("**{:.2}×**", thr / other)
        } else {
            "–".into()
        }
    };
    let (bthr, blat) = side(row.baseline.as_ref()).unwrap_or_default();
    let (fthr_s, flat, fratio, fstat) = match side(row.floor.as_ref()) {
        Some((f, l)) => (
            rate(f),
            l,
            ratio(f),
            format!("{:.1}", row.floor_statements_per_unit as f64 / per),
        ),
        None => ("–".into(), "–".into(), "–".into(), "–".into()),
    };
    let sql = row
        .sql_per_request
        .map(|(req, relay)| format!("{req:.1} + relay {relay:.2}"))
        .unwrap_or_default();
    let sql = match row.db_ms_per_request {
        Some((own, background)) => {
            format!("{sql}; DB ms/request {own:.3} + background {background:.3}")
        }
        None => sql,
    };
    format!(
        "| {} | {} | {} | {lat} | {} | {blat} | {} | {fthr_s} | {flat} | {fratio} | {:.1} / {fstat} / {sql} | {} |",
        row.name,
        row.connections,
        rate(thr),
        rate(bthr),
        ratio(bthr),
        row.statements_per_unit as f64 / per,
        row.rss_peak_kb
            .map(|k| format!("{:.1} MB", k as f64 / 1024.0))
            .unwrap_or_default(),
    )
}

const HEADER: &str = "| scenario | conns | scimbus | p50 / p90 / p99 ms | replayed SQL (pgbench) | p50 / p90 / p99 ms | scimbus / replay | floor (pgbench) | p50 / p90 / p99 ms | scimbus / floor | SQL per request: replay / floor / scimbus | scimbus peak RSS |\n|---|---|---|---|---|---|---|---|---|---|---|---|";

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
    let dir = std::env::temp_dir().join(format!("scimbus-sidebyside-{}", uuid::Uuid::new_v4().simple()));
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
