//! Long-polling on the pull API (DESIGN 13): `wait` answers as soon as an event of the
//! tenant commits — written by this replica or by another one on the same database — and
//! a waiting request holds no database connection.

use std::time::Duration;

use serde_json::Value;

use crate::both_backends;
use crate::helpers::{Backend, TestApp, assert_scim_error, issue, settings, spawn_app, user};
use crate::pull::event_types as types;
use scimbus::domain::Scope;
use scimbus::startup::Application;

both_backends!(
    a_long_poll_answers_when_an_event_of_its_tenant_commits,
    waiting_requests_hold_no_database_connection,
    a_long_poll_ends_empty_at_its_deadline_and_wait_is_validated,
    stopping_the_server_answers_every_long_poll_at_once,
);

/// Far longer than any wake-up takes: a long-poll that answers before it was woken, not
/// by its deadline (the requests below wait up to 30 s).
const WOKEN_WITHIN: Duration = Duration::from_secs(15);

fn poll(app: &TestApp, address: &str, token: &str, query: &str) -> tokio::task::JoinHandle<Value> {
    let request = app
        .client
        .get(format!("{address}/events/v1/acme{query}"))
        .bearer_auth(token)
        .send();
    tokio::spawn(async move {
        let response = request.await.unwrap();
        assert_eq!(response.status(), 200);
        response.json().await.unwrap()
    })
}

