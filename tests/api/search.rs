//! Projection (`attributes`, `excludedAttributes`) on read and write responses, and POST
//! `.search` on /Users, /Groups and the tenant root.

use serde_json::{Value, json};

use crate::both_backends;
use crate::groups::group;
use crate::helpers::{Backend, USER_URN, assert_scim_error, spawn_app};

both_backends!(
    attributes_and_excluded_attributes_shape_every_response,
    search_requests_filter_sort_and_page_like_a_get,
    a_root_search_lists_users_then_groups,
    bad_search_requests_answer_400,
);

const SEARCH_URN: &str = "urn:ietf:params:scim:api:messages:2.0:SearchRequest";

fn babs() -> Value {
    json!({
        "schemas": [USER_URN], "userName": "bjensen", "title": "Guide",
        "name": {"givenName": "Barbara", "familyName": "Jensen"},
        "emails": [{"value": "b@x.com", "type": "work"}]
    })
}

async fn attributes_and_excluded_attributes_shape_every_response(backend: Backend) {
    let app = spawn_app(backend).await;
    let created: Value = app
        .client
        .post(app.url("/Users?attributes=userName,name.givenName"))
        .bearer_auth(&app.token)
        .json(&babs())
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let id = created["id"].as_str().unwrap().to_owned();
    assert_eq!(
        created,
        json!({"schemas": [USER_URN], "id": id, "userName": "bjensen", "name": {"givenName": "Barbara"}})
    );
    let fetched = app
        .fetch(&format!(
            "/Users/{id}?excludedAttributes=emails,name.familyName,id"
        ))
        .await;
    assert_eq!(fetched["id"], id.as_str(), "id is always returned");
    assert!(fetched.get("emails").is_none());
    assert_eq!(fetched["name"], json!({"givenName": "Barbara"}));
    assert_eq!(fetched["title"], "Guide");
    let listed = app.fetch("/Users?attributes=emails.value").await;
    assert_eq!(
        listed["Resources"][0],
        json!({"schemas": [USER_URN], "id": id, "emails": [{"value": "b@x.com"}]})
    );
    let patched: Value = app
        .client
        .patch(app.url(&format!("/Users/{id}?attributes=title")))
        .bearer_auth(&app.token)
        .json(&crate::groups::patch_op(
            json!([{"op": "replace", "path": "title", "value": "Boss"}]),
        ))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        patched,
        json!({"schemas": [USER_URN], "id": id, "title": "Boss"})
    );
}

async fn search_requests_filter_sort_and_page_like_a_get(backend: Backend) {
    let app = spawn_app(backend).await;
    for name in ["carol", "alice", "bob", "dave"] {
        let mut u = babs();
        u["userName"] = json!(name);
        app.create_user(&u).await;
    }
    let response = app
        .post(
            "/Users/.search",
            &json!({
                "schemas": [SEARCH_URN],
                "filter": "userName ne \"dave\"",
                "sortBy": "userName", "sortOrder": "descending",
                "attributes": ["userName"],
                "startIndex": 2, "count": 2
            }),
        )
        .await;
    assert_eq!(response.status(), 200);
    let list: Value = response.json().await.unwrap();
    assert_eq!(list["totalResults"], 3);
    let names: Vec<&str> = list["Resources"]
        .as_array()
        .unwrap()
        .iter()
        .map(|u| u["userName"].as_str().unwrap())
        .collect();
    assert_eq!(names, vec!["bob", "alice"]);
    assert!(list["Resources"][0].get("title").is_none());
}

async fn a_root_search_lists_users_then_groups(backend: Backend) {
    let app = spawn_app(backend).await;
    let u = app.create_user(&babs()).await;
    let g = app.create_group(&group("Guides", &[&u])).await;
    let list: Value = app
        .post("/.search", &json!({"schemas": [SEARCH_URN]}))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(list["totalResults"], 2);
    assert_eq!(list["Resources"][0]["id"], u["id"]);
    assert_eq!(list["Resources"][1]["id"], g["id"]);
    // A filter only users can answer searches only users.
    let list: Value = app
        .post(
            "/.search",
            &json!({"schemas": [SEARCH_URN], "filter": "userName sw \"bj\""}),
        )
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(list["totalResults"], 1);
    let paged: Value = app
        .post(
            "/.search",
            &json!({"schemas": [SEARCH_URN], "startIndex": 2, "count": 5}),
        )
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(paged["Resources"].as_array().unwrap().len(), 1);
    assert_eq!(paged["Resources"][0]["id"], g["id"]);
}

async fn bad_search_requests_answer_400(backend: Backend) {
    let app = spawn_app(backend).await;
    let wrong_schema = app
        .post(
            "/Users/.search",
            &json!({"schemas": ["urn:x"], "filter": "userName pr"}),
        )
        .await;
    assert_scim_error(wrong_schema, 400, Some("invalidSyntax")).await;
    let bad_filter = app
        .post(
            "/Users/.search",
            &json!({"schemas": [SEARCH_URN], "filter": "nope eq 1"}),
        )
        .await;
    assert_scim_error(bad_filter, 400, Some("invalidFilter")).await;
    let neither = app
        .post(
            "/.search",
            &json!({"schemas": [SEARCH_URN], "filter": "nope pr"}),
        )
        .await;
    assert_scim_error(neither, 400, Some("invalidFilter")).await;
    let get = app.get("/Users/.search").await;
    assert_scim_error(get, 405, None).await;
}
