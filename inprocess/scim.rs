//! SCIM benchmark: `cargo bench --bench scim -- [options]` (see `docs/benchmarks.md`).
//!
//! A full `Application` (HTTP on 127.0.0.1:0) over a fresh database, filled straight
//! through the store (users, groups and membership rows, as the service writes them), then
//! measured over real HTTP, one request at a time:
//!
//! 1. Groups: PATCH adding one member to (and removing it from) a group of 100 and a group
//!    of 100 000, alternating; the ratio of the medians. Then PUTs whose member list keeps
//!    99 000 of the 100 000 members and replaces 1 000 (Okta's full-list PUT), alternating
//!    between the two lists, while a probe PATCHes another group on new connections.
//! 2. Queries, in a tenant of 100 000 users beside another of the same size: `GET
//!    /Users/{id}` against `filter=userName eq`, sorted pages (`sortBy=userName`) and cursor
//!    pages (RFC 9865) at the start and in the middle, and `filter=emails co "@x"` (1 % of
//!    the users). Each is set beside the same SQL run in-process through the same pool and,
//!    on PostgreSQL, by `pgbench`. Then the per-user `groups` lookup alone, and `GET` by id
//!    and a page in the group tenant, where every user is in one or two groups.
//!
//! Options (or `SCIMBUS_BENCH_*` variables): `--backend postgres|sqlite`, `--users N`
//! (100000 per tenant), `--small N` (100 members), `--replace N` (1000), `--patches N`
//! (200), `--puts N` (3), `--reads N` (300), `--pages N` (20), `--scans N` (10),
//! `--skip-groups`, `--skip-queries`, `--no-pgbench`, `--no-plans`. PostgreSQL:
//! `SCIMBUS_BENCH_DATABASE_URL` (an existing database to connect to, default
//! `postgres://postgres@127.0.0.1:5432/test`).

#![allow(clippy::unwrap_used, clippy::expect_used)]

use scimbus::service::audit::Actor;
use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail, ensure};
use rand::Rng;
use scimbus::config::Settings;
use scimbus::domain::{
    ExternalId, GroupHot, MemberType, NewGroup, NewUser, Scope, Tenant, UserHot, UserName,
};
use scimbus::scim::query::{parse_filter, search_document};
use scimbus::scim::schema::Registry;
use scimbus::scim::validate::validate_resource;
use scimbus::service::Context;
use scimbus::service::cursor::CursorScope;
use scimbus::service::tenants::{self, TokenRequest};
use scimbus::startup::Application;
use scimbus::store::query::{Table, count_statement};
use scimbus::store::{Backend, groups, members, users};
use scimbus_support::database::Scratch;
use scimbus_support::stats::{max, median, percentile};
use sea_orm::{ConnectionTrait, DbBackend, Statement};
use secrecy::ExposeSecret;
use serde_json::{Value, json};

const USER_URN: &str = "urn:ietf:params:scim:schemas:core:2.0:User";
const GROUP_URN: &str = "urn:ietf:params:scim:schemas:core:2.0:Group";
const PATCH_URN: &str = "urn:ietf:params:scim:api:messages:2.0:PatchOp";
const FILL_TRANSACTION: usize = 1000;
const MEMBER_CHUNK: usize = 5000;
const PAGE: u64 = 100;
/// Tenant of the group benchmark (users + spares); tenant of the query benchmark.
const ALPHA: &str = "alpha";
const BETA: &str = "beta";
/// Okta's SCIM client gives up after 60 s.
const OKTA_TIMEOUT: Duration = Duration::from_secs(60);

// ---------------------------------------------------------------------------------------
// Options

#[derive(Debug, Clone)]
struct Options {
    backend: Backend,
    users: usize,
    small: usize,
    replace: usize,
    patches: usize,
    puts: usize,
    reads: usize,
    pages: usize,
    scans: usize,
    groups: bool,
    queries: bool,
    pgbench: bool,
    plans: bool,
    database_url: String,
}

fn env(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.trim().is_empty())
}

impl Options {
    fn parse() -> anyhow::Result<Self> {
        const VALUED: [&str; 9] = [
            "backend", "users", "small", "replace", "patches", "puts", "reads", "pages", "scans",
        ];
        const SWITCHES: [&str; 4] = ["skip-groups", "skip-queries", "no-pgbench", "no-plans"];
        let mut flags: HashMap<String, Option<String>> = HashMap::new();
        let mut args = std::env::args().skip(1);
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
                    let takes_value = VALUED.contains(&name);
                    let value = if takes_value { args.next() } else { None };
                    if takes_value && value.is_none() {
                        bail!("--{name} needs a value");
                    }
                    flags.insert(name.to_owned(), value);
                }
            }
        }
        if let Some(unknown) = flags
            .keys()
            .find(|k| !VALUED.contains(&k.as_str()) && !SWITCHES.contains(&k.as_str()))
        {
            bail!(
                "unknown option --{unknown} (known: --{}, --{})",
                VALUED.join(", --"),
                SWITCHES.join(", --")
            );
        }
        let value = |flag: &str| -> Option<String> {
            let var = format!("SCIMBUS_BENCH_{}", flag.to_uppercase().replace('-', "_"));
            flags.get(flag).cloned().flatten().or_else(|| env(&var))
        };
        let backend = match value("backend").as_deref() {
            None | Some("postgres" | "pg" | "postgresql") => Backend::Postgres,
            Some("sqlite") => Backend::Sqlite,
            Some(other) => bail!("--backend must be postgres or sqlite, not `{other}`"),
        };
        let number = |flag: &str, default: usize| -> anyhow::Result<usize> {
            match value(flag) {
                None => Ok(default),
                Some(v) => match v.parse::<usize>() {
                    Ok(n) if n > 0 => Ok(n),
                    _ => bail!("--{flag} must be a positive integer, not `{v}`"),
                },
            }
        };
        let opts = Self {
            backend,
            users: number("users", 100_000)?,
            small: number("small", 100)?,
            replace: number("replace", 1000)?,
            patches: number("patches", 200)?,
            puts: number("puts", 3)?,
            reads: number("reads", 300)?,
            pages: number("pages", 20)?,
            scans: number("scans", 10)?,
            groups: !flags.contains_key("skip-groups"),
            queries: !flags.contains_key("skip-queries"),
            pgbench: !flags.contains_key("no-pgbench"),
            plans: !flags.contains_key("no-plans"),
            database_url: env("SCIMBUS_BENCH_DATABASE_URL")
                .or_else(|| env("SCIMBUS_TEST_DATABASE_URL"))
                .unwrap_or_else(|| "postgres://postgres@127.0.0.1:5432/test".to_owned()),
        };
        ensure!(
            opts.small < opts.users && opts.replace < opts.users,
            "--small and --replace must be below --users"
        );
        Ok(opts)
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