/// Until `n` requests wait on acme (subscribed; they read once before waiting).
async fn until_waiting(app: &TestApp, n: usize) {
    let tenant = app.tenant_row().await.id;
    for _ in 0..2000 {
        if app.ctx.event_waiters.waiting(tenant.as_str()) >= n {
            // Past their first read (which found nothing): give them a moment to wait.
            tokio::time::sleep(Duration::from_millis(50)).await;
            return;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    panic!("{n} long-polls never waited");
}

/// The pages of `polls`, each answered before [`WOKEN_WITHIN`].
async fn answers(polls: Vec<tokio::task::JoinHandle<Value>>) -> Vec<Value> {
    tokio::time::timeout(WOKEN_WITHIN, futures_util::future::join_all(polls))
        .await
        .expect("every long-poll answered before its deadline")
        .into_iter()
        .map(Result::unwrap)
        .collect()
}

async fn a_long_poll_answers_when_an_event_of_its_tenant_commits(backend: Backend) {
    let app = spawn_app(backend).await;
    let token = issue(&app.ctx, "acme", vec![Scope::EventsRead]).await;
    let other_scim = issue(&app.ctx, "other", vec![Scope::Scim]).await;
    let waiting = poll(&app, &app.address, &token, "?after=1&wait=30");
    until_waiting(&app, 1).await;
    // Another tenant's write does not answer it.
    app.create_user_in("other", &other_scim, "elsewhere").await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(!waiting.is_finished(), "woken by another tenant's event");
    app.create_user(&user("bjensen")).await;
    let page = tokio::time::timeout(WOKEN_WITHIN, waiting)
        .await
        .expect("answered when the event committed")
        .unwrap();
    assert_eq!(types(&page), ["scimbus.user.created"]);
    assert_eq!(page["next"], 2);

    // A `types` filter waits on through events of other types.
    let waiting = poll(
        &app,
        &app.address,
        &token,
        "?after=2&wait=30&types=scimbus.user.deleted",
    );
    until_waiting(&app, 1).await;
    let created = app.create_user(&user("other-type")).await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(!waiting.is_finished(), "answered with nothing of its types");
    let id = created["id"].as_str().unwrap();
    assert_eq!(app.delete(&format!("/Users/{id}")).await.status(), 204);
    let page = tokio::time::timeout(WOKEN_WITHIN, waiting)
        .await
        .expect("answered when an event of its types committed")
        .unwrap();
    assert_eq!(types(&page), ["scimbus.user.deleted"]);

    if backend == Backend::Postgres {
        // A write on another replica wakes a long-poll waiting on this one.
        let replica = replica_of(&app).await;
        let scim = issue(&app.ctx, "acme", vec![Scope::Scim]).await;
        let waiting = poll(&app, &app.address, &token, "?after=4&wait=30");
        until_waiting(&app, 1).await;
        let response = app
            .client
            .post(format!("{replica}/scim/v2/acme/Users"))
            .bearer_auth(&scim)
            .json(&user("from-the-replica"))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 201);
        let page = tokio::time::timeout(WOKEN_WITHIN, waiting)
            .await
            .expect("woken by the other replica's write")
            .unwrap();
        assert_eq!(types(&page), ["scimbus.user.created"]);
        assert_eq!(
            page["events"][0]["data"]["resource"]["userName"],
            "from-the-replica"
        );
    }
}

/// A second scimbus on the test app's database; its address.
async fn replica_of(app: &TestApp) -> String {
    let replica = Application::build(settings(&[
        ("SCIMBUS_DATABASE_URL", app.ctx.store.url().to_owned()),
        ("SCIMBUS_LISTEN", "127.0.0.1:0".to_owned()),
        ("SCIMBUS_MAINTENANCE", "off".to_owned()),
        ("SCIMBUS_RATE_LIMIT", "off".to_owned()),
    ]))
    .await
    .unwrap();
    let address = format!("http://127.0.0.1:{}", replica.port());
    tokio::spawn(replica.run_until_stopped());
    address
}

async fn waiting_requests_hold_no_database_connection(backend: Backend) {
    // More waiting requests than the pool has connections (16 on PostgreSQL, 8 on SQLite).
    const POLLS: usize = 40;
    let app = spawn_app(backend).await;
    let token = issue(&app.ctx, "acme", vec![Scope::EventsRead]).await;
    let polls: Vec<_> = (0..POLLS)
        .map(|_| poll(&app, &app.address, &token, "?after=1&wait=30"))
        .collect();
    until_waiting(&app, POLLS).await;
    // Reads and writes go on beside them, and every one of them gets the write's event.
    assert_eq!(app.user_count().await, 0);
    app.create_user(&user("bjensen")).await;
    for page in answers(polls).await {
        assert_eq!(types(&page), ["scimbus.user.created"]);
    }
}

async fn a_long_poll_ends_empty_at_its_deadline_and_wait_is_validated(backend: Backend) {
    let app = spawn_app(backend).await;
    let token = issue(&app.ctx, "acme", vec![Scope::EventsRead]).await;
    let page = poll(&app, &app.address, &token, "?after=1&wait=1")
        .await
        .unwrap();
    assert_eq!(page["events"], serde_json::json!([]));
    assert_eq!(page["next"], 1, "the cursor stays");
    assert_eq!(page["hasMore"], false);
    // Events already there answer at once, whatever the wait.
    app.create_user(&user("bjensen")).await;
    let page = tokio::time::timeout(
        WOKEN_WITHIN,
        poll(&app, &app.address, &token, "?after=1&wait=30"),
    )
    .await
    .unwrap()
    .unwrap();
    assert_eq!(types(&page), ["scimbus.user.created"]);
    for query in ["?wait=31", "?wait=-1", "?wait=soon", "?wait=1.5"] {
        let response = app.events_api("acme", query, &token).await;
        assert_scim_error(response, 400, Some("invalidValue")).await;
    }
}

async fn stopping_the_server_answers_every_long_poll_at_once(backend: Backend) {
    let app = spawn_app(backend).await;
    let token = issue(&app.ctx, "acme", vec![Scope::EventsRead]).await;
    let polls: Vec<_> = (0..3)
        .map(|_| poll(&app, &app.address, &token, "?after=1&wait=30"))
        .collect();
    until_waiting(&app, 3).await;
    app.ctx.event_waiters.close();
    for page in answers(polls).await {
        assert_eq!(page["events"], serde_json::json!([]));
    }
    // And no request waits any more.
    let page = tokio::time::timeout(
        WOKEN_WITHIN,
        poll(&app, &app.address, &token, "?after=1&wait=30"),
    )
    .await
    .unwrap()
    .unwrap();
    assert_eq!(page["events"], serde_json::json!([]));
}
