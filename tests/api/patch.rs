//! PATCH on users (RFC 7644 §3.5.2) over HTTP: atomic, mutability from the registry, the
//! IdP dialects, no-ops that bump nothing, and every error changing nothing.

use serde_json::{Value, json};

use crate::both_backends;
use crate::groups::patch_op;
use crate::helpers::{Backend, USER_URN, assert_scim_error, spawn_app, user};

both_backends!(
    a_user_patch_answers_200_with_the_user_and_bumps_the_version,
    entra_and_okta_deactivations_emit_user_deactivated,
    value_filters_and_urn_paths_patch_the_right_element,
    bad_patches_answer_the_right_scim_type_and_change_nothing,
    a_patch_that_changes_nothing_bumps_nothing,
);

const ENTERPRISE: &str = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User";

async fn a_user_patch_answers_200_with_the_user_and_bumps_the_version(backend: Backend) {
    let app = spawn_app(backend).await;
    let created = app.create_user(&user("bjensen")).await;
    let path = format!("/Users/{}", created["id"].as_str().unwrap());
    let response = app
        .patch(
            &path,
            &patch_op(json!([{"op": "add", "path": "nickName", "value": "Babs"}])),
        )
        .await;
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["etag"], "W/\"2\"");
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["nickName"], "Babs");
    assert_eq!(body["meta"]["version"], "W/\"2\"");
    assert_eq!(app.fetch(&path).await, body);
    let events = app.events().await;
    assert_eq!(events[1].event_type, "scimbus.user.updated");
    assert_eq!(events[1].payload["data"]["changed"], json!(["nickName"]));
}

async fn entra_and_okta_deactivations_emit_user_deactivated(backend: Backend) {
    let app = spawn_app(backend).await;
    let shapes = [
        // Entra without aadOptscim062020: capitalised op, string boolean.
        json!([{"op": "Replace", "path": "active", "value": "False"}]),
        // Entra with the flag.
        json!([{"op": "replace", "path": "active", "value": false}]),
        // Okta: path-less value.
        json!([{"op": "replace", "value": {"active": false}}]),
    ];
    for (i, ops) in shapes.into_iter().enumerate() {
        let created = app.create_user(&user(&format!("u{i}"))).await;
        let path = format!("/Users/{}", created["id"].as_str().unwrap());
        let response = app.patch(&path, &patch_op(ops)).await;
        assert_eq!(response.status(), 200);
        assert_eq!(response.json::<Value>().await.unwrap()["active"], false);
        let last = app.events().await.pop().unwrap();
        assert_eq!(last.event_type, "scimbus.user.deactivated", "shape {i}");
        let reactivate = patch_op(json!([{"op": "replace", "path": "active", "value": true}]));
        app.patch(&path, &reactivate).await;
        assert_eq!(
            app.events().await.pop().unwrap().event_type,
            "scimbus.user.reactivated"
        );
    }
}