// ---------------------------------------------------------------------------------------
// Data, written straight through the store

const GIVEN: [&str; 8] = [
    "Barbara", "Ahmed", "Mei", "Olusegun", "Ingrid", "Carlos", "Priya", "Jonas",
];
const FAMILY: [&str; 8] = [
    "Jensen", "Haddad", "Zhang", "Adeyemi", "Larsen", "Mendoza", "Raman", "Becker",
];

/// A User as an IdP (Okta-like) pushes it. One in a hundred has an address at
/// `xyz.example`, the only domain starting with `x`: `emails co "@x"` matches 1 %.
fn user_body(i: usize) -> Value {
    let given = GIVEN[i % 8];
    let family = FAMILY[(i / 8) % 8];
    let domain = if i.is_multiple_of(100) {
        "xyz.example"
    } else {
        "example.com"
    };
    let email = format!(
        "{}.{}.{i}@{domain}",
        given.to_lowercase(),
        family.to_lowercase()
    );
    json!({
        "schemas": [USER_URN],
        "externalId": format!("00u{:017x}", (i as u64).wrapping_mul(7919) + 0x5eed),
        "userName": email,
        "name": {"givenName": given, "familyName": family, "formatted": format!("{given} {family}")},
        "displayName": format!("{given} {family}"),
        "title": "Software Engineer",
        "active": true,
        "emails": [{"value": email, "type": "work", "primary": true}],
    })
}

/// The row the service would store for `body` (validated, hot columns, `search`).
fn new_user(body: Value) -> anyhow::Result<NewUser> {
    let r = Registry::core();
    let document = validate_resource(r, r.user(), body).map_err(|e| anyhow::anyhow!("{e:?}"))?;
    let text = |k: &str| document.get(k).and_then(Value::as_str).map(str::to_owned);
    let hot = UserHot {
        user_name: UserName::parse(&text("userName").context("userName")?)
            .map_err(anyhow::Error::msg)?,
        external_id: text("externalId")
            .map(|e| ExternalId::parse(&e))
            .transpose()
            .map_err(anyhow::Error::msg)?,
        active: true,
        display_name: text("displayName"),
    };
    let search = search_document(r, r.user(), &document);
    Ok(NewUser {
        hot,
        document,
        search,
    })
}

/// A user as the bench knows it.
#[derive(Debug, Clone)]
struct Known {
    id: String,
    user_name: String,
}

/// Inserts users `from..to` into `tenant`, `FILL_TRANSACTION` a transaction.
async fn fill_users(
    ctx: &Context,
    tenant: &Tenant,
    from: usize,
    to: usize,
) -> anyhow::Result<Vec<Known>> {
    let mut out = Vec::with_capacity(to - from);
    let mut i = from;
    while i < to {
        let end = (i + FILL_TRANSACTION).min(to);
        let txn = ctx.store.begin_write().await?;
        let now = ctx.now();
        for j in i..end {
            let new = new_user(user_body(j))?;
            let user_name = new.hot.user_name.as_str().to_owned();
            let id = uuid::Uuid::new_v4().to_string();
            users::insert(&txn, &tenant.id, &id, new, &now).await?;
            out.push(Known { id, user_name });
        }
        txn.commit().await?;
        i = end;
    }
    Ok(out)
}

/// A group with `member_ids` (users) as its members, inserted in one transaction.
async fn make_group(
    ctx: &Context,
    tenant: &Tenant,
    name: &str,
    member_ids: &[String],
) -> anyhow::Result<String> {
    let r = Registry::core();
    let document = validate_resource(
        r,
        r.group(),
        json!({"schemas": [GROUP_URN], "displayName": name}),
    )
    .map_err(|e| anyhow::anyhow!("{e:?}"))?;
    let new = NewGroup {
        hot: GroupHot {
            display_name: name.to_owned(),
            external_id: None,
        },
        search: search_document(r, r.group(), &document),
        document,
    };
    let id = uuid::Uuid::new_v4().to_string();
    let txn = ctx.store.begin_write().await?;
    let now = ctx.now();
    groups::insert(&txn, &tenant.id, &id, new, &now).await?;
    for chunk in member_ids.chunks(MEMBER_CHUNK) {
        let rows: Vec<(String, MemberType)> = chunk
            .iter()
            .map(|m| (m.clone(), MemberType::User))
            .collect();
        members::add(&txn, &tenant.id, &id, &rows, &now).await?;
    }
    txn.commit().await?;
    Ok(id)
}

/// PostgreSQL: `VACUUM ANALYZE` (what autovacuum does in a steady state). SQLite: a WAL
/// checkpoint only (the service never runs `ANALYZE` there).
async fn settle(ctx: &Context) -> anyhow::Result<()> {
    let sql = match ctx.store.backend() {
        Backend::Postgres => "VACUUM ANALYZE",
        Backend::Sqlite => "PRAGMA wal_checkpoint(TRUNCATE)",
    };
    ctx.store.conn().execute_unprepared(sql).await?;
    Ok(())
}

// ---------------------------------------------------------------------------------------
// Statistics

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

