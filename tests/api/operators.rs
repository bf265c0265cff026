//! Named operators (issue 22): admin tokens issued, listed and revoked per operator through
//! the admin API and the CLI; the audit log names the operator of every admin action; the
//! bootstrap token is `serve`'s alone, agreed on by replicas, and stays revoked once revoked.

use reqwest::Method;
use secrecy::SecretString;
use serde_json::{Value, json};

use crate::both_backends;
use crate::helpers::{ADMIN_TOKEN, Backend, TestApp, assert_scim_error, spawn_app};

both_backends!(
    an_operator_token_is_issued_listed_used_and_revoked_and_the_audit_names_its_operator,
    a_revoked_bootstrap_token_stays_revoked_when_serve_starts_again_with_it,
    replicas_storing_the_same_bootstrap_value_at_once_agree,
);

async fn tokens(app: &TestApp, token: &str) -> Vec<Value> {
    let list: Value = app
        .admin_as(token, Method::GET, "/operators", None)
        .await
        .json()
        .await
        .unwrap();
    list["tokens"].as_array().unwrap().clone()
}

async fn an_operator_token_is_issued_listed_used_and_revoked_and_the_audit_names_its_operator(
    backend: Backend,
) {
    let app = spawn_app(backend).await;
    let response = app
        .admin(Method::POST, "/operators", Some(json!({"name": " alice "})))
        .await;
    assert_eq!(response.status(), 201);
    let issued: Value = response.json().await.unwrap();
    let secret = issued["token"].as_str().unwrap().to_owned();
    let id = issued["id"].as_str().unwrap().to_owned();
    assert!(secret.starts_with("scimbus_a_"), "{issued}");
    assert_eq!(issued["name"], "alice");

    // Listed with the bootstrap token, never a secret.
    let listed = tokens(&app, ADMIN_TOKEN).await;
    let names: Vec<&str> = listed.iter().filter_map(|t| t["name"].as_str()).collect();
    assert!(
        names.contains(&"alice") && names.contains(&"bootstrap"),
        "{names:?}"
    );
    let text = serde_json::to_string(&listed).unwrap();
    assert!(!text.contains(&secret) && !text.contains("scimbus_a_") && !text.contains(ADMIN_TOKEN));

    // Alice acts; the audit log names her.
    let response = app
        .admin_as(
            &secret,
            Method::POST,
            "/tenants",
            Some(json!({"slug": "by-alice"})),
        )
        .await;
    assert_eq!(response.status(), 201);
    let audit: Value = app
        .admin(Method::GET, "/audit", None)
        .await
        .json()
        .await
        .unwrap();
    let entries = audit["entries"].as_array().unwrap();
    let by = |action: &str| {
        entries
            .iter()
            .filter(|e| e["action"] == action)
            .map(|e| e["actor"].as_str().unwrap_or_default().to_owned())
            .collect::<Vec<_>>()
    };
    assert_eq!(by("operator.issue"), ["admin:bootstrap"]);
    assert!(
        by("tenant.create").contains(&"admin:alice".to_owned()),
        "{audit}"
    );

    // `bootstrap` is not a name an operator can take.
    let response = app
        .admin(
            Method::POST,
            "/operators",
            Some(json!({"name": "bootstrap"})),
        )
        .await;
    assert_scim_error(response, 400, Some("invalidValue")).await;
    // Nothing was issued.
    let after = tokens(&app, ADMIN_TOKEN).await;
    assert_eq!(after.len(), listed.len(), "{after:?}");

    // Revoked: her next request is a 401, and the revocation is audited.
    let response = app
        .admin(Method::DELETE, &format!("/operators/{id}"), None)
        .await;
    assert_eq!(response.status(), 204);
    let response = app.admin_as(&secret, Method::GET, "/tenants", None).await;
    assert_eq!(response.status(), 401);
    let response = app
        .admin(Method::DELETE, &format!("/operators/{id}"), None)
        .await;
    assert_scim_error(response, 404, None).await;
    let audit: Value = app
        .admin(Method::GET, "/audit", None)
        .await
        .json()
        .await
        .unwrap();
    assert!(
        audit["entries"]
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["action"] == "operator.revoke" && e["target"] == id.as_str()),
        "{audit}"
    );
}

async fn a_revoked_bootstrap_token_stays_revoked_when_serve_starts_again_with_it(backend: Backend) {
    let app = spawn_app(backend).await;
    let issued: Value = app
        .admin(Method::POST, "/operators", Some(json!({"name": "carol"})))
        .await
        .json()
        .await
        .unwrap();
    let carol = issued["token"].as_str().unwrap().to_owned();
    let bootstrap = tokens(&app, ADMIN_TOKEN)
        .await
        .into_iter()
        .find(|t| t["name"] == "bootstrap")
        .unwrap();
    let path = format!("/operators/{}", bootstrap["id"].as_str().unwrap());
    let response = app.admin_as(&carol, Method::DELETE, &path, None).await;
    assert_eq!(response.status(), 204);
    assert_eq!(app.admin(Method::GET, "/tenants", None).await.status(), 401);

    // What `serve` does at start with the same SCIMBUS_ADMIN_TOKEN: nothing.
    let same = SecretString::from(ADMIN_TOKEN.to_owned());
    scimbus::service::tenants::bootstrap_admin(&app.ctx, &same)
        .await
        .unwrap();
    assert_eq!(app.admin(Method::GET, "/tenants", None).await.status(), 401);

    // A new value is a new bootstrap token; the old one stays revoked.
    let new = "another-bootstrap-value-0123456789";
    scimbus::service::tenants::bootstrap_admin(&app.ctx, &SecretString::from(new.to_owned()))
        .await
        .unwrap();
    assert_eq!(
        app.admin_as(new, Method::GET, "/tenants", None)
            .await
            .status(),
        200
    );
    assert_eq!(app.admin(Method::GET, "/tenants", None).await.status(), 401);
}

async fn replicas_storing_the_same_bootstrap_value_at_once_agree(backend: Backend) {
    let app = spawn_app(backend).await;
    for round in 0..5 {
        let value = format!("rotated-bootstrap-value-{round}-0123456789");
        let starts = (0..8).map(|_| {
            let ctx = app.ctx.clone();
            let secret = SecretString::from(value.clone());
            tokio::spawn(
                async move { scimbus::service::tenants::bootstrap_admin(&ctx, &secret).await },
            )
        });
        for start in starts.collect::<Vec<_>>() {
            start.await.unwrap().unwrap();
        }
        let live: Vec<Value> = tokens(&app, &value)
            .await
            .into_iter()
            .filter(|t| t["name"] == "bootstrap" && t["revoked_at"].is_null())
            .collect();
        assert_eq!(live.len(), 1, "round {round}: {live:?}");
        assert_eq!(
            app.admin_as(&value, Method::GET, "/tenants", None)
                .await
                .status(),
            200
        );
    }
}
