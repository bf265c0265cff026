//! Many tenants: does the relay's work, and `/metrics`, grow with tenants that do nothing?
//! In a database of its own (`scimbus_tenants` in the bench cluster), two active tenants,
//! measured alone and then beside `--idle-tenants` idle ones seeded by SQL (a tenants row
//! and one published event each): the size of `GET /metrics`, the idle serving process's
//! CPU and statements, and `scimbus relay` draining events of the two active tenants — CPU
//! per event and `pg_stat_statements` time of its statements.

use anyhow::Context;
use std::fmt::Write as _;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::load::{Conn, Req, Target};
use crate::procs::{CpuSplit, Groups};
use crate::{Bench, Server, create_req_in};

const DB: &str = "scimbus_tenants";
const ACTIVE: [&str; 2] = ["active-1", "active-2"];
/// `SCIMBUS_METRICS_TOKEN` of the serving process (at least 16 characters).
const METRICS_TOKEN: &str = "bench-metrics-token-0123456789";

/// What one size measured.
#[derive(Default)]
struct Sample {
    tenants: u64,
    metrics_bytes: usize,
    metrics_lines: usize,
    /// Idle `scimbus serve`: % of one core, statements/s, database ms/s.
    idle_cpu: f64,
    idle_statements: f64,
    idle_db_ms: f64,
    /// `scimbus relay` draining `events` events: CPU ms per event, database ms per event.
    events: u64,
    relay_cpu_ms_per_event: f64,
    relay_db_ms_per_event: f64,
    /// The relay's most expensive SELECT on outbox: calls and mean ms.
    fetch_calls: u64,
    fetch_mean_ms: f64,
    fetch_query: String,
}

impl Bench {
    pub async fn many_tenants(&mut self) -> anyhow::Result<String> {
        println!("\n## many-tenants");
        // The main serving process stays stopped: its relay would add its own statements
        // and CPU to the cluster while these are measured.
        self.stop_serve().await?;
        self.cluster
            .psql_as("postgres", "postgres", &format!("CREATE DATABASE {DB}"))?;
        self.tenants_query("CREATE EXTENSION pg_stat_statements")?;
        let url = self.cluster.url_of("postgres", DB);
        self.cli_at(&url, &["migrate"]).await?;
        let mut tokens = Vec::new();
        for slug in ACTIVE {
            self.cli_at(&url, &["tenant", "create", slug]).await?;
            tokens.push((slug, self.issue_token(Some(&url), slug).await?));
        }
        let few = self.tenants_sample(&url, &tokens).await?;
        let t0 = Instant::now();
        let idle = self.args.idle_tenants;
        self.seed_idle(idle)?;
        println!(
            "  seeded {idle} idle tenants in {:.1} s",
            t0.elapsed().as_secs_f64()
        );
        let many = self.tenants_sample(&url, &tokens).await?;
        self.start_serve().await?;
        Ok(render(&few, &many))
    }

    fn tenants_query(&self, sql: &str) -> anyhow::Result<String> {
        self.cluster.psql_as("postgres", DB, sql)
    }

    /// Idle tenants: a tenants row each (copied from the first active tenant) and one
    /// published event, as a tenant that once wrote and has since been quiet.
    fn seed_idle(&self, n: u64) -> anyhow::Result<()> {
        let id = "'00000000-0000-4000-9000-' || lpad(g::text, 12, '0')";
        let slug = "'idle-' || g";
        self.replicate_in(
            DB,
            "tenants",
            &format!("t.slug = '{}'", ACTIVE[0]),
            &format!("generate_series(1, {n}) AS g"),
            &[],
            &[("id", id), ("slug", slug), ("event_seq", "1")],
        )?;
        let first = self.tenants_query(&format!(
            "SELECT o.sequence FROM outbox o JOIN tenants t ON t.id = o.tenant_id \
             WHERE t.slug = '{}' ORDER BY o.sequence LIMIT 1",
            ACTIVE[0]
        ))?;
        self.replicate_in(
            DB,
            "outbox",
            &format!(
                "t.sequence = {first} AND t.tenant_id = (SELECT id FROM tenants WHERE slug = '{}')",
                ACTIVE[0]
            ),
            &format!("generate_series(1, {n}) AS g"),
            &[(ACTIVE[0], "'idle-' || g".into())],
            &[
                ("tenant_id", id),
                ("sequence", "1"),
                ("id", id),
                ("published_at", "t.created_at"),
            ],
        )?;
        self.tenants_query("VACUUM ANALYZE")?;
        Ok(())
    }

    fn env_for(&self, url: &str, relay: bool) -> Vec<(String, String)> {
        let mut env = self.scimbus_env("postgres", relay);
        for (k, v) in &mut env {
            if k == "SCIMBUS_DATABASE_URL" {
                *v = url.to_owned();
            }
        }
        env.push(("SCIMBUS_METRICS_TOKEN".into(), METRICS_TOKEN.into()));
        env
    }

