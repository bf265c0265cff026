//! Hardening: hostile attribute names and values in filters and PATCH paths are refused or
//! bound as values (never SQL), work per request is bounded, and every answer carries the
//! security headers.

use serde_json::{Value, json};

use crate::both_backends;
use crate::helpers::{Backend, TestApp, USER_URN, assert_scim_error, spawn_app, user};

both_backends!(
    hostile_filters_and_patch_paths_cannot_change_a_query,
    work_per_request_is_bounded,
    input_no_database_can_store_is_refused_and_changes_nothing,
    every_answer_carries_the_security_headers,
);

async fn list(app: &TestApp, filter: &str) -> reqwest::Response {
    app.client
        .get(app.url("/Users"))
        .bearer_auth(&app.token)
        .query(&[("filter", filter)])
        .send()
        .await
        .unwrap()
}

async fn hostile_filters_and_patch_paths_cannot_change_a_query(backend: Backend) {
    let app = spawn_app(backend).await;
    let victim = app.create_user(&user("victim")).await;
    let id = victim["id"].as_str().unwrap();
    // Names that are not attributes of the schema: refused before any SQL exists.
    for filter in [
        "userName; DROP TABLE users eq \"x\"",
        "userName\" OR 1=1 -- eq \"x\"",
        "users.user_name eq \"victim\"",
        "resource eq \"x\"",
        "tenant_id pr",
        "urn:ietf:params:scim:schemas:core:2.0:User:userName') OR ('1'='1 eq \"x\"",
        "name.givenName$.x eq \"x\"",
        "emails[value eq \"x\" or 1 eq 1]",
    ] {
        let response = list(&app, filter).await;
        assert_eq!(response.status(), 400, "{filter}");
        let body: Value = response.json().await.unwrap();
        assert_eq!(body["scimType"], "invalidFilter", "{filter}");
    }
    // Values are bound parameters: SQL in them is just text that matches nothing.
    for value in [
        "x' OR '1'='1",
        "x\\\" OR 1=1 --",
        "'); DELETE FROM users; --",
        "$.userName",
        "%",
        "_",
    ] {
        let escaped = value.replace('\\', "\\\\").replace('"', "\\\"");
        for op in ["eq", "co", "sw", "gt"] {
            let response = list(&app, &format!("userName {op} \"{escaped}\"")).await;
            let status = response.status();
            let body: Value = response.json().await.unwrap();
            assert!(
                status == 200 || status == 400,
                "{op} {value:?}: {status} {body}"
            );
            if status == 200 && op != "gt" {
                assert_eq!(body["totalResults"], 0, "{op} {value:?}: {body}");
            }
        }
    }
    // Hostile PATCH paths are refused; the resource is unchanged.
    for path in [
        "userName; DROP TABLE users",
        "name.givenName') --",
        "emails[value eq \"x\"].value; x",
        "meta.version",
        "id",
    ] {
        let patch = json!({
            "schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
            "Operations": [{"op": "replace", "path": path, "value": "x"}]
        });
        let response = app
            .client
            .patch(app.url(&format!("/Users/{id}")))
            .bearer_auth(&app.token)
            .json(&patch)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 400, "{path}");
    }
    let after: Value = app.get(&format!("/Users/{id}")).await.json().await.unwrap();
    assert_eq!(after["meta"]["version"], "W/\"1\"");
    assert_eq!(
        app.user_count().await,
        1,
        "every table and row is where it was"
    );
}

