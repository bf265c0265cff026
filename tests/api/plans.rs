//! Query plans on a populated tenant: 100 000 users and a million membership rows, seeded
//! by SQL. The lookups Okta and Entra start with and every membership query (a user's
//! groups, a page's groups, add, remove, the cycle check) must read rows bounded by what
//! they return — never by the tenant — whatever the statistics say: checked with stale
//! statistics (analyzed while nearly empty, then grown) and after a fresh ANALYZE, with no
//! planner setting overridden. PostgreSQL: rows read summed from
//! `EXPLAIN (ANALYZE, FORMAT JSON)`, for the custom plan and for the generic plan a
//! long-lived prepared statement ends up with. SQLite: `EXPLAIN QUERY PLAN` shows no scan
//! of a table and no index search on the tenant alone.

use scimbus::domain::{ResourceId, ResourceKind, TenantId, Timestamp};
use scimbus::scim::query::parse_filter;
use scimbus::scim::schema::Registry;
use scimbus::store::query::{count_statement, users_page_statement};
use scimbus::store::{members, users};
use sea_orm::{ConnectionTrait, DbBackend, Statement, TransactionTrait};
use serde_json::Value;

use crate::both_backends;
use crate::helpers::{Backend, TestApp, series, spawn_app};

/// A resource id in the seeded tenant.
fn rid(id: &str) -> ResourceId {
    ResourceId::from(id)
}

both_backends!(
    membership_and_lookup_queries_read_rows_bounded_by_their_result,
    credential_lookups_and_the_tenant_listing_read_rows_bounded_by_their_result,
    set_receiver_queries_read_rows_bounded_by_their_result,
    journal_prunes_read_what_they_keep_and_delete_not_the_tenant,
    the_console_tenant_list_reads_its_page_not_every_tenant,
);

const USERS: u64 = 100_000;
/// Groups of `SPREAD_SIZE` members each, besides the one of every user.
const SPREAD_GROUPS: u64 = 1_000;
const SPREAD_SIZE: u64 = 900;
/// What a query may read: a few rows per row it returns (a membership row, the lookup of
/// its group's parents, the group's name), at least `BOUND`. The tenant has ~1 000 000
/// membership rows; the probe user has 3 direct groups and 2 more through nesting.
const BOUND: f64 = 100.0;
const PER_RESULT_ROW: f64 = 4.0;

/// `SELECT g FROM <series 1..=n>` on either backend.
/// The tenant: users `u1…u100000`; group `all` holds every user, `spread-1…1000` hold 900
/// users each, `small` holds the probe `u5`, and `u5` is in `nA`, itself in `nB`, in `nC`.
async fn seed(app: &TestApp, tenant_id: &TenantId) {
    let conn = app.ctx.store.conn();
    let backend = conn.get_database_backend();
    let ts = "'2026-01-01T00:00:00.000Z'";
    let user_doc = r#"'{"schemas":["urn:ietf:params:scim:schemas:core:2.0:User"],"userName":"x"}'"#;
    let group_doc =
        r#"'{"schemas":["urn:ietf:params:scim:schemas:core:2.0:Group"],"displayName":"x"}'"#;
    let t = format!("'{tenant_id}'");
    let statements = [
        format!(
            "INSERT INTO users (tenant_id, id, user_name, user_name_ci, external_id, active, \
             display_name, display_name_ci, resource, version, created_at, updated_at) \
             SELECT {t}, 'u' || g, 'user' || g, 'user' || g, 'e' || g, true, 'User ' || g, \
             'user ' || g, {user_doc}, 1, {ts}, {ts} FROM {}",
            series(backend, USERS)
        ),
        format!(
            "INSERT INTO groups (tenant_id, id, display_name, display_name_ci, external_id, \
             resource, version, created_at, updated_at) \
             SELECT {t}, 'spread-' || g, 'Spread ' || g, 'spread ' || g, 'x' || g, {group_doc}, \
             1, {ts}, {ts} FROM {}",
            series(backend, SPREAD_GROUPS)
        ),
        format!(
            "INSERT INTO groups (tenant_id, id, display_name, display_name_ci, resource, \
             version, created_at, updated_at) \
             SELECT {t}, n, n, n, {group_doc}, 1, {ts}, {ts} FROM (SELECT 'all' AS n UNION ALL \
             SELECT 'small' UNION ALL SELECT 'nA' UNION ALL SELECT 'nB' UNION ALL SELECT 'nC') v"
        ),
        format!(
            "INSERT INTO group_members (tenant_id, group_id, member_id, member_type, created_at) \
             SELECT {t}, 'all', 'u' || g, 'User', {ts} FROM {}",
            series(backend, USERS)
        ),
        // Spread member rows over users 1001…100000 (the probe u5 stays out of them), each
        // group's members distinct.
        format!(
            "INSERT INTO group_members (tenant_id, group_id, member_id, member_type, created_at) \
             SELECT {t}, 'spread-' || (1 + g % {SPREAD_GROUPS}), \
             'u' || (1001 + (g / {SPREAD_GROUPS} + (g % {SPREAD_GROUPS}) * 97) % {}), 'User', \
             {ts} FROM {}",
            USERS - 1000,
            series(backend, SPREAD_GROUPS * SPREAD_SIZE)
        ),
        format!(
            "INSERT INTO group_members (tenant_id, group_id, member_id, member_type, created_at) \
             VALUES ({t}, 'small', 'u5', 'User', {ts}), ({t}, 'nA', 'u5', 'User', {ts}), \
             ({t}, 'nB', 'nA', 'Group', {ts}), ({t}, 'nC', 'nB', 'Group', {ts})"
        ),
    ];
    for sql in statements {
        conn.execute_unprepared(&sql).await.unwrap();
    }
    let rows = conn
        .query_one_raw(Statement::from_string(
            backend,
            "SELECT COUNT(*) AS n FROM group_members",
        ))
        .await
        .unwrap()
        .unwrap()
        .try_get::<i64>("", "n")
        .unwrap();
    assert!(rows > 900_000, "seeded {rows} membership rows");
}