    /// (calls, total ms) of the statements run in the tenants database since the reset.
    fn statements(&self) -> anyhow::Result<(f64, f64)> {
        let row = self.tenants_query(&format!(
            "SELECT coalesce(sum(calls), 0) || ' ' || coalesce(sum(total_exec_time), 0) \
             FROM pg_stat_statements s JOIN pg_database d ON d.oid = s.dbid \
             WHERE d.datname = '{DB}' AND query NOT ILIKE '%pg_stat_statements%'"
        ))?;
        let mut v = row.split_whitespace().filter_map(|x| x.parse::<f64>().ok());
        Ok((v.next().unwrap_or(0.0), v.next().unwrap_or(0.0)))
    }

    async fn tenants_sample(
        &mut self,
        url: &str,
        tokens: &[(&str, Arc<str>)],
    ) -> anyhow::Result<Sample> {
        let mut sample = Sample {
            tenants: self
                .tenants_query("SELECT count(*) FROM tenants")?
                .parse()?,
            ..Default::default()
        };
        // Serving, relay on: a few writes per active tenant (so their labelled series
        // exist), then /metrics, then idle.
        let serve = Server::start(&self.bin, "serve", &self.env_for(url, true)).await?;
        let result = self.serve_sample(&serve, tokens, &mut sample).await;
        serve.stop().await?;
        result?;
        // Draining with `scimbus relay`, the serving process stopped.
        self.drain_sample(&mut sample).await?;
        println!(
            "  {} tenants: /metrics {} bytes; idle serve {:.1}% CPU, {:.1} statements/s; relay {:.3} ms CPU/event, fetch {:.3} ms × {}",
            sample.tenants,
            sample.metrics_bytes,
            sample.idle_cpu,
            sample.idle_statements,
            sample.relay_cpu_ms_per_event,
            sample.fetch_mean_ms,
            sample.fetch_calls
        );
        Ok(sample)
    }

    async fn serve_sample(
        &self,
        serve: &Server,
        tokens: &[(&str, Arc<str>)],
        sample: &mut Sample,
    ) -> anyhow::Result<()> {
        let target = Target {
            addr: serve.addr,
            token: METRICS_TOKEN.into(),
        };
        let mut conn = Conn::open(serve.addr).await?;
        for (slug, token) in tokens {
            for _ in 0..5 {
                let req = create_req_in(&format!("/scim/v2/{slug}")).with_token(token);
                conn.expect(&target, &req).await?;
            }
        }
        // Let the relay publish them, then read /metrics.
        tokio::time::sleep(Duration::from_secs(1)).await;
        let body = conn
            .expect(&target, &Req::get("metrics", "/metrics".into()))
            .await?;
        sample.metrics_bytes = body.len();
        sample.metrics_lines = body.iter().filter(|b| **b == b'\n').count();
        // Idle: nothing to publish, only the relay's polling and the maintenance off.
        let groups = Groups {
            pids: vec![("scimbus".into(), serve.pid)],
            postmaster: self.cluster.postmaster_pid(),
        };
        self.tenants_query("SELECT pg_stat_statements_reset()")?;
        let before = groups.snapshot();
        let secs = self.args.measure.max(1);
        tokio::time::sleep(Duration::from_secs(secs)).await;
        let after = groups.snapshot();
        let cpu = CpuSplit::between(&before, &after);
        sample.idle_cpu = cpu
            .groups
            .iter()
            .find(|(n, _)| n == "scimbus")
            .map_or(0.0, |(_, v)| *v);
        let (calls, ms) = self.statements()?;
        sample.idle_statements = calls / secs as f64;
        sample.idle_db_ms = ms / secs as f64;
        Ok(())
    }