fn summary(values: &[f64]) -> String {
    format!(
        "median {:>8.2} ms  p90 {:>8.2} ms  max {:>8.2} ms  (n={})",
        median(values),
        percentile(values, 90.0),
        max(values),
        values.len()
    )
}

// ---------------------------------------------------------------------------------------
// HTTP

struct Api {
    http: reqwest::Client,
    base: String,
    token: String,
}

struct Reply {
    status: u16,
    elapsed: Duration,
    body: String,
}

impl Api {
    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// Sends, reads the whole body; the time covers both.
    async fn send(&self, request: reqwest::RequestBuilder) -> anyhow::Result<Reply> {
        let start = Instant::now();
        let response = request.bearer_auth(&self.token).send().await?;
        let status = response.status().as_u16();
        let text = response.text().await?;
        Ok(Reply {
            status,
            elapsed: start.elapsed(),
            body: text,
        })
    }

    async fn get(&self, path: &str, query: &[(&str, &str)]) -> anyhow::Result<Reply> {
        let reply = self
            .send(self.http.get(self.url(path)).query(query))
            .await?;
        ensure!(
            reply.status == 200,
            "GET {path} {query:?}: {} {}",
            reply.status,
            reply.body.chars().take(300).collect::<String>()
        );
        Ok(reply)
    }

    async fn write(
        &self,
        method: reqwest::Method,
        path: &str,
        body: &Value,
        timeout: Duration,
    ) -> anyhow::Result<Reply> {
        let reply = self
            .send(
                self.http
                    .request(method.clone(), self.url(path))
                    .timeout(timeout)
                    .header("Content-Type", "application/scim+json")
                    .body(body.to_string()),
            )
            .await?;
        ensure!(
            (200..300).contains(&reply.status),
            "{method} {path}: {} {}",
            reply.status,
            reply.body.chars().take(300).collect::<String>()
        );
        Ok(reply)
    }
}

async fn token(ctx: &Context, tenant: &str) -> anyhow::Result<String> {
    let (_, secret) = tenants::issue_token(
        ctx,
        &Actor::system(),
        tenant,
        TokenRequest {
            name: "bench".to_owned(),
            scopes: vec![Scope::Scim],
            expires_at: None,
        },
    )
    .await?;
    Ok(secret.expose_secret().to_owned())
}

// ---------------------------------------------------------------------------------------
// Groups

struct GroupFigures {
    small: usize,
    big: usize,
    add_small: Vec<f64>,
    add_big: Vec<f64>,
    remove_small: Vec<f64>,
    remove_big: Vec<f64>,
    put_body_bytes: usize,
    put_response_bytes: usize,
    put: Vec<f64>,
    /// Probe PATCHes to the small group while a PUT ran: (ms, status).
    probes: Vec<(f64, u16)>,
}

fn patch_add(id: &str) -> Value {
    json!({"schemas": [PATCH_URN], "Operations": [
        {"op": "add", "path": "members", "value": [{"value": id}]}
    ]})
}

fn patch_remove(id: &str) -> Value {
    json!({"schemas": [PATCH_URN], "Operations": [
        {"op": "remove", "path": format!("members[value eq \"{id}\"]")}
    ]})
}

fn group_body(name: &str, member_ids: &[&String]) -> Value {
    let members: Vec<Value> = member_ids.iter().map(|id| json!({"value": id})).collect();
    json!({"schemas": [GROUP_URN], "displayName": name, "members": members})
}

async fn member_count(ctx: &Context, tenant: &Tenant, group: &str) -> anyhow::Result<i64> {
    let backend = ctx.store.conn().get_database_backend();
    let sql = match backend {
        DbBackend::Postgres => {
            "SELECT COUNT(*) AS n FROM group_members WHERE tenant_id = $1 AND group_id = $2"
        }
        _ => "SELECT COUNT(*) AS n FROM group_members WHERE tenant_id = ? AND group_id = ?",
    };
    let row = ctx
        .store
        .conn()
        .query_one_raw(Statement::from_sql_and_values(
            backend,
            sql,
            [tenant.id.clone().into(), group.to_owned().into()],
        ))
        .await?
        .context("no count")?;
    Ok(row.try_get("", "n")?)
}

