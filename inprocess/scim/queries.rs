//! Queries: each shape over HTTP beside the service's own SQL in-process and in pgbench,
//! with its plan.

use super::*;

/// One query shape: its HTTP figures and the SQL scimbus runs for it.
pub(crate) struct Shape {
    pub(crate) name: String,
    pub(crate) http: Vec<f64>,
    /// The statements one request runs (count, page), with bound values.
    pub(crate) sql: Vec<Statement>,
    /// The same SQL, in-process through the service's pool.
    pub(crate) sql_ms: Vec<f64>,
    /// `pgbench` average latency of one transaction running `sql`.
    pub(crate) pgbench: Option<Result<f64, String>>,
    /// What a list adds to its SQL: the listed users' groups, in-process, read as
    /// `service::users::list` reads them (`members::memberships` once per listed user)...
    pub(crate) per_user_ms: Vec<f64>,
    /// ... and in one query for the page (`members::memberships_of_many`).
    pub(crate) memberships_ms: Vec<f64>,
    pub(crate) plan: Vec<String>,
    pub(crate) note: String,
    /// The tenant the shape reads, when not the query tenant (beta).
    pub(crate) tenant_id: Option<TenantId>,
}

impl Shape {
    pub(crate) fn new(name: &str, sql: Vec<Statement>) -> Self {
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

/// The statements of a list of users, from the service's own builders: the count
/// (`store::query::count_statement`) and the page with each user's groups
/// (`store::query::users_page_statement`). The service reads the page first and runs the
/// count only when the page cannot tell the total; the bench times both.
pub(crate) fn list_statements(
    backend: DbBackend,
    tenant_id: &TenantId,
    filter: Option<&str>,
    sort: Option<&Sort>,
    offset: u64,
) -> anyhow::Result<Vec<Statement>> {
    let r = Registry::core();
    let typed = filter
        .map(|f| parse_filter(r, r.user(), f))
        .transpose()
        .map_err(|e| anyhow::anyhow!("{e:?}"))?;
    Ok(vec![
        count_statement(backend, ResourceKind::User, tenant_id, typed.as_ref()),
        users_page_statement(backend, tenant_id, typed.as_ref(), sort, offset, PAGE),
    ])
}

/// `sortBy=userName` (ascending), as the service parses it.
pub(crate) fn by_user_name() -> anyhow::Result<Sort> {
    let r = Registry::core();
    parse_sort(r, r.user(), "userName", None).map_err(|e| anyhow::anyhow!("{e:?}"))
}

/// `GET /Users/{id}`: the user with its groups (`store::users::find_with_groups`).
pub(crate) fn by_id_statement(
    backend: DbBackend,
    tenant_id: &TenantId,
    id: &ResourceId,
) -> Statement {
    users::find_with_groups_statement(backend, tenant_id, id, false)
}

/// `store::members::memberships`: `GET /Users/{id}` runs it to fill in the user's
/// `groups` (a list runs it once for its page).
pub(crate) fn memberships_statement(
    backend: DbBackend,
    tenant_id: &TenantId,
    member_id: &str,
) -> Statement {
    members::memberships_statement(backend, tenant_id, &[ResourceId::from(member_id)])
}

/// The `id`s of a list response, in order.
pub(crate) fn listed_ids(body: &str) -> anyhow::Result<(u64, Vec<String>)> {
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
pub(crate) async fn run_sql(
    ctx: &Context,
    statements: &[Statement],
) -> anyhow::Result<Vec<String>> {
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

pub(crate) async fn plan(ctx: &Context, statement: &Statement) -> anyhow::Result<Vec<String>> {
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
pub(crate) async fn pgbench(url: &str, statements: &[Statement], n: usize) -> Result<f64, String> {
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

pub(crate) struct QueryFigures {
    pub(crate) shapes: Vec<Shape>,
    pub(crate) matches_co: u64,
}

pub(crate) async fn bench_queries(
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
    by_id.sql = vec![by_id_statement(
        backend,
        &tenant.id,
        &ResourceId::from(sample.id.as_str()),
    )];
    by_id.note = "one fixed user for the SQL".to_owned();
    let filter = format!("userName eq \"{}\"", sample.user_name);
    by_name.sql = list_statements(backend, &tenant.id, Some(&filter), None, 0)?;
    by_name.note = "one fixed user for the SQL".to_owned();

    // 2. Pages of 100: sorted by userName and by cursor, first and middle.
    let middle = (n / 2) as u64;
    let count = PAGE.to_string();
    let sorted_first_index = "1".to_owned();
    let sorted_middle_index = (middle + 1).to_string();
    let scope = CursorScope {
        tenant_id: &tenant.id,
        kind: ResourceKind::User,
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
    let sorted = by_user_name()?;
    let mut pages: Vec<(Shape, Vec<(&str, &str)>)> = vec![
        (
            Shape::new(
                "sortBy=userName&count=100&startIndex=1",
                list_statements(backend, &tenant.id, None, Some(&sorted), 0)?,
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
                list_statements(backend, &tenant.id, None, Some(&sorted), middle)?,
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
                list_statements(backend, &tenant.id, None, None, 0)?,
            ),
            vec![("cursor", ""), ("count", count.as_str())],
        ),
        (
            Shape::new(
                &format!("cursor=…&count=100 (page at offset {middle})"),
                list_statements(backend, &tenant.id, None, None, middle)?,
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
        list_statements(backend, &tenant.id, Some(co_filter), None, 0)?,
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
            vec![by_id_statement(
                backend,
                &alpha.id,
                &ResourceId::from(alpha_people[0].id.as_str()),
            )],
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
            list_statements(backend, &alpha.id, None, None, 0)?,
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
            let listed: Vec<ResourceId> = run_sql(ctx, &shape.sql)
                .await?
                .into_iter()
                .map(ResourceId::from)
                .collect();
            let tenant_id = shape.tenant_id.as_ref().unwrap_or(&tenant.id);
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
