//! Reindex jobs: superseded by a later change, resumed from their cursor in another process.

use std::sync::Arc;

use chrono::{TimeDelta, TimeZone, Utc};
use reqwest::Method;
use scimbus::clock::ManualClock;
use scimbus::failpoints::Pause;
use scimbus::startup::Application;
use sea_orm::ConnectionTrait;
use serde_json::{Value, json};

use crate::both_backends;
use crate::helpers::{ADMIN_TOKEN, Backend, TestApp, USER_URN, series, spawn_app};

use super::{EXT, admin_get, at_ext, definition, found, schema_request};

both_backends!(a_later_change_supersedes_a_running_reindex_and_the_index_follows_the_latest);

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
