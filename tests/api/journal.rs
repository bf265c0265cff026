//! The request journal (issue 22): each tenant's last SCIM requests, redacted, written off
//! the request path, read through the admin API and the CLI, bounded, erased with their
//! subject.

use std::time::Duration;

use reqwest::Method;
use serde_json::{Value, json};

use crate::both_backends;
use scimbus::domain::Scope;

use crate::helpers::{Backend, TestApp, USER_URN, issue, spawn_app, spawn_app_with, user};

both_backends!(
    an_entra_patch_that_failed_is_found_with_its_body_and_error,
    no_body_keeps_a_bearer_token_a_password_or_a_write_only_value,
    the_journal_keeps_the_newest_entries_and_erasure_removes_a_subjects,
    a_tenant_turned_off_is_not_journaled,
);

/// Erases `subject` of acme (`POST /admin/v1/tenants/acme/events/purge`); 200.
async fn erase(app: &TestApp, subject: &str) {
    let response = app
        .admin(
            Method::POST,
            "/tenants/acme/events/purge",
            Some(json!({"subject": subject})),
        )
        .await;
    assert_eq!(response.status(), 200);
}

/// acme's journal once it holds at least `n` entries matching `query`.
async fn journal(app: &TestApp, query: &str, n: usize) -> Vec<Value> {
    app.journal_of("acme", query, n).await
}

async fn patch(app: &TestApp, path: &str, body: &Value) -> reqwest::Response {
    app.client
        .patch(format!("{}{path}", app.base))
        .bearer_auth(&app.token)
        .header("content-type", "application/scim+json")
        .body(body.to_string())
        .send()
        .await
        .unwrap()
}

async fn an_entra_patch_that_failed_is_found_with_its_body_and_error(backend: Backend) {
    let app = spawn_app(backend).await;
    let created = app.create_user(&user("bjensen")).await;
    let id = created["id"].as_str().unwrap();
    // Entra's dialect (capitalised op); a value `active` cannot take.
    let body = json!({
        "schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
        "Operations": [{"op": "Replace", "path": "active", "value": "perhaps"}],
    });
    let response = patch(&app, &format!("/Users/{id}"), &body).await;
    assert_eq!(response.status(), 400);

    let entries = journal(&app, "?status=4xx", 1).await;
    let entry = &entries[0];
    assert_eq!(entry["method"], "PATCH");
    assert_eq!(entry["target"], format!("/scim/v2/acme/Users/{id}"));
    assert_eq!(entry["status"], 400);
    assert_eq!(entry["scimType"], "invalidValue");
    assert_eq!(entry["subject"], format!("Users/{id}"));
    assert_eq!(entry["tokenName"], "test");
    assert!(
        !entry["requestId"].as_str().unwrap_or_default().is_empty(),
        "{entry}"
    );
    let sent: Value = serde_json::from_str(entry["requestBody"].as_str().unwrap()).unwrap();
    assert_eq!(sent, body);
    let answered: Value = serde_json::from_str(entry["responseBody"].as_str().unwrap()).unwrap();
    assert_eq!(answered["scimType"], "invalidValue");
    assert!(
        answered["detail"]
            .as_str()
            .unwrap_or_default()
            .contains("active"),
        "{answered}"
    );

    // Newest first; the create is there too, a 2xx; filters by method.
    let all = journal(&app, "", 2).await;
    assert_eq!(all[0]["id"], entry["id"]);
    assert_eq!(all[1]["method"], "POST");
    assert_eq!(all[1]["subject"], format!("Users/{id}"));
    let posts = journal(&app, "?method=POST&status=2xx", 1).await;
    assert!(posts.iter().all(|e| e["method"] == "POST"), "{posts:?}");
    // A bad filter is a 400.
    let response = app
        .admin(Method::GET, "/tenants/acme/journal?status=teapot", None)
        .await;
    assert_eq!(response.status(), 400);
}

async fn no_body_keeps_a_bearer_token_a_password_or_a_write_only_value(backend: Backend) {
    let app = spawn_app(backend).await;
    const EXT: &str = "urn:example:journal:1.0:User";
    let definition = json!({
        "id": EXT,
        "attributes": [{"name": "pin", "type": "string", "mutability": "writeOnly"}],
    });
    let job = app.change_schema(Method::POST, "", Some(definition)).await;
    assert_eq!(job["state"], "succeeded");
    let body = json!({
        "schemas": [USER_URN, EXT],
        "userName": "ada",
        "password": "hunter2-password",
        // A client that echoes its own token into a body.
        "nickName": app.token,
        EXT: {"pin": "9876-pin"},
    });
    let created = app.create_user(&body).await;
    let id = created["id"].as_str().unwrap();
    let change = json!({
        "schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
        "Operations": [
            {"op": "replace", "path": "password", "value": "hunter3-password"},
            {"op": "replace", "path": format!("{EXT}:pin"), "value": "5555-pin"},
            {"op": "Replace", "value": {"password": "hunter4-password"}},
        ],
    });
    assert_eq!(
        patch(&app, &format!("/Users/{id}"), &change).await.status(),
        200
    );
    let entries = journal(&app, "", 2).await;
    let text = serde_json::to_string(&entries).unwrap();
    for secret in [
        app.token.as_str(),
        "hunter2-password",
        "hunter3-password",
        "hunter4-password",
        "9876-pin",
        "5555-pin",
    ] {
        assert!(!text.contains(secret), "{secret} in {text}");
    }
    assert!(
        text.contains("ada") && text.contains("[redacted]"),
        "{text}"
    );
}