async fn bench_groups(
    opts: &Options,
    ctx: &Context,
    api: &Api,
    tenant: &Tenant,
    people: &[Known],
    spares: &[Known],
) -> anyhow::Result<GroupFigures> {
    let ids: Vec<String> = people.iter().map(|k| k.id.clone()).collect();
    let t = Instant::now();
    let small = make_group(ctx, tenant, "Small", &ids[..opts.small]).await?;
    let big = make_group(ctx, tenant, "Everyone", &ids).await?;
    settle(ctx).await?;
    println!(
        "setup: groups of {} and {} members in {:.1} s (untimed)",
        opts.small,
        ids.len(),
        t.elapsed().as_secs_f64()
    );
    let newcomer = &spares[0].id;
    let path = |g: &str| format!("/Groups/{g}");
    let mut f = GroupFigures {
        small: opts.small,
        big: ids.len(),
        add_small: Vec::new(),
        add_big: Vec::new(),
        remove_small: Vec::new(),
        remove_big: Vec::new(),
        put_body_bytes: 0,
        put_response_bytes: 0,
        put: Vec::new(),
        probes: Vec::new(),
    };
    // Warm-up (not measured), then add/remove alternating, the two groups interleaved and
    // taking turns going first.
    let warm_up = 10;
    for rep in 0..warm_up + opts.patches {
        let order = if rep % 2 == 0 {
            [(&small, true), (&big, false)]
        } else {
            [(&big, false), (&small, true)]
        };
        for (group, is_small) in order {
            let add = api
                .write(
                    reqwest::Method::PATCH,
                    &path(group),
                    &patch_add(newcomer),
                    OKTA_TIMEOUT,
                )
                .await?;
            ensure!(add.status == 204, "PATCH add answered {}", add.status);
            let remove = api
                .write(
                    reqwest::Method::PATCH,
                    &path(group),
                    &patch_remove(newcomer),
                    OKTA_TIMEOUT,
                )
                .await?;
            ensure!(
                remove.status == 204,
                "PATCH remove answered {}",
                remove.status
            );
            if rep >= warm_up {
                let (adds, removes) = if is_small {
                    (&mut f.add_small, &mut f.remove_small)
                } else {
                    (&mut f.add_big, &mut f.remove_big)
                };
                adds.push(ms(add.elapsed));
                removes.push(ms(remove.elapsed));
            }
        }
    }
    ensure!(member_count(ctx, tenant, &big).await? == ids.len() as i64);
    ensure!(member_count(ctx, tenant, &small).await? == opts.small as i64);

    // PUTs of the full list, as Okta sends it: each keeps all but `replace` of the current
    // members and brings in `replace` others. Runs alternate between the two lists (the
    // last `replace` members out and the spares in, then back), so each run starts from
    // 100 000 members and is the same change. The small group's members are never touched.
    let keep = ids.len() - opts.replace;
    let swapped: Vec<&String> = ids[..keep]
        .iter()
        .chain(spares.iter().map(|k| &k.id))
        .collect();
    let original: Vec<&String> = ids.iter().collect();
    let bodies = [
        group_body("Everyone", &swapped),
        group_body("Everyone", &original),
    ];
    f.put_body_bytes = bodies[0].to_string().len();
    let put_timeout = Duration::from_secs(300);
    for run in 0..opts.puts {
        // A probe: PATCHes to the small group on new connections, every 250 ms while the
        // PUT runs (does one big PUT hold up other writes?).
        let done = Arc::new(AtomicBool::new(false));
        let probe = tokio::spawn(probe_writes(
            api.base.clone(),
            api.token.clone(),
            small.clone(),
            newcomer.clone(),
            done.clone(),
        ));
        let reply = api
            .write(
                reqwest::Method::PUT,
                &path(&big),
                &bodies[run % 2],
                put_timeout,
            )
            .await;
        done.store(true, Ordering::Relaxed);
        let probes = probe.await?;
        let reply = reply?;
        f.put_response_bytes = reply.body.len();
        f.put.push(ms(reply.elapsed));
        ensure!(member_count(ctx, tenant, &big).await? == ids.len() as i64);
        let statuses: Vec<u16> = probes.iter().map(|p| p.1).collect();
        let waits: Vec<f64> = probes.iter().map(|p| p.0).collect();
        println!(
            "PUT run {}: keep {keep}, replace {} of {}: {:.0} ms ({} B response); probe PATCHes meanwhile: {} sent, statuses {:?}, median {:.0} ms, max {:.0} ms",
            run + 1,
            opts.replace,
            ids.len(),
            ms(reply.elapsed),
            reply.body.len(),
            probes.len(),
            distinct(&statuses),
            median(&waits),
            max(&waits),
        );
        f.probes.extend(probes);
    }
    Ok(f)
}

/// PATCHes add and remove `member` on `group` alternately, each on a new connection, every
/// 250 ms until `done` (at most 2 400); each one's time and status. Leaves `member` out.
async fn probe_writes(
    base: String,
    token: String,
    group: String,
    member: String,
    done: Arc<AtomicBool>,
) -> Vec<(f64, u16)> {
    let Ok(client) = {
        scimbus::telemetry::install_tls_provider();
        reqwest::Client::builder()
    }
    .timeout(Duration::from_secs(300))
    .pool_max_idle_per_host(0)
    .build() else {
        return Vec::new();
    };
    let url = format!("{base}/Groups/{group}");
    let send = |body: Value| {
        let request = client
            .patch(&url)
            .bearer_auth(&token)
            .header("Content-Type", "application/scim+json")
            .body(body.to_string());
        async move {
            let start = Instant::now();
            let status = match request.send().await {
                Ok(r) => {
                    let status = r.status().as_u16();
                    let _ = r.bytes().await;
                    status
                }
                Err(_) => 0,
            };
            (ms(start.elapsed()), status)
        }
    };
    let mut out = Vec::new();
    let mut added = false;
    for k in 0..2400 {
        if done.load(Ordering::Relaxed) {
            break;
        }
        let body = if k % 2 == 0 {
            patch_add(&member)
        } else {
            patch_remove(&member)
        };
        let (took, status) = send(body).await;
        if status == 204 {
            added = k % 2 == 0;
        }
        out.push((took, status));
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    if added {
        send(patch_remove(&member)).await;
    }
    out
}

fn distinct(statuses: &[u16]) -> Vec<(u16, usize)> {
    let mut out: Vec<(u16, usize)> = Vec::new();
    for s in statuses {
        match out.iter_mut().find(|(k, _)| k == s) {
            Some(entry) => entry.1 += 1,
            None => out.push((*s, 1)),
        }
    }
    out
}

// ---------------------------------------------------------------------------------------
// Queries

/// One query shape: its HTTP figures and the SQL scimbus runs for it.
struct Shape {
    name: String,
    http: Vec<f64>,
    /// The statements one request runs (count, page), with bound values.
    sql: Vec<Statement>,
    /// The same SQL, in-process through the service's pool.
    sql_ms: Vec<f64>,
    /// `pgbench` average latency of one transaction running `sql`.
    pgbench: Option<Result<f64, String>>,
    /// What a list adds to its SQL: the listed users' groups, in-process, read as
    /// `service::users::list` reads them (`members::memberships` once per listed user)...
    per_user_ms: Vec<f64>,
    /// ... and in one query for the page (`members::memberships_of_many`).
    memberships_ms: Vec<f64>,
    plan: Vec<String>,
    note: String,
    /// The tenant the shape reads, when not the query tenant (beta).
    tenant_id: Option<String>,
}

impl Shape {
    fn new(name: &str, sql: Vec<Statement>) -> Self {
        Self {
            name: name.to_owned(),
            http: Vec::new(),
            sql,
            sql_ms: Vec::new(),
            pgbench: None,
            per_user_ms: Vec::new(),
            memberships_ms: Vec::new(),
            plan: Vec::new(),
            note: String::new(),
            tenant_id: None,
        }
    }
}

/// The statements `store::query::search` runs for a list: the count, and the page built
/// from the same `FROM … WHERE` with `order` and the limit and offset (bound there,
/// literal here).
fn list_statements(
    backend: DbBackend,
    tenant_id: &str,
    filter: Option<&str>,
    order: &str,
    offset: u64,
) -> anyhow::Result<Vec<Statement>> {
    let r = Registry::core();
    let typed = filter
        .map(|f| parse_filter(r, r.user(), f))
        .transpose()
        .map_err(|e| anyhow::anyhow!("{e:?}"))?;
    let count = count_statement(backend, Table::Users, tenant_id, typed.as_ref());
    let rest = count
        .sql
        .strip_prefix("SELECT COUNT(*) AS n")
        .context("count_statement changed shape")?;
    let page = Statement {
        sql: format!("SELECT \"users\".*{rest}{order} LIMIT {PAGE} OFFSET {offset}"),
        ..count.clone()
    };
    Ok(vec![count, page])
}

fn default_order() -> &'static str {
    " ORDER BY \"users\".\"created_at\", \"users\".\"id\""
}

