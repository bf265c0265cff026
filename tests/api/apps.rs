//! Application credentials (DESIGN 21): one secret that reads the events of a set of
//! tenants or of all of them, issued, listed and revoked through the admin API; the pull
//! API's tenant listing; tenants created later and deleted ones. The route × credential
//! matrix is in `isolation`.

use reqwest::Method;
use serde_json::{Value, json};

use crate::both_backends;
use crate::helpers::{Backend, TestApp, assert_scim_error, issue, spawn_app, user};
use crate::pull::event_types;
use scimbus::domain::Scope;
use scimbus::service::maintenance::{self, PurgeStep};

both_backends!(
    an_application_credential_is_issued_once_listed_without_secret_and_revoked_at_once,
    bad_credential_requests_answer_400_and_issue_nothing,
    a_set_credential_reads_its_tenants_only_and_lists_them,
    an_all_tenants_credential_follows_tenants_created_and_deleted_later,
    the_listing_pages_by_slug_and_a_tenant_token_lists_its_own_tenant,
);

pub(crate) async fn issue_app(app: &TestApp, body: Value) -> Value {
    let response = app.admin(Method::POST, "/apps", Some(body)).await;
    assert_eq!(response.status(), 201);
    response.json().await.unwrap()
}

async fn get(app: &TestApp, path: &str, token: &str) -> reqwest::Response {
    app.client
        .get(format!("{}{path}", app.address))
        .bearer_auth(token)
        .send()
        .await
        .unwrap()
}

async fn ok_json(response: reqwest::Response) -> Value {
    assert_eq!(response.status(), 200);
    response.json().await.unwrap()
}

fn slugs(page: &Value) -> Vec<(String, bool)> {
    page["tenants"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| {
            (
                t["tenant"].as_str().unwrap().to_owned(),
                t["deleted"].as_bool().unwrap(),
            )
        })
        .collect()
}

async fn an_application_credential_is_issued_once_listed_without_secret_and_revoked_at_once(
    backend: Backend,
) {
    let app = spawn_app(backend).await;
    let issued = issue_app(&app, json!({"name": "crm", "tenants": ["acme", "other"]})).await;
    let secret = issued["token"].as_str().unwrap().to_owned();
    assert!(secret.starts_with("scimbus_app_"), "{secret}");
    assert_eq!(issued["all_tenants"], false);
    assert_eq!(issued["tenants"], json!(["acme", "other"]));
    let id = issued["id"].as_str().unwrap().to_owned();

    let listed: Value = app
        .admin(Method::GET, "/apps", None)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(listed["apps"].as_array().unwrap().len(), 1);
    assert_eq!(listed["apps"][0]["id"], id.as_str());
    assert!(listed["apps"][0].get("token").is_none());
    assert!(
        !listed.to_string().contains(&secret),
        "the secret is never listed"
    );

    // It works, then fails on the very next request after the revocation.
    assert_eq!(get(&app, "/events/v1/acme", &secret).await.status(), 200);
    let response = app
        .admin(Method::DELETE, &format!("/apps/{id}"), None)
        .await;
    assert_eq!(response.status(), 204);
    for path in [
        "/events/v1/acme",
        "/events/v1",
        "/events/v1/acme/snapshot/Users",
    ] {
        let response = get(&app, path, &secret).await;
        assert_eq!(response.status(), 401, "{path}");
        assert!(response.headers().contains_key("www-authenticate"));
    }
    // Revoked once: a second revocation finds no live credential.
    let response = app
        .admin(Method::DELETE, &format!("/apps/{id}"), None)
        .await;
    assert_scim_error(response, 404, None).await;

    let audit = app.audit_of("", "app.").await;
    let actions: Vec<(&str, &str)> = audit
        .iter()
        .map(|e| (e["action"].as_str().unwrap(), e["target"].as_str().unwrap()))
        .collect();
    assert_eq!(
        actions,
        [("app.issue", id.as_str()), ("app.revoke", id.as_str())]
    );
    let everything = Value::from(app.audit_of("", "").await);
    assert!(!everything.to_string().contains(&secret));
}

