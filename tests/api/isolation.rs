//! The isolation matrix (DESIGN 15), generated from the OpenAPI document so that a new
//! route is covered the day it is added: every route × method × credential answers the
//! status the design names, and nothing of another tenant shows in any answer or event.

use chrono::TimeDelta;
use reqwest::Method;
use serde_json::{Value, json};

use crate::both_backends;
use crate::helpers::{ADMIN_TOKEN, Backend, TestApp, issue, spawn_app, user};
use scimbus::clock::Clock;
use scimbus::domain::Scope;
use scimbus::service::apps::{self, AppRequest, TenantScope};
use scimbus::service::audit::Actor;
use scimbus::service::tenants::{self, TokenRequest};

both_backends!(
    every_405_names_the_methods_its_resource_takes,
    every_route_and_method_answers_each_bad_credential_as_design_15_says,
    no_answer_or_event_of_a_tenant_holds_another_tenants_data,
);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Area {
    Scim,
    Events,
    Admin,
    Open,
}

fn area(path: &str) -> Area {
    if path.starts_with("/scim/") {
        Area::Scim
    } else if path.starts_with("/events/") {
        Area::Events
    } else if path.starts_with("/admin/") {
        Area::Admin
    } else {
        Area::Open
    }
}

/// Every (method, concrete path) of the document, with acme's ids in the placeholders.
fn routes(user_id: &str, group_id: &str) -> Vec<(Method, String, Area)> {
    let doc: Value =
        serde_json::from_str(&scimbus::http::openapi::document_json().unwrap()).unwrap();
    let mut out = Vec::new();
    for (path, item) in doc["paths"].as_object().unwrap() {
        let id = if path.contains("/Groups/") || path.contains("{kind}") {
            group_id
        } else {
            user_id
        };
        let concrete = path
            .replace("{tenant}", "acme")
            .replace("{slug}", "acme")
            .replace("{kind}", "Groups")
            .replace("{name}", "User")
            .replace("{urn}", "urn:ietf:params:scim:schemas:core:2.0:User")
            .replace("{id}", id);
        for method in item.as_object().unwrap().keys() {
            let method = Method::from_bytes(method.to_uppercase().as_bytes()).unwrap();
            out.push((method, concrete.clone(), area(path)));
        }
    }
    assert!(out.len() > 30, "{out:?}");
    out
}

async fn call(app: &TestApp, method: &Method, path: &str, auth: Option<&str>) -> u16 {
    let mut request = app
        .client
        .request(method.clone(), format!("{}{path}", app.address));
    if let Some(token) = auth {
        request = request.bearer_auth(token);
    }
    if matches!(*method, Method::POST | Method::PUT | Method::PATCH) {
        request = request.json(&json!({}));
    }
    request.send().await.unwrap().status().as_u16()
}