/// The statements under test, each with what it must return (to know the plan ran it).
fn statements(backend: DbBackend, tenant_id: &TenantId) -> Vec<(&'static str, Statement)> {
    let r = Registry::core();
    let filter = |table: ResourceKind, text: &str| {
        let rt = match table {
            ResourceKind::User => r.user(),
            ResourceKind::Group => r.group(),
        };
        let typed = parse_filter(r, rt, text).unwrap();
        count_statement(backend, table, tenant_id, Some(&typed))
    };
    let page: Vec<ResourceId> = (1..=100).map(|i| rid(&format!("u{i}"))).collect();
    let now = &Timestamp::from("2026-01-02T00:00:00.000Z");
    vec![
        (
            "a user's groups",
            members::memberships_statement(backend, tenant_id, &[rid("u5")]),
        ),
        (
            "a user with its groups (GET)",
            users::find_with_groups_statement(backend, tenant_id, &rid("u5"), false),
        ),
        (
            "a user with its groups, locked (PATCH, PUT)",
            users::find_with_groups_statement(backend, tenant_id, &rid("u5"), true),
        ),
        (
            "a page's groups",
            members::memberships_statement(backend, tenant_id, &page),
        ),
        (
            "add a member to a group of 100 000",
            members::add_statement(
                backend,
                tenant_id,
                &rid("all"),
                &[(rid("nC"), ResourceKind::Group)],
                now,
            ),
        ),
        (
            "remove a member from a group of 100 000",
            members::remove_statement(backend, tenant_id, &rid("all"), &[rid("u7")]),
        ),
        (
            "resolve the members a request names",
            members::resolve_statement(backend, tenant_id, &[rid("u9"), rid("nB")]),
        ),
        (
            "cycle check of a group of 100 000 users",
            members::would_cycle_statement(backend, tenant_id, &rid("nA"), &[rid("all")]),
        ),
        (
            "cycle check through nesting",
            members::would_cycle_statement(backend, tenant_id, &rid("nA"), &[rid("nC")]),
        ),
        (
            "userName eq",
            filter(ResourceKind::User, r#"userName eq "user77""#),
        ),
        (
            "userName eq, the page with its user's groups",
            users_page_statement(
                backend,
                tenant_id,
                Some(&parse_filter(r, r.user(), r#"userName eq "user5""#).unwrap()),
                None,
                0,
                100,
            ),
        ),
        (
            "externalId eq",
            filter(ResourceKind::User, r#"externalId eq "e77""#),
        ),
        (
            "displayName eq (users)",
            filter(ResourceKind::User, r#"displayName eq "User 77""#),
        ),
        (
            "displayName eq (groups)",
            filter(ResourceKind::Group, r#"displayName eq "Spread 7""#),
        ),
        (
            "externalId eq (groups)",
            filter(ResourceKind::Group, r#"externalId eq "x7""#),
        ),
    ]
}

/// Rows a PostgreSQL plan read from tables: returned plus filtered out, times loops, over
/// every node that reads a relation (sub-plans and init-plans included).
fn rows_read(node: &Value) -> f64 {
    let mut total = 0.0;
    if node.get("Relation Name").is_some() {
        let loops = node["Actual Loops"].as_f64().unwrap_or(1.0);
        let rows = node["Actual Rows"].as_f64().unwrap_or(0.0)
            + node["Rows Removed by Filter"].as_f64().unwrap_or(0.0)
            + node["Rows Removed by Index Recheck"]
                .as_f64()
                .unwrap_or(0.0);
        total += rows * loops;
    }
    if let Some(children) = node["Plans"].as_array() {
        total += children.iter().map(rows_read).sum::<f64>();
    }
    total
}

/// `bound`: rows any statement may read besides `PER_RESULT_ROW` per row it returns.
async fn assert_postgres_plans(
    app: &TestApp,
    statements: &[(&str, Statement)],
    when: &str,
    bound: f64,
) {
    let conn = app.ctx.store.conn();
    for mode in ["auto", "force_generic_plan"] {
        for (name, stmt) in statements.iter().cloned() {
            let explain = Statement::from_sql_and_values(
                DbBackend::Postgres,
                format!("EXPLAIN (ANALYZE, FORMAT JSON) {}", stmt.sql),
                stmt.values.map(|v| v.0).unwrap_or_default(),
            );
            // Writes run and are rolled back; the plan cache mode is the only setting.
            let txn = conn.begin().await.unwrap();
            txn.execute_unprepared(&format!("SET LOCAL plan_cache_mode = {mode}"))
                .await
                .unwrap();
            let row = txn.query_one_raw(explain).await.unwrap().unwrap();
            txn.rollback().await.unwrap();
            let text: String = match row.try_get::<Value>("", "QUERY PLAN") {
                Ok(v) => v.to_string(),
                Err(_) => row.try_get("", "QUERY PLAN").unwrap(),
            };
            let plan: Value = serde_json::from_str(&text).unwrap();
            let read = rows_read(&plan[0]["Plan"]);
            let returned = plan[0]["Plan"]["Actual Rows"].as_f64().unwrap_or(0.0);
            assert!(
                read <= bound.max(PER_RESULT_ROW * returned),
                "{name} ({when}, {mode}) read {read} rows:\n{}",
                serde_json::to_string_pretty(&plan).unwrap()
            );
        }
    }
}

/// A SQLite plan line that reads a whole table or the whole tenant of an index.
fn tenant_wide(line: &str) -> bool {
    let line = line.trim_start_matches(|c: char| "|`- ".contains(c));
    let tables = [
        "group_members",
        "groups",
        "users",
        "gm",
        "m",
        "g",
        "m0",
        "tenants",
        "tokens",
        "app_credential_tenants",
        "set_acks",
        "set_receivers",
    ];
    if let Some(rest) = line.strip_prefix("SCAN ") {
        let name = rest.split_whitespace().next().unwrap_or_default();
        return tables.contains(&name);
    }
    line.starts_with("SEARCH ") && line.ends_with("(tenant_id=?)")
}

/// The lines of SQLite's `EXPLAIN QUERY PLAN` of a statement.
async fn sqlite_plan(app: &TestApp, stmt: &Statement) -> Vec<String> {
    let explain = Statement::from_sql_and_values(
        DbBackend::Sqlite,
        format!("EXPLAIN QUERY PLAN {}", stmt.sql),
        stmt.values.clone().map(|v| v.0).unwrap_or_default(),
    );
    let rows = app.ctx.store.conn().query_all_raw(explain).await.unwrap();
    rows.iter()
        .map(|r| r.try_get::<String>("", "detail").unwrap())
        .collect()
}

async fn assert_sqlite_plans(app: &TestApp, statements: &[(&str, Statement)], when: &str) {
    for (name, stmt) in statements {
        let lines = sqlite_plan(app, stmt).await;
        assert!(
            !lines.iter().any(|l| tenant_wide(l)),
            "{name} ({when}) reads the tenant:\n{}",
            lines.join("\n")
        );
    }
}

async fn assert_plans(app: &TestApp, backend: Backend, tenant_id: &TenantId, when: &str) {
    match backend {
        Backend::Postgres => {
            let statements = statements(DbBackend::Postgres, tenant_id);
            assert_postgres_plans(app, &statements, when, BOUND).await
        }
        Backend::Sqlite => {
            let statements = statements(DbBackend::Sqlite, tenant_id);
            assert_sqlite_plans(app, &statements, when).await
        }
    }
}

async fn membership_and_lookup_queries_read_rows_bounded_by_their_result(backend: Backend) {
    let app = spawn_app(backend).await;
    let tenant = app.tenant_row().await;
    let conn = app.ctx.store.conn();
    // Statistics taken while the tenant is nearly empty, then a million rows arrive: what a
    // server whose autovacuum lags sees.
    conn.execute_unprepared("ANALYZE").await.unwrap();
    seed(&app, &tenant.id).await;
    assert_plans(&app, backend, &tenant.id, "stale statistics").await;
    conn.execute_unprepared("ANALYZE").await.unwrap();
    assert_plans(&app, backend, &tenant.id, "after ANALYZE").await;

    // The queries still answer right at this size.
    let (user, groups) = users::find_with_groups(conn, &tenant.id, &rid("u5"))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(user.id, rid("u5"));
    let mut page = members::memberships_of_many(conn, &tenant.id, &[rid("u5")])
        .await
        .unwrap();
    assert_eq!(page.remove(&rid("u5")).unwrap_or_default(), groups);
    let mut found: Vec<(String, bool)> = groups
        .into_iter()
        .map(|m| (m.group_id.into_string(), m.direct))
        .collect();
    found.sort();
    assert_eq!(
        found,
        [
            ("all", true),
            ("nA", true),
            ("nB", false),
            ("nC", false),
            ("small", true)
        ]
        .map(|(g, d)| (g.to_owned(), d))
    );
    assert_eq!(
        members::would_cycle(conn, &tenant.id, &rid("nA"), &[rid("nC")])
            .await
            .unwrap(),
        members::Nesting::Cycle
    );
    assert_eq!(
        members::would_cycle(conn, &tenant.id, &rid("nA"), &[rid("all")])
            .await
            .unwrap(),
        members::Nesting::Fine
    );
}

/// Tenants in the listing tests: a SaaS deployment's size.
const TENANTS: u64 = 10_000;

/// Tenants `t00001…t10000` (ids `id1…id10000`), each at event `event_seq`.
async fn seed_tenants(conn: &impl ConnectionTrait, event_seq: u32) {
    let db = conn.get_database_backend();
    let slug = match db {
        DbBackend::Postgres => "lpad(g::text, 5, '0')",
        _ => "substr('0000' || g, -5)",
    };
    conn.execute_unprepared(&format!(
        "INSERT INTO tenants (id, slug, event_seq, created_at, events_pruned_through, \
         schema_version, purge_failures) \
         SELECT 'id' || g, 't' || {slug}, {event_seq}, '2026-01-01T00:00:00.000Z', 0, 0, 0 \
         FROM {}",
        series(db, TENANTS)
    ))
    .await
    .unwrap();
}

async fn credential_lookups_and_the_tenant_listing_read_rows_bounded_by_their_result(
    backend: Backend,
) {
    let app = spawn_app(backend).await;
    let conn = app.ctx.store.conn();
    let db = conn.get_database_backend();
    // PostgreSQL: statistics taken while nearly empty (autovacuum lags or is off). SQLite
    // has none unless an operator runs ANALYZE (scimbus never does): checked without, then
    // after one on the populated tables.
    if backend == Backend::Postgres {
        conn.execute_unprepared("ANALYZE").await.unwrap();
    }
    let five = |g: &str| match db {
        DbBackend::Postgres => format!("lpad({g}::text, 5, '0')"),
        _ => format!("substr('0000' || {g}, -5)"),
    };
    let ts = "'2026-01-01T00:00:00.000Z'";
    // Tenants t00001…t10000, one token each, and two credentials granted every other one.
    seed_tenants(conn, 0).await;
    for statement in [
        format!(
            "INSERT INTO tokens (tenant_id, id, name, token_hash, scopes, created_at) \
             SELECT 'id' || g, 'k' || g, 'app', 'hash' || g, 'events:read', {ts} FROM {}",
            series(db, TENANTS)
        ),
        format!(
            "INSERT INTO app_credentials (id, name, token_hash, all_tenants, created_at) \
             VALUES ('even', 'even', 'h-even', false, {ts}), ('odd', 'odd', 'h-odd', false, {ts})"
        ),
        format!(
            "INSERT INTO app_credential_tenants (credential_id, tenant_id, tenant_slug) \
             SELECT CASE WHEN g % 2 = 0 THEN 'even' ELSE 'odd' END, 'id' || g, \
             't' || {} FROM {}",
            five("g"),
            series(db, TENANTS)
        ),
    ] {
        conn.execute_unprepared(&statement).await.unwrap();
    }
    let strict = vec![
        (
            "a tenant token by its hash alone",
            scimbus::store::tokens::find_by_hash_statement(db, "hash7777"),
        ),
        (
            "every tenant after a slug",
            scimbus::store::apps::readable_tenants_statement(db, None, "t05000", 101),
        ),
    ];
    let set = vec![(
        "a credential's tenants after a slug",
        scimbus::store::apps::readable_tenants_statement(db, Some("even"), "t05000", 101),
    )];
    // With statistics taken while the tables were empty, PostgreSQL may read the set's
    // grants after the slug (one credential's, at most `MAX_TENANTS`, never the tenants
    // table) and sort them; after ANALYZE, the page's rows alone.
    let stale_bound = (TENANTS / 2) as f64;
    for (when, set_bound) in [
        ("stale or no statistics", stale_bound),
        ("after ANALYZE", BOUND),
    ] {
        match backend {
            Backend::Postgres => {
                assert_postgres_plans(&app, &strict, when, BOUND).await;
                assert_postgres_plans(&app, &set, when, set_bound).await;
            }
            Backend::Sqlite => {
                assert_sqlite_plans(&app, &strict, when).await;
                assert_sqlite_plans(&app, &set, when).await;
            }
        }
        conn.execute_unprepared("ANALYZE").await.unwrap();
    }
    // And they answer right at this size.
    let page = scimbus::store::apps::readable_tenants(conn, Some("even"), "t05000", 3)
        .await
        .unwrap();
    let slugs: Vec<String> = page.iter().map(|r| r.slug.to_string()).collect();
    assert_eq!(slugs, ["t05002", "t05004", "t05006"]);
    let page = scimbus::store::apps::readable_tenants(conn, None, "t09998", 5)
        .await
        .unwrap();
    let slugs: Vec<String> = page.iter().map(|r| r.slug.to_string()).collect();
    assert_eq!(slugs, ["t09999", "t10000"]);
}

/// SET receivers (issue 26): a poll's acknowledgements past its position and the lookup of
/// a receiver's credential, with 2 000 receivers and 100 000 acknowledgements of one.
async fn set_receiver_queries_read_rows_bounded_by_their_result(backend: Backend) {
    let app = spawn_app(backend).await;
    let conn = app.ctx.store.conn();
    let db = conn.get_database_backend();
    if backend == Backend::Postgres {
        conn.execute_unprepared("ANALYZE").await.unwrap();
    }
    let tenant = app.tenant_row().await;
    let ts = "'2026-01-01T00:00:00.000Z'";
    for statement in [
        format!(
            "INSERT INTO set_receivers (id, tenant_id, name, form, events, signals, alg, \
             audience, token_hash, position, created_at, delivery) \
             SELECT 'r' || g, '{}', 'r', 'full', '[]', false, 'RS256', 'aud', 'hash' || g, 0, \
             {ts}, CASE WHEN g % 2 = 0 THEN 'push' ELSE 'poll' END FROM {}",
            tenant.id,
            series(db, 2_000)
        ),
        format!(
            "INSERT INTO set_acks (receiver_id, jti, sequence) \
             SELECT 'r1', 'jti' || g, g FROM {}",
            series(db, 100_000)
        ),
    ] {
        conn.execute_unprepared(&statement).await.unwrap();
    }
    let statements = vec![
        (
            "a receiver's acknowledgements past its position",
            scimbus::store::sets::acked_statement(db, "r1", 99_990),
        ),
        (
            "a receiver by its credential's hash",
            scimbus::store::sets::receiver_by_hash_statement(db, "hash777"),
        ),
    ];
    for when in ["stale or no statistics", "after ANALYZE"] {
        match backend {
            Backend::Postgres => assert_postgres_plans(&app, &statements, when, BOUND).await,
            Backend::Sqlite => assert_sqlite_plans(&app, &statements, when).await,
        }
        conn.execute_unprepared("ANALYZE").await.unwrap();
    }
    let acked = scimbus::store::sets::acked(conn, "r1", 99_990)
        .await
        .unwrap();
    assert_eq!(acked.len(), 10);
}

/// The request journal's prune (issue 22): a tenant whose journal holds 1 500 entries
/// beside other tenants' 60 000, pruned to its newest 1 000 and by age. Each statement reads
/// at most the tenant's own journal (bounded by `SCIMBUS_JOURNAL_ENTRIES` plus what a second
/// adds), never the table: the first version scanned every tenant's entries each second.
async fn journal_prunes_read_what_they_keep_and_delete_not_the_tenant(backend: Backend) {
    use scimbus::store::journal::{prune, prune_beyond_statement, prune_older_statement};
    let app = spawn_app(backend).await;
    let conn = app.ctx.store.conn();
    let db = conn.get_database_backend();
    if backend == Backend::Postgres {
        conn.execute_unprepared("ANALYZE").await.unwrap();
    }
    let tenant = app.tenant_row().await;
    let other: TenantId =
        scimbus::store::tenants::find(conn, &scimbus::domain::TenantSlug::parse("other").unwrap())
            .await
            .unwrap()
            .unwrap()
            .id;
    // Ids in time order (as UUIDv7 are), `at` one second apart from 2026-01-01.
    for (t, prefix, n) in [(&tenant.id, "a", 1_500), (&other, "b", 60_000)] {
        let at = match db {
            DbBackend::Postgres => "to_char(timestamp '2026-01-01' + g * interval '1 second',                                    'YYYY-MM-DD\"T\"HH24:MI:SS.000\"Z\"')"
                .to_owned(),
            _ => "strftime('%Y-%m-%dT%H:%M:%S.000Z', '2026-01-01', '+' || g || ' seconds')"
                .to_owned(),
        };
        let (pad, body) = match db {
            DbBackend::Postgres => ("lpad(g::text, 10, '0')", "decode('00', 'hex')"),
            _ => ("substr('0000000000' || g, -10, 10)", "X'00'"),
        };
        conn.execute_unprepared(&format!(
            "INSERT INTO request_journal (tenant_id, id, at, method, target, status, \
             duration_ms, request_id, token_name, bodies) \
             SELECT '{t}', '{prefix}' || {pad}, {at}, 'PUT', '/Users/x', 200, 1, 'r', 'okta', \
             {body} FROM {}",
            series(db, n)
        ))
        .await
        .unwrap();
    }
    // 500 entries are older than the cutoff.
    let cutoff = Timestamp::from("2026-01-01T00:08:20.500Z");
    let statements = vec![
        (
            "the entries beyond the newest 1 000",
            prune_beyond_statement(db, &tenant.id, 1_000),
        ),
        (
            "the entries older than the cutoff",
            prune_older_statement(db, &tenant.id, &cutoff),
        ),
    ];
    for when in ["stale or no statistics", "after ANALYZE"] {
        match backend {
            // The tenant's journal, read at most three times (the bound, the batch, the
            // deletions), never the other tenants' 60 000.
            Backend::Postgres => assert_postgres_plans(&app, &statements, when, 4_500.0).await,
            Backend::Sqlite => {
                for (name, stmt) in &statements {
                    let lines = sqlite_plan(&app, stmt).await;
                    assert!(
                        !lines.iter().any(|l| l.contains("SCAN request_journal")),
                        "{name} ({when}) scans the journal:\n{}",
                        lines.join("\n")
                    );
                }
            }
        }
        conn.execute_unprepared("ANALYZE").await.unwrap();
    }
    // What it keeps: the newest 1 000 (batches repeat until done); then by age, nothing more
    // than those past the cutoff.
    assert_eq!(prune(conn, &tenant.id, 1_000, &cutoff).await.unwrap(), 500);
    let late = Timestamp::from("2026-01-01T00:16:40.500Z");
    assert_eq!(prune(conn, &tenant.id, 1_000, &late).await.unwrap(), 500);
    // An idle tenant whose entries are all past the age: every one goes.
    let all_old = Timestamp::from("2026-01-02T00:00:00.000Z");
    assert_eq!(
        prune(conn, &other, 100_000, &all_old).await.unwrap(),
        60_000
    );
    assert_eq!(journal_entries(conn, &tenant.id).await, 500);
    assert_eq!(journal_entries(conn, &other).await, 0);
}

/// How many journal entries the tenant has.
async fn journal_entries(conn: &impl ConnectionTrait, tenant_id: &TenantId) -> i64 {
    conn.query_one_raw(Statement::from_string(
        conn.get_database_backend(),
        format!("SELECT COUNT(*) AS n FROM request_journal WHERE tenant_id = '{tenant_id}'"),
    ))
    .await
    .unwrap()
    .unwrap()
    .try_get::<i64>("", "n")
    .unwrap()
}

/// The console's tenant list (issue 27) with 10 000 tenants, each with journal entries and
/// unpublished events, every tenth held by its brake: a page reads its 51 tenants and their
/// own rows, never every tenant; the next page starts at the slug where the last ended.
async fn the_console_tenant_list_reads_its_page_not_every_tenant(backend: Backend) {
    use scimbus::store::console::{tenant_health, tenant_health_statement};
    let app = spawn_app(backend).await;
    let conn = app.ctx.store.conn();
    let db = conn.get_database_backend();
    if backend == Backend::Postgres {
        conn.execute_unprepared("ANALYZE").await.unwrap();
    }
    let body = match db {
        DbBackend::Postgres => "decode('00', 'hex')",
        _ => "X'00'",
    };
    let ts = "'2026-01-01T00:00:00.000Z'";
    let late = "'2026-01-01T00:30:00.000Z'";
    seed_tenants(conn, 3).await;
    for statement in [
        // Three entries each: a 200 at midnight, then a 404 and a 500 half an hour later.
        format!(
            "INSERT INTO request_journal (tenant_id, id, at, method, target, status, \
             duration_ms, request_id, token_name, bodies) \
             SELECT 'id' || g, 'j' || k, CASE WHEN k = 1 THEN {ts} ELSE {late} END, 'PATCH', \
             '/Users/x', CASE k WHEN 1 THEN 200 WHEN 2 THEN 404 ELSE 500 END, 1, 'r', 'entra', \
             {body} FROM {} CROSS JOIN (SELECT 1 AS k UNION ALL SELECT 2 UNION ALL SELECT 3) ks",
            series(db, TENANTS)
        ),
        // Three events each, the first published.
        format!(
            "INSERT INTO outbox (tenant_id, sequence, id, event_type, routing_key, subject, \
             payload, created_at, published_at, attempts) \
             SELECT 'id' || g, k, 'e' || g || '-' || k, 'user.created', 'r', 'Users/x', '{{}}', \
             CASE WHEN k = 1 THEN {ts} ELSE {late} END, CASE WHEN k = 1 THEN {ts} END, 0 \
             FROM {} CROSS JOIN (SELECT 1 AS k UNION ALL SELECT 2 UNION ALL SELECT 3) ks",
            series(db, TENANTS)
        ),
        format!(
            "INSERT INTO tenant_brakes (tenant_id, held_from, held_at) \
             SELECT 'id' || g, 2, {late} FROM {} WHERE g % 10 = 0",
            series(db, TENANTS)
        ),
        // Tenant t00001's history: 100 000 events of 2025, published a second after.
        format!(
            "INSERT INTO outbox (tenant_id, sequence, id, event_type, routing_key, subject, \
             payload, created_at, published_at, attempts) \
             SELECT 'id1', 100 + g, 'old' || g, 'user.created', 'r', 'Users/x', '{{}}', \
             '2025-06-01T00:00:00.000Z', '2025-06-01T00:00:01.000Z', 0 FROM {}",
            series(db, 100_000)
        ),
    ] {
        conn.execute_unprepared(&statement).await.unwrap();
    }
    let since = Timestamp::from("2026-01-01T00:15:00.000Z");
    let statements = vec![
        (
            "the first page",
            tenant_health_statement(db, None, "", &since, 51),
        ),
        (
            "a page deep in the list",
            tenant_health_statement(db, None, "t07000", &since, 51),
        ),
        (
            "a tenant's events of the chart's window",
            scimbus::store::console::event_minutes_statement(
                db,
                &TenantId::from("id1"),
                &since,
                &Timestamp::from("2026-01-01T00:31:00.000Z"),
            ),
        ),
    ];
    // Per tenant on the page: itself, its brake, 3 journal entries read four ways (the
    // newest thrice, the errors), 3 events read three ways: at most 20 rows each.
    for when in ["stale or no statistics", "after ANALYZE"] {
        match backend {
            Backend::Postgres => assert_postgres_plans(&app, &statements, when, 51.0 * 20.0).await,
            Backend::Sqlite => {
                for (name, stmt) in &statements {
                    let lines = sqlite_plan(&app, stmt).await;
                    assert!(
                        !lines.iter().any(|l| {
                            let l = l.trim_start_matches(|c: char| "|`- ".contains(c));
                            [
                                "SCAN tenants",
                                "SCAN t ",
                                "SCAN request_journal",
                                "SCAN outbox",
                                "SCAN b",
                            ]
                            .iter()
                            .any(|scan| l.starts_with(scan))
                        }),
                        "{name} ({when}) scans a table:\n{}",
                        lines.join("\n")
                    );
                }
            }
        }
        conn.execute_unprepared("ANALYZE").await.unwrap();
    }
    // And it answers right at this size.
    let page = tenant_health(conn, None, "t07008", &since, 3)
        .await
        .unwrap();
    let slugs: Vec<&str> = page.iter().map(|r| r.slug.as_str()).collect();
    assert_eq!(slugs, ["t07009", "t07010", "t07011"]);
    let held: Vec<bool> = page.iter().map(|r| r.held.is_some()).collect();
    assert_eq!(held, [false, true, false]);
    assert_eq!(page[1].held.as_ref().unwrap().1, 2, "events 2 and 3 held");
    for row in &page {
        assert_eq!(row.errors, 2, "the 404 and the 500 after the cutoff");
        assert_eq!(row.backlog, 2);
        assert_eq!(
            row.oldest_unpublished.as_deref(),
            Some("2026-01-01T00:30:00.000Z")
        );
        let (at, method, status) = row.last_request.as_ref().unwrap();
        assert_eq!(
            (at.as_str(), method.as_str(), *status),
            ("2026-01-01T00:30:00.000Z", "PATCH", 500)
        );
    }
    // The chart's minutes: the window's two events, unpublished a minute after they were
    // written; none of the tenant's history.
    let minutes = scimbus::store::console::event_minutes(
        conn,
        &TenantId::from("id1"),
        &since,
        &Timestamp::from("2026-01-01T00:31:00.000Z"),
    )
    .await
    .unwrap();
    assert_eq!(
        minutes,
        [scimbus::store::console::EventMinute {
            minute: "2026-01-01T00:30".to_owned(),
            events: 2,
            max_lag_seconds: 60.0,
        }]
    );
    let history = scimbus::store::console::event_minutes(
        conn,
        &TenantId::from("id1"),
        &Timestamp::from("2025-06-01T00:00:00.000Z"),
        &Timestamp::from("2025-06-01T00:01:00.000Z"),
    )
    .await
    .unwrap();
    assert_eq!(history[0].events, 100_000);
    assert_eq!(history[0].max_lag_seconds, 1.0);
    // A search: slugs containing "999" (t00999, t01999 … t09999 and t09990 … t09998).
    let found = tenant_health(conn, Some("999"), "", &since, 51)
        .await
        .unwrap();
    assert_eq!(
        found.len(),
        19,
        "{:?}",
        found.iter().map(|r| &r.slug).collect::<Vec<_>>()
    );
    // A search's wildcards are text.
    assert!(
        tenant_health(conn, Some("t_0"), "", &since, 51)
            .await
            .unwrap()
            .is_empty()
    );
    assert!(
        tenant_health(conn, Some("%"), "", &since, 51)
            .await
            .unwrap()
            .is_empty()
    );
}