async fn bad_credential_requests_answer_400_and_issue_nothing(backend: Backend) {
    let app = spawn_app(backend).await;
    for body in [
        json!({"name": "crm"}),
        json!({"name": "crm", "tenants": []}),
        json!({"name": "crm", "tenants": ["acme"], "all_tenants": true}),
        json!({"name": "crm", "tenants": ["nobody"]}),
        json!({"name": "crm", "tenants": ["Not A Slug"]}),
        json!({"name": "", "all_tenants": true}),
        json!({"name": "crm", "all_tenants": true, "expires_at": "tomorrow"}),
        json!({"name": "crm", "all_tenants": true, "expires_at": "2020-01-01T00:00:00Z"}),
        json!({"name": "crm", "all_tenants": true, "scopes": ["scim"]}),
    ] {
        let response = app.admin(Method::POST, "/apps", Some(body.clone())).await;
        assert_eq!(response.status(), 400, "{body}");
        let error: Value = response.json().await.unwrap();
        assert!(
            ["invalidValue", "invalidSyntax"].contains(&error["scimType"].as_str().unwrap()),
            "{body}: {error}"
        );
    }
    let listed: Value = app
        .admin(Method::GET, "/apps", None)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(listed["apps"], json!([]));
}

async fn a_set_credential_reads_its_tenants_only_and_lists_them(backend: Backend) {
    let app = spawn_app(backend).await;
    app.create_user(&user("bjensen")).await;
    let issued = issue_app(&app, json!({"name": "crm", "tenants": ["acme"]})).await;
    let secret = issued["token"].as_str().unwrap();

    let page = ok_json(get(&app, "/events/v1/acme?after=1", secret).await).await;
    assert_eq!(event_types(&page), ["scimbus.user.created"]);
    let snapshot = ok_json(get(&app, "/events/v1/acme/snapshot/Users", secret).await).await;
    assert_eq!(snapshot["events"].as_array().unwrap().len(), 1);
    // Another tenant's events: the same 401 as an unknown token.
    let refused = get(&app, "/events/v1/other", secret).await;
    let unknown = get(&app, "/events/v1/other", "scimbus_app_unknown").await;
    assert_eq!(refused.status(), 401);
    assert_eq!(unknown.status(), 401);
    assert_eq!(
        refused.json::<Value>().await.unwrap(),
        unknown.json::<Value>().await.unwrap()
    );
    // Never SCIM, never admin.
    for (method, path) in [
        (Method::GET, "/scim/v2/acme/Users"),
        (Method::POST, "/scim/v2/acme/Users"),
        (Method::GET, "/admin/v1/tenants"),
    ] {
        let response = app
            .client
            .request(method.clone(), format!("{}{path}", app.address))
            .bearer_auth(secret)
            .json(&user("intruder"))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 401, "{method} {path}");
    }
    assert_eq!(app.user_count().await, 1);

    let listing = ok_json(get(&app, "/events/v1", secret).await).await;
    assert_eq!(slugs(&listing), [("acme".to_owned(), false)]);
    assert_eq!(listing["allTenants"], false);
    assert_eq!(listing["hasMore"], false);
    // A tenant created later is not in a set.
    let response = app
        .admin(Method::POST, "/tenants", Some(json!({"slug": "globex"})))
        .await;
    assert_eq!(response.status(), 201);
    assert_eq!(get(&app, "/events/v1/globex", secret).await.status(), 401);
}