async fn every_route_and_method_answers_each_bad_credential_as_design_15_says(backend: Backend) {
    let app = spawn_app(backend).await;
    let victim = app.create_user(&user("victim")).await;
    let user_id = victim["id"].as_str().unwrap().to_owned();
    let group = app
        .post(
            "/Groups",
            &json!({"schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group"], "displayName": "G"}),
        )
        .await
        .json::<Value>()
        .await
        .unwrap();
    let group_id = group["id"].as_str().unwrap().to_owned();

    let scim_only = app.token.clone();
    let events_only = issue(&app.ctx, "acme", vec![Scope::EventsRead]).await;
    let other_tenant = issue(&app.ctx, "other", vec![Scope::Scim, Scope::EventsRead]).await;
    let revoked = issue(&app.ctx, "acme", vec![Scope::Scim, Scope::EventsRead]).await;
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
    let (_, expired) = tenants::issue_token(
        &app.ctx,
        &Actor::system(),
        "acme",
        TokenRequest {
            name: "short".into(),
            scopes: vec![Scope::Scim, Scope::EventsRead],
            expires_at: Some(app.clock.now() + TimeDelta::minutes(1)),
        },
    )
    .await
    .unwrap();
    // Application credentials: acme's, other's only, every tenant's, revoked, expired.
    let app_of = |tenants: TenantScope, minutes: Option<i64>| {
        let ctx = app.ctx.clone();
        let expires_at = minutes.map(|m| app.clock.now() + TimeDelta::minutes(m));
        async move {
            let request = AppRequest {
                name: "crm".into(),
                tenants,
                expires_at,
            };
            let (info, secret) = apps::issue(&ctx, &Actor::system(), request).await.unwrap();
            (
                info.id,
                secrecy::ExposeSecret::expose_secret(&secret).to_owned(),
            )
        }
    };
    let (_, app_acme) = app_of(TenantScope::Only(vec!["acme".into()]), None).await;
    let (_, app_other) = app_of(TenantScope::Only(vec!["other".into()]), None).await;
    let (_, app_all) = app_of(TenantScope::All, None).await;
    let (revoked_app_id, app_revoked) = app_of(TenantScope::All, None).await;
    apps::revoke(&app.ctx, &Actor::system(), &revoked_app_id)
        .await
        .unwrap();
    let (_, app_expired) = app_of(TenantScope::All, Some(1)).await;
    app.clock.advance(TimeDelta::minutes(2));
    let expired = secrecy::ExposeSecret::expose_secret(&expired).to_owned();

    let mut checked = 0;
    for (method, path, area) in routes(&user_id, &group_id) {
        // (credential, token) → expected status on this route; `None`: authenticated
        // (whatever the route answers, neither 401 nor 403).
        let listing = path == "/events/v1";
        let cases: Vec<(&str, Option<&str>, Option<u16>)> = match area {
            Area::Scim => vec![
                ("none", None, Some(401)),
                ("revoked", Some(&revoked), Some(401)),
                ("expired", Some(&expired), Some(401)),
                ("other tenant's", Some(&other_tenant), Some(401)),
                ("admin token", Some(ADMIN_TOKEN), Some(401)),
                ("without the scim scope", Some(&events_only), Some(403)),
                ("acme's application credential", Some(&app_acme), Some(401)),
                (
                    "an all-tenants application credential",
                    Some(&app_all),
                    Some(401),
                ),
            ],
            Area::Events => vec![
                ("none", None, Some(401)),
                ("revoked", Some(&revoked), Some(401)),
                ("expired", Some(&expired), Some(401)),
                // The listing is not of one tenant: it lists the token's own.
                (
                    "other tenant's",
                    Some(&other_tenant),
                    (!listing).then_some(401),
                ),
                ("admin token", Some(ADMIN_TOKEN), Some(401)),
                ("without events:read", Some(&scim_only), Some(403)),
                ("acme's application credential", Some(&app_acme), None),
                (
                    "an all-tenants application credential",
                    Some(&app_all),
                    None,
                ),
                (
                    "other's application credential",
                    Some(&app_other),
                    (!listing).then_some(401),
                ),
                (
                    "a revoked application credential",
                    Some(&app_revoked),
                    Some(401),
                ),
                (
                    "an expired application credential",
                    Some(&app_expired),
                    Some(401),
                ),
            ],
            Area::Admin => vec![
                ("none", None, Some(401)),
                ("a SCIM token", Some(&scim_only), Some(401)),
                ("an events token", Some(&events_only), Some(401)),
                (
                    "an all-tenants application credential",
                    Some(&app_all),
                    Some(401),
                ),
            ],
            Area::Open => continue,
        };
        for (credential, token, expected) in cases {
            let status = call(&app, &method, &path, token).await;
            match expected {
                Some(expected) => assert_eq!(
                    status, expected,
                    "{method} {path} with {credential} credentials"
                ),
                None => assert!(
                    status != 401 && status != 403,
                    "{method} {path} with {credential} credentials: {status}"
                ),
            }
            checked += 1;
        }
    }
    assert!(checked > 250, "{checked}");
    // Nothing of the above wrote anything.
    assert_eq!(app.user_count().await, 1);
}

