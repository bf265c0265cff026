//! Authentication before routing: the same 401 for every credential failure whether the
//! tenant exists or not; 403 for a live token without the scope; no cache that outlives a
//! revocation; tenant isolation.

use chrono::TimeDelta;
use reqwest::Method;
use scimbus::clock::Clock;
use scimbus::domain::Scope;
use scimbus::service::audit::Actor;
use scimbus::service::tenants::{self, TokenRequest};
use secrecy::ExposeSecret;
use serde_json::{Value, json};

use crate::both_backends;
use crate::helpers::{ADMIN_TOKEN, Backend, TestApp, assert_scim_error, issue, spawn_app, user};

both_backends!(
    a_token_over_its_rate_limit_gets_429_with_retry_after_and_others_go_on,
    every_credential_failure_answers_the_same_401_on_every_route_of_every_tenant,
    a_revoked_token_fails_on_the_very_next_request,
    an_expired_token_fails_once_the_clock_passes_its_expiry,
    a_live_token_without_the_scim_scope_answers_403_insufficient_scope,
    a_tenant_sees_nothing_of_another_tenant,
    deleting_a_tenant_revokes_its_tokens_at_once,
);

/// The routes of a tenant, with a body where the method takes one.
fn routes(user_id: &str) -> Vec<(Method, String, Option<Value>)> {
    vec![
        (Method::GET, "/Users".to_owned(), None),
        (Method::POST, "/Users".to_owned(), Some(user("intruder"))),
        (Method::GET, format!("/Users/{user_id}"), None),
        (
            Method::PUT,
            format!("/Users/{user_id}"),
            Some(user("intruder")),
        ),
        (
            Method::PATCH,
            format!("/Users/{user_id}"),
            Some(crate::groups::patch_op(
                serde_json::json!([{"op": "add", "path": "nickName", "value": "x"}]),
            )),
        ),
        (Method::DELETE, format!("/Users/{user_id}"), None),
        (
            Method::POST,
            "/Users/.search".to_owned(),
            Some(serde_json::json!({})),
        ),
        (Method::GET, "/Groups".to_owned(), None),
        (
            Method::POST,
            "/Groups".to_owned(),
            Some(crate::groups::group("intruders", &[])),
        ),
        (Method::GET, format!("/Groups/{user_id}"), None),
        (
            Method::PUT,
            format!("/Groups/{user_id}"),
            Some(crate::groups::group("intruders", &[])),
        ),
        (
            Method::PATCH,
            format!("/Groups/{user_id}"),
            Some(crate::groups::patch_op(
                serde_json::json!([{"op": "remove", "path": "members"}]),
            )),
        ),
        (Method::DELETE, format!("/Groups/{user_id}"), None),
        (
            Method::POST,
            "/.search".to_owned(),
            Some(serde_json::json!({})),
        ),
        (Method::GET, "/ServiceProviderConfig".to_owned(), None),
        (Method::GET, "/ResourceTypes".to_owned(), None),
        (Method::GET, "/Schemas".to_owned(), None),
        (Method::GET, "/Me".to_owned(), None),
        (Method::GET, "/Nope".to_owned(), None),
    ]
}

async fn call(
    app: &TestApp,
    method: Method,
    url: &str,
    token: Option<&str>,
    body: Option<&Value>,
) -> reqwest::Response {
    let mut request = app.client.request(method, url);
    if let Some(token) = token {
        request = request.header("Authorization", token);
    }
    if let Some(body) = body {
        request = request
            .header("Content-Type", "application/scim+json")
            .body(body.to_string());
    }
    request.send().await.unwrap()
}

