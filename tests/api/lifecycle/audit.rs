//! Tokens rotating with overlap, and every admin action in the audit log.

use chrono::TimeDelta;
use reqwest::Method;
use serde_json::{Value, json};

use crate::both_backends;
use crate::helpers::{Backend, assert_scim_error, spawn_app};

use super::create_users;

both_backends!(
    several_live_tokens_rotate_with_overlap_and_last_use_is_sampled,
    every_admin_action_is_in_the_audit_log_with_its_actor,
);

async fn several_live_tokens_rotate_with_overlap_and_last_use_is_sampled(backend: Backend) {
    let app = spawn_app(backend).await;
    let issue_named = |name: &'static str| {
        app.admin(
            Method::POST,
            "/tenants/acme/tokens",
            Some(json!({"name": name, "scopes": ["scim"]})),
        )
    };
    let old: Value = issue_named("okta-2026").await.json().await.unwrap();
    let new: Value = issue_named("okta-2027").await.json().await.unwrap();
    let get = |token: String| app.client.get(app.url("/Users")).bearer_auth(token).send();
    let old_secret = old["token"].as_str().unwrap().to_owned();
    let new_secret = new["token"].as_str().unwrap().to_owned();
    // Both work during the overlap.
    assert_eq!(get(old_secret.clone()).await.unwrap().status(), 200);
    assert_eq!(get(new_secret.clone()).await.unwrap().status(), 200);

    let last_used = || async {
        let list: Value = app
            .admin(Method::GET, "/tenants/acme/tokens", None)
            .await
            .json()
            .await
            .unwrap();
        list["tokens"]
            .as_array()
            .unwrap()
            .iter()
            .find(|t| t["id"] == old["id"])
            .unwrap()["last_used_at"]
            .clone()
    };
    let first = last_used().await;
    assert!(first.is_string(), "the first use is recorded");
    // A use within the sampling interval writes nothing.
    app.clock.advance(TimeDelta::seconds(30));
    assert_eq!(get(old_secret.clone()).await.unwrap().status(), 200);
    assert_eq!(last_used().await, first);
    // Past it, the next use is recorded.
    app.clock.advance(TimeDelta::seconds(31));
    assert_eq!(get(old_secret.clone()).await.unwrap().status(), 200);
    let later = last_used().await;
    assert!(later.as_str().unwrap() > first.as_str().unwrap());

    // Retire the old one: it fails at once, the new one goes on.
    let path = format!("/tenants/acme/tokens/{}", old["id"].as_str().unwrap());
    assert_eq!(app.admin(Method::DELETE, &path, None).await.status(), 204);
    assert_eq!(get(old_secret).await.unwrap().status(), 401);
    assert_eq!(get(new_secret).await.unwrap().status(), 200);
}

async fn every_admin_action_is_in_the_audit_log_with_its_actor(backend: Backend) {
    let app = spawn_app(backend).await;
    let ids = create_users(&app, 1).await;
    let created = app
        .admin(Method::POST, "/tenants", Some(json!({"slug": "globex"})))
        .await;
    assert_eq!(created.status(), 201);
    let token: Value = app
        .admin(
            Method::POST,
            "/tenants/globex/tokens",
            Some(json!({"name": "entra"})),
        )
        .await
        .json()
        .await
        .unwrap();
    let path = format!("/tenants/globex/tokens/{}", token["id"].as_str().unwrap());
    assert_eq!(app.admin(Method::DELETE, &path, None).await.status(), 204);
    let purge = app
        .admin(
            Method::POST,
            "/tenants/acme/events/purge",
            Some(json!({"subject": format!("Users/{}", ids[0])})),
        )
        .await;
    assert_eq!(purge.status(), 200);
    assert_eq!(
        app.admin(Method::DELETE, "/tenants/globex", None)
            .await
            .status(),
        204
    );
    // A refused action records nothing.
    let refused = app
        .admin(Method::POST, "/tenants", Some(json!({"slug": "globex"})))
        .await;
    assert_eq!(refused.status(), 409);

    let log: Value = app
        .admin(Method::GET, "/audit?tenant=globex", None)
        .await
        .json()
        .await
        .unwrap();
    let entries: Vec<(&str, &str)> = log["entries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| (e["actor"].as_str().unwrap(), e["action"].as_str().unwrap()))
        .collect();
    assert_eq!(
        entries,
        vec![
            ("admin:bootstrap", "tenant.create"),
            ("admin:bootstrap", "token.issue"),
            ("admin:bootstrap", "token.revoke"),
            ("admin:bootstrap", "tenant.delete"),
        ]
    );
    let all: Value = app
        .admin(Method::GET, "/audit?limit=1000", None)
        .await
        .json()
        .await
        .unwrap();
    let purge_entry = all["entries"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["action"] == "events.purge")
        .unwrap();
    assert_eq!(purge_entry["tenant"], "acme");
    assert_eq!(purge_entry["target"], format!("Users/{}", ids[0]));
    assert_eq!(purge_entry["detail"]["redacted"], 1);
    // Paging by the last id seen.
    let first: Value = app
        .admin(Method::GET, "/audit?limit=1", None)
        .await
        .json()
        .await
        .unwrap();
    let next = first["next"].as_str().unwrap();
    let rest: Value = app
        .admin(
            Method::GET,
            &format!("/audit?after={next}&limit=1000"),
            None,
        )
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(
        rest["entries"].as_array().unwrap().len() + 1,
        all["entries"].as_array().unwrap().len()
    );
    let response = app.admin(Method::GET, "/audit?limit=0", None).await;
    assert_scim_error(response, 400, Some("invalidValue")).await;
}
