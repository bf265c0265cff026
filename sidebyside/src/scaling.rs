//! The scaling probe: does a request's cost stay flat as its tenant grows? On PostgreSQL
//! (the bench cluster) and SQLite (a file of its own), a tenant `probe` is seeded by SQL
//! with ~1 000 membership rows, then grown to `--scaling-rows` rows in other groups and
//! users; p50 of single requests (one connection, sequential) for the same probed users,
//! with the same memberships, is taken at each size, and add/remove member at a group of
//! 100 against the largest group. Figures and ratios are printed, never gated.

use anyhow::{Context, bail};
use serde_json::json;
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use crate::load::{Conn, Req, Target};
use crate::{Bench, Server, USER_BASE, patch_body, user_body};

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
enum Store {
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
struct Site {
    store: Store,
    tenant_id: String,
    token: Arc<str>,
    tpl_user: String,
    tpl_group: String,
}

/// p50 per request kind, ms.
struct Round {
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

    fn analyze(&self, site: &Site) -> anyhow::Result<()> {
        match &site.store {
            Store::Postgres => {
                self.cluster.query("VACUUM ANALYZE")?;
            }
            Store::Sqlite(file) => {
                sqlite(file, "ANALYZE")?;
            }
        }
        Ok(())
    }

    fn memberships(&self, site: &Site) -> anyhow::Result<u64> {
        let sql = format!(
            "SELECT count(*) FROM group_members WHERE tenant_id = '{}'",
            site.tenant_id
        );
        let n = match &site.store {
            Store::Postgres => self.cluster.query(&sql)?,
            Store::Sqlite(file) => sqlite(file, &sql)?,
        };
        Ok(n.parse()?)
    }

    /// `INSERT … SELECT` copies of a template row, one per `g` in `lo..=hi`, as
    /// `Bench::replicate` does, on either backend. Expressions are written in the SQL both
    /// accept (`CAST(… AS TEXT)`, `||`).
    fn copy_rows(
        &self,
        site: &Site,
        table: &str,
        template: &str,
        (lo, hi): (u64, u64),
        replacements: &[(&str, String)],
        overrides: &[(&str, &str)],
    ) -> anyhow::Result<()> {
        match &site.store {
            Store::Postgres => self.replicate(
                table,
                template,
                &format!("generate_series({lo}, {hi}) AS g"),
                replacements,
                overrides,
            ),
            Store::Sqlite(file) => {
                let columns = sqlite(
                    file,
                    &format!("SELECT name || ':' || lower(type) FROM pragma_table_info('{table}')"),
                )?;
                let (names, exprs) =
                    crate::copy::columns(&columns, &crate::copy::SQLITE, replacements, overrides)?;
                sqlite(
                    file,
                    &format!(
                        "WITH RECURSIVE s(g) AS (SELECT {lo} UNION ALL SELECT g + 1 FROM s WHERE g < {hi}) \
                         INSERT INTO {table} ({names}) SELECT {exprs} FROM {table} t, s WHERE {template}"
                    ),
                )?;
                Ok(())
            }
        }
    }

    /// Users `lo..=hi` of the probe tenant, copies of its template user.
    fn copy_users(&self, site: &Site, lo: u64, hi: u64) -> anyhow::Result<()> {
        let g = format!("CAST(g + {USER_BASE} AS TEXT)");
        self.copy_rows(
            site,
            "users",
            &format!(
                "t.tenant_id = '{}' AND t.id = '{}'",
                site.tenant_id, site.tpl_user
            ),
            (lo, hi),
            &[
                (site.tpl_user.as_str(), g.clone()),
                ("zzuserzz", g.clone()),
                ("zzextzz", format!("'ext-' || {g}")),
            ],
            &[],
        )
    }

    /// A group `gid` (no members) copied from the template group.
    fn probe_group(&self, site: &Site, gid: &str) -> anyhow::Result<()> {
        self.copy_rows(
            site,
            "groups",
            &format!(
                "t.tenant_id = '{}' AND t.id = '{}'",
                site.tenant_id, site.tpl_group
            ),
            (1, 1),
            &[
                (site.tpl_group.as_str(), format!("'{gid}'")),
                ("zzgroupzz", format!("'Group {gid}'")),
            ],
            &[],
        )
    }

    /// Users `lo..=hi` into `gid`, or the group `member` alone.
    fn add_members(
        &self,
        site: &Site,
        gid: &str,
        range: (u64, u64),
        member: Option<&str>,
    ) -> anyhow::Result<()> {
        let (to, overrides): (String, &[(&str, &str)]) = match member {
            Some(m) => (format!("'{m}'"), &[("member_type", "'Group'")]),
            None => (format!("CAST(g + {USER_BASE} AS TEXT)"), &[]),
        };
        self.copy_rows(
            site,
            "group_members",
            &format!(
                "t.tenant_id = '{}' AND t.group_id = '{}' AND t.member_id = '{}'",
                site.tenant_id, site.tpl_group, site.tpl_user
            ),
            range,
            &[
                (site.tpl_group.as_str(), format!("'{gid}'")),
                (site.tpl_user.as_str(), to),
            ],
            overrides,
        )
    }

