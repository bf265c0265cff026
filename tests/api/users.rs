use serde_json::{Value, json};

use crate::both_backends;
use crate::helpers::{Backend, USER_URN, assert_scim_error, spawn_app, user};

both_backends!(
    creating_a_user_returns_201_with_location_etag_and_meta,
    a_created_user_reads_back_by_id,
    put_replaces_the_whole_document_and_bumps_the_version,
    a_put_that_changes_nothing_bumps_nothing,
    deleting_a_user_returns_204_and_then_404,
    creating_a_user_with_a_taken_user_name_returns_409_uniqueness,
    renaming_a_user_onto_a_taken_user_name_returns_409_and_changes_nothing,
    two_racing_posts_of_one_user_name_create_exactly_one_user,
    readonly_attributes_in_the_body_are_ignored,
    unknown_attributes_and_extensions_are_kept_and_returned,
    the_password_is_never_stored_nor_returned,
    lists_page_in_a_stable_order_with_rfc_counts,
    eq_filters_on_user_name_external_id_id_and_display_name_work,
    bad_filters_answer_400_invalid_filter,
    unknown_query_parameters_are_ignored,
    a_missing_user_answers_404_with_a_scim_error,
);

async fn creating_a_user_returns_201_with_location_etag_and_meta(backend: Backend) {
    let app = spawn_app(backend).await;
    let response = app.post("/Users", &user("bjensen")).await;
    assert_eq!(response.status(), 201);
    assert_eq!(
        response.headers()["content-type"].to_str().unwrap(),
        "application/scim+json"
    );
    let etag = response.headers()["etag"].to_str().unwrap().to_owned();
    let location = response.headers()["location"].to_str().unwrap().to_owned();
    let body: Value = response.json().await.unwrap();
    let id = body["id"].as_str().unwrap();
    assert_eq!(location, format!("{}/Users/{id}", app.base));
    assert_eq!(etag, "W/\"1\"");
    assert_eq!(body["meta"]["version"], etag);
    assert_eq!(body["meta"]["location"], location);
    assert_eq!(body["meta"]["resourceType"], "User");
    let created = body["meta"]["created"].as_str().unwrap();
    assert_eq!(created.len(), 24, "fixed-width timestamp");
    assert_eq!(body["meta"]["lastModified"], created);
    assert_eq!(body["userName"], "bjensen");
    assert_eq!(body["schemas"], json!([USER_URN]));
}

async fn a_created_user_reads_back_by_id(backend: Backend) {
    let app = spawn_app(backend).await;
    let created = app
        .create_user(&json!({
            "schemas": [USER_URN], "userName": "bjensen", "name": {"givenName": "Barbara"},
            "emails": [{"value": "bjensen@example.com", "type": "work", "primary": true}]
        }))
        .await;
    let response = app
        .get(&format!("/Users/{}", created["id"].as_str().unwrap()))
        .await;
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["etag"], "W/\"1\"");
    let body: Value = response.json().await.unwrap();
    assert_eq!(body, created);
}

async fn put_replaces_the_whole_document_and_bumps_the_version(backend: Backend) {
    let app = spawn_app(backend).await;
    let created = app
        .create_user(&json!({"schemas": [USER_URN], "userName": "bjensen", "title": "Tour Guide"}))
        .await;
    let id = created["id"].as_str().unwrap();
    let response = app
        .put(
            &format!("/Users/{id}"),
            &json!({"schemas": [USER_URN], "userName": "bjensen", "nickName": "Babs"}),
        )
        .await;
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["etag"], "W/\"2\"");
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["nickName"], "Babs");
    assert!(body.get("title").is_none(), "PUT replaces: title is gone");
    assert_eq!(body["meta"]["created"], created["meta"]["created"]);
    assert_ne!(
        body["meta"]["lastModified"],
        created["meta"]["lastModified"]
    );
    assert_eq!(
        app.get(&format!("/Users/{id}"))
            .await
            .json::<Value>()
            .await
            .unwrap(),
        body
    );
}