async fn an_all_tenants_credential_follows_tenants_created_and_deleted_later(backend: Backend) {
    let app = spawn_app(backend).await;
    let issued = issue_app(&app, json!({"name": "crm", "all_tenants": true})).await;
    let secret = issued["token"].as_str().unwrap();
    assert_eq!(issued["tenants"], json!([]));
    let listing = ok_json(get(&app, "/events/v1", secret).await).await;
    assert_eq!(listing["allTenants"], true);
    assert_eq!(
        slugs(&listing),
        [("acme".to_owned(), false), ("other".to_owned(), false)]
    );

    // A tenant created after the credential: listed and readable, from its tenant.created.
    let response = app
        .admin(Method::POST, "/tenants", Some(json!({"slug": "globex"})))
        .await;
    assert_eq!(response.status(), 201);
    let listing = ok_json(get(&app, "/events/v1", secret).await).await;
    assert!(slugs(&listing).contains(&("globex".to_owned(), false)));
    let page = ok_json(get(&app, "/events/v1/globex", secret).await).await;
    assert_eq!(event_types(&page), ["scimbus.tenant.created"]);

    // A deleted tenant stays readable until retention removes it, so the app hears of
    // the deletion; its snapshots are gone at once.
    let globex_scim = issue(&app.ctx, "globex", vec![Scope::Scim]).await;
    let response = app
        .client
        .post(format!("{}/scim/v2/globex/Users", app.address))
        .bearer_auth(&globex_scim)
        .json(&user("gone-soon"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 201);
    let response = app.admin(Method::DELETE, "/tenants/globex", None).await;
    assert_eq!(response.status(), 204);
    while maintenance::purge_once(&app.ctx).await.unwrap() != PurgeStep::Idle {}
    let listing = ok_json(get(&app, "/events/v1", secret).await).await;
    assert!(slugs(&listing).contains(&("globex".to_owned(), true)));
    let page = ok_json(get(&app, "/events/v1/globex", secret).await).await;
    assert_eq!(
        event_types(&page),
        [
            "scimbus.tenant.created",
            "scimbus.user.created",
            "scimbus.tenant.deleted"
        ]
    );
    let response = get(&app, "/events/v1/globex/snapshot/Users", secret).await;
    assert_scim_error(response, 404, None).await;
    // The deleted tenant's own tokens are revoked.
    let response = app
        .client
        .get(format!("{}/scim/v2/globex/Users", app.address))
        .bearer_auth(&globex_scim)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 401);
}

async fn the_listing_pages_by_slug_and_a_tenant_token_lists_its_own_tenant(backend: Backend) {
    let app = spawn_app(backend).await;
    for slug in ["t1", "t2", "t3"] {
        let response = app
            .admin(Method::POST, "/tenants", Some(json!({"slug": slug})))
            .await;
        assert_eq!(response.status(), 201);
    }
    let issued = issue_app(&app, json!({"name": "crm", "all_tenants": true})).await;
    let secret = issued["token"].as_str().unwrap();
    let mut seen = Vec::new();
    let mut after = String::new();
    loop {
        let page =
            ok_json(get(&app, &format!("/events/v1?limit=2&after={after}"), secret).await).await;
        let got = slugs(&page);
        assert!(got.len() <= 2);
        seen.extend(got.into_iter().map(|(s, _)| s));
        if page["hasMore"] == false {
            assert_eq!(page["next"], Value::Null);
            break;
        }
        after = page["next"].as_str().unwrap().to_owned();
    }
    assert_eq!(seen, ["acme", "other", "t1", "t2", "t3"]);
    for query in ["?limit=0", "?limit=1001", "?limit=ten"] {
        let response = get(&app, &format!("/events/v1{query}"), secret).await;
        assert_scim_error(response, 400, Some("invalidValue")).await;
    }

    let events = issue(&app.ctx, "other", vec![Scope::EventsRead]).await;
    let listing = ok_json(get(&app, "/events/v1", &events).await).await;
    assert_eq!(slugs(&listing), [("other".to_owned(), false)]);
    assert_eq!(listing["allTenants"], false);
    let response = get(&app, "/events/v1", &app.token).await;
    let body = assert_scim_error(response, 403, None).await;
    assert!(body["detail"].as_str().unwrap().contains("events:read"));
    assert_eq!(get(&app, "/events/v1", "nope").await.status(), 401);
}
