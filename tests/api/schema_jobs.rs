//! Extensions that can be fixed: a change of a tenant's extension is previewed against the
//! stored resources (dry run), applied (register, update that only widens, removal) with
//! a 202 and a re-index job, and a wrong type is corrected without SQL. Jobs report their
//! progress, are superseded by a later change, resume after their process stops, and
//! never write a search document computed with a registry no longer in force.

use std::sync::Arc;

use chrono::{TimeDelta, TimeZone, Utc};
use reqwest::Method;
use sea_orm::ConnectionTrait;
use serde_json::{Value, json};

use crate::both_backends;
use crate::helpers::{
    ADMIN_TOKEN, Backend, TestApp, USER_URN, assert_scim_error, series, spawn_app,
};
use scimbus::clock::ManualClock;
use scimbus::failpoints::Pause;
use scimbus::startup::Application;

both_backends!(
    a_dry_run_reports_what_a_change_would_find_and_stores_nothing,
    an_update_adds_and_widens_and_a_narrowing_is_refused_leaving_everything_as_it_was,
    a_wrong_type_is_corrected_by_removing_and_registering_again,
    a_later_change_supersedes_a_running_reindex_and_the_index_follows_the_latest,
);

const EXT: &str = "urn:example:acme:2.0:User";

fn definition(badge: &str) -> Value {
    json!({
        "id": EXT,
        "name": "AcmeUser",
        "attributes": [
            {"name": "costCenter", "type": "string"},
            {"name": "badge", "type": badge}
        ]
    })
}

fn user_with(name: &str, custom: Value) -> Value {
    json!({"schemas": [USER_URN, EXT], "userName": name, EXT: custom})
}

/// How many users `filter` finds, or the SCIM error status it answers.
async fn found(app: &TestApp, filter: &str) -> Result<u64, u16> {
    let response = app
        .client
        .get(app.url("/Users"))
        .bearer_auth(&app.token)
        .query(&[("filter", filter)])
        .send()
        .await
        .unwrap();
    if !response.status().is_success() {
        return Err(response.status().as_u16());
    }
    let body: Value = response.json().await.unwrap();
    Ok(body["totalResults"].as_u64().unwrap())
}

async fn schema_request(
    app: &TestApp,
    method: Method,
    path: &str,
    body: Option<Value>,
) -> reqwest::Response {
    app.admin(method, &format!("/tenants/acme/schemas{path}"), body)
        .await
}

/// `PUT|DELETE /schemas/{EXT}` (`?dryRun=true` with `dry`).
fn at_ext(dry: bool) -> String {
    format!("/{EXT}{}", if dry { "?dryRun=true" } else { "" })
}

/// `GET /admin/v1{path}`, its JSON body.
async fn admin_get(app: &TestApp, path: &str) -> Value {
    app.admin(Method::GET, path, None)
        .await
        .json()
        .await
        .unwrap()
}

/// The string `field` of each element of the array `list`.
fn column<'a>(list: &'a Value, field: &str) -> Vec<&'a str> {
    list.as_array()
        .unwrap()
        .iter()
        .map(|item| item[field].as_str().unwrap())
        .collect()
}

async fn registered_schemas(app: &TestApp) -> Value {
    admin_get(app, "/tenants/acme/schemas").await["schemas"].clone()
}