async fn work_per_request_is_bounded(backend: Backend) {
    let app = spawn_app(backend).await;
    let deep = format!("{}userName pr{}", "(".repeat(200), ")".repeat(200));
    assert_eq!(list(&app, &deep).await.status(), 400);
    let long = vec!["userName eq \"x\""; 2000].join(" or ");
    assert_eq!(list(&app, &long).await.status(), 400);
    let page: Value = app
        .client
        .get(app.url("/Users"))
        .bearer_auth(&app.token)
        .query(&[("count", "1000000")])
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(page["itemsPerPage"].as_u64().unwrap() <= 1000);
    let created = app.create_user(&user("bounded")).await;
    let ops: Vec<Value> = (0..1001)
        .map(|i| json!({"op": "replace", "path": "title", "value": format!("t{i}")}))
        .collect();
    let response = app
        .client
        .patch(app.url(&format!("/Users/{}", created["id"].as_str().unwrap())))
        .bearer_auth(&app.token)
        .json(&json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"], "Operations": ops}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 400);
    let big =
        json!({"schemas": [USER_URN], "userName": "big", "title": "x".repeat(9 * 1024 * 1024)});
    assert_eq!(app.post("/Users", &big).await.status(), 413);
}

async fn every_answer_carries_the_security_headers(backend: Backend) {
    let app = spawn_app(backend).await;
    let ok = app.get("/Users").await;
    let unauthenticated = app.client.get(app.url("/Users")).send().await.unwrap();
    let missing = app.get("/Nothing").await;
    for response in [ok, unauthenticated, missing] {
        let h = response.headers();
        assert_eq!(
            h["x-content-type-options"],
            "nosniff",
            "{}",
            response.status()
        );
        assert_eq!(h["x-frame-options"], "DENY");
        assert_eq!(h["referrer-policy"], "no-referrer");
        assert_eq!(h["cache-control"], "no-store");
        assert!(
            h["content-security-policy"]
                .to_str()
                .unwrap()
                .contains("default-src 'none'")
        );
        assert!(h.contains_key("x-request-id"));
    }
}

async fn input_no_database_can_store_is_refused_and_changes_nothing(backend: Backend) {
    let app = spawn_app(backend).await;
    let victim = app.create_user(&user("victim")).await;
    let id = victim["id"].as_str().unwrap();
    // A column name as a PATCH path is just an attribute of the document (unknown
    // attributes are kept as sent): it reaches no column.
    let patch = json!({
        "schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
        "Operations": [{"op": "replace", "path": "user_name_ci", "value": "admin"}]
    });
    let response = app
        .client
        .patch(app.url(&format!("/Users/{id}")))
        .bearer_auth(&app.token)
        .json(&patch)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let found: Value = list(&app, "userName eq \"admin\"")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(found["totalResults"], 0);
    let events_before = app.events().await.len();

    // NUL in a body, a filter or a path, and a number PostgreSQL could not give back:
    // 400 invalidValue, nothing stored.
    let nul_body = app
        .post(
            "/Users",
            &json!({"schemas": [USER_URN], "userName": "a\u{0}b"}),
        )
        .await;
    assert_scim_error(nul_body, 400, Some("invalidValue")).await;
    let nul_key = app
        .post(
            "/Users",
            &json!({"schemas": [USER_URN], "userName": "k", "x\u{0}": 1}),
        )
        .await;
    assert_scim_error(nul_key, 400, Some("invalidValue")).await;
    let nul_filter = list(&app, "userName eq \"a\u{0}\"").await;
    assert_scim_error(nul_filter, 400, Some("invalidValue")).await;
    let nul_path = app.get("/Users/abc%00def").await;
    assert_scim_error(nul_path, 400, Some("invalidValue")).await;
    let huge: Value = serde_json::from_str(
        r#"{"schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"], "userName": "n", "x": 1.7976931348623155e308}"#,
    )
    .unwrap();
    assert_scim_error(app.post("/Users", &huge).await, 400, Some("invalidValue")).await;
    let mut nul_patch = patch.clone();
    nul_patch["Operations"][0] = json!({"op": "replace", "path": "displayName", "value": "a\u{0}"});
    let response = app
        .client
        .patch(app.url(&format!("/Users/{id}")))
        .bearer_auth(&app.token)
        .json(&nul_patch)
        .send()
        .await
        .unwrap();
    assert_scim_error(response, 400, Some("invalidValue")).await;

    // Names whose prefix check once split a character: an answer, not a dropped connection.
    for attributes in [
        "0\u{10000}",
        "urn:ietf:params:scim:schemas:core:2.0:Use\u{e9}",
    ] {
        let response = app
            .client
            .get(app.url("/Users"))
            .bearer_auth(&app.token)
            .query(&[("attributes", attributes)])
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200, "{attributes}");
    }
    let split_key = app
        .post(
            "/Users",
            &json!({"schemas": [USER_URN], "userName": "split", "0\u{10000}": 1}),
        )
        .await;
    assert_eq!(
        split_key.status(),
        201,
        "an unknown attribute, kept as sent"
    );

    assert_eq!(
        app.user_count().await,
        2,
        "only the accepted create was stored"
    );
    assert_eq!(app.events().await.len(), events_before + 1);
    let after: Value = app.get(&format!("/Users/{id}")).await.json().await.unwrap();
    assert_eq!(
        after["meta"]["version"], "W/\"2\"",
        "only the column-name PATCH applied"
    );
}
