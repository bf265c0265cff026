//! One scenario: the capture of the SQL scimbus issues, scimbus measured, the replay and
//! the floor measured with pgbench, and the plan of each scenario.

use super::*;

impl Bench {
    pub(crate) async fn marker(&mut self, what: &str) -> anyhow::Result<String> {
        let m = format!("bench-mark-{}-{what}", self.marker);
        self.cluster
            .psql_as("capture", "scimbus", &format!("SELECT '{m}'"))?;
        Ok(m)
    }

    /// Captures the SQL of `unit` (after `warm` units) and writes the pgbench script.
    pub(crate) async fn capture(
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

    pub(crate) async fn measure_scimbus<F>(
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
    pub(crate) async fn pgbench(
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

    pub(crate) async fn measure_baseline(
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
    pub(crate) fn plan(&self, name: &str) -> anyhow::Result<Plan> {
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

    pub(crate) async fn scenario(&mut self, name: &str) -> anyhow::Result<()> {
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
}