async fn a_dry_run_reports_what_a_change_would_find_and_stores_nothing(backend: Backend) {
    let app = spawn_app(backend).await;
    let ada = app
        .create_user(&user_with("ada", json!({"costCenter": "CC-1", "badge": 7})))
        .await;
    let bob = app
        .create_user(&user_with("bob", json!({"badge": "B-12"})))
        .await;
    app.create_user(&json!({"schemas": [USER_URN], "userName": "cy"}))
        .await;

    let response = schema_request(
        &app,
        Method::POST,
        "?dryRun=true",
        Some(definition("integer")),
    )
    .await;
    assert_eq!(response.status(), 200);
    let report: Value = response.json().await.unwrap();
    assert_eq!(report["action"], "register");
    assert_eq!(report["schema"]["id"], EXT);
    assert_eq!(report["resourceType"], "User");
    assert_eq!(report["checked"], 3);
    assert_eq!(report["withValues"], 2);
    assert_eq!(report["nonConformingCount"], 1);
    assert_eq!(report["nonConforming"][0]["id"], bob["id"]);
    assert!(
        report["nonConforming"][0]["detail"]
            .as_str()
            .unwrap()
            .contains("badge")
    );
    // Nothing was stored: no registration, no job, no audit entry, filters do not know it.
    assert_eq!(registered_schemas(&app).await, json!([]));
    let jobs: Value = admin_get(&app, "/tenants/acme/jobs").await;
    assert_eq!(jobs["jobs"], json!([]));
    assert!(app.audit_of("", "schema.register").await.is_empty());
    assert_eq!(found(&app, &format!("{EXT}:badge gt 5")).await, Err(400));
    // An unknown query parameter is refused, not read as a change without a dry run; so
    // are those of the journal beside it.
    for path in [
        "/tenants/acme/schemas?dryrun=true",
        "/tenants/acme/journal?bogus=1",
    ] {
        let method = if path.contains("schemas") {
            Method::POST
        } else {
            Method::GET
        };
        let refused = app.admin(method, path, Some(definition("integer"))).await;
        assert_scim_error(refused, 400, Some("invalidValue")).await;
    }
    assert_eq!(registered_schemas(&app).await, json!([]));
    // A dry run checks the definition as the change would.
    let bad = schema_request(
        &app,
        Method::POST,
        "?dryRun=true",
        Some(json!({"id": "nope", "attributes": [{"name": "a"}]})),
    )
    .await;
    assert_scim_error(bad, 400, Some("invalidValue")).await;

    // Registered, then a dry run of its removal says how many resources it would untype.
    let job = app
        .change_schema(Method::POST, "", Some(definition("integer")))
        .await;
    assert_eq!(job["nonConformingCount"], 1);
    let response = schema_request(&app, Method::DELETE, &at_ext(true), None).await;
    assert_eq!(response.status(), 200);
    let report: Value = response.json().await.unwrap();
    assert_eq!(report["action"], "remove");
    assert!(report.get("schema").is_none(), "{report}");
    assert_eq!(
        (report["checked"].as_u64(), report["withValues"].as_u64()),
        (Some(3), Some(2))
    );
    assert_eq!(
        registered_schemas(&app).await[0]["id"],
        EXT,
        "still registered"
    );
    assert_eq!(found(&app, &format!("{EXT}:badge eq 7")).await, Ok(1));
    let stored: Value = app
        .get(&format!("/Users/{}", ada["id"].as_str().unwrap()))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(stored[EXT]["badge"], 7);
}

