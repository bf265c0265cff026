//! The scaling probe: does a request's cost stay flat as its tenant grows? On PostgreSQL
//! (the bench cluster) and SQLite (a file of its own), a tenant `probe` is seeded by SQL
//! with ~1 000 membership rows, then grown to `--scaling-rows` rows in other groups and
//! users; p50 of single requests (one connection, sequential) for the same probed users,
//! with the same memberships, is taken at each size, and add/remove member at a group of
//! 100 against the largest group. Figures and ratios are printed, never gated.
//!
//! The probe's types, its sites (the tenant on each backend) and the order of its steps are
//! here; `seed` writes the tenant's rows and `rounds` measures them and writes the report.

use anyhow::{Context, bail};
use serde_json::json;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use crate::load::{Conn, Req, Target};
use crate::{Bench, Server, USER_BASE, user_body};

mod rounds;
mod seed;

use rounds::render;

const SLUG: &str = "probe";
/// Users 1..=SMALL hold the small tenant's memberships; the tenant's other users (as many
/// as `--users`) are the members of the groups added to grow it.
const SMALL: u64 = 1_000;
/// The probed users: in the group of 100 and in N1 directly, in N2 and N3 through nesting.
const PROBED: u64 = 50;
/// A round stops early after this long (a request that scans the tenant can take
/// seconds at 1 000 000 rows); the report says how many requests each p50 is of.
const ROUND_BUDGET: std::time::Duration = std::time::Duration::from_secs(120);
/// Members added and removed by the probe: in no group.
const SPARE_FIRST: u64 = 951;
const G100: &str = "4000100";
const N1: &str = "4000001";
const N2: &str = "4000002";
const N3: &str = "4000003";

const GET: &str = "GET /Users/{id}";
const FILTER: &str = "GET ?filter=userName eq";
const LIST: &str = "GET ?startIndex=1&count=100";
const ADD_SMALL: &str = "add member, group of 100";
const REMOVE_SMALL: &str = "remove member, group of 100";
const ADD_LARGE: &str = "add member, largest group";
const REMOVE_LARGE: &str = "remove member, largest group";
const COLUMNS: [&str; 7] = [
    GET,
    FILTER,
    LIST,
    ADD_SMALL,
    REMOVE_SMALL,
    ADD_LARGE,
    REMOVE_LARGE,
];

/// Where the probe tenant lives.
pub(crate) enum Store {
    Postgres,
    Sqlite(PathBuf),
}

impl Store {
    fn name(&self) -> &'static str {
        match self {
            Store::Postgres => "PostgreSQL",
            Store::Sqlite(_) => "SQLite",
        }
    }
}

/// The probe tenant on one backend: its token and the rows created through the API that
/// the seeding copies.
pub(crate) struct Site {
    store: Store,
    tenant_id: String,
    token: Arc<str>,
    tpl_user: String,
    tpl_group: String,
}

/// p50 per request kind, ms.
pub(crate) struct Round {
    label: String,
    memberships: u64,
    /// Requests of each kind the p50 are of.
    requests: u64,
    /// Entries of a probed user's `groups` (direct and indirect: 4 expected).
    groups: usize,
    p50: BTreeMap<&'static str, f64>,
}

/// Runs SQL with the `sqlite3` command-line shell on `file`.
pub fn sqlite(file: &Path, sql: &str) -> anyhow::Result<String> {
    let out = std::process::Command::new("sqlite3")
        .args(["-batch", "-bail", "-noheader", "-list"])
        .arg(file)
        .arg(sql)
        .stdin(std::process::Stdio::null())
        .output()
        .context("running sqlite3 (Debian: apt-get install sqlite3)")?;
    if !out.status.success() {
        bail!(
            "sqlite3 failed: {}\n{}",
            String::from_utf8_lossy(&out.stderr),
            sql.chars().take(400).collect::<String>()
        );
    }
    Ok(String::from_utf8_lossy(&out.stdout).trim().to_owned())
}

fn group_body(name: &str, member: &str) -> serde_json::Value {
    json!({
        "schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group"],
        "displayName": name,
        "members": [{"value": member}]
    })
}

fn uid(g: u64) -> String {
    (USER_BASE + g).to_string()
}

