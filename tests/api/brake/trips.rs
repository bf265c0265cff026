//! Tripping the brake: an Entra burst held and released in order, discard after the IdP
//! reactivates, validated settings.

use reqwest::Method;
use scimbus::domain::Scope;
use serde_json::{Value, json};

use crate::both_backends;
use crate::broker::{TestQueue, amqp_url, body, cleanup, relay, relay_settings};
use crate::helpers::{Backend, TestApp, assert_scim_error, issue, spawn_app, user};
use crate::pull::event_types;

use super::{brake, configure, create_users, entra_deactivate, pull_all, small_brake};

both_backends!(
    an_entra_burst_trips_the_brake_the_lane_holds_and_release_delivers_in_order,
    after_the_idp_reactivates_discard_drops_the_held_deactivations_and_delivers_the_rest,
    brake_settings_are_validated_and_nothing_held_is_a_conflict,
);

/// Okta's: a PUT of the whole user with `active: false`, or a path-less replace.
async fn okta_set_active(app: &TestApp, id: &str, name: &str, active: bool, put: bool) {
    let response = if put {
        let mut body = user(name);
        body["active"] = json!(active);
        app.put(&format!("/Users/{id}"), &body).await
    } else {
        let body = json!({
            "schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
            "Operations": [{"op": "replace", "value": {"active": active}}]
        });
        app.client
            .patch(format!("{}/Users/{id}", app.base))
            .bearer_auth(&app.token)
            .json(&body)
            .send()
            .await
            .unwrap()
    };
    assert_eq!(response.status(), 200, "the IdP gets its usual answer");
}