async fn an_update_adds_and_widens_and_a_narrowing_is_refused_leaving_everything_as_it_was(
    backend: Backend,
) {
    let app = spawn_app(backend).await;
    app.create_user(&user_with("ada", json!({"badge": 7, "level": 2.5})))
        .await;
    app.change_schema(Method::POST, "", Some(definition("integer")))
        .await;
    // A decimal badge does not fit yet, and `level` is not a known attribute.
    let refused = app
        .post("/Users", &user_with("bob", json!({"badge": 7.5})))
        .await;
    assert_scim_error(refused, 400, Some("invalidValue")).await;
    assert_eq!(found(&app, &format!("{EXT}:level gt 2")).await, Err(400));

    let mut widened = definition("decimal");
    widened["attributes"]
        .as_array_mut()
        .unwrap()
        .push(json!({"name": "level", "type": "decimal"}));
    let response = schema_request(&app, Method::PUT, &at_ext(true), Some(widened.clone())).await;
    assert_eq!(response.status(), 200);
    let report: Value = response.json().await.unwrap();
    assert_eq!(
        (
            report["action"].as_str(),
            report["withValues"].as_u64(),
            report["nonConformingCount"].as_u64()
        ),
        (Some("update"), Some(1), Some(0))
    );

    let job = app
        .change_schema(Method::PUT, &at_ext(false), Some(widened))
        .await;
    assert_eq!(job["action"], "update");
    assert_eq!(job["state"], "succeeded");
    assert_eq!(
        (job["processed"].as_u64(), job["total"].as_u64()),
        (Some(1), Some(1))
    );
    // The stored value of the added attribute is filterable; the widened type takes 7.5.
    assert_eq!(found(&app, &format!("{EXT}:level gt 2")).await, Ok(1));
    assert_eq!(
        app.post("/Users", &user_with("bob", json!({"badge": 7.5})))
            .await
            .status(),
        201
    );
    assert_eq!(found(&app, &format!("{EXT}:badge gt 7")).await, Ok(1));
    let schema: Value = admin_get(&app, &format!("/tenants/acme/schemas/{EXT}")).await;
    let types = column(&schema["attributes"], "type");
    assert_eq!(types, ["string", "decimal", "decimal"]);

    // Narrowing, leaving an attribute out, another id, another resource type: refused,
    // and nothing changes (the schema, the jobs, the audit log).
    let before = (
        registered_schemas(&app).await,
        admin_get(&app, "/tenants/acme/jobs").await,
    );
    let mut other_type = definition("decimal");
    other_type["resourceType"] = json!("Group");
    let mut other_id = definition("decimal");
    other_id["id"] = json!("urn:example:other:1.0:User");
    for (bad, why) in [
        (definition("string"), "from decimal to string"),
        (definition("decimal"), "`level` is left out"),
        (other_type, "resource type"),
        (other_id, "is not the URN it updates"),
    ] {
        let body = assert_scim_error(
            schema_request(&app, Method::PUT, &at_ext(false), Some(bad)).await,
            400,
            Some("invalidValue"),
        )
        .await;
        assert!(body["detail"].as_str().unwrap().contains(why), "{body}");
    }
    let after = (
        registered_schemas(&app).await,
        admin_get(&app, "/tenants/acme/jobs").await,
    );
    assert_eq!(before, after);
    assert_eq!(app.audit_of("", "schema.update").await.len(), 1);
    // Unknown ones are 404.
    let missing = schema_request(
        &app,
        Method::PUT,
        "/urn:example:none:1.0:User",
        Some(definition("decimal")),
    )
    .await;
    assert_scim_error(missing, 404, None).await;
    assert_scim_error(
        schema_request(&app, Method::DELETE, "/urn:example:none:1.0:User", None).await,
        404,
        None,
    )
    .await;
    assert_scim_error(
        schema_request(&app, Method::GET, "/urn:example:none:1.0:User", None).await,
        404,
        None,
    )
    .await;
    assert_scim_error(
        app.admin(Method::GET, "/tenants/acme/jobs/nope", None)
            .await,
        404,
        None,
    )
    .await;
    // Another tenant sees neither the extension nor its jobs.
    let job_id = job["id"].as_str().unwrap();
    assert_scim_error(
        app.admin(Method::GET, &format!("/tenants/other/jobs/{job_id}"), None)
            .await,
        404,
        None,
    )
    .await;
    assert_scim_error(
        app.admin(Method::GET, &format!("/tenants/other/schemas/{EXT}"), None)
            .await,
        404,
        None,
    )
    .await;
}

