//! Holds: counted across replicas and kept over a restart, snapshots refused, automatic
//! release, a held tenant's deletion.

use reqwest::Method;
use scimbus::domain::Scope;
use scimbus::startup::Application;
use serde_json::{Value, json};

use crate::both_backends;
use crate::helpers::{Backend, issue, settings, spawn_app};
use crate::pull::event_types;

use super::{brake, configure, create_users, entra_deactivate, pull_all, small_brake};

both_backends!(
    a_snapshot_read_while_the_brake_trips_is_refused,
    a_hold_with_an_auto_release_ends_by_itself_after_its_time,
    deleting_a_held_tenant_lets_its_events_and_its_deletion_flow,
);

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
