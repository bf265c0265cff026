//! The mass-deprovisioning brake (DESIGN 20) over HTTP: an Entra- or Okta-shaped burst of
//! deactivations trips it while the IdP gets its usual answers; the tenant's lane holds
//! (RabbitMQ, the pull API and snapshots reveal nothing from the first event over the
//! threshold on) while other tenants flow; release delivers everything in order; after
//! the IdP corrects itself, discard drops the held deactivations and delivers the rest;
//! the hold survives a restart and replicas count together.

use reqwest::Method;
use serde_json::{Value, json};

use crate::both_backends;
use crate::broker::{TestQueue, amqp_url, body, cleanup, relay, relay_settings};
use crate::helpers::{Backend, TestApp, assert_scim_error, issue, settings, spawn_app, user};
use crate::pull::event_types;
use scimbus::domain::Scope;
use scimbus::startup::Application;

both_backends!(
    an_entra_burst_trips_the_brake_the_lane_holds_and_release_delivers_in_order,
    after_the_idp_reactivates_discard_drops_the_held_deactivations_and_delivers_the_rest,
    brake_settings_are_validated_and_nothing_held_is_a_conflict,
    a_snapshot_read_while_the_brake_trips_is_refused,
    a_hold_with_an_auto_release_ends_by_itself_after_its_time,
    deleting_a_held_tenant_lets_its_events_and_its_deletion_flow,
);

/// Users over 5 deprovisioned within the window trip it (no share).
fn small_brake() -> Value {
    json!({
        "enabled": true,
        "window_seconds": 3600,
        "users": {"count": 5, "percent": 100.0, "min": 1_000_000},
        "members": {"count": 1000, "percent": 100.0, "min": 1_000_000},
        "groups": {"count": 1000, "percent": 100.0, "min": 1_000_000},
        "auto_release_seconds": null
    })
}

async fn configure(app: &TestApp, body: Value) -> reqwest::Response {
    app.admin(Method::PUT, "/tenants/acme/brake", Some(body))
        .await
}

async fn brake(app: &TestApp) -> Value {
    let response = app.admin(Method::GET, "/tenants/acme/brake", None).await;
    assert_eq!(response.status(), 200);
    response.json().await.unwrap()
}

async fn create_users(app: &TestApp, n: usize) -> Vec<String> {
    let mut ids = Vec::new();
    for i in 0..n {
        let created = app.create_user(&user(&format!("staff{i}"))).await;
        ids.push(created["id"].as_str().unwrap().to_owned());
    }
    ids
}

/// Entra's deactivation: `Replace` with a path and the string "False".
async fn entra_deactivate(app: &TestApp, id: &str) {
    let body = json!({
        "schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
        "Operations": [{"op": "Replace", "path": "active", "value": "False"}]
    });
    let response = app
        .client
        .patch(format!("{}/Users/{id}", app.base))
        .bearer_auth(&app.token)
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200, "the IdP gets its usual answer");
}

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

