//! Every bad input gets a SCIM error with the right status and `scimType`, and changes
//! nothing.

use serde_json::{Value, json};

use crate::both_backends;
use crate::helpers::{Backend, TestApp, USER_URN, assert_scim_error, spawn_app, user};

both_backends!(
    bad_bodies_answer_400_with_the_right_scim_type_and_change_nothing,
    a_put_with_a_bad_body_changes_nothing,
    a_body_over_the_limit_answers_413_and_changes_nothing,
    a_body_under_the_limit_is_accepted,
    an_unsupported_media_type_answers_415,
    application_json_is_accepted_as_well_as_scim_json,
    an_unknown_route_answers_404_once_authenticated,
    an_unsupported_method_answers_405,
    a_non_integer_paging_parameter_answers_400_invalid_value,
);

async fn raw_post(app: &TestApp, body: &str) -> reqwest::Response {
    app.client
        .post(app.url("/Users"))
        .bearer_auth(&app.token)
        .header("Content-Type", "application/scim+json")
        .body(body.to_owned())
        .send()
        .await
        .unwrap()
}

async fn assert_nothing_stored(app: &TestApp) {
    assert_eq!(app.user_count().await, 0);
    assert!(app.events().await.is_empty());
}

async fn bad_bodies_answer_400_with_the_right_scim_type_and_change_nothing(backend: Backend) {
    let app = spawn_app(backend).await;
    let cases: Vec<(&str, String, &str)> = vec![
        ("malformed JSON", r#"{"schemas": ["#.to_owned(), "invalidSyntax"),
        ("empty body", String::new(), "invalidSyntax"),
        ("not an object", "[1, 2]".to_owned(), "invalidSyntax"),
        ("no schemas", json!({"userName": "b"}).to_string(), "invalidSyntax"),
        ("no core schema", json!({"schemas": ["urn:x"], "userName": "b"}).to_string(), "invalidSyntax"),
        ("no userName", json!({"schemas": [USER_URN]}).to_string(), "invalidValue"),
        ("blank userName", json!({"schemas": [USER_URN], "userName": "  "}).to_string(), "invalidValue"),
        ("userName not a string", json!({"schemas": [USER_URN], "userName": 42}).to_string(), "invalidValue"),
        ("active not a boolean", json!({"schemas": [USER_URN], "userName": "b", "active": "sometimes"}).to_string(), "invalidValue"),
        ("name not complex", json!({"schemas": [USER_URN], "userName": "b", "name": "Babs"}).to_string(), "invalidValue"),
        ("emails value not a string", json!({"schemas": [USER_URN], "userName": "b", "emails": [{"value": 5}]}).to_string(), "invalidValue"),
        ("displayName an array", json!({"schemas": [USER_URN], "userName": "b", "displayName": ["a"]}).to_string(), "invalidValue"),
        ("enterprise not an object", json!({"schemas": [USER_URN], "userName": "b", "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User": "x"}).to_string(), "invalidValue"),
    ];
    for (case, body, scim_type) in cases {
        let response = raw_post(&app, &body).await;
        let error: Value = assert_scim_error(response, 400, Some(scim_type)).await;
        assert!(error["detail"].is_string(), "{case}");
    }
    assert_nothing_stored(&app).await;
}

async fn a_put_with_a_bad_body_changes_nothing(backend: Backend) {
    let app = spawn_app(backend).await;
    let created = app.create_user(&user("bjensen")).await;
    let path = format!("/Users/{}", created["id"].as_str().unwrap());
    let response = app
        .put(&path, &json!({"schemas": [USER_URN], "userName": 7}))
        .await;
    assert_scim_error(response, 400, Some("invalidValue")).await;
    assert_eq!(app.get(&path).await.json::<Value>().await.unwrap(), created);
    assert_eq!(app.events().await.len(), 1);
}

async fn a_body_over_the_limit_answers_413_and_changes_nothing(backend: Backend) {
    let app = spawn_app(backend).await;
    let filler = "x".repeat(8 * 1024 * 1024 + 1);
    let body = json!({"schemas": [USER_URN], "userName": "big", "nickName": filler}).to_string();
    assert_scim_error(raw_post(&app, &body).await, 413, None).await;
    assert_nothing_stored(&app).await;
}

async fn a_body_under_the_limit_is_accepted(backend: Backend) {
    let app = spawn_app(backend).await;
    // 4 MiB: DESIGN 17's floor (a 10 000-member group PUT fits).
    let filler = "x".repeat(4 * 1024 * 1024);
    let body = json!({"schemas": [USER_URN], "userName": "big", "nickName": filler});
    let created = app.create_user(&body).await;
    assert_eq!(created["nickName"].as_str().unwrap().len(), 4 * 1024 * 1024);
}

async fn an_unsupported_media_type_answers_415(backend: Backend) {
    let app = spawn_app(backend).await;
    let response = app
        .client
        .post(app.url("/Users"))
        .bearer_auth(&app.token)
        .header("Content-Type", "text/plain")
        .body(user("b").to_string())
        .send()
        .await
        .unwrap();
    assert_scim_error(response, 415, None).await;
    assert_nothing_stored(&app).await;
}

async fn application_json_is_accepted_as_well_as_scim_json(backend: Backend) {
    let app = spawn_app(backend).await;
    for (i, content_type) in ["application/json", "application/scim+json; charset=utf-8"]
        .iter()
        .enumerate()
    {
        let response = app
            .client
            .post(app.url("/Users"))
            .bearer_auth(&app.token)
            .header("Content-Type", *content_type)
            .body(user(&format!("u{i}")).to_string())
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 201, "{content_type}");
    }
}

async fn an_unknown_route_answers_404_once_authenticated(backend: Backend) {
    let app = spawn_app(backend).await;
    for path in ["/Nope", "/Users/a/b", "/"] {
        assert_scim_error(app.get(path).await, 404, None).await;
    }
    let outside = app
        .client
        .get(format!("{}/nowhere", app.address))
        .send()
        .await
        .unwrap();
    assert_scim_error(outside, 404, None).await;
}

async fn an_unsupported_method_answers_405(backend: Backend) {
    let app = spawn_app(backend).await;
    let response = app
        .client
        .delete(app.url("/Users"))
        .bearer_auth(&app.token)
        .send()
        .await
        .unwrap();
    assert_scim_error(response, 405, None).await;
}

async fn a_non_integer_paging_parameter_answers_400_invalid_value(backend: Backend) {
    let app = spawn_app(backend).await;
    for (name, value) in [("startIndex", "one"), ("count", "1.5")] {
        let response = app
            .client
            .get(app.url("/Users"))
            .bearer_auth(&app.token)
            .query(&[(name, value)])
            .send()
            .await
            .unwrap();
        assert_scim_error(response, 400, Some("invalidValue")).await;
    }
}