fn sequences(page: &Value) -> Vec<i64> {
    page["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["sequence"].as_str().unwrap().parse().unwrap())
        .collect()
}

async fn an_entra_burst_trips_the_brake_the_lane_holds_and_release_delivers_in_order(
    backend: Backend,
) {
    let app = spawn_app(backend).await;
    let settings = relay_settings(&amqp_url());
    let mut queue = TestQueue::bind(&settings, &["acme.#", "other.#"], &[]).await;
    let mut relay = relay(&app, &settings);
    assert_eq!(configure(&app, small_brake()).await.status(), 200);
    let token = issue(&app.ctx, "acme", vec![Scope::EventsRead]).await;
    let ids = create_users(&app, 10).await;
    for id in &ids[..8] {
        entra_deactivate(&app, id).await;
    }
    // The database keeps the IdP's state.
    for id in &ids[..8] {
        let got: Value = app.get(&format!("/Users/{id}")).await.json().await.unwrap();
        assert_eq!(got["active"], false);
    }
    // Held from the 6th deactivation: 10 creations (2…11), deactivations 12…19.
    let view = brake(&app).await;
    let hold = &view["hold"];
    assert_eq!(hold["held_from"], 17, "{view}");
    assert_eq!(hold["counts"], json!({"scimbus.user.deactivated": 3}));
    assert_eq!(hold["first"]["sequence"], 17);
    assert_eq!(hold["last"]["sequence"], 19);
    assert!(hold["tripped"][0].as_str().unwrap().starts_with("users: 6"));

    // Another tenant's events keep flowing while acme's lane holds.
    let other_scim = issue(&app.ctx, "other", vec![Scope::Scim]).await;
    let other_events = issue(&app.ctx, "other", vec![Scope::EventsRead]).await;
    app.create_user_in("other", &other_scim, "elsewhere").await;
    assert_eq!(
        event_types(&pull_all(&app, "other", &other_events).await),
        ["scimbus.user.created"]
    );
    let (_keep, stop) = tokio::sync::watch::channel(false);
    relay.drain(&stop).await.unwrap();
    let published: Vec<(String, i64)> = queue
        .take(15 + 1)
        .await
        .iter()
        .map(|m| {
            let e = body(m);
            (
                e["tenant"].as_str().unwrap().to_owned(),
                e["sequence"].as_str().unwrap().parse().unwrap(),
            )
        })
        .collect();
    let acme: Vec<i64> = published
        .iter()
        .filter(|(t, _)| t == "acme")
        .map(|(_, s)| *s)
        .collect();
    assert_eq!(acme, (2..=16).collect::<Vec<_>>(), "nothing from 17 on");
    assert!(published.contains(&("other".to_owned(), 2)));
    // The pull API serves nothing held, also when asked from inside the hold, and a
    // long-poll is not woken by held events; snapshots are refused.
    assert_eq!(
        sequences(&pull_all(&app, "acme", &token).await),
        (2..=16).collect::<Vec<_>>()
    );
    let response = app.events_api("acme", "?after=16&wait=1", &token).await;
    let page: Value = response.json().await.unwrap();
    assert_eq!(page["events"], json!([]));
    let response = app.events_api("acme", "/snapshot/Users", &token).await;
    assert_eq!(response.status(), 503);
    assert!(response.headers().contains_key("retry-after"));
    let response = app
        .events_api("acme", &format!("/snapshot/Users/{}", ids[7]), &token)
        .await;
    assert_eq!(response.status(), 503);
    // Held events are kept whatever their age.
    assert_eq!(
        scimbus::service::maintenance::prune_once(&app.ctx)
            .await
            .unwrap(),
        0
    );
    // The metric says so.
    let metrics = app.metrics_text().await;
    assert!(
        metrics.contains("scimbus_brake_held_events{tenant=\"acme\"} 3"),
        "{metrics}"
    );

    // Release: everything flows, in order.
    let response = app
        .admin(Method::POST, "/tenants/acme/brake/release", None)
        .await;
    assert_eq!(response.status(), 200);
    let done: Value = response.json().await.unwrap();
    assert_eq!(done, json!({"released": 3, "discarded": 0}));
    assert_eq!(brake(&app).await["hold"], Value::Null);
    relay.drain(&stop).await.unwrap();
    let rest: Vec<i64> = queue
        .take(3)
        .await
        .iter()
        .map(|m| body(m)["sequence"].as_str().unwrap().parse().unwrap())
        .collect();
    assert_eq!(rest, [17, 18, 19]);
    assert_eq!(
        sequences(&pull_all(&app, "acme", &token).await),
        (2..=19).collect::<Vec<_>>()
    );
    let response = app.events_api("acme", "/snapshot/Users", &token).await;
    assert_eq!(response.status(), 200);
    let audit = app.audit_of("?tenant=acme", "brake.").await;
    let actions: Vec<(&str, &str)> = audit
        .iter()
        .map(|e| (e["actor"].as_str().unwrap(), e["action"].as_str().unwrap()))
        .collect();
    assert_eq!(
        actions,
        [
            ("admin:bootstrap", "brake.configure"),
            ("system", "brake.trip"),
            ("admin:bootstrap", "brake.release"),
        ]
    );
    cleanup(&settings).await;
}

async fn after_the_idp_reactivates_discard_drops_the_held_deactivations_and_delivers_the_rest(
    backend: Backend,
) {
    let app = spawn_app(backend).await;
    assert_eq!(configure(&app, small_brake()).await.status(), 200);
    let token = issue(&app.ctx, "acme", vec![Scope::EventsRead]).await;
    let ids = create_users(&app, 8).await;
    // Okta: PUTs and path-less PATCHes with active false.
    for (i, id) in ids.iter().enumerate() {
        okta_set_active(&app, id, &format!("staff{i}"), false, i % 2 == 0).await;
    }
    let view = brake(&app).await;
    let held_from = view["hold"]["held_from"].as_i64().unwrap();
    assert_eq!(held_from, 2 + 8 + 5, "the 6th deactivation");
    // Not while the IdP still says they are deprovisioned.
    let response = app
        .admin(Method::POST, "/tenants/acme/brake/discard", None)
        .await;
    let error = assert_scim_error(response, 409, None).await;
    assert!(
        error["detail"]
            .as_str()
            .unwrap()
            .contains("still deprovisioned")
    );
    assert!(brake(&app).await["hold"].is_object(), "nothing changed");
    // The IdP corrects its mistake: everyone is active again (these are held too).
    for (i, id) in ids.iter().enumerate() {
        okta_set_active(&app, id, &format!("staff{i}"), true, i % 2 == 1).await;
    }
    let response = app
        .admin(Method::POST, "/tenants/acme/brake/discard", None)
        .await;
    assert_eq!(response.status(), 200);
    let done: Value = response.json().await.unwrap();
    assert_eq!(done, json!({"released": 8, "discarded": 3}));
    let page = pull_all(&app, "acme", &token).await;
    let types = event_types(&page);
    assert_eq!(
        types
            .iter()
            .filter(|t| *t == "scimbus.user.deactivated")
            .count(),
        5,
        "the 3 held deactivations are never served: {types:?}"
    );
    assert_eq!(
        types
            .iter()
            .filter(|t| *t == "scimbus.user.reactivated")
            .count(),
        8
    );
    let served = sequences(&page);
    for discarded in held_from..held_from + 3 {
        assert!(!served.contains(&discarded));
    }
    // A consumer that repairs its version gap reads the current state: active.
    for id in &ids {
        let response = app
            .events_api("acme", &format!("/snapshot/Users/{id}"), &token)
            .await;
        let snapshot: Value = response.json().await.unwrap();
        assert_eq!(snapshot["data"]["resource"]["active"], true);
    }
    // The discarded ones are parked: the relay never publishes them.
    let t = app.tenant_row().await;
    let rows = scimbus::store::outbox::list_after(app.ctx.store.conn(), &t.id, held_from - 1)
        .await
        .unwrap();
    assert!(rows[..3].iter().all(|e| e.failed_at.is_some()));
    assert!(rows[3..].iter().all(|e| e.failed_at.is_none()));
}

async fn brake_settings_are_validated_and_nothing_held_is_a_conflict(backend: Backend) {
    let app = spawn_app(backend).await;
    let defaults = brake(&app).await;
    assert_eq!(defaults["custom"], false);
    assert_eq!(defaults["settings"]["enabled"], true);
    assert_eq!(defaults["settings"]["users"]["count"], 500);
    let mut bad = small_brake();
    bad["window_seconds"] = json!(0);
    let response = configure(&app, bad).await;
    assert_scim_error(response, 400, Some("invalidValue")).await;
    let mut unknown = small_brake();
    unknown["speed"] = json!(3);
    let response = configure(&app, unknown).await;
    assert_scim_error(response, 400, Some("invalidSyntax")).await;
    assert_eq!(brake(&app).await["custom"], false, "nothing changed");
    for action in ["release", "discard"] {
        let response = app
            .admin(Method::POST, &format!("/tenants/acme/brake/{action}"), None)
            .await;
        assert_scim_error(response, 409, None).await;
    }
    let response = app.admin(Method::GET, "/tenants/nobody/brake", None).await;
    assert_scim_error(response, 404, None).await;
    // Off: a burst holds nothing.
    let mut off = small_brake();
    off["enabled"] = json!(false);
    assert_eq!(configure(&app, off).await.status(), 200);
    let ids = create_users(&app, 8).await;
    for id in &ids {
        entra_deactivate(&app, id).await;
    }
    assert_eq!(brake(&app).await["hold"], Value::Null);
}
