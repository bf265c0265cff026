//! `/admin/v1`: tenants and tokens through named admin tokens.

use serde_json::{Value, json};

use crate::both_backends;
use crate::helpers::{ADMIN_TOKEN, Backend, assert_scim_error, spawn_app, user};

both_backends!(
    an_admin_creates_a_tenant_and_a_token_that_works_on_scim,
    the_token_secret_is_shown_once_and_never_listed,
    a_revoked_token_fails_on_the_next_request,
    deleting_a_tenant_over_the_admin_api_disables_it,
    bad_admin_input_answers_400_and_taken_slugs_409,
    a_wrong_admin_token_answers_401,
);

async fn an_admin_creates_a_tenant_and_a_token_that_works_on_scim(backend: Backend) {
    let app = spawn_app(backend).await;
    let created = app
        .admin(
            reqwest::Method::POST,
            "/tenants",
            Some(json!({"slug": "globex"})),
        )
        .await;
    assert_eq!(created.status(), 201);
    assert_eq!(created.json::<Value>().await.unwrap()["slug"], "globex");
    let issued = app
        .admin(
            reqwest::Method::POST,
            "/tenants/globex/tokens",
            Some(json!({"name": "okta"})),
        )
        .await;
    assert_eq!(issued.status(), 201);
    let issued: Value = issued.json().await.unwrap();
    assert_eq!(issued["scopes"], json!(["scim"]));
    let secret = issued["token"].as_str().unwrap();
    assert!(secret.starts_with("scimbus_t_"));
    let response = app
        .client
        .post(format!("{}/scim/v2/globex/Users", app.address))
        .bearer_auth(secret)
        .json(&user("bjensen"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 201);
    let tenants: Value = app
        .admin(reqwest::Method::GET, "/tenants", None)
        .await
        .json()
        .await
        .unwrap();
    let slugs: Vec<&str> = tenants["tenants"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["slug"].as_str().unwrap())
        .collect();
    assert_eq!(slugs, vec!["acme", "globex", "other"]);
    let one = app
        .admin(reqwest::Method::GET, "/tenants/globex", None)
        .await;
    assert_eq!(one.status(), 200);
}

async fn the_token_secret_is_shown_once_and_never_listed(backend: Backend) {
    let app = spawn_app(backend).await;
    let issued: Value = app.admin(reqwest::Method::POST,
        "/tenants/acme/tokens",
        Some(json!({"name": "entra", "scopes": ["scim", "events:read"], "expires_at": "2030-01-01T00:00:00Z"})),
    )
    .await
    .json()
    .await
    .unwrap();
    assert_eq!(issued["scopes"], json!(["scim", "events:read"]));
    assert_eq!(issued["expires_at"], "2030-01-01T00:00:00.000Z");
    let secret = issued["token"].as_str().unwrap();
    let listing = app
        .admin(reqwest::Method::GET, "/tenants/acme/tokens", None)
        .await
        .text()
        .await
        .unwrap();
    assert!(!listing.contains(secret));
    assert!(!listing.contains("\"token\""));
    let listing: Value = serde_json::from_str(&listing).unwrap();
    let names: Vec<&str> = listing["tokens"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, vec!["test", "entra"]);
}

async fn a_revoked_token_fails_on_the_next_request(backend: Backend) {
    let app = spawn_app(backend).await;
    let listing: Value = app
        .admin(reqwest::Method::GET, "/tenants/acme/tokens", None)
        .await
        .json()
        .await
        .unwrap();
    let id = listing["tokens"][0]["id"].as_str().unwrap();
    assert_eq!(app.get("/Users").await.status(), 200);
    let revoked = app
        .admin(
            reqwest::Method::DELETE,
            &format!("/tenants/acme/tokens/{id}"),
            None,
        )
        .await;
    assert_eq!(revoked.status(), 204);
    assert_scim_error(app.get("/Users").await, 401, None).await;
    let again = app
        .admin(
            reqwest::Method::DELETE,
            &format!("/tenants/acme/tokens/{id}"),
            None,
        )
        .await;
    assert_scim_error(again, 404, None).await;
}

async fn deleting_a_tenant_over_the_admin_api_disables_it(backend: Backend) {
    let app = spawn_app(backend).await;
    let deleted = app
        .admin(reqwest::Method::DELETE, "/tenants/acme", None)
        .await;
    assert_eq!(deleted.status(), 204);
    assert_scim_error(app.get("/Users").await, 401, None).await;
    assert_scim_error(
        app.admin(reqwest::Method::GET, "/tenants/acme", None).await,
        404,
        None,
    )
    .await;
    let reuse = app
        .admin(
            reqwest::Method::POST,
            "/tenants",
            Some(json!({"slug": "acme"})),
        )
        .await;
    assert_scim_error(reuse, 409, Some("uniqueness")).await;
}

async fn bad_admin_input_answers_400_and_taken_slugs_409(backend: Backend) {
    let app = spawn_app(backend).await;
    // A value the slug's constructor refuses is invalidValue (read through `TenantSlug`);
    // a body of the wrong shape is invalidSyntax.
    for (body, scim_type) in [
        (json!({"slug": "Not A Slug"}), "invalidValue"),
        (json!({"slug": ""}), "invalidValue"),
        (json!({"slug": "x".repeat(64)}), "invalidValue"),
        (json!({}), "invalidSyntax"),
        (json!({"slug": 5}), "invalidSyntax"),
        (json!({"slug": "ok", "extra": 1}), "invalidSyntax"),
    ] {
        let response = app
            .admin(reqwest::Method::POST, "/tenants", Some(body.clone()))
            .await;
        assert_scim_error(response, 400, Some(scim_type)).await;
    }
    let taken = app
        .admin(
            reqwest::Method::POST,
            "/tenants",
            Some(json!({"slug": "acme"})),
        )
        .await;
    assert_scim_error(taken, 409, Some("uniqueness")).await;
    for body in [
        json!({"name": ""}),
        json!({"name": "x", "scopes": ["admin"]}),
        json!({"name": "x", "expires_at": "tomorrow"}),
        json!({"name": "x", "expires_at": "2000-01-01T00:00:00Z"}),
        // Year 10000 in UTC: no fixed-width timestamp holds it (it overflowed the column).
        json!({"name": "x", "expires_at": "9999-12-31T23:30:00-01:00"}),
    ] {
        let response = app
            .admin(
                reqwest::Method::POST,
                "/tenants/acme/tokens",
                Some(body.clone()),
            )
            .await;
        assert_scim_error(response, 400, Some("invalidValue")).await;
    }
    let missing = app
        .admin(
            reqwest::Method::POST,
            "/tenants/ghost/tokens",
            Some(json!({"name": "x"})),
        )
        .await;
    assert_scim_error(missing, 404, None).await;
    let tenants: Value = app
        .admin(reqwest::Method::GET, "/tenants", None)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(tenants["tenants"].as_array().unwrap().len(), 2);
}

async fn a_wrong_admin_token_answers_401(backend: Backend) {
    let app = spawn_app(backend).await;
    for token in ["wrong-admin-token-123456", app.token.as_str()] {
        let response = app
            .client
            .get(format!("{}/admin/v1/tenants", app.address))
            .bearer_auth(token)
            .send()
            .await
            .unwrap();
        assert_scim_error(response, 401, None).await;
    }
    let none = app
        .client
        .get(format!("{}/admin/v1/tenants", app.address))
        .send()
        .await
        .unwrap();
    assert_scim_error(none, 401, None).await;
}

#[tokio::test]
async fn without_any_admin_token_the_admin_api_is_off() {
    let dir = tempfile::tempdir().unwrap();
    let settings = crate::helpers::settings(&[
        (
            "SCIMBUS_DATABASE_URL",
            format!("sqlite://{}/a.db?mode=rwc", dir.path().display()),
        ),
        ("SCIMBUS_LISTEN", "127.0.0.1:0".to_owned()),
    ]);
    let app = scimbus::startup::Application::build(settings)
        .await
        .unwrap();
    let address = format!("http://127.0.0.1:{}", app.port());
    tokio::spawn(app.run_until_stopped());
    let response = crate::helpers::client()
        .get(format!("{address}/admin/v1/tenants"))
        .bearer_auth(ADMIN_TOKEN)
        .send()
        .await
        .unwrap();
    assert_scim_error(response, 404, None).await;
}