async fn every_credential_failure_answers_the_same_401_on_every_route_of_every_tenant(
    backend: Backend,
) {
    let app = spawn_app(backend).await;
    let victim = app.create_user(&user("victim")).await;
    let id = victim["id"].as_str().unwrap().to_owned();

    let revoked = issue(&app.ctx, "acme", vec![Scope::Scim]).await;
    let revoked_id = tenants::list_tokens(&app.ctx, "acme")
        .await
        .unwrap()
        .last()
        .unwrap()
        .id
        .clone();
    tenants::revoke_token(&app.ctx, &Actor::system(), "acme", &revoked_id)
        .await
        .unwrap();
    let (_, expiring) = tenants::issue_token(
        &app.ctx,
        &Actor::system(),
        "acme",
        TokenRequest {
            name: "short".into(),
            scopes: vec![Scope::Scim],
            expires_at: Some(app.clock.now() + TimeDelta::minutes(5)),
        },
    )
    .await
    .unwrap();
    app.clock.advance(TimeDelta::minutes(6));
    let other_tenant = issue(&app.ctx, "other", vec![Scope::Scim]).await;

    let credentials: Vec<(&str, Option<String>)> = vec![
        ("missing", None),
        (
            "unknown",
            Some("Bearer scimbus_t_not-a-real-token".to_owned()),
        ),
        ("not bearer", Some(format!("Basic {}", app.token))),
        ("empty bearer", Some("Bearer ".to_owned())),
        ("revoked", Some(format!("Bearer {revoked}"))),
        (
            "expired",
            Some(format!("Bearer {}", expiring.expose_secret())),
        ),
        ("other tenant", Some(format!("Bearer {other_tenant}"))),
        ("admin", Some(format!("Bearer {ADMIN_TOKEN}"))),
    ];
    let mut reference: Option<(Value, String)> = None;
    for tenant in ["acme", "ghost", "Not_A_Slug"] {
        for (case, credential) in &credentials {
            for (method, path, body) in routes(&id) {
                let url = format!("{}/scim/v2/{tenant}{path}", app.address);
                let response = call(
                    &app,
                    method.clone(),
                    &url,
                    credential.as_deref(),
                    body.as_ref(),
                )
                .await;
                let challenge = response.headers()["www-authenticate"]
                    .to_str()
                    .unwrap()
                    .to_owned();
                assert!(challenge.starts_with("Bearer"), "{case} {method} {url}");
                let body = assert_scim_error(response, 401, None).await;
                match &reference {
                    None => reference = Some((body, challenge)),
                    Some(first) => assert_eq!(first, &(body, challenge), "{case} {method} {url}"),
                }
            }
        }
    }
    // Nothing happened to the victim.
    let fetched: Value = app.get(&format!("/Users/{id}")).await.json().await.unwrap();
    assert_eq!(fetched, victim);
    assert_eq!(app.events().await.len(), 1);
}

async fn a_revoked_token_fails_on_the_very_next_request(backend: Backend) {
    let app = spawn_app(backend).await;
    assert_eq!(app.get("/Users").await.status(), 200);
    let id = tenants::list_tokens(&app.ctx, "acme").await.unwrap()[0]
        .id
        .clone();
    tenants::revoke_token(&app.ctx, &Actor::system(), "acme", &id)
        .await
        .unwrap();
    assert_scim_error(app.get("/Users").await, 401, None).await;
}

async fn an_expired_token_fails_once_the_clock_passes_its_expiry(backend: Backend) {
    let app = spawn_app(backend).await;
    let (_, secret) = tenants::issue_token(
        &app.ctx,
        &Actor::system(),
        "acme",
        TokenRequest {
            name: "short".into(),
            scopes: vec![Scope::Scim],
            expires_at: Some(app.clock.now() + TimeDelta::hours(1)),
        },
    )
    .await
    .unwrap();
    let url = app.url("/Users");
    let bearer = format!("Bearer {}", secret.expose_secret());
    assert_eq!(
        call(&app, Method::GET, &url, Some(&bearer), None)
            .await
            .status(),
        200
    );
    app.clock.advance(TimeDelta::hours(1));
    assert_scim_error(
        call(&app, Method::GET, &url, Some(&bearer), None).await,
        401,
        None,
    )
    .await;
}

async fn a_live_token_without_the_scim_scope_answers_403_insufficient_scope(backend: Backend) {
    let app = spawn_app(backend).await;
    let events_only = issue(&app.ctx, "acme", vec![Scope::EventsRead]).await;
    let response = call(
        &app,
        Method::GET,
        &app.url("/Users"),
        Some(&format!("Bearer {events_only}")),
        None,
    )
    .await;
    let challenge = response.headers()["www-authenticate"]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(
        challenge.contains("error=\"insufficient_scope\""),
        "{challenge}"
    );
    assert!(challenge.contains("scope=\"scim\""), "{challenge}");
    assert_scim_error(response, 403, None).await;
    let post = call(
        &app,
        Method::POST,
        &app.url("/Users"),
        Some(&format!("Bearer {events_only}")),
        Some(&user("x")),
    )
    .await;
    assert_scim_error(post, 403, None).await;
    assert_eq!(app.user_count().await, 0);
}