async fn no_answer_or_event_of_a_tenant_holds_another_tenants_data(backend: Backend) {
    let app = spawn_app(backend).await;
    let mine = app.create_user(&user("mine")).await;
    let other_token = issue(&app.ctx, "other", vec![Scope::Scim, Scope::EventsRead]).await;
    let theirs: Value = app
        .client
        .post(format!("{}/scim/v2/other/Users", app.address))
        .bearer_auth(&other_token)
        .json(&user("theirs-secret-name"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let their_id = theirs["id"].as_str().unwrap();
    let events_token = issue(&app.ctx, "acme", vec![Scope::Scim, Scope::EventsRead]).await;

    // Every GET of acme, with acme's full credentials, including ones naming the other
    // tenant's resource id.
    let mut bodies = Vec::new();
    for (method, path, area) in routes(their_id, their_id) {
        if method != Method::GET || matches!(area, Area::Open) {
            continue;
        }
        let token = match area {
            Area::Admin => ADMIN_TOKEN,
            _ => events_token.as_str(),
        };
        let response = app
            .client
            .get(format!("{}{path}", app.address))
            .bearer_auth(token)
            .send()
            .await
            .unwrap();
        let status = response.status().as_u16();
        let body = response.text().await.unwrap();
        if path.contains(their_id) {
            // The 404 may echo the id the request itself named; nothing more.
            assert_eq!(status, 404, "{path}: {body}");
            assert!(!body.contains("theirs-secret-name"), "{path}: {body}");
        } else if !path.starts_with("/admin/") {
            bodies.push((path, body));
        }
    }
    for query in [
        "/scim/v2/acme/Users?filter=userName%20eq%20%22theirs-secret-name%22",
        "/scim/v2/acme/Users?count=1000",
        "/events/v1/acme?limit=1000",
        "/events/v1/acme/snapshot/Users?limit=1000",
    ] {
        let body = app
            .client
            .get(format!("{}{query}", app.address))
            .bearer_auth(&events_token)
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        bodies.push((query.to_owned(), body));
    }
    for (path, body) in &bodies {
        assert!(
            !body.contains(their_id) && !body.contains("theirs-secret-name"),
            "{path} shows the other tenant's data: {body}"
        );
    }
    assert!(
        bodies
            .iter()
            .any(|(_, b)| b.contains(mine["id"].as_str().unwrap()))
    );
    // acme's events name only acme's resources.
    for event in app.events().await {
        let text = event.payload.to_string();
        assert!(!text.contains(their_id) && !text.contains("theirs-secret-name"));
        assert_eq!(event.payload["tenant"], "acme");
    }
}

/// RFC 9110 §15.5.6: a 405 carries `Allow` with the resource's methods — here exactly the
/// operations the OpenAPI document lists for the path, for every path of the document.
async fn every_405_names_the_methods_its_resource_takes(backend: Backend) {
    let app = spawn_app(backend).await;
    let both = issue(&app.ctx, "acme", vec![Scope::Scim, Scope::EventsRead]).await;
    let doc: Value =
        serde_json::from_str(&scimbus::http::openapi::document_json().unwrap()).unwrap();
    let mut checked = 0;
    for (path, item) in doc["paths"].as_object().unwrap() {
        let mut methods: Vec<String> = item
            .as_object()
            .unwrap()
            .keys()
            .map(|m| m.to_uppercase())
            .collect();
        methods.sort();
        let concrete = path
            .replace("{tenant}", "acme")
            .replace("{slug}", "acme")
            .replace("{kind}", "Users")
            .replace("{name}", "User")
            .replace("{urn}", "urn:ietf:params:scim:schemas:core:2.0:User")
            .replace("{id}", "some-id");
        let token = match area(path) {
            Area::Scim | Area::Events => Some(both.as_str()),
            Area::Admin => Some(ADMIN_TOKEN),
            Area::Open => None,
        };
        let mut request = app
            .client
            .request(Method::TRACE, format!("{}{concrete}", app.address));
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        let response = request.send().await.unwrap();
        assert_eq!(response.status(), 405, "TRACE {path}");
        let allow = response
            .headers()
            .get("allow")
            .unwrap_or_else(|| panic!("TRACE {path}: no Allow header"))
            .to_str()
            .unwrap()
            .to_owned();
        assert_eq!(allow, methods.join(", "), "TRACE {path}");
        checked += 1;
    }
    assert!(checked > 30, "{checked}");
}
