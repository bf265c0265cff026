//! Events kept and dropped: retention and the pull API's 410, unpublished events kept for the
//! relay, erasure of a subject's payloads.

use chrono::TimeDelta;
use reqwest::Method;
use scimbus::domain::Scope;
use scimbus::service::maintenance;
use scimbus::store::outbox;
use serde_json::{Value, json};

use crate::both_backends;
use crate::helpers::{Backend, assert_scim_error, issue, spawn_app, spawn_app_with, user};
use crate::outbox::schema_for;

use super::{create_users, tenant_row};

both_backends!(
    retention_prunes_old_events_and_the_pull_api_answers_410_before_the_mark,
    with_a_relay_retention_keeps_unpublished_events_whatever_their_age,
    unpublished_events_are_kept_by_default_on_postgres_and_pruned_on_a_lone_sqlite,
    erasure_redacts_a_subjects_payloads_and_keeps_the_envelopes,
);

async fn retention_prunes_old_events_and_the_pull_api_answers_410_before_the_mark(
    backend: Backend,
) {
    let app = spawn_app_with(
        backend,
        &[("SCIMBUS_EVENT_RETENTION_HOURS", "1".to_owned())],
    )
    .await;
    let token = issue(&app.ctx, "acme", vec![Scope::EventsRead]).await;
    create_users(&app, 3).await;
    app.clock.advance(TimeDelta::minutes(61));
    create_users(&app, 0).await;
    let fresh = app.create_user(&user("fresh")).await;
    assert!(fresh["id"].is_string());

    // acme's tenant.created and three users, and other's tenant.created.
    assert_eq!(maintenance::prune_once(&app.ctx).await.unwrap(), 5);
    let sequences: Vec<i64> = app.events().await.iter().map(|e| e.sequence).collect();
    assert_eq!(sequences, vec![5]);
    assert_eq!(
        tenant_row(&app, "acme")
            .await
            .unwrap()
            .events_pruned_through,
        4
    );
    // Nothing more to prune; the mark holds.
    assert_eq!(maintenance::prune_once(&app.ctx).await.unwrap(), 0);

    for after in ["0", "3"] {
        let response = app
            .events_api("acme", &format!("?after={after}"), &token)
            .await;
        let body = assert_scim_error(response, 410, None).await;
        assert!(body["detail"].as_str().unwrap().contains("snapshot"));
    }
    let response = app.events_api("acme", "?after=4", &token).await;
    assert_eq!(response.status(), 200);
    let page: Value = response.json().await.unwrap();
    assert_eq!(page["events"][0]["sequence"], "0000000000000000005");
    // Each tenant has its own mark: other's covers its own tenant.created only.
    let other = tenant_row(&app, "other").await.unwrap();
    assert_eq!(other.events_pruned_through, 1);
}

async fn with_a_relay_retention_keeps_unpublished_events_whatever_their_age(backend: Backend) {
    let app = spawn_app(backend).await;
    create_users(&app, 3).await;
    app.clock.advance(TimeDelta::days(30));
    let mut ctx = app.ctx.clone();
    ctx.keep_unpublished = true;
    // Only the fixture's published tenant.created events (acme's and other's) go.
    assert_eq!(maintenance::prune_once(&ctx).await.unwrap(), 2);
    let tenant = tenant_row(&app, "acme").await.unwrap();
    scimbus::events::sequencer::number_all(&ctx.store)
        .await
        .unwrap();
    // The first two users are published; the third is not: only the first two may go.
    outbox::mark_published(ctx.store.conn(), &[(tenant.id.clone(), 2, 3)], &ctx.now())
        .await
        .unwrap();
    assert_eq!(maintenance::prune_once(&ctx).await.unwrap(), 2);
    let left: Vec<i64> = app.events().await.iter().map(|e| e.sequence).collect();
    assert_eq!(left, vec![4]);
}

async fn erasure_redacts_a_subjects_payloads_and_keeps_the_envelopes(backend: Backend) {
    let app = spawn_app(backend).await;
    let ids = create_users(&app, 2).await;
    let erased = format!("/Users/{}", ids[0]);
    let mut body = user("user0");
    body["name"] = json!({"givenName": "Barbara", "familyName": "Jensen"});
    assert_eq!(app.put(&erased, &body).await.status(), 200);
    assert_eq!(app.delete(&erased).await.status(), 204);
    let before = app.events().await;

    let response = app
        .admin(
            Method::POST,
            "/tenants/acme/events/purge",
            Some(json!({"subject": format!("Users/{}", ids[0])})),
        )
        .await;
    assert_eq!(response.status(), 200);
    let answer: Value = response.json().await.unwrap();
    assert_eq!(answer["redacted"], 3);

    let after = app.events().await;
    assert_eq!(after.len(), before.len());
    for (old, new) in before.iter().zip(&after) {
        assert_eq!(old.id, new.id);
        assert_eq!(old.sequence, new.sequence);
        assert_eq!(new.payload["id"], old.payload["id"]);
        if new.subject == format!("Users/{}", ids[0]) {
            assert_eq!(new.payload["data"], json!({"redacted": true}));
            assert!(!new.payload.to_string().contains("Barbara"));
            let validator = jsonschema::validator_for(&schema_for(&new.event_type)).unwrap();
            assert!(validator.is_valid(&new.payload), "{}", new.payload);
        } else {
            assert_eq!(new.payload, old.payload, "other subjects untouched");
        }
    }
    // Again: nothing left to redact.
    let response = app
        .admin(
            Method::POST,
            "/tenants/acme/events/purge",
            Some(json!({"subject": format!("Users/{}", ids[0])})),
        )
        .await;
    let answer: Value = response.json().await.unwrap();
    assert_eq!(answer["redacted"], 0);
    // A subject that is not a resource path is refused, and changes nothing.
    let before_refusal = app.events().await;
    let response = app
        .admin(
            Method::POST,
            "/tenants/acme/events/purge",
            Some(json!({"subject": "everything"})),
        )
        .await;
    assert_scim_error(response, 400, Some("invalidValue")).await;
    let after_refusal = app.events().await;
    assert!(
        before_refusal
            .iter()
            .zip(&after_refusal)
            .all(|(a, b)| a.payload == b.payload)
    );
}

async fn unpublished_events_are_kept_by_default_on_postgres_and_pruned_on_a_lone_sqlite(
    backend: Backend,
) {
    // Unset (empty counts as unset): the default for this backend without a broker.
    let app = spawn_app_with(backend, &[("SCIMBUS_RETENTION_UNPUBLISHED", String::new())]).await;
    create_users(&app, 2).await;
    app.clock.advance(TimeDelta::days(8));
    let pruned = maintenance::prune_once(&app.ctx).await.unwrap();
    // The fixture's tenant.created events (acme's and other's) are published.
    match backend {
        // Another process (`scimbus relay`) may be publishing the users'.
        Backend::Postgres => assert_eq!(pruned, 2),
        // One process, no broker: nothing will ever publish them.
        Backend::Sqlite => assert_eq!(pruned, 4),
    }
}