async fn a_tenant_sees_nothing_of_another_tenant(backend: Backend) {
    let app = spawn_app(backend).await;
    let acme_user = app.create_user(&user("shared-name")).await;
    let id = acme_user["id"].as_str().unwrap();
    let other = format!(
        "Bearer {}",
        issue(&app.ctx, "other", vec![Scope::Scim]).await
    );
    let other_base = format!("{}/scim/v2/other", app.address);

    let list: Value = call(
        &app,
        Method::GET,
        &format!("{other_base}/Users"),
        Some(&other),
        None,
    )
    .await
    .json()
    .await
    .unwrap();
    assert_eq!(list["totalResults"], 0);
    let by_id = format!("{other_base}/Users/{id}");
    assert_scim_error(
        call(&app, Method::GET, &by_id, Some(&other), None).await,
        404,
        None,
    )
    .await;
    assert_scim_error(
        call(
            &app,
            Method::PUT,
            &by_id,
            Some(&other),
            Some(&user("stolen")),
        )
        .await,
        404,
        None,
    )
    .await;
    assert_scim_error(
        call(&app, Method::DELETE, &by_id, Some(&other), None).await,
        404,
        None,
    )
    .await;
    let filtered: Value = call(
        &app,
        Method::GET,
        &format!("{other_base}/Users?filter=id%20eq%20%22{id}%22"),
        Some(&other),
        None,
    )
    .await
    .json()
    .await
    .unwrap();
    assert_eq!(filtered["totalResults"], 0);
    // The same userName is free in another tenant.
    let created = call(
        &app,
        Method::POST,
        &format!("{other_base}/Users"),
        Some(&other),
        Some(&user("shared-name")),
    )
    .await;
    assert_eq!(created.status(), 201);
    // And acme's user is untouched, its events only in acme's outbox.
    assert_eq!(
        app.get(&format!("/Users/{id}"))
            .await
            .json::<Value>()
            .await
            .unwrap(),
        acme_user
    );
    assert_eq!(app.events().await.len(), 1);
    let other_events = app.events_of("other").await;
    assert_eq!(other_events.len(), 1);
    assert_eq!(other_events[0].payload["tenant"], json!("other"));
    assert_eq!(other_events[0].sequence, 2, "after other's tenant.created");
}

async fn deleting_a_tenant_revokes_its_tokens_at_once(backend: Backend) {
    let app = spawn_app(backend).await;
    assert_eq!(app.get("/Users").await.status(), 200);
    tenants::delete_tenant(&app.ctx, &Actor::system(), "acme")
        .await
        .unwrap();
    assert_scim_error(app.get("/Users").await, 401, None).await;
    // Its slug is not reusable while its events are retained.
    assert!(
        tenants::create_tenant(&app.ctx, &Actor::system(), "acme")
            .await
            .is_err()
    );
}

async fn a_token_over_its_rate_limit_gets_429_with_retry_after_and_others_go_on(backend: Backend) {
    let app = crate::helpers::spawn_app_with(
        backend,
        &[
            // One request a minute, bursts of two: the third at once is over.
            ("SCIMBUS_RATE_LIMIT", "1/min".to_owned()),
            ("SCIMBUS_RATE_LIMIT_TENANTS", "other=off".to_owned()),
        ],
    )
    .await;
    assert_eq!(app.get("/Users").await.status(), 200);
    assert_eq!(app.get("/Users").await.status(), 200);
    let limited = app.get("/Users").await;
    let retry_after: u64 = limited.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=60).contains(&retry_after), "{retry_after}");
    crate::helpers::assert_scim_error(limited, 429, None).await;
    // A write over the limit changes nothing.
    let refused = app.post("/Users", &crate::helpers::user("bjensen")).await;
    assert_eq!(refused.status(), 429);
    assert!(app.events().await.is_empty());
    // Another token of the same tenant has its own budget.
    let second = crate::helpers::issue(&app.ctx, "acme", vec![scimbus::domain::Scope::Scim]).await;
    let response = app
        .client
        .get(app.url("/Users"))
        .bearer_auth(&second)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    // A tenant with the limit off is never limited.
    let other = crate::helpers::issue(&app.ctx, "other", vec![scimbus::domain::Scope::Scim]).await;
    for _ in 0..5 {
        let response = app
            .client
            .get(format!("{}/scim/v2/other/Users", app.address))
            .bearer_auth(&other)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200);
    }
    let metrics = app.metrics_text().await;
    assert!(
        metrics.contains("scimbus_rate_limited_requests_total{tenant=\"acme\"} 2"),
        "{metrics}"
    );
}