    /// ~1 000 membership rows: the group of 100 (users 1–100), N1 (users 1–897), N1 in
    /// N2 in N3, and the template's own row. The tenant already has every user of the grown
    /// state, so only the membership table changes between the sizes.
    fn seed_small(&self, site: &Site) -> anyhow::Result<()> {
        self.copy_users(site, 1, SMALL + self.args.users)?;
        for gid in [G100, N1, N2, N3] {
            self.probe_group(site, gid)?;
        }
        self.add_members(site, G100, (1, 100), None)?;
        self.add_members(site, N1, (1, SMALL - 100 - 3), None)?;
        self.add_members(site, N2, (1, 1), Some(N1))?;
        self.add_members(site, N3, (1, 1), Some(N2))?;
        Ok(())
    }

    /// Groups X1, X2, … of the users after `SMALL` (each as large as `--users`) until the
    /// tenant holds `--scaling-rows` membership rows; returns X1's size.
    fn seed_large(&self, site: &Site) -> anyhow::Result<u64> {
        let size = self.args.users.max(1);
        let mut left = self
            .args
            .scaling_rows
            .saturating_sub(self.memberships(site)?);
        let mut j = 0;
        while left > 0 {
            j += 1;
            let gid = format!("41{j:05}");
            let n = left.min(size);
            self.probe_group(site, &gid)?;
            self.add_members(site, &gid, (SMALL + 1, SMALL + n), None)?;
            left -= n;
        }
        Ok(size.min(self.args.scaling_rows))
    }

    /// One round: scimbus (re)started so that no plan or cache outlives the change of
    /// size, then `--probe-requests` requests of each kind, one at a time.
    async fn round(&mut self, site: &Site, label: &str, large: bool) -> anyhow::Result<Round> {
        let memberships = self.memberships(site)?;
        // On SQLite the probe's own process, stopped after the round (the file is written
        // by the sqlite3 shell in between).
        let own = match &site.store {
            Store::Postgres => {
                self.stop_serve().await?;
                self.start_serve().await?;
                None
            }
            Store::Sqlite(file) => Some(
                self.start_sqlite(&format!("sqlite://{}?mode=rwc", file.display()))
                    .await?,
            ),
        };
        let addr = match (&own, &self.serve) {
            (Some(s), _) | (None, Some(s)) => s.addr,
            (None, None) => bail!("scimbus is not serving"),
        };
        let result = self.probe_requests(site, addr, large).await;
        if let Some(s) = own {
            s.stop().await?;
        }
        let (p50, requests, groups) = result?;
        let mut line = format!("  {} {label} ({memberships} rows):", site.store.name());
        for (k, v) in &p50 {
            let _ = write!(line, " {k} {v:.2} ms;");
        }
        println!("{line}");
        Ok(Round {
            label: label.to_owned(),
            memberships,
            requests,
            groups,
            p50,
        })
    }