async fn a_put_that_changes_nothing_bumps_nothing(backend: Backend) {
    let app = spawn_app(backend).await;
    let body = json!({"schemas": [USER_URN], "userName": "bjensen", "active": true});
    let created = app.create_user(&body).await;
    let id = created["id"].as_str().unwrap();
    // Okta re-sends what it sent; Entra sends "True" for true; readOnly attributes ride along.
    let mut again = body.clone();
    again["active"] = json!("True");
    again["id"] = json!(id);
    again["meta"] = created["meta"].clone();
    let response = app.put(&format!("/Users/{id}"), &again).await;
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["etag"], "W/\"1\"");
    assert_eq!(response.json::<Value>().await.unwrap(), created);
    assert_eq!(app.events().await.len(), 1, "only the creation emitted");
}

async fn deleting_a_user_returns_204_and_then_404(backend: Backend) {
    let app = spawn_app(backend).await;
    let created = app.create_user(&user("bjensen")).await;
    let path = format!("/Users/{}", created["id"].as_str().unwrap());
    assert_eq!(app.delete(&path).await.status(), 204);
    assert_scim_error(app.get(&path).await, 404, None).await;
    assert_scim_error(app.delete(&path).await, 404, None).await;
    assert_eq!(app.user_count().await, 0);
    // The id is read percent-decoded, as sent: the 404 names it so.
    let response = app.get("/Users/a%2Fb").await;
    assert_eq!(response.status(), 404);
    let body: serde_json::Value = response.json().await.unwrap();
    assert_eq!(body["detail"], "User a/b not found");
    // The name is free again.
    app.create_user(&user("bjensen")).await;
}

async fn creating_a_user_with_a_taken_user_name_returns_409_uniqueness(backend: Backend) {
    let app = spawn_app(backend).await;
    app.create_user(&user("bjensen@example.com")).await;
    for taken in ["bjensen@example.com", "BJensen@Example.COM"] {
        assert_scim_error(
            app.post("/Users", &user(taken)).await,
            409,
            Some("uniqueness"),
        )
        .await;
    }
    assert_eq!(app.user_count().await, 1);
    assert_eq!(app.events().await.len(), 1);
}

async fn renaming_a_user_onto_a_taken_user_name_returns_409_and_changes_nothing(backend: Backend) {
    let app = spawn_app(backend).await;
    app.create_user(&user("alice")).await;
    let bob = app.create_user(&user("bob")).await;
    let path = format!("/Users/{}", bob["id"].as_str().unwrap());
    assert_scim_error(
        app.put(&path, &user("ALICE")).await,
        409,
        Some("uniqueness"),
    )
    .await;
    assert_eq!(app.get(&path).await.json::<Value>().await.unwrap(), bob);
    assert_eq!(app.events().await.len(), 2);
}

async fn two_racing_posts_of_one_user_name_create_exactly_one_user(backend: Backend) {
    let app = spawn_app(backend).await;
    for round in 0..5 {
        let name = format!("racer{round}");
        let (first, second) = (user(&name), user(&name.to_uppercase()));
        let (a, b) = tokio::join!(app.post("/Users", &first), app.post("/Users", &second));
        let mut statuses = [a.status().as_u16(), b.status().as_u16()];
        statuses.sort();
        assert_eq!(statuses, [201, 409], "round {round}");
    }
    assert_eq!(app.user_count().await, 5);
    let sequences: Vec<i64> = app.events().await.iter().map(|e| e.sequence).collect();
    assert_eq!(
        sequences,
        vec![2, 3, 4, 5, 6],
        "after the tenant's tenant.created"
    );
}

