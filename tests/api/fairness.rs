//! One tenant cannot hold up another's events: the relay serves a lane per tenant, round
//! robin, and a lane the broker refuses backs off alone (DESIGN 12).

use std::time::Duration;

use lapin::types::{AMQPValue, LongString};
use scimbus::domain::Scope;
use scimbus::events::RelayOutcome;
use sea_orm::ConnectionTrait;
use serde_json::Value;

use crate::both_backends;
use crate::broker::{TestQueue, amqp_url, body, cleanup, relay, relay_settings};
use crate::helpers::{Backend, TestApp, issue, spawn_app, user};

both_backends!(
    a_tenant_the_broker_refuses_does_not_stop_another_tenants_events,
    a_backlog_of_100000_events_delays_another_tenant_by_at_most_two_batches,
);

/// The two tenants of the test app, the one whose id sorts first (the old relay's global
/// batch served it first) as `first`.
struct Pair {
    first: (String, String),
    second: (String, String),
}

async fn tenants(app: &TestApp) -> Pair {
    let mut both = Vec::new();
    for slug in ["acme", "other"] {
        let t = scimbus::store::tenants::find(
            app.ctx.store.conn(),
            &scimbus::domain::TenantSlug::parse(slug).unwrap(),
        )
        .await
        .unwrap()
        .unwrap();
        both.push((t.id.to_string(), slug.to_owned()));
    }
    both.sort();
    let second = both.pop().unwrap();
    let first = both.pop().unwrap();
    Pair { first, second }
}

async fn create_in(app: &TestApp, slug: &str, token: &str, name: &str) {
    let response = app
        .client
        .post(format!("{}/scim/v2/{slug}/Users", app.address))
        .bearer_auth(token)
        .header("Content-Type", "application/scim+json")
        .body(user(name).to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 201);
}

async fn token_of(app: &TestApp, slug: &str) -> String {
    if slug == app.tenant {
        app.token.clone()
    } else {
        issue(&app.ctx, slug, vec![Scope::Scim]).await
    }
}

async fn a_tenant_the_broker_refuses_does_not_stop_another_tenants_events(backend: Backend) {
    let app = spawn_app(backend).await;
    let Pair { first, second } = tenants(&app).await;
    let mut settings = relay_settings(&amqp_url());
    settings.batch_size = 20;
    // The first tenant's queue holds one message and refuses the rest.
    let refusing = TestQueue::bind(
        &settings,
        &[&format!("{}.#", first.1)],
        &[
            ("x-max-length", AMQPValue::LongLongInt(1)),
            (
                "x-overflow",
                AMQPValue::LongString(LongString::from("reject-publish")),
            ),
        ],
    )
    .await;
    let mut fine = TestQueue::bind(&settings, &[&format!("{}.#", second.1)], &[]).await;
    let (first_token, second_token) = (
        token_of(&app, &first.1).await,
        token_of(&app, &second.1).await,
    );
    // More refused events than a batch holds.
    for i in 0..30 {
        create_in(&app, &first.1, &first_token, &format!("r{i}")).await;
    }
    for i in 0..3 {
        create_in(&app, &second.1, &second_token, &format!("f{i}")).await;
    }
    let mut relay = relay(&app, &settings);
    for _ in 0..4 {
        relay.relay_once().await.unwrap();
    }
    let received = fine.take(3).await;
    let names: Vec<String> = received
        .iter()
        .map(|d| {
            body(d)["data"]["resource"]["userName"]
                .as_str()
                .unwrap_or_default()
                .to_owned()
        })
        .collect();
    assert_eq!(names, ["f0", "f1", "f2"]);
    // The refused tenant's events wait, unpublished, in order behind the one accepted.
    let waiting = app
        .events_of(&first.1)
        .await
        .into_iter()
        .filter(|e| e.published_at.is_none())
        .count();
    assert_eq!(waiting, 29);
    assert_eq!(refusing.get(5).await.len(), 1);
    relay.shutdown().await;
    cleanup(&settings).await;
}

/// Inserts `n` published-looking-but-unpublished events for `tenant_id` by SQL (seconds,
/// not the minutes 100 000 SCIM writes take), after the tenant's `tenant.created`.
async fn seed_backlog(app: &TestApp, tenant_id: &str, slug: &str, n: i64) {
    let conn = app.ctx.store.conn();
    let series = match conn.get_database_backend() {
        sea_orm::DbBackend::Postgres => {
            format!("SELECT g AS n FROM generate_series(2, {n} + 1) AS g")
        }
        _ => format!(
            "WITH RECURSIVE s(n) AS (SELECT 2 UNION ALL SELECT n + 1 FROM s WHERE n <= {n}) \
             SELECT n FROM s"
        ),
    };
    let payload = match conn.get_database_backend() {
        sea_orm::DbBackend::Postgres => "'{\"type\":\"user.created\"}'::jsonb",
        _ => "'{\"type\":\"user.created\"}'",
    };
    conn.execute_unprepared(&format!(
        "INSERT INTO outbox (tenant_id, sequence, id, event_type, routing_key, subject, payload, \
         created_at, attempts) \
         SELECT '{tenant_id}', n, 'backlog-' || n, 'user.created', '{slug}.user.created', \
         'Users/backlog', {payload}, '2026-01-01T00:00:00.000Z', 0 FROM ({series}) AS series"
    ))
    .await
    .unwrap();
    // The tenant's counter continues after the backlog.
    conn.execute_unprepared(&format!(
        "UPDATE tenants SET event_seq = {n} + 1 WHERE id = '{tenant_id}'"
    ))
    .await
    .unwrap();
}

async fn a_backlog_of_100000_events_delays_another_tenant_by_at_most_two_batches(backend: Backend) {
    let app = spawn_app(backend).await;
    let Pair { first, second } = tenants(&app).await;
    let settings = relay_settings(&amqp_url());
    seed_backlog(&app, &first.0, &first.1, 100_000).await;
    let mut queue = TestQueue::bind(&settings, &[&format!("{}.#", second.1)], &[]).await;
    let token = token_of(&app, &second.1).await;
    let mut relay = relay(&app, &settings);
    // The backlog is being drained when the other tenant writes.
    relay.relay_once().await.unwrap();
    create_in(&app, &second.1, &token, "neighbour").await;
    for _ in 0..2 {
        assert!(matches!(
            relay.relay_once().await.unwrap(),
            RelayOutcome::Published { .. }
        ));
    }
    let event = tokio::time::timeout(Duration::from_secs(20), queue.take(1))
        .await
        .expect("the neighbour's event within two batches");
    let event: Value = body(&event[0]);
    assert_eq!(event["data"]["resource"]["userName"], "neighbour");
    // The backlog is still mostly there: the neighbour did not wait for it.
    let unpublished = app
        .events_of(&first.1)
        .await
        .into_iter()
        .filter(|e| e.published_at.is_none())
        .count();
    assert!(unpublished > 98_000, "{unpublished}");
    relay.shutdown().await;
    cleanup(&settings).await;
}
