//! Setting the bench up: the seeded data (copies of rows the service wrote), the
//! `serve` process, and the state between phases.

use super::*;

impl Bench {
    /// `INSERT INTO table SELECT …` copying the template row once per value of `series`,
    /// with `replacements` (template text → SQL expression) applied to every text and JSON
    /// column: rows exactly as the service writes them, in bulk.
    pub(crate) fn replicate(
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
    pub(crate) fn replicate_in(
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

    pub(crate) async fn setup(&mut self) -> anyhow::Result<()> {
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
    pub(crate) fn copy_group(&self, gid: &str) -> anyhow::Result<()> {
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

    pub(crate) async fn start_serve(&mut self) -> anyhow::Result<()> {
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
    pub(crate) fn settle_outbox(&self) -> anyhow::Result<()> {
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
    pub(crate) fn quiesce(&self) -> anyhow::Result<()> {
        self.cluster.query("VACUUM ANALYZE")?;
        self.cluster.query("CHECKPOINT")?;
        Ok(())
    }

    pub(crate) async fn stop_serve(&mut self) -> anyhow::Result<()> {
        if let Some(s) = self.serve.take() {
            s.stop().await?;
        }
        Ok(())
    }
}