/// The story of the issue: the badge was registered as an integer, but Entra sends it as a
/// string, and every such request fails. The operator corrects it without SQL.
async fn a_wrong_type_is_corrected_by_removing_and_registering_again(backend: Backend) {
    let app = spawn_app(backend).await;
    app.create_user(&user_with("ada", json!({"badge": 7})))
        .await;
    app.change_schema(Method::POST, "", Some(definition("integer")))
        .await;
    let refused = app
        .post("/Users", &user_with("bob", json!({"badge": "B-12"})))
        .await;
    assert_scim_error(refused, 400, Some("invalidValue")).await;
    // Integer to string is not a widening (7 is not a string): an update says what to do.
    let body = assert_scim_error(
        schema_request(
            &app,
            Method::PUT,
            &at_ext(false),
            Some(definition("string")),
        )
        .await,
        400,
        Some("invalidValue"),
    )
    .await;
    assert!(
        body["detail"]
            .as_str()
            .unwrap()
            .contains("remove the extension and register"),
        "{body}"
    );

    let removed = app
        .change_schema(Method::DELETE, &at_ext(false), None)
        .await;
    assert_eq!(
        (removed["action"].as_str(), removed["state"].as_str()),
        (Some("remove"), Some("succeeded"))
    );
    // Unregistered: values are kept as sent and are not filterable.
    assert_eq!(registered_schemas(&app).await, json!([]));
    assert_eq!(found(&app, &format!("{EXT}:badge eq 7")).await, Err(400));
    let discovery = app.get(&format!("/Schemas/{EXT}")).await;
    assert_eq!(discovery.status(), 404);
    assert_eq!(
        app.post("/Users", &user_with("bob", json!({"badge": "B-12"})))
            .await
            .status(),
        201
    );

    // A dry run of the corrected registration shows the one value that will not fit.
    let report: Value = schema_request(
        &app,
        Method::POST,
        "?dryRun=true",
        Some(definition("string")),
    )
    .await
    .json()
    .await
    .unwrap();
    assert_eq!(
        (
            report["withValues"].as_u64(),
            report["nonConformingCount"].as_u64()
        ),
        (Some(2), Some(1))
    );
    let job = app
        .change_schema(Method::POST, "", Some(definition("string")))
        .await;
    assert_eq!(job["nonConformingCount"], 1);
    assert_eq!(
        found(&app, &format!("{EXT}:badge eq \"b-12\"")).await,
        Ok(1)
    );
    assert_eq!(
        app.post("/Users", &user_with("cy", json!({"badge": "C-3"})))
            .await
            .status(),
        201
    );
    // Each step is audited with its operator.
    for action in ["schema.register", "schema.remove"] {
        let entries = app.audit_of("", action).await;
        assert!(
            entries
                .iter()
                .all(|e| e["actor"].as_str().unwrap().starts_with("admin:")),
            "{entries:?}"
        );
    }
    assert_eq!(app.audit_of("", "schema.register").await.len(), 2);
    let jobs: Value = admin_get(&app, "/tenants/acme/jobs").await;
    let actions = column(&jobs["jobs"], "action");
    assert_eq!(actions, ["register", "remove", "register"], "newest first");
}

/// Inserts `n` users `u1…un` whose extension values are `costCenter` `C<i>` and `badge`
/// `<i>`, by SQL.
async fn seed(app: &TestApp, n: u64) {
    let tenant_id = app.tenant_row().await.id;
    let conn = app.ctx.store.conn();
    let backend = conn.get_database_backend();
    let ts = "'2026-01-01T00:00:00.000Z'";
    let document = format!(
        r#"'{{"schemas":["{USER_URN}","{EXT}"],"userName":"u' || g || '","{EXT}":{{"costCenter":"C' || g || '","badge":' || g || '}}}}'"#
    );
    let document = match backend {
        sea_orm::DbBackend::Postgres => format!("CAST({document} AS jsonb)"),
        _ => document,
    };
    conn.execute_unprepared(&format!(
        "INSERT INTO users (tenant_id, id, user_name, user_name_ci, active, resource, version, \
         created_at, updated_at) SELECT '{tenant_id}', 'u' || g, 'u' || g, 'u' || g, true, \
         {document}, 1, {ts}, {ts} FROM {}",
        series(backend, n)
    ))
    .await
    .unwrap();
}

async fn a_later_change_supersedes_a_running_reindex_and_the_index_follows_the_latest(
    backend: Backend,
) {
    let app = spawn_app(backend).await;
    seed(&app, 3).await;
    let tenant_id = app.tenant_row().await.id;
    let mut pause = Pause::arm("reindex.batch", &format!("{tenant_id}:0"));
    let first: Value = schema_request(
        &app,
        Method::POST,
        "",
        Some(json!({"id": EXT, "attributes": [{"name": "costCenter"}]})),
    )
    .await
    .json()
    .await
    .unwrap();
    assert!(pause.reached().await);
    // The first job is about to index with its registry; the update commits meanwhile.
    let second: Value = schema_request(
        &app,
        Method::PUT,
        &at_ext(false),
        Some(definition("integer")),
    )
    .await
    .json()
    .await
    .unwrap();
    pause.release();
    let first = app.finished_job(first["job"]["id"].as_str().unwrap()).await;
    let second = app
        .finished_job(second["job"]["id"].as_str().unwrap())
        .await;
    assert_eq!(first["state"], "superseded", "{first}");
    assert_eq!(first["processed"], 0, "the superseded job wrote nothing");
    assert_eq!(second["state"], "succeeded", "{second}");
    assert_eq!(second["processed"], 3);
    assert_eq!(
        found(&app, &format!("{EXT}:costCenter eq \"C2\"")).await,
        Ok(1)
    );
    // The latest registry is what the index holds: the added attribute's values are typed.
    assert_eq!(found(&app, &format!("{EXT}:badge gt 1")).await, Ok(2));
}

