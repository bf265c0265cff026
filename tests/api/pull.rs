//! The pull API `/events/v1/{tenant}` and its snapshots (DESIGN 13): committed events in
//! `sequence` order whatever their publish state, scope checks, and resync snapshots that
//! validate against their committed JSON Schemas.

use serde_json::{Value, json};

use crate::both_backends;
use crate::helpers::{Backend, TestApp, assert_scim_error, issue, spawn_app, user};
use crate::outbox::schema_for;
use scimbus::domain::Scope;

both_backends!(
    the_pull_api_pages_events_in_sequence_order_with_the_next_cursor,
    pulling_while_writers_commit_concurrently_never_skips_or_repeats_a_sequence,
    concurrent_writes_to_the_same_users_keep_each_users_versions_in_sequence_order,
    the_pull_api_filters_by_type_and_rejects_unknown_types_and_bad_numbers,
    the_pull_api_needs_an_events_read_token_of_that_tenant,
    snapshots_page_every_user_and_group_with_members_and_validate,
    a_snapshot_of_one_resource_answers_404_once_it_is_gone,
    a_page_read_while_retention_prunes_never_skips_events_without_a_410,
);

async fn events_token(app: &TestApp) -> String {
    issue(&app.ctx, "acme", vec![Scope::EventsRead]).await
}

async fn pull(app: &TestApp, token: &str, query: &str) -> Value {
    let response = app.events_api("acme", query, token).await;
    assert_eq!(response.status(), 200, "{query}");
    assert_eq!(
        response.headers()["content-type"].to_str().unwrap(),
        "application/json"
    );
    response.json().await.unwrap()
}