async fn readonly_attributes_in_the_body_are_ignored(backend: Backend) {
    let app = spawn_app(backend).await;
    let body = json!({
        "schemas": [USER_URN], "userName": "bjensen",
        "id": "client-chosen", "groups": [{"value": "g1", "display": "Admins"}],
        "meta": {"resourceType": "Group", "version": "W/\"42\"", "created": "2000-01-01T00:00:00Z"}
    });
    let created = app.create_user(&body).await;
    assert_ne!(created["id"], "client-chosen");
    assert_eq!(created["meta"]["resourceType"], "User");
    assert_eq!(created["meta"]["version"], "W/\"1\"");
    assert!(created.get("groups").is_none());
    assert_scim_error(app.get("/Users/client-chosen").await, 404, None).await;
}

async fn unknown_attributes_and_extensions_are_kept_and_returned(backend: Backend) {
    let app = spawn_app(backend).await;
    let enterprise = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User";
    let custom = "urn:okta:custom:1.0:User";
    let body = json!({
        "schemas": [USER_URN, enterprise, custom],
        "USERNAME": "bjensen",
        "favouriteColour": "teal",
        enterprise: {"employeeNumber": "701984", "manager": {"value": "26118915"}},
        custom: {"badge": 7, "nested": {"x": [1, 2]}}
    });
    let created = app.create_user(&body).await;
    assert_eq!(created["userName"], "bjensen", "canonical attribute name");
    assert_eq!(created["favouriteColour"], "teal");
    assert_eq!(created[enterprise], body[enterprise]);
    assert_eq!(created[custom], body[custom]);
    assert_eq!(created["schemas"], json!([USER_URN, enterprise, custom]));
    let fetched: Value = app
        .get(&format!("/Users/{}", created["id"].as_str().unwrap()))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(fetched, created);
}

async fn the_password_is_never_stored_nor_returned(backend: Backend) {
    let app = spawn_app(backend).await;
    let mut body = user("bjensen");
    body["password"] = json!("t1meMa$heen");
    let created = app.create_user(&body).await;
    assert!(created.get("password").is_none());
    let id = created["id"].as_str().unwrap();
    let fetched = app.get(&format!("/Users/{id}")).await.text().await.unwrap();
    assert!(!fetched.contains("t1meMa$heen"));
    let events = serde_json::to_string(
        &app.events()
            .await
            .iter()
            .map(|e| &e.payload)
            .collect::<Vec<_>>(),
    )
    .unwrap();
    assert!(!events.contains("t1meMa$heen"));
    // A PUT that only adds a password is a no-op.
    let response = app.put(&format!("/Users/{id}"), &body).await;
    assert_eq!(response.headers()["etag"], "W/\"1\"");
}

async fn lists_page_in_a_stable_order_with_rfc_counts(backend: Backend) {
    let app = spawn_app(backend).await;
    let mut ids = Vec::new();
    for i in 0..7 {
        ids.push(app.create_user(&user(&format!("user{i}"))).await["id"].clone());
    }
    let all = app.list_users(&[]).await;
    assert_eq!(
        all["schemas"],
        json!(["urn:ietf:params:scim:api:messages:2.0:ListResponse"])
    );
    assert_eq!(all["totalResults"], 7);
    assert_eq!(all["itemsPerPage"], 7);
    assert_eq!(all["startIndex"], 1);
    let listed: Vec<Value> = all["Resources"]
        .as_array()
        .unwrap()
        .iter()
        .map(|u| u["id"].clone())
        .collect();
    assert_eq!(listed, ids, "creation order");

    let page = app.list_users(&[("startIndex", "3"), ("count", "2")]).await;
    assert_eq!(page["totalResults"], 7);
    assert_eq!(page["itemsPerPage"], 2);
    assert_eq!(page["startIndex"], 3);
    let paged: Vec<Value> = page["Resources"]
        .as_array()
        .unwrap()
        .iter()
        .map(|u| u["id"].clone())
        .collect();
    assert_eq!(paged, ids[2..4]);

    let none = app.list_users(&[("count", "0")]).await;
    assert_eq!(none["totalResults"], 7);
    assert_eq!(none["itemsPerPage"], 0);
    assert_eq!(none["Resources"], json!([]));

    // RFC 7644 §3.4.2.4: startIndex below 1 is 1, a negative count is 0.
    let low = app
        .list_users(&[("startIndex", "-4"), ("count", "-1")])
        .await;
    assert_eq!(low["startIndex"], 1);
    assert_eq!(low["itemsPerPage"], 0);
    let past = app.list_users(&[("startIndex", "50")]).await;
    assert_eq!(past["totalResults"], 7);
    assert_eq!(past["Resources"], json!([]));
}