/// A second process on the same database, with its own clock.
async fn second_process(app: &TestApp, clock: Arc<ManualClock>) -> String {
    let vars = [
        ("SCIMBUS_DATABASE_URL", app.ctx.store.url().to_owned()),
        ("SCIMBUS_LISTEN", "127.0.0.1:0".to_owned()),
        ("SCIMBUS_ADMIN_TOKEN", ADMIN_TOKEN.to_owned()),
        ("SCIMBUS_MAINTENANCE", "off".to_owned()),
        ("SCIMBUS_RETENTION_UNPUBLISHED", "prune".to_owned()),
        ("SCIMBUS_RATE_LIMIT", "off".to_owned()),
    ];
    let second = Application::build_with_clock(crate::helpers::settings(&vars), clock)
        .await
        .unwrap();
    let address = format!("http://127.0.0.1:{}", second.port());
    tokio::spawn(second.run_until_stopped());
    address
}

async fn job(app: &TestApp, id: &str) -> Value {
    admin_get(app, &format!("/tenants/acme/jobs/{id}")).await
}

/// Two processes on one database: PostgreSQL (SQLite is one process per file; the job
/// logic is the same on both).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reindex_resumes_from_its_cursor_when_its_process_stops() {
    let app = spawn_app(Backend::Postgres).await;
    seed(&app, 1_200).await;
    let tenant_id = app.tenant_row().await.id;
    // The first process stops for good before its second batch: the first 500 users are
    // committed with the job's cursor, and its lease is still held.
    let mut pause = Pause::arm("reindex.batch", &format!("{tenant_id}:500"));
    let accepted: Value = schema_request(&app, Method::POST, "", Some(definition("integer")))
        .await
        .json()
        .await
        .unwrap();
    let id = accepted["job"]["id"].as_str().unwrap().to_owned();
    assert!(pause.reached().await);
    let stopped = job(&app, &id).await;
    assert_eq!(
        (
            stopped["state"].as_str(),
            stopped["processed"].as_u64(),
            stopped["total"].as_u64()
        ),
        (Some("running"), Some(500), Some(1_200))
    );
    assert_eq!(
        found(&app, &format!("{EXT}:costCenter eq \"C1\"")).await,
        Ok(1)
    );

    // Another process starts; while the lease holds, it leaves the job alone.
    let clock = Arc::new(ManualClock::new(
        Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0).unwrap(),
    ));
    let _second = second_process(&app, clock.clone()).await;
    tokio::time::sleep(std::time::Duration::from_millis(2_500)).await;
    assert_eq!(job(&app, &id).await["processed"], 500);
    // The lease runs out: the second process takes the job up where it stopped.
    clock.advance(TimeDelta::seconds(61));
    let finished = app.finished_job(&id).await;
    assert_eq!(finished["state"], "succeeded", "{finished}");
    assert_eq!(
        (finished["processed"].as_u64(), finished["total"].as_u64()),
        (Some(1_200), Some(1_200)),
        "resumed, not restarted"
    );
    for value in ["C1", "C600", "C1200"] {
        assert_eq!(
            found(&app, &format!("{EXT}:costCenter eq \"{value}\"")).await,
            Ok(1),
            "{value}"
        );
    }
    // The first process wakes up: it finds it lost the job and writes nothing.
    pause.release();
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    assert_eq!(job(&app, &id).await, finished);
}