async fn pull_all(app: &TestApp, tenant: &str, token: &str) -> Value {
    let response = app.events_api(tenant, "?after=1&limit=1000", token).await;
    assert_eq!(response.status(), 200);
    response.json().await.unwrap()
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replicas_count_together_and_a_hold_survives_a_restart() {
    let app = spawn_app(Backend::Postgres).await;
    assert_eq!(configure(&app, small_brake()).await.status(), 200);
    let ids = create_users(&app, 8).await;
    let start = |url: String| async move {
        let replica = Application::build(settings(&[
            ("SCIMBUS_DATABASE_URL", url),
            ("SCIMBUS_LISTEN", "127.0.0.1:0".to_owned()),
            ("SCIMBUS_MAINTENANCE", "off".to_owned()),
            ("SCIMBUS_RATE_LIMIT", "off".to_owned()),
        ]))
        .await
        .unwrap();
        let address = format!("http://127.0.0.1:{}", replica.port());
        let handle = replica.server_handle();
        tokio::spawn(replica.run_until_stopped());
        (address, handle)
    };
    let url = app.ctx.store.url().to_owned();
    let (replica, handle) = start(url.clone()).await;
    // Three deactivations through each replica: six in all, over the limit of five.
    for (i, id) in ids[..6].iter().enumerate() {
        let base = if i % 2 == 0 {
            app.base.clone()
        } else {
            format!("{replica}/scim/v2/acme")
        };
        let response = app
            .client
            .patch(format!("{base}/Users/{id}"))
            .bearer_auth(&app.token)
            .json(&json!({
                "schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
                "Operations": [{"op": "Replace", "path": "active", "value": "False"}]
            }))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200);
    }
    let view = brake(&app).await;
    assert_eq!(view["hold"]["held_from"], 2 + 8 + 5, "{view}");
    // A restarted replica holds as well.
    handle.stop(true).await;
    let (replica, _handle) = start(url).await;
    let token = issue(&app.ctx, "acme", vec![Scope::EventsRead]).await;
    let response = app
        .client
        .get(format!("{replica}/events/v1/acme?after=14"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    let page: Value = response.json().await.unwrap();
    assert_eq!(page["events"], json!([]), "nothing held is served");
    let response = app
        .client
        .get(format!("{replica}/admin/v1/tenants/acme/brake"))
        .bearer_auth(crate::helpers::ADMIN_TOKEN)
        .send()
        .await
        .unwrap();
    let view: Value = response.json().await.unwrap();
    assert_eq!(view["hold"]["held_from"], 15);
}

/// A bootstrap page read while a burst trips the brake would show states whose events are
/// held: the snapshot checks again once the writes it read are counted.
async fn a_snapshot_read_while_the_brake_trips_is_refused(backend: Backend) {
    let app = spawn_app(backend).await;
    assert_eq!(configure(&app, small_brake()).await.status(), 200);
    let token = issue(&app.ctx, "acme", vec![Scope::EventsRead]).await;
    let ids = create_users(&app, 8).await;
    let tenant_id = app.tenant_row().await.id;
    let mut pause = scimbus::failpoints::Pause::arm("snapshot.read", &tenant_id);
    let request = tokio::spawn(
        app.client
            .get(format!(
                "{}/events/v1/acme/snapshot/Users?limit=100",
                app.address
            ))
            .bearer_auth(&token)
            .send(),
    );
    assert!(pause.reached().await);
    for id in &ids[..6] {
        entra_deactivate(&app, id).await;
    }
    pause.release();
    let response = request.await.unwrap().unwrap();
    assert_eq!(
        response.status(),
        503,
        "the page would show held deactivations"
    );
}

async fn a_hold_with_an_auto_release_ends_by_itself_after_its_time(backend: Backend) {
    let app = spawn_app(backend).await;
    let mut settings = small_brake();
    settings["auto_release_seconds"] = json!(600);
    assert_eq!(configure(&app, settings).await.status(), 200);
    let ids = create_users(&app, 8).await;
    for id in &ids[..6] {
        entra_deactivate(&app, id).await;
    }
    assert!(brake(&app).await["hold"].is_object());
    // Not before its time. (The hold is stamped with the wall clock, where events are
    // numbered; the test's manual clock starts at 2026-01-01, so it is moved past both.)
    let wall = chrono::Utc::now();
    let lag = wall - scimbus::clock::Clock::now(app.clock.as_ref());
    app.clock.advance(lag + chrono::TimeDelta::seconds(60));
    assert_eq!(
        scimbus::service::brake::auto_release(&app.ctx)
            .await
            .unwrap(),
        0
    );
    assert!(brake(&app).await["hold"].is_object());
    app.clock.advance(chrono::TimeDelta::seconds(600));
    assert_eq!(
        scimbus::service::brake::auto_release(&app.ctx)
            .await
            .unwrap(),
        1
    );
    assert_eq!(brake(&app).await["hold"], Value::Null);
    let audit = app.audit_of("?tenant=acme", "brake.").await;
    let last = audit.last().unwrap().clone();
    assert_eq!(
        (last["actor"].as_str(), last["action"].as_str()),
        (Some("system"), Some("brake.release"))
    );
}

/// Nothing could release a deleted tenant's hold (the brake's API is of live tenants), and
/// its `tenant.deleted` would stay held forever: the deletion decides, and everything flows.
async fn deleting_a_held_tenant_lets_its_events_and_its_deletion_flow(backend: Backend) {
    let app = spawn_app(backend).await;
    assert_eq!(configure(&app, small_brake()).await.status(), 200);
    let ids = create_users(&app, 8).await;
    for id in &ids[..6] {
        entra_deactivate(&app, id).await;
    }
    assert!(brake(&app).await["hold"].is_object());
    let response = app
        .admin(
            Method::POST,
            "/apps",
            Some(json!({"name": "crm", "all_tenants": true})),
        )
        .await;
    let credential = response.json::<Value>().await.unwrap()["token"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(
        app.admin(Method::DELETE, "/tenants/acme", None)
            .await
            .status(),
        204
    );
    while scimbus::service::maintenance::purge_once(&app.ctx)
        .await
        .unwrap()
        != scimbus::service::maintenance::PurgeStep::Idle
    {}
    let page = pull_all(&app, "acme", &credential).await;
    let types = event_types(&page);
    assert_eq!(
        types
            .iter()
            .filter(|t| *t == "scimbus.user.deactivated")
            .count(),
        6
    );
    assert_eq!(
        types.last().map(String::as_str),
        Some("scimbus.tenant.deleted")
    );
}