impl Bench {
    /// Both backends, every size; returns the report (tables of p50 and of ratios).
    pub async fn scaling(&mut self) -> anyhow::Result<String> {
        println!("\n## scaling");
        let mut rounds: Vec<(&'static str, Vec<Round>)> = Vec::new();
        // PostgreSQL: the bench cluster, a tenant of its own next to `bench`.
        let site = self.probe_site_postgres().await?;
        rounds.push(("PostgreSQL", self.probe_all(&site).await?));
        self.cleanup_postgres(&site)?;
        // SQLite: a file of its own, scimbus serving it alone (no relay broker).
        let file = self.dir.join("probe.db");
        let site = self.probe_site_sqlite(&file).await?;
        rounds.push(("SQLite", self.probe_all(&site).await?));
        let _ = std::fs::remove_file(&file);
        Ok(render(&rounds, self.args.scaling_rows))
    }

    async fn probe_site_postgres(&mut self) -> anyhow::Result<Site> {
        self.cli(&["tenant", "create", SLUG]).await?;
        let token = self.issue_token(None, SLUG).await?;
        let tenant_id = self
            .cluster
            .query(&format!("SELECT id FROM tenants WHERE slug = '{SLUG}'"))?;
        let serve = self.serve.as_ref().context("scimbus is not serving")?;
        let (tpl_user, tpl_group) = templates(serve, &token).await?;
        Ok(Site {
            store: Store::Postgres,
            tenant_id,
            token,
            tpl_user,
            tpl_group,
        })
    }

    async fn probe_site_sqlite(&mut self, file: &Path) -> anyhow::Result<Site> {
        let url = format!("sqlite://{}?mode=rwc", file.display());
        self.cli_at(&url, &["migrate"]).await?;
        self.cli_at(&url, &["tenant", "create", SLUG]).await?;
        let token = self.issue_token(Some(&url), SLUG).await?;
        let tenant_id = sqlite(
            file,
            &format!("SELECT id FROM tenants WHERE slug = '{SLUG}'"),
        )?;
        let serve = self.start_sqlite(&url).await?;
        let made = templates(&serve, &token).await;
        serve.stop().await?;
        let (tpl_user, tpl_group) = made?;
        Ok(Site {
            store: Store::Sqlite(file.to_owned()),
            tenant_id,
            token,
            tpl_user,
            tpl_group,
        })
    }

    async fn start_sqlite(&self, url: &str) -> anyhow::Result<Server> {
        Server::start(
            &self.bin,
            "serve",
            &[("SCIMBUS_DATABASE_URL".to_owned(), url.to_owned())],
        )
        .await
    }

    /// Seeds the small tenant, measures, grows it, measures with stale statistics, analyzes
    /// and measures again.
    async fn probe_all(&mut self, site: &Site) -> anyhow::Result<Vec<Round>> {
        let t0 = Instant::now();
        self.seed_small(site)?;
        self.analyze(site)?;
        println!(
            "  {}: probe tenant seeded ({} users, {} membership rows) in {:.1} s",
            site.store.name(),
            SMALL + self.args.users,
            self.memberships(site)?,
            t0.elapsed().as_secs_f64()
        );
        let mut rounds = vec![self.round(site, "~1 000 memberships", false).await?];
        let t0 = Instant::now();
        let largest = self.seed_large(site)?;
        println!(
            "  {}: grown to {} membership rows (largest group {largest}) in {:.1} s",
            site.store.name(),
            self.memberships(site)?,
            t0.elapsed().as_secs_f64()
        );
        rounds.push(self.round(site, "grown, stale statistics", true).await?);
        self.analyze(site)?;
        rounds.push(self.round(site, "grown, after ANALYZE", true).await?);
        Ok(rounds)
    }
}

/// Creates the template user and group of the probe tenant through the API.
async fn templates(serve: &Server, token: &str) -> anyhow::Result<(String, String)> {
    let target = Target {
        addr: serve.addr,
        token: token.to_owned(),
    };
    let mut conn = Conn::open(serve.addr).await?;
    let base = format!("/scim/v2/{SLUG}");
    let mut create = async |path: &str, body: serde_json::Value| -> anyhow::Result<String> {
        let req = Req::with_body("seed", "POST", format!("{base}/{path}"), &body, 201);
        let created: serde_json::Value =
            serde_json::from_slice(&conn.expect(&target, &req).await?)?;
        Ok(created["id"].as_str().context("no id")?.to_owned())
    };
    let user = create("Users", user_body("zzuserzz", "zzextzz", true)).await?;
    let group = create("Groups", group_body("zzgroupzz", &user)).await?;
    Ok((user, group))
}