fn user_name_order(backend: DbBackend) -> String {
    let collate = if backend == DbBackend::Postgres {
        " COLLATE \"C\""
    } else {
        ""
    };
    format!(
        " ORDER BY (CASE WHEN \"users\".\"user_name_ci\" IS NULL THEN 1 ELSE 0 END), \
         \"users\".\"user_name_ci\"{collate} ASC, \"users\".\"id\" ASC"
    )
}

fn by_id_statement(backend: DbBackend, tenant_id: &str, id: &str) -> Statement {
    let sql = match backend {
        DbBackend::Postgres => {
            "SELECT \"users\".* FROM \"users\" WHERE \"users\".\"tenant_id\" = $1 AND \"users\".\"id\" = $2 LIMIT 1"
        }
        _ => {
            "SELECT \"users\".* FROM \"users\" WHERE \"users\".\"tenant_id\" = ? AND \"users\".\"id\" = ? LIMIT 1"
        }
    };
    Statement::from_sql_and_values(backend, sql, [tenant_id.into(), id.into()])
}

/// `store::members::memberships`: `GET /Users/{id}` runs it to fill in the user's
/// `groups` (a list runs it once for its page).
fn memberships_statement(backend: DbBackend, tenant_id: &str, member_id: &str) -> Statement {
    members::memberships_statement(backend, tenant_id, &[member_id.to_owned()])
}

