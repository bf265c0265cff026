//! The mass-deprovisioning brake (DESIGN 20) over HTTP: an Entra- or Okta-shaped burst of
//! deactivations trips it while the IdP gets its usual answers; the tenant's lane holds
//! (RabbitMQ, the pull API and snapshots reveal nothing from the first event over the
//! threshold on) while other tenants flow; release delivers everything in order; after
//! the IdP corrects itself, discard drops the held deactivations and delivers the rest;
//! the hold survives a restart and replicas count together.

use reqwest::Method;
use serde_json::{Value, json};

use crate::helpers::{TestApp, user};

mod holds;
mod trips;

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

async fn pull_all(app: &TestApp, tenant: &str, token: &str) -> Value {
    let response = app.events_api(tenant, "?after=1&limit=1000", token).await;
    assert_eq!(response.status(), 200);
    response.json().await.unwrap()
}