/// The `type` of each event of a page.
pub fn event_types(page: &Value) -> Vec<String> {
    page["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["type"].as_str().unwrap().to_owned())
        .collect()
}

fn sequences(page: &Value) -> Vec<i64> {
    page["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["sequence"].as_str().unwrap().parse().unwrap())
        .collect()
}

async fn the_pull_api_pages_events_in_sequence_order_with_the_next_cursor(backend: Backend) {
    let app = spawn_app(backend).await;
    let token = events_token(&app).await;
    for i in 0..5 {
        app.create_user(&user(&format!("user{i}"))).await;
    }
    // Sequence 1 is the tenant's `tenant.created`.
    let first = pull(&app, &token, "?limit=2").await;
    assert_eq!(sequences(&first), vec![1, 2]);
    assert_eq!(first["events"][0]["type"], "scimbus.tenant.created");
    assert_eq!(first["next"], 2);
    assert_eq!(first["hasMore"], true);
    let second = pull(&app, &token, "?after=2&limit=2").await;
    assert_eq!(sequences(&second), vec![3, 4]);
    let last = pull(&app, &token, "?after=4&limit=2").await;
    assert_eq!(sequences(&last), vec![5, 6]);
    assert_eq!(last["next"], 6);
    assert_eq!(last["hasMore"], false);
    let empty = pull(&app, &token, "?after=6").await;
    assert_eq!(sequences(&empty), Vec::<i64>::new());
    assert_eq!(empty["next"], 6, "an empty page keeps the cursor");

    // Served exactly as stored (and as the relay publishes), unpublished or not.
    let stored = app.events().await;
    assert!(stored.iter().all(|e| e.published_at.is_none()));
    let all = pull(&app, &token, "?after=1").await;
    let served: Vec<&Value> = all["events"].as_array().unwrap().iter().collect();
    let expected: Vec<&Value> = stored.iter().map(|e| &e.payload).collect();
    assert_eq!(served, expected);
}

async fn pulling_while_writers_commit_concurrently_never_skips_or_repeats_a_sequence(
    backend: Backend,
) {
    const WRITERS: usize = 4;
    const EACH: usize = 10;
    let app = std::sync::Arc::new(spawn_app(backend).await);
    let token = events_token(&app).await;
    let mut writers = Vec::new();
    for w in 0..WRITERS {
        let app = app.clone();
        writers.push(tokio::spawn(async move {
            for i in 0..EACH {
                app.create_user(&user(&format!("w{w}-u{i}"))).await;
            }
        }));
    }
    let mut seen = Vec::new();
    // After the tenant's tenant.created.
    let mut after = 1;
    let mut writers_done = false;
    loop {
        let page = pull(&app, &token, &format!("?after={after}&limit=7")).await;
        let got = sequences(&page);
        // Each page continues exactly where the last one ended.
        for (i, s) in got.iter().enumerate() {
            assert_eq!(*s, after + 1 + i as i64, "page after {after}: {got:?}");
        }
        after = page["next"].as_i64().unwrap();
        seen.extend(got);
        if seen.len() == WRITERS * EACH {
            break;
        }
        if !writers_done && writers.iter().all(|w| w.is_finished()) {
            writers_done = true;
        } else if writers_done && page["hasMore"] == false {
            panic!(
                "writers are done but only {} events were pulled",
                seen.len()
            );
        }
        tokio::task::yield_now().await;
    }
    for w in writers {
        w.await.unwrap();
    }
    let expected: Vec<i64> = (2..=(WRITERS * EACH) as i64 + 1).collect();
    assert_eq!(seen, expected);
}

async fn the_pull_api_filters_by_type_and_rejects_unknown_types_and_bad_numbers(backend: Backend) {
    let app = spawn_app(backend).await;
    let token = events_token(&app).await;
    let created = app.create_user(&user("bjensen")).await;
    let path = format!("/Users/{}", created["id"].as_str().unwrap());
    let mut body = user("bjensen");
    body["active"] = json!(false);
    assert_eq!(app.put(&path, &body).await.status(), 200);
    assert_eq!(app.delete(&path).await.status(), 204);

    let page = pull(
        &app,
        &token,
        "?types=scimbus.user.created,scimbus.user.deleted",
    )
    .await;
    assert_eq!(
        event_types(&page),
        ["scimbus.user.created", "scimbus.user.deleted"]
    );
    assert_eq!(page["next"], 4);

    for query in [
        "?types=scimbus.user.exploded",
        "?after=x",
        "?after=-1",
        "?limit=0",
        "?limit=1001",
        "?limit=ten",
    ] {
        let response = app.events_api("acme", query, &token).await;
        assert_scim_error(response, 400, Some("invalidValue")).await;
    }
    // Unknown parameters are ignored.
    assert_eq!(
        sequences(&pull(&app, &token, "?after=1&foo=bar").await).len(),
        3
    );
}

async fn the_pull_api_needs_an_events_read_token_of_that_tenant(backend: Backend) {
    let app = spawn_app(backend).await;
    app.create_user(&user("bjensen")).await;
    // The SCIM token lacks `events:read`.
    let response = app.events_api("acme", "", &app.token).await;
    let body = assert_scim_error(response, 403, None).await;
    assert!(body["detail"].as_str().unwrap().contains("events:read"));
    // Another tenant's events token, an unknown token, a revoked one: 401 alike.
    let other = issue(&app.ctx, "other", vec![Scope::EventsRead]).await;
    for token in [other.as_str(), "scimbus_nope"] {
        let response = app.events_api("acme", "", token).await;
        assert_eq!(response.status(), 401);
        assert!(response.headers().contains_key("www-authenticate"));
    }
    let response = app
        .client
        .get(format!("{}/events/v1/acme", app.address))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 401);
    // The other tenant's own events are its tenant.created alone: nothing of acme leaks.
    let response = app.events_api("other", "", &other).await;
    let page: Value = response.json().await.unwrap();
    assert_eq!(event_types(&page), ["scimbus.tenant.created"]);
    // Snapshots need the scope too.
    let response = app.events_api("acme", "/snapshot/Users", &app.token).await;
    assert_scim_error(response, 403, None).await;
}

async fn snapshots_page_every_user_and_group_with_members_and_validate(backend: Backend) {
    let app = spawn_app(backend).await;
    let token = events_token(&app).await;
    let mut ids = Vec::new();
    for i in 0..5 {
        let u = app.create_user(&user(&format!("user{i}"))).await;
        ids.push(u["id"].as_str().unwrap().to_owned());
    }
    let group = app
        .post(
            "/Groups",
            &json!({
                "schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group"],
                "displayName": "Staff",
                "members": [{"value": ids[0]}, {"value": ids[1]}],
            }),
        )
        .await;
    assert_eq!(group.status(), 201);
    let group: Value = group.json().await.unwrap();
    let latest = app.events().await.last().unwrap().sequence;

    let mut pages = Vec::new();
    let mut query = "?limit=2".to_owned();
    loop {
        let page = pull(&app, &token, &format!("/snapshot/Users{query}")).await;
        assert_eq!(page["sequence"], latest);
        pages.push(page.clone());
        if page["hasMore"] == false {
            assert_eq!(page["next"], Value::Null);
            break;
        }
        query = format!("?limit=2&after={}", page["next"].as_str().unwrap());
    }
    assert_eq!(pages.len(), 3);
    let schema = schema_for("scimbus.user.snapshot");
    let validator = jsonschema::validator_for(&schema).unwrap();
    let mut seen = Vec::new();
    for page in &pages {
        for event in page["events"].as_array().unwrap() {
            let errors: Vec<String> = validator
                .iter_errors(event)
                .map(|e| e.to_string())
                .collect();
            assert!(errors.is_empty(), "{event}: {errors:?}");
            assert_eq!(event["type"], "scimbus.user.snapshot");
            assert_eq!(event["data"]["version"], 1);
            seen.push(event["data"]["resource"]["id"].as_str().unwrap().to_owned());
        }
    }
    let mut sorted = ids.clone();
    sorted.sort();
    assert_eq!(seen, sorted, "every user once, in id order");

    let groups = pull(&app, &token, "/snapshot/Groups").await;
    let event = &groups["events"][0];
    let schema = schema_for("scimbus.group.snapshot");
    let validator = jsonschema::validator_for(&schema).unwrap();
    let errors: Vec<String> = validator
        .iter_errors(event)
        .map(|e| e.to_string())
        .collect();
    assert!(errors.is_empty(), "{event}: {errors:?}");
    assert_eq!(
        event["subject"],
        format!("Groups/{}", group["id"].as_str().unwrap())
    );
    let mut members: Vec<&str> = event["data"]["members"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["value"].as_str().unwrap())
        .collect();
    members.sort();
    let mut expected = vec![ids[0].as_str(), ids[1].as_str()];
    expected.sort();
    assert_eq!(members, expected);
    assert!(event["data"]["resource"].get("members").is_none());

    let response = app.events_api("acme", "/snapshot/Things", &token).await;
    assert_scim_error(response, 404, None).await;
    // An unknown kind is a 404 whatever the query says; a known one with a bad query, 400.
    let response = app
        .events_api("acme", "/snapshot/Things?limit=x", &token)
        .await;
    assert_scim_error(response, 404, None).await;
    let response = app
        .events_api("acme", "/snapshot/Users?limit=x", &token)
        .await;
    assert_scim_error(response, 400, Some("invalidValue")).await;
}