async fn value_filters_and_urn_paths_patch_the_right_element(backend: Backend) {
    let app = spawn_app(backend).await;
    let manager = app.create_user(&user("boss")).await;
    let created = app
        .create_user(&json!({
            "schemas": [USER_URN], "userName": "bjensen",
            "emails": [{"value": "b@home.example", "type": "home", "primary": true}]
        }))
        .await;
    let path = format!("/Users/{}", created["id"].as_str().unwrap());
    let ops = json!([
        {"op": "replace", "path": "emails[type eq \"work\"].value", "value": "b@work.example"},
        {"op": "replace", "path": "emails[type eq \"work\"].primary", "value": true},
        {"op": "Add", "path": format!("{ENTERPRISE}:department"), "value": "Tours"},
        {"op": "Add", "path": format!("{ENTERPRISE}:manager"), "value": manager["id"]},
        {"op": "replace", "value": {"name.givenName": "Barbara", "displayName": "Babs"}}
    ]);
    let response = app.patch(&path, &patch_op(ops)).await;
    assert_eq!(response.status(), 200, "{:?}", response.text().await);
    let body = app.fetch(&path).await;
    let emails = body["emails"].as_array().unwrap();
    assert_eq!(emails.len(), 2);
    let work = emails.iter().find(|e| e["type"] == "work").unwrap();
    assert_eq!(work["value"], "b@work.example");
    assert_eq!(work["primary"], true);
    let home = emails.iter().find(|e| e["type"] == "home").unwrap();
    assert_eq!(home["primary"], false, "one primary only");
    assert_eq!(body[ENTERPRISE]["department"], "Tours");
    assert_eq!(body[ENTERPRISE]["manager"], json!({"value": manager["id"]}));
    assert_eq!(body["name"]["givenName"], "Barbara");
    assert_eq!(body["displayName"], "Babs");
    assert!(
        body["schemas"]
            .as_array()
            .unwrap()
            .contains(&json!(ENTERPRISE))
    );
    // Filtering on displayName sees the patched hot column.
    let found = app
        .list_users(&[("filter", r#"displayName eq "babs""#)])
        .await;
    assert_eq!(found["totalResults"], 1);
}

async fn bad_patches_answer_the_right_scim_type_and_change_nothing(backend: Backend) {
    let app = spawn_app(backend).await;
    let other = app.create_user(&user("taken")).await;
    let created = app.create_user(&user("bjensen")).await;
    let path = format!("/Users/{}", created["id"].as_str().unwrap());
    let cases: Vec<(Value, u16, &str)> = vec![
        (
            json!({"Operations": [{"op": "add", "path": "nickName", "value": "x"}]}),
            400,
            "invalidSyntax",
        ),
        (patch_op(json!([])), 400, "invalidSyntax"),
        (
            patch_op(json!([{"op": "explode", "path": "nickName", "value": "x"}])),
            400,
            "invalidSyntax",
        ),
        (patch_op(json!([{"op": "remove"}])), 400, "noTarget"),
        (
            patch_op(json!([{"op": "replace", "path": "id", "value": "x"}])),
            400,
            "mutability",
        ),
        (
            patch_op(
                json!([{"op": "replace", "path": "meta.created", "value": "2020-01-01T00:00:00Z"}]),
            ),
            400,
            "mutability",
        ),
        (
            patch_op(json!([{"op": "replace", "value": {"id": "someone-else"}}])),
            400,
            "mutability",
        ),
        (
            patch_op(json!([{"op": "add", "path": "emails[type eq", "value": "x"}])),
            400,
            "invalidPath",
        ),
        (
            patch_op(json!([{"op": "replace", "path": "active", "value": "perhaps"}])),
            400,
            "invalidValue",
        ),
        (
            patch_op(json!([{"op": "remove", "path": "userName"}])),
            400,
            "invalidValue",
        ),
        // Atomic: the first operation would succeed, the second fails, nothing applies.
        (
            patch_op(
                json!([{"op": "replace", "path": "nickName", "value": "x"}, {"op": "replace", "path": "name", "value": 5}]),
            ),
            400,
            "invalidValue",
        ),
        (
            patch_op(json!([{"op": "replace", "path": "userName", "value": "TAKEN"}])),
            409,
            "uniqueness",
        ),
    ];
    for (body, status, scim_type) in cases {
        let response = app.patch(&path, &body).await;
        assert_scim_error(response, status, Some(scim_type)).await;
    }
    assert_eq!(app.fetch(&path).await, created);
    assert_eq!(app.events().await.len(), 2);
    let missing = app
        .patch(
            "/Users/00000000-0000-0000-0000-000000000000",
            &patch_op(json!([{"op": "add", "path": "nickName", "value": "x"}])),
        )
        .await;
    assert_scim_error(missing, 404, None).await;
    let _ = other;
}

async fn a_patch_that_changes_nothing_bumps_nothing(backend: Backend) {
    let app = spawn_app(backend).await;
    let created = app
        .create_user(&json!({"schemas": [USER_URN], "userName": "bjensen", "active": true, "title": "Guide"}))
        .await;
    let id = created["id"].as_str().unwrap();
    let path = format!("/Users/{id}");
    for ops in [
        json!([{"op": "replace", "path": "title", "value": "Guide"}]),
        json!([{"op": "Replace", "path": "active", "value": "True"}]),
        json!([{"op": "replace", "value": {"id": id, "userName": "bjensen"}}]),
        json!([{"op": "remove", "path": "nickName"}]),
        json!([{"op": "add", "path": "password", "value": "s3cret!"}]),
    ] {
        let response = app.patch(&path, &patch_op(ops.clone())).await;
        assert_eq!(response.status(), 200, "{ops}");
        assert_eq!(response.headers()["etag"], "W/\"1\"", "{ops}");
    }
    assert_eq!(app.events().await.len(), 1);
}