    async fn probe_requests(
        &self,
        site: &Site,
        addr: std::net::SocketAddr,
        large: bool,
    ) -> anyhow::Result<(BTreeMap<&'static str, f64>, u64, usize)> {
        let target = Target {
            addr,
            token: site.token.to_string(),
        };
        let base = format!("/scim/v2/{SLUG}");
        let n = self.args.probe_requests.max(1);
        let mut conn = Conn::open(addr).await?;
        // The memberships the probe relies on, as scimbus reports them.
        let body = conn
            .expect(&target, &Req::get(GET, format!("{base}/Users/{}", uid(1))))
            .await?;
        let user: serde_json::Value = serde_json::from_slice(&body)?;
        let in_groups = user["groups"].as_array().map_or(0, Vec::len);
        let mut hist: BTreeMap<&'static str, hdrhistogram::Histogram<u64>> = BTreeMap::new();
        let mut timed = async |tag: &'static str, req: Req| -> anyhow::Result<()> {
            let start = Instant::now();
            conn.expect(&target, &req).await?;
            let us = start.elapsed().as_micros() as u64;
            let _ = hist
                .entry(tag)
                .or_insert_with(scimbus_support::stats::histogram)
                .record(us.max(1));
            Ok(())
        };
        let member_patch = |gid: &str, member: &str, add: bool| {
            let ops = if add {
                json!([{"op": "add", "path": "members", "value": [{"value": member}]}])
            } else {
                json!([{"op": "remove", "path": format!("members[value eq \"{member}\"]")}])
            };
            Req::with_body(
                if add { "add" } else { "remove" },
                "PATCH",
                format!("{base}/Groups/{gid}"),
                &patch_body(ops),
                204,
            )
        };
        let mut groups = vec![(G100, ADD_SMALL, REMOVE_SMALL)];
        if large {
            groups.push(("4100001", ADD_LARGE, REMOVE_LARGE));
        }
        let started = Instant::now();
        for i in 0..n {
            if started.elapsed() > ROUND_BUDGET {
                println!(
                    "  round stopped after {i} of {n} requests of each kind ({} s budget)",
                    ROUND_BUDGET.as_secs()
                );
                break;
            }
            let id = uid(1 + i % PROBED);
            timed(GET, Req::get(GET, format!("{base}/Users/{id}"))).await?;
            timed(
                FILTER,
                Req::get(
                    FILTER,
                    format!("{base}/Users?filter=userName%20eq%20%22{id}%22"),
                ),
            )
            .await?;
            timed(
                LIST,
                Req::get(LIST, format!("{base}/Users?startIndex=1&count=100")),
            )
            .await?;
            let spare = uid(SPARE_FIRST + i % (SMALL - SPARE_FIRST + 1));
            for (gid, add, remove) in &groups {
                timed(add, member_patch(gid, &spare, true)).await?;
                timed(remove, member_patch(gid, &spare, false)).await?;
            }
        }
        let requests = hist.values().map(|h| h.len()).min().unwrap_or(0);
        let p50 = hist
            .iter()
            .map(|(k, h)| (*k, h.value_at_quantile(0.5) as f64 / 1000.0))
            .collect();
        Ok((p50, requests, in_groups))
    }

    /// Removes the probe tenant's rows from the bench cluster, so that later scenarios
    /// run on the tables they had.
    fn cleanup_postgres(&self, site: &Site) -> anyhow::Result<()> {
        for table in ["group_members", "groups", "users"] {
            self.cluster.query(&format!(
                "DELETE FROM {table} WHERE tenant_id = '{}'",
                site.tenant_id
            ))?;
        }
        self.cluster.query("VACUUM ANALYZE")?;
        Ok(())
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

fn render(all: &[(&'static str, Vec<Round>)], rows: u64) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "| scaling probe: p50 ms, 1 connection | memberships | a probed user's groups | requests of each | {} |",
        COLUMNS.join(" | ")
    );
    let _ = writeln!(out, "|---|---|---|---|{}", "---|".repeat(COLUMNS.len()));
    for (backend, rounds) in all {
        for r in rounds {
            let cells: Vec<String> = COLUMNS
                .iter()
                .map(|c| r.p50.get(c).map_or("–".into(), |v| format!("{v:.2}")))
                .collect();
            let _ = writeln!(
                out,
                "| {backend}, {} | {} | {} | {} | {} |",
                r.label,
                r.memberships,
                r.groups,
                r.requests,
                cells.join(" | ")
            );
        }
    }
    let _ = writeln!(
        out,
        "\n| scaling ratio ({rows} rows) | target | {} |",
        all.iter()
            .flat_map(|(b, _)| [format!("{b} stale"), format!("{b} analyzed")])
            .collect::<Vec<_>>()
            .join(" | ")
    );
    let _ = writeln!(out, "|---|---|{}", "---|---|".repeat(all.len()));
    let ratio = |r: &Round, a: &str, base: &Round, b: &str| match (r.p50.get(a), base.p50.get(b)) {
        (Some(x), Some(y)) if *y > 0.0 => format!("{:.2}×", x / y),
        _ => "–".into(),
    };
    let lines: [(&str, &str, &str, bool, &str); 5] = [
        ("GET grown / small", GET, GET, true, "≤ 1.2"),
        ("filter grown / small", FILTER, FILTER, true, "≤ 1.2"),
        ("list page grown / small", LIST, LIST, true, "≤ 1.2"),
        (
            "add, largest group / group of 100",
            ADD_LARGE,
            ADD_SMALL,
            false,
            "≤ 1.5",
        ),
        (
            "remove, largest group / group of 100",
            REMOVE_LARGE,
            REMOVE_SMALL,
            false,
            "≤ 1.5",
        ),
    ];
    for (name, a, b, against_small, target) in lines {
        let mut cells = Vec::new();
        for (_, rounds) in all {
            for grown in rounds.iter().skip(1).take(2) {
                let base = if against_small { &rounds[0] } else { grown };
                cells.push(ratio(grown, a, base, b));
            }
        }
        let _ = writeln!(out, "| {name} | {target} | {} |", cells.join(" | "));
    }
    println!("{out}");
    out
}