async fn a_snapshot_of_one_resource_answers_404_once_it_is_gone(backend: Backend) {
    let app = spawn_app(backend).await;
    let token = events_token(&app).await;
    let created = app.create_user(&user("bjensen")).await;
    let id = created["id"].as_str().unwrap();
    let mut body = user("bjensen");
    body["title"] = json!("Boss");
    assert_eq!(app.put(&format!("/Users/{id}"), &body).await.status(), 200);
    let one = pull(&app, &token, &format!("/snapshot/Users/{id}")).await;
    assert_eq!(one["data"]["version"], 2);
    assert_eq!(one["data"]["resource"]["title"], "Boss");
    assert_eq!(one["sequence"], "0000000000000000003");
    assert_eq!(app.delete(&format!("/Users/{id}")).await.status(), 204);
    let response = app
        .events_api("acme", &format!("/snapshot/Users/{id}"), &token)
        .await;
    assert_scim_error(response, 404, None).await;
}

/// DESIGN 10 under contention: writers race on the same four users over HTTP while a
/// reader pulls the whole feed again and again. Every pull extends the previous one (a
/// sequence once visible never gains an earlier entry, nor changes), the final feed is
/// gap-free, and each user's versions follow each other by one in sequence order.
async fn concurrent_writes_to_the_same_users_keep_each_users_versions_in_sequence_order(
    backend: Backend,
) {
    const USERS: usize = 4;
    const WRITERS: usize = 8;
    const EACH: usize = 12;
    let app = std::sync::Arc::new(spawn_app(backend).await);
    let token = events_token(&app).await;
    let mut ids = Vec::new();
    for u in 0..USERS {
        ids.push(
            app.create_user(&user(&format!("shared{u}"))).await["id"]
                .as_str()
                .unwrap()
                .to_owned(),
        );
    }
    let mut writers = Vec::new();
    for w in 0..WRITERS {
        let app = app.clone();
        let ids = ids.clone();
        writers.push(tokio::spawn(async move {
            for i in 0..EACH {
                let target = &ids[(w + i) % USERS];
                let response = app
                    .client
                    .patch(format!("{}/Users/{target}", app.base))
                    .bearer_auth(&app.token)
                    .json(&serde_json::json!({
                        "schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
                        "Operations": [{"op": "replace", "path": "displayName", "value": format!("w{w} i{i}")}]
                    }))
                    .send()
                    .await
                    .unwrap();
                assert_eq!(response.status(), 200);
            }
        }));
    }
    let feed = |page: &Value| -> Vec<(i64, String)> {
        page["events"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| {
                (
                    e["sequence"].as_str().unwrap().parse().unwrap(),
                    e["id"].as_str().unwrap().to_owned(),
                )
            })
            .collect()
    };
    let mut last: Vec<(i64, String)> = Vec::new();
    loop {
        let done = writers.iter().all(|w| w.is_finished());
        let now = feed(&pull(&app, &token, "?after=1&limit=1000").await);
        assert!(
            now.len() >= last.len() && now[..last.len()] == last[..],
            "a later pull is not an extension of the earlier one"
        );
        last = now;
        if done {
            break;
        }
        tokio::task::yield_now().await;
    }
    for w in writers {
        w.await.unwrap();
    }
    let last = feed(&pull(&app, &token, "?after=1&limit=1000").await);
    let events = app.events().await;
    assert_eq!(events.len(), USERS + WRITERS * EACH);
    assert_eq!(last.len(), events.len());
    let sequences: Vec<i64> = events.iter().map(|e| e.sequence).collect();
    // After the tenant's tenant.created (1).
    assert_eq!(sequences, (2..=events.len() as i64 + 1).collect::<Vec<_>>());
    let mut versions: std::collections::HashMap<&str, i64> = std::collections::HashMap::new();
    for event in &events {
        let version = event.payload["data"]["version"].as_i64().unwrap();
        let previous = versions.insert(event.subject.as_str(), version);
        assert_eq!(
            version,
            previous.unwrap_or(0) + 1,
            "{} at sequence {}",
            event.subject,
            event.sequence
        );
    }
}

/// Retention prunes between the pull's check of the retention mark and its read of the
/// page (forced by a failpoint): the answer is the 410 that sends the consumer to the
/// snapshots, never a page that starts after events it never saw.
async fn a_page_read_while_retention_prunes_never_skips_events_without_a_410(backend: Backend) {
    let app = spawn_app(backend).await;
    let token = events_token(&app).await;
    for i in 0..3 {
        app.create_user(&user(&format!("old{i}"))).await;
    }
    app.clock.advance(chrono::TimeDelta::days(8));
    for i in 0..2 {
        app.create_user(&user(&format!("new{i}"))).await;
    }
    let tenant_id = app.tenant_row().await.id;
    let mut pause = scimbus::failpoints::Pause::arm("pull.page", &tenant_id);
    let request = tokio::spawn(
        app.client
            .get(format!("{}/events/v1/acme?after=0", app.address))
            .bearer_auth(&token)
            .send(),
    );
    assert!(pause.reached().await);
    // The three old users, and acme's and other's tenant.created.
    assert_eq!(
        scimbus::service::maintenance::prune_once(&app.ctx)
            .await
            .unwrap(),
        5
    );
    pause.release();
    let response = request.await.unwrap().unwrap();
    assert_scim_error(response, 410, None).await;
}