async fn the_journal_keeps_the_newest_entries_and_erasure_removes_a_subjects(backend: Backend) {
    let app = spawn_app_with(backend, &[("SCIMBUS_JOURNAL_ENTRIES", "5".to_owned())]).await;
    let mut ids = Vec::new();
    for i in 0..8 {
        let created = app.create_user(&user(&format!("user{i}"))).await;
        ids.push(created["id"].as_str().unwrap().to_owned());
    }
    // Eight requests, five kept: the newest. The writer works off the request path, so a
    // read may come between two of its batches: wait for the newest entry and the prune.
    let newest = format!("Users/{}", ids[7]);
    let mut entries = journal(&app, "", 5).await;
    for _ in 0..50 {
        if entries.len() == 5 && entries[0]["subject"] == newest.as_str() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
        entries = journal(&app, "", 1).await;
    }
    assert_eq!(entries.len(), 5, "{entries:?}");
    assert_eq!(entries[0]["subject"], format!("Users/{}", ids[7]));
    assert_eq!(entries[4]["subject"], format!("Users/{}", ids[3]));
    // Paging: two, then the rest after the last one's id.
    let page: Value = app
        .admin(Method::GET, "/tenants/acme/journal?limit=2", None)
        .await
        .json()
        .await
        .unwrap();
    let next = page["next"].as_str().unwrap().to_owned();
    let rest: Value = app
        .admin(
            Method::GET,
            &format!("/tenants/acme/journal?before={next}"),
            None,
        )
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(rest["entries"].as_array().unwrap().len(), 3, "{rest}");

    // A group naming the user as a member: its entry mentions the user in its bodies only.
    let group = app
        .post(
            "/Groups",
            &json!({"schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group"],
                    "displayName": "Mentions", "members": [{"value": ids[7]}]}),
        )
        .await;
    assert_eq!(group.status(), 201);
    let mut newest = Value::Null;
    for _ in 0..100 {
        newest = journal(&app, "", 1).await[0].clone();
        if newest["subject"]
            .as_str()
            .is_some_and(|s| s.starts_with("Groups/"))
        {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(
        newest["requestBody"]
            .as_str()
            .is_some_and(|b| b.contains(&ids[7])),
        "{newest}"
    );

    // Erasure removes the entries that name the subject, not those that merely contain its
    // characters: erasing `Users/a` or `Users/1` (no such users; every body holds an "a"
    // and a "1") or a user id's first half leaves the journal as it was.
    let before = journal(&app, "", 1).await.len();
    for subject in [
        "Users/a".to_owned(),
        "Users/1".to_owned(),
        format!("Users/{}", &ids[7][..8]),
    ] {
        erase(&app, &subject).await;
        assert_eq!(
            journal(&app, "", 1).await.len(),
            before,
            "erasing {subject}"
        );
    }

    // Erasure of a subject removes its entries: its own, and the group's that names it.
    erase(&app, &format!("Users/{}", ids[7])).await;
    let left = journal(&app, "", 1).await;
    let text = serde_json::to_string(&left).unwrap();
    assert!(!text.contains(&ids[7]), "{text}");
    assert!(!left.is_empty() && !text.contains("Groups/"), "{text}");

    // A tenant's purge removes its journal.
    let tenant_id = scimbus::store::tenants::find(
        app.ctx.store.conn(),
        &scimbus::domain::TenantSlug::parse("acme").unwrap(),
    )
    .await
    .unwrap()
    .unwrap()
    .id;
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
    let gone = scimbus::store::journal::list(
        app.ctx.store.conn(),
        &tenant_id,
        &scimbus::domain::JournalQuery {
            id: None,
            limit: 100,
            ..Default::default()
        },
    )
    .await
    .unwrap();
    assert!(gone.is_empty(), "{gone:?}");
}

async fn a_tenant_turned_off_is_not_journaled(backend: Backend) {
    let app = spawn_app_with(
        backend,
        &[("SCIMBUS_JOURNAL_TENANTS_OFF", "acme".to_owned())],
    )
    .await;
    app.create_user(&user("quiet")).await;
    // One queue, written in order: once a later request of another tenant is in the
    // journal, this one would be too.
    let other = issue(&app.ctx, "other", vec![Scope::Scim]).await;
    app.create_user_in("other", &other, "marker").await;
    for _ in 0..100 {
        let page: Value = app
            .admin(Method::GET, "/tenants/other/journal", None)
            .await
            .json()
            .await
            .unwrap();
        if !page["entries"].as_array().unwrap().is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let page: Value = app
        .admin(Method::GET, "/tenants/acme/journal", None)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(page["entries"], json!([]), "{page}");
}