    /// `events` unpublished copies of an active tenant's event, half per active tenant,
    /// drained by `scimbus relay` alone.
    async fn drain_sample(&mut self, sample: &mut Sample) -> anyhow::Result<()> {
        let n = (self.args.events / 10).max(100);
        let tpl = self.tenants_query(&format!(
            "SELECT o.tenant_id || ' ' || o.sequence || ' ' || o.id FROM outbox o JOIN tenants t \
             ON t.id = o.tenant_id WHERE t.slug = '{}' AND o.event_type = 'scimbus.user.created' \
             ORDER BY o.sequence LIMIT 1",
            ACTIVE[0]
        ))?;
        let mut f = tpl.split_whitespace();
        let (tid, seq, eid) = (
            f.next().context("no event to copy")?.to_owned(),
            f.next().context("sequence")?.to_owned(),
            f.next().context("id")?.to_owned(),
        );
        self.drains += 1;
        let prefix = format!("00000000-0000-4000-{:04x}-", 0xa000 + self.drains);
        for (k, slug) in ACTIVE.iter().enumerate() {
            let id =
                self.tenants_query(&format!("SELECT id FROM tenants WHERE slug = '{slug}'"))?;
            let last: i64 = self
                .tenants_query(&crate::last_sequence(&format!("'{id}'")))?
                .parse()?;
            let count = n / 2 + u64::from(k == 0) * (n % 2);
            self.replicate_in(
                DB,
                "outbox",
                &format!("t.tenant_id = '{tid}' AND t.sequence = {seq}"),
                &format!("generate_series(1, {count}) AS g"),
                &[
                    (
                        eid.as_str(),
                        format!("'{prefix}' || lpad(((g - 1) * 2 + {k} + 1)::text, 12, '0')"),
                    ),
                    (ACTIVE[0], format!("'{slug}'")),
                ],
                &[
                    ("tenant_id", &format!("'{id}'")),
                    ("sequence", &format!("{last} + g")),
                    ("published_at", "NULL"),
                    ("attempts", "0"),
                ],
            )?;
            self.tenants_query(&format!(
                "UPDATE tenants SET event_seq = {} WHERE id = '{id}'",
                last + count as i64
            ))?;
        }
        self.tenants_query("VACUUM ANALYZE outbox")?;
        self.tenants_query("SELECT pg_stat_statements_reset()")?;
        let consumer = self.consumer.as_ref().context("no consumer")?;
        let target = consumer.count() + n;
        let url = self.cluster.url_of("postgres", DB);
        let relay = Server::start(&self.bin, "relay", &self.env_for(&url, true)).await?;
        let groups = Groups {
            pids: vec![("relay".into(), relay.pid)],
            postmaster: self.cluster.postmaster_pid(),
        };
        let before = groups.snapshot();
        let done = consumer.wait_for(target, Duration::from_secs(60)).await;
        let after = groups.snapshot();
        relay.stop().await?;
        done.context("the relay stopped delivering")?;
        let cpu = CpuSplit::between(&before, &after);
        let window = after_secs(&before, &after);
        let relay_pct = cpu
            .groups
            .iter()
            .find(|(n, _)| n == "relay")
            .map_or(0.0, |(_, v)| *v);
        sample.events = n;
        sample.relay_cpu_ms_per_event = relay_pct / 100.0 * window * 1000.0 / n as f64;
        let (_, ms) = self.statements()?;
        sample.relay_db_ms_per_event = ms / n as f64;
        let fetch = self.tenants_query(&format!(
            "SELECT calls || chr(31) || mean_exec_time || chr(31) || left(regexp_replace(query, '\\s+', ' ', 'g'), 160) \
             FROM pg_stat_statements s JOIN pg_database d ON d.oid = s.dbid \
             WHERE d.datname = '{DB}' AND query ILIKE '%outbox%' \
             AND (query ILIKE 'SELECT%' OR query ILIKE 'WITH%') \
             ORDER BY total_exec_time DESC LIMIT 1"
        ))?;
        let mut f = fetch.split('\u{1f}');
        sample.fetch_calls = f.next().and_then(|v| v.parse().ok()).unwrap_or(0);
        sample.fetch_mean_ms = f.next().and_then(|v| v.parse().ok()).unwrap_or(0.0);
        sample.fetch_query = f.next().unwrap_or_default().to_owned();
        Ok(())
    }
}

fn after_secs(a: &crate::procs::Snapshot, b: &crate::procs::Snapshot) -> f64 {
    b.at().duration_since(a.at()).as_secs_f64()
}

fn render(few: &Sample, many: &Sample) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "| many tenants (2 active) | /metrics bytes (lines) | idle serve: CPU % of a core | idle: statements/s | idle: DB ms/s | relay drain: events | relay CPU ms/event | relay DB ms/event | relay fetch: mean ms (calls) |\n|---|---|---|---|---|---|---|---|---|"
    );
    for s in [few, many] {
        let _ = writeln!(
            out,
            "| {} tenants | {} ({}) | {:.1} | {:.1} | {:.2} | {} | {:.3} | {:.3} | {:.3} ({}) |",
            s.tenants,
            s.metrics_bytes,
            s.metrics_lines,
            s.idle_cpu,
            s.idle_statements,
            s.idle_db_ms,
            s.events,
            s.relay_cpu_ms_per_event,
            s.relay_db_ms_per_event,
            s.fetch_mean_ms,
            s.fetch_calls
        );
    }
    let r = |a: f64, b: f64| {
        if a > 0.0 {
            format!("{:.2}×", b / a)
        } else {
            "–".into()
        }
    };
    let _ = writeln!(
        out,
        "| ratio {} / {} (target: flat) | {} | {} | {} | {} | | {} | {} | {} |",
        many.tenants,
        few.tenants,
        r(few.metrics_bytes as f64, many.metrics_bytes as f64),
        r(few.idle_cpu, many.idle_cpu),
        r(few.idle_statements, many.idle_statements),
        r(few.idle_db_ms, many.idle_db_ms),
        r(few.relay_cpu_ms_per_event, many.relay_cpu_ms_per_event),
        r(few.relay_db_ms_per_event, many.relay_db_ms_per_event),
        r(few.fetch_mean_ms, many.fetch_mean_ms),
    );
    let _ = writeln!(out, "\nrelay fetch statement: `{}`", many.fetch_query);
    println!("{out}");
    out
}