/// The `id`s of a list response, in order.
fn listed_ids(body: &str) -> anyhow::Result<(u64, Vec<String>)> {
    let v: Value = serde_json::from_str(body)?;
    let total = v["totalResults"].as_u64().context("no totalResults")?;
    let ids = v["Resources"]
        .as_array()
        .map(|r| {
            r.iter()
                .filter_map(|u| u["id"].as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default();
    Ok((total, ids))
}

/// Runs `statements` once in-process; the ids of the last one's rows.
async fn run_sql(ctx: &Context, statements: &[Statement]) -> anyhow::Result<Vec<String>> {
    let mut ids = Vec::new();
    for s in statements {
        let rows = ctx.store.conn().query_all_raw(s.clone()).await?;
        ids = rows
            .iter()
            .filter_map(|r| r.try_get::<String>("", "id").ok())
            .collect();
    }
    Ok(ids)
}

async fn plan(ctx: &Context, statement: &Statement) -> anyhow::Result<Vec<String>> {
    let backend = statement.db_backend;
    let (prefix, column) = match backend {
        DbBackend::Postgres => ("EXPLAIN (ANALYZE, COSTS OFF) ", "QUERY PLAN"),
        _ => ("EXPLAIN QUERY PLAN ", "detail"),
    };
    let explain = Statement {
        sql: format!("{prefix}{}", statement.sql),
        ..statement.clone()
    };
    let rows = ctx.store.conn().query_all_raw(explain).await?;
    Ok(rows
        .iter()
        .filter_map(|r| r.try_get::<String>("", column).ok())
        .collect())
}

/// `pgbench -n -f <file> -t <n>` on the bench database; the average latency in ms.
async fn pgbench(url: &str, statements: &[Statement], n: usize) -> Result<f64, String> {
    let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
    let file = dir.path().join("query.sql");
    let script: String = statements
        .iter()
        .map(|s| format!("{};\n", s.to_string().replace('\n', " ")))
        .collect();
    std::fs::write(&file, script).map_err(|e| e.to_string())?;
    let output = tokio::process::Command::new("pgbench")
        .args(["-n", "-f"])
        .arg(&file)
        .args(["-t", &n.to_string(), url])
        .output()
        .await
        .map_err(|e| format!("pgbench: {e} (it comes with PostgreSQL's client package)"))?;
    let stdout = String::from_utf8_lossy(&output.stdout);
    if !output.status.success() {
        return Err(format!(
            "pgbench failed: {}{}",
            stdout,
            String::from_utf8_lossy(&output.stderr)
        ));
    }
    stdout
        .lines()
        .find_map(|l| l.strip_prefix("latency average = "))
        .and_then(|rest| rest.trim_end_matches(" ms").trim().parse::<f64>().ok())
        .ok_or_else(|| format!("no latency in pgbench's output: {stdout}"))
}

struct QueryFigures {
    shapes: Vec<Shape>,
    matches_co: u64,
}

async fn bench_queries(
    opts: &Options,
    db_url: &str,
    ctx: &Context,
    api: &Api,
    tenant: &Tenant,
    people: &[Known],
    grouped: Option<(&Api, &Tenant, &[Known])>,
) -> anyhow::Result<QueryFigures> {
    let backend = ctx.store.conn().get_database_backend();
    let n = people.len();
    let mut rng = rand::rng();

    // 1. GET by id against filter=userName eq, on random users, interleaved.
    let mut by_id = Shape::new("GET /Users/{id}", Vec::new());
    let mut by_name = Shape::new("GET /Users?filter=userName eq \"…\"", Vec::new());
    let warm_up = 20;
    for rep in 0..warm_up + opts.reads {
        let who = &people[rng.random_range(0..n)];
        let filter = format!("userName eq \"{}\"", who.user_name);
        let a = async { api.get(&format!("/Users/{}", who.id), &[]).await };
        let b = async { api.get("/Users", &[("filter", filter.as_str())]).await };
        let (ra, rb) = if rep % 2 == 0 {
            let ra = a.await?;
            (ra, b.await?)
        } else {
            let rb = b.await?;
            (a.await?, rb)
        };
        let (total, ids) = listed_ids(&rb.body)?;
        ensure!(
            total == 1 && ids == [who.id.clone()],
            "userName eq found {ids:?}"
        );
        if rep >= warm_up {
            by_id.http.push(ms(ra.elapsed));
            by_name.http.push(ms(rb.elapsed));
        }
    }
    let sample = &people[n / 3];
    by_id.sql = vec![by_id_statement(backend, &tenant.id, &sample.id)];
    by_id.note = "one fixed user for the SQL".to_owned();
    let filter = format!("userName eq \"{}\"", sample.user_name);
    by_name.sql = list_statements(backend, &tenant.id, Some(&filter), default_order(), 0)?;
    by_name.note = "one fixed user for the SQL".to_owned();

    // 2. Pages of 100: sorted by userName and by cursor, first and middle.
    let middle = (n / 2) as u64;
    let count = PAGE.to_string();
    let sorted_first_index = "1".to_owned();
    let sorted_middle_index = (middle + 1).to_string();
    let scope = CursorScope {
        tenant_id: &tenant.id,
        resource: "User",
        filter: None,
        sort_by: None,
        sort_order: None,
        count: PAGE,
    };
    // The cursor the service hands out after `middle / 100` pages (sealed with its key).
    let middle_cursor = ctx
        .cursors
        .seal(&scope, middle, ctx.clock.now())
        .map_err(|e| anyhow::anyhow!("{e:?}"))?;
    let sorted = user_name_order(backend);
    let mut pages: Vec<(Shape, Vec<(&str, &str)>)> = vec![
        (
            Shape::new(
                "sortBy=userName&count=100&startIndex=1",
                list_statements(backend, &tenant.id, None, &sorted, 0)?,
            ),
            vec![
                ("sortBy", "userName"),
                ("count", count.as_str()),
                ("startIndex", sorted_first_index.as_str()),
            ],
        ),
        (
            Shape::new(
                &format!("sortBy=userName&count=100&startIndex={sorted_middle_index}"),
                list_statements(backend, &tenant.id, None, &sorted, middle)?,
            ),
            vec![
                ("sortBy", "userName"),
                ("count", count.as_str()),
                ("startIndex", sorted_middle_index.as_str()),
            ],
        ),
        (
            Shape::new(
                "cursor=&count=100 (first page)",
                list_statements(backend, &tenant.id, None, default_order(), 0)?,
            ),
            vec![("cursor", ""), ("count", count.as_str())],
        ),
        (
            Shape::new(
                &format!("cursor=…&count=100 (page at offset {middle})"),
                list_statements(backend, &tenant.id, None, default_order(), middle)?,
            ),
            vec![
                ("cursor", middle_cursor.as_str()),
                ("count", count.as_str()),
            ],
        ),
    ];
    // Each page shape returns what its SQL returns (checks that the SQL is the same).
    for (shape, query) in &pages {
        let reply = api.get("/Users", query).await?;
        let (total, ids) = listed_ids(&reply.body)?;
        let sql_ids = run_sql(ctx, &shape.sql).await?;
        ensure!(total == n as u64, "{}: totalResults {total}", shape.name);
        ensure!(
            ids.len() == PAGE as usize && ids == sql_ids,
            "{}: the page differs from its SQL's rows",
            shape.name
        );
    }
    // A cursor walk reaches the next page: the first page's nextCursor works.
    {
        let reply = api
            .get("/Users", &[("cursor", ""), ("count", count.as_str())])
            .await?;
        let v: Value = serde_json::from_str(&reply.body)?;
        let next = v["nextCursor"].as_str().context("no nextCursor")?;
        api.get("/Users", &[("cursor", next), ("count", count.as_str())])
            .await?;
    }
    for rep in 0..2 + opts.pages {
        for (shape, query) in &mut pages {
            let reply = api.get("/Users", query).await?;
            if rep >= 2 {
                shape.http.push(ms(reply.elapsed));
            }
        }
    }

    // 3. emails co "@x": 1 % of the users.
    let co_filter = "emails co \"@x\"";
    let mut co = Shape::new(
        "filter=emails co \"@x\" (count 100 of 1 %)",
        list_statements(backend, &tenant.id, Some(co_filter), default_order(), 0)?,
    );
    let reply = api.get("/Users", &[("filter", co_filter)]).await?;
    let (matches_co, ids) = listed_ids(&reply.body)?;
    ensure!(
        ids == run_sql(ctx, &co.sql).await?,
        "emails co: the page differs from its SQL's rows"
    );
    for _ in 0..opts.scans {
        let reply = api.get("/Users", &[("filter", co_filter)]).await?;
        co.http.push(ms(reply.elapsed));
    }

    let mut shapes = vec![by_id, by_name];
    shapes.extend(pages.into_iter().map(|(s, _)| s));
    shapes.push(co);
    // The per-row groups lookup of every list, alone (no HTTP figure).
    let mut lookup = Shape::new(
        "groups of one user (memberships, as GET by id runs it), a user in no group",
        vec![memberships_statement(backend, &tenant.id, &sample.id)],
    );
    lookup.note = "100 runs".to_owned();
    shapes.push(lookup);
    if let Some((alpha_api, alpha, alpha_people)) = grouped {
        // Users who are in groups: every alpha user is in the big group, the first ones
        // also in the small one. What a user's `groups` costs when there are some.
        let mut lookup = Shape::new(
            "groups of one user (memberships), a user in the two bench groups",
            vec![memberships_statement(
                backend,
                &alpha.id,
                &alpha_people[0].id,
            )],
        );
        lookup.note = "100 runs; tenant alpha".to_owned();
        lookup.tenant_id = Some(alpha.id.clone());
        let mut grouped_by_id = Shape::new(
            "GET /Users/{id} of a user in 1-2 groups (tenant alpha)",
            vec![by_id_statement(backend, &alpha.id, &alpha_people[0].id)],
        );
        grouped_by_id.note = "tenant alpha; one fixed user for the SQL".to_owned();
        grouped_by_id.tenant_id = Some(alpha.id.clone());
        let reads = (opts.reads / 10).max(3);
        for rep in 0..3 + reads {
            let who = &alpha_people[rng.random_range(0..alpha_people.len())];
            let reply = alpha_api.get(&format!("/Users/{}", who.id), &[]).await?;
            ensure!(
                reply.body.contains("\"groups\""),
                "alpha user without groups"
            );
            if rep >= 3 {
                grouped_by_id.http.push(ms(reply.elapsed));
            }
        }
        let mut grouped_page = Shape::new(
            "cursor=&count=100 (first page) of users in 1-2 groups (tenant alpha)",
            list_statements(backend, &alpha.id, None, default_order(), 0)?,
        );
        grouped_page.tenant_id = Some(alpha.id.clone());
        grouped_page.note = "tenant alpha".to_owned();
        let page_reps = (opts.pages / 4).max(2);
        for rep in 0..1 + page_reps {
            let reply = alpha_api
                .get("/Users", &[("cursor", ""), ("count", count.as_str())])
                .await?;
            if rep >= 1 {
                grouped_page.http.push(ms(reply.elapsed));
            }
        }
        shapes.push(lookup);
        shapes.push(grouped_by_id);
        shapes.push(grouped_page);
    }

    // The same SQL in-process (same pool, same driver), then by pgbench.
    for shape in &mut shapes {
        let reps = if shape.http.is_empty() {
            100
        } else {
            shape.http.len()
        };
        run_sql(ctx, &shape.sql).await?;
        for _ in 0..reps {
            let t = Instant::now();
            run_sql(ctx, &shape.sql).await?;
            shape.sql_ms.push(ms(t.elapsed()));
        }
        // What a list adds per returned row: the user's groups (one query per row).
        if shape.sql.len() == 2 {
            let listed = run_sql(ctx, &shape.sql).await?;
            let tenant_id = shape.tenant_id.as_deref().unwrap_or(&tenant.id);
            for _ in 0..reps.min(20) {
                let t = Instant::now();
                for id in &listed {
                    members::memberships_of_many(
                        ctx.store.conn(),
                        tenant_id,
                        std::slice::from_ref(id),
                    )
                    .await?;
                }
                shape.per_user_ms.push(ms(t.elapsed()));
                let t = Instant::now();
                members::memberships_of_many(ctx.store.conn(), tenant_id, &listed).await?;
                shape.memberships_ms.push(ms(t.elapsed()));
            }
        }
        if opts.plans {
            shape.plan = plan(ctx, shape.sql.last().context("no SQL")?).await?;
            if shape.sql.len() == 2 {
                let count_plan = plan(ctx, &shape.sql[0]).await?;
                shape.plan.push("-- count:".to_owned());
                shape.plan.extend(count_plan);
            }
        }
        if opts.pgbench && backend == DbBackend::Postgres {
            shape.pgbench = Some(pgbench(db_url, &shape.sql, reps.max(10)).await);
        }
    }
    Ok(QueryFigures { shapes, matches_co })
}

// ---------------------------------------------------------------------------------------
// Report

fn report_groups(opts: &Options, f: &GroupFigures) {
    println!();
    println!(
        "== groups ({}, PATCH one member, {} repetitions each; PUT {} runs) ==",
        opts.backend_name(),
        opts.patches,
        opts.puts
    );
    println!(
        "PATCH add    → group of {:>6}: {}",
        f.small,
        summary(&f.add_small)
    );
    println!(
        "PATCH add    → group of {:>6}: {}",
        f.big,
        summary(&f.add_big)
    );
    println!(
        "PATCH remove → group of {:>6}: {}",
        f.small,
        summary(&f.remove_small)
    );
    println!(
        "PATCH remove → group of {:>6}: {}",
        f.big,
        summary(&f.remove_big)
    );
    let ratio_add = median(&f.add_big) / median(&f.add_small);
    let ratio_remove = median(&f.remove_big) / median(&f.remove_small);
    println!(
        "ratio big/small (medians): add {ratio_add:.2}×, remove {ratio_remove:.2}×  (aim ≤ 1.5×: {})",
        if ratio_add <= 1.5 { "met" } else { "NOT met" }
    );
    let runs = |v: &[f64]| {
        v.iter()
            .map(|x| format!("{:.0}", x))
            .collect::<Vec<_>>()
            .join(" / ")
    };
    let put = median(&f.put);
    println!(
        "PUT keeping {} and replacing {} (body {} B, response {} B): runs {} ms, median {put:.0} ms = {:.2}× Okta's {} s timeout ({})",
        f.big - opts.replace,
        opts.replace,
        f.put_body_bytes,
        f.put_response_bytes,
        runs(&f.put),
        put / ms(OKTA_TIMEOUT),
        OKTA_TIMEOUT.as_secs(),
        if put < ms(OKTA_TIMEOUT) {
            "inside"
        } else {
            "NOT inside"
        }
    );
    let waits: Vec<f64> = f.probes.iter().map(|p| p.0).collect();
    let statuses: Vec<u16> = f.probes.iter().map(|p| p.1).collect();
    println!(
        "probe PATCHes to the small group during the PUTs (new connection each, every 250 ms): {} sent, statuses {:?}, {}",
        f.probes.len(),
        distinct(&statuses),
        summary(&waits)
    );
}

fn report_queries(opts: &Options, q: &QueryFigures) {
    println!();
    println!(
        "== queries ({}, tenant of {} users beside another of {}; emails co \"@x\" matches {}) ==",
        opts.backend_name(),
        opts.users,
        opts.users + opts.replace,
        q.matches_co
    );
    for s in &q.shapes {
        println!("{}", s.name);
        if !s.http.is_empty() {
            println!("  HTTP            {}", summary(&s.http));
        }
        println!(
            "  same SQL (pool) {}   [{} statement(s){}]",
            summary(&s.sql_ms),
            s.sql.len(),
            if s.note.is_empty() {
                String::new()
            } else {
                format!("; {}", s.note)
            }
        );
        if !s.per_user_ms.is_empty() {
            println!(
                "  + groups, one memberships query per listed user (as list does), pool: {}",
                summary(&s.per_user_ms)
            );
            println!(
                "  + groups, one memberships_of_many query for the page, pool:        {}",
                summary(&s.memberships_ms)
            );
        }
        match &s.pgbench {
            Some(Ok(avg)) => println!("  pgbench         latency average {avg:.2} ms"),
            Some(Err(e)) => println!("  pgbench         unavailable: {e}"),
            None => {}
        }
    }
    if opts.plans {
        println!();
        println!("== plans ({}) ==", opts.backend_name());
        for s in &q.shapes {
            println!("-- {}:", s.name);
            for line in &s.plan {
                println!("   {line}");
            }
        }
        println!();
        println!("== SQL ({}) ==", opts.backend_name());
        for s in &q.shapes {
            println!("-- {}:", s.name);
            for st in &s.sql {
                println!("   {st};");
            }
        }
    }
}

async fn bench(opts: &Options) -> anyhow::Result<()> {
    println!(
        "scimbus SCIM bench: backend {}, {} users a tenant, groups of {} and {}",
        opts.backend_name(),
        opts.users,
        opts.small,
        opts.users
    );
    let db = bench_db(opts).await?;
    let result = bench_in(opts, &db).await;
    db.remove().await;
    result
}

async fn bench_in(opts: &Options, db: &Scratch) -> anyhow::Result<()> {
    let vars: HashMap<&str, String> = [
        ("SCIMBUS_DATABASE_URL", db.url().to_owned()),
        ("SCIMBUS_LISTEN", "127.0.0.1:0".to_owned()),
        // Measure the service, not its per-token rate limit.
        ("SCIMBUS_RATE_LIMIT", "off".to_owned()),
    ]
    .into_iter()
    .collect();
    let settings = Settings::from_lookup(|k| vars.get(k).cloned())?;
    let app = Application::build(settings).await?;
    let address = format!("http://127.0.0.1:{}", app.port());
    let ctx = app.context().clone();
    let server = tokio::spawn(app.run_until_stopped());
    let result = async {
        let alpha = tenants::create_tenant(&ctx, &Actor::system(), ALPHA).await?;
        let beta = tenants::create_tenant(&ctx, &Actor::system(), BETA).await?;
        let http = {
            scimbus::telemetry::install_tls_provider();
            reqwest::Client::builder()
        }
        .timeout(OKTA_TIMEOUT)
        .build()?;
        let api = |slug: &str, token: String| Api {
            http: http.clone(),
            base: format!("{address}/scim/v2/{slug}"),
            token,
        };
        let alpha_api = api(ALPHA, token(&ctx, ALPHA).await?);
        let beta_api = api(BETA, token(&ctx, BETA).await?);

        let t = Instant::now();
        let n = opts.users;
        // alpha: n users (the big group) + `replace` spares; beta: n users.
        let alpha_people = fill_users(&ctx, &alpha, 0, n).await?;
        let spares = fill_users(&ctx, &alpha, n, n + opts.replace).await?;
        let beta_people = if opts.queries {
            fill_users(&ctx, &beta, 0, n).await?
        } else {
            Vec::new()
        };
        settle(&ctx).await?;
        println!(
            "setup: {} + {} users (alpha) and {} users (beta) in {:.1} s (untimed)",
            alpha_people.len(),
            spares.len(),
            beta_people.len(),
            t.elapsed().as_secs_f64()
        );

        let groups = if opts.groups {
            let t = Instant::now();
            let g = bench_groups(opts, &ctx, &alpha_api, &alpha, &alpha_people, &spares).await?;
            println!("groups part: {:.1} s", t.elapsed().as_secs_f64());
            Some(g)
        } else {
            None
        };
        let queries = if opts.queries {
            settle(&ctx).await?;
            let t = Instant::now();
            // Alpha's users that every PUT keeps: each is in the big group, the first ones
            // also in the small one (when the groups part ran).
            let grouped =
                opts.groups
                    .then_some((&alpha_api, &alpha, &alpha_people[..n - opts.replace]));
            let q = bench_queries(
                opts,
                db.url(),
                &ctx,
                &beta_api,
                &beta,
                &beta_people,
                grouped,
            )
            .await?;
            println!("queries part: {:.1} s", t.elapsed().as_secs_f64());
            Some(q)
        } else {
            None
        };
        if let Some(g) = &groups {
            report_groups(opts, g);
        }
        if let Some(q) = &queries {
            report_queries(opts, q);
        }
        anyhow::Ok(())
    }
    .await;
    server.abort();
    ctx.store.close().await?;
    result
}

fn main() -> anyhow::Result<()> {
    let opts = Options::parse()?;
    let started = Instant::now();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    let result = runtime.block_on(bench(&opts));
    runtime.shutdown_timeout(Duration::from_secs(2));
    println!("total: {:.1} s", started.elapsed().as_secs_f64());
    result
}