async fn eq_filters_on_user_name_external_id_id_and_display_name_work(backend: Backend) {
    let app = spawn_app(backend).await;
    let b = app
        .create_user(&json!({"schemas": [USER_URN], "userName": "BJensen", "externalId": "ext-1", "displayName": "Babs Jensen"}))
        .await;
    app.create_user(&json!({"schemas": [USER_URN], "userName": "jsmith", "externalId": "EXT-1", "displayName": "John"}))
        .await;
    let id = b["id"].as_str().unwrap();
    for filter in [
        r#"userName eq "bjensen""#.to_owned(),
        r#"USERNAME EQ "BJENSEN""#.to_owned(),
        format!(r#"{USER_URN}:userName eq "BJensen""#),
        r#"externalId eq "ext-1""#.to_owned(),
        format!(r#"id eq "{id}""#),
        r#"displayName eq "babs jensen""#.to_owned(),
    ] {
        let list = app.list_users(&[("filter", filter.as_str())]).await;
        assert_eq!(list["totalResults"], 1, "{filter}");
        assert_eq!(list["Resources"][0]["id"], id, "{filter}");
    }
    let none = app
        .list_users(&[("filter", r#"userName eq "nobody""#)])
        .await;
    assert_eq!(none["totalResults"], 0);
    assert_eq!(none["Resources"], json!([]));
}

async fn bad_filters_answer_400_invalid_filter(backend: Backend) {
    let app = spawn_app(backend).await;
    app.create_user(&user("bjensen")).await;
    for filter in [
        "userName eq",
        "((((",
        r#"unknownAttr eq "x""#,
        "userName eq true",
        r#"active eq "yes""#,
        r#"meta.created gt "last tuesday""#,
    ] {
        let response = app
            .client
            .get(app.url("/Users"))
            .bearer_auth(&app.token)
            .query(&[("filter", filter)])
            .send()
            .await
            .unwrap();
        assert_scim_error(response, 400, Some("invalidFilter")).await;
    }
}

async fn unknown_query_parameters_are_ignored(backend: Backend) {
    let app = spawn_app(backend).await;
    app.create_user(&user("bjensen")).await;
    let list = app
        .list_users(&[
            ("aadOptscim062020", ""),
            ("filter", r#"userName eq "bjensen""#),
            ("x", "y"),
        ])
        .await;
    assert_eq!(list["totalResults"], 1);
}

async fn a_missing_user_answers_404_with_a_scim_error(backend: Backend) {
    let app = spawn_app(backend).await;
    let missing = "/Users/00000000-0000-0000-0000-000000000000";
    assert_scim_error(app.get(missing).await, 404, None).await;
    assert_scim_error(app.put(missing, &user("x")).await, 404, None).await;
    assert_scim_error(app.delete(missing).await, 404, None).await;
    assert_eq!(app.user_count().await, 0);
    assert!(app.events().await.is_empty());
}

#[tokio::test]
async fn location_and_meta_location_use_the_public_url() {
    let app = crate::helpers::spawn_app_with(
        Backend::Sqlite,
        &[("SCIMBUS_PUBLIC_URL", "https://scim.example.com/".to_owned())],
    )
    .await;
    let response = app.post("/Users", &user("bjensen")).await;
    let location = response.headers()["location"].to_str().unwrap().to_owned();
    let body: Value = response.json().await.unwrap();
    let id = body["id"].as_str().unwrap();
    assert_eq!(
        location,
        format!("https://scim.example.com/scim/v2/acme/Users/{id}")
    );
    assert_eq!(body["meta"]["location"], location);
}
