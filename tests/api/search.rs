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
    cursor_paging_walks_every_result_once_per_rfc_9865,
    a_cursor_of_another_query_a_forged_one_or_an_expired_one_answers_400,
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

async fn cursor_paging_walks_every_result_once_per_rfc_9865(backend: Backend) {
    let app = spawn_app(backend).await;
    let mut ids = Vec::new();
    for i in 0..5 {
        let mut u = babs();
        u["userName"] = json!(format!("u{i}"));
        ids.push(app.create_user(&u).await["id"].as_str().unwrap().to_owned());
    }
    let mut seen = Vec::new();
    let mut page = app.fetch("/Users?cursor&count=2").await;
    assert!(page.get("startIndex").is_none());
    assert!(page.get("previousCursor").is_none());
    loop {
        assert_eq!(page["totalResults"], 5);
        seen.extend(
            page["Resources"]
                .as_array()
                .unwrap()
                .iter()
                .map(|u| u["id"].as_str().unwrap().to_owned()),
        );
        let Some(next) = page.get("nextCursor").and_then(Value::as_str) else {
            break;
        };
        let next = next.to_owned();
        page = app
            .client
            .get(app.url("/Users"))
            .bearer_auth(&app.token)
            .query(&[("cursor", next.as_str()), ("count", "2")])
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert!(page["previousCursor"].is_string());
    }
    assert_eq!(seen, ids);
}

async fn a_cursor_of_another_query_a_forged_one_or_an_expired_one_answers_400(backend: Backend) {
    let app = spawn_app(backend).await;
    for i in 0..3 {
        let mut u = babs();
        u["userName"] = json!(format!("u{i}"));
        app.create_user(&u).await;
    }
    let first = app.fetch("/Users?cursor=&count=1").await;
    let next = first["nextCursor"].as_str().unwrap().to_owned();
    let get = |query: Vec<(&'static str, String)>| {
        let request = app
            .client
            .get(app.url("/Users"))
            .bearer_auth(&app.token)
            .query(&query);
        async move { request.send().await.unwrap() }
    };
    let other_filter = get(vec![
        ("cursor", next.clone()),
        ("count", "1".into()),
        ("filter", "userName pr".into()),
    ])
    .await;
    assert_scim_error(other_filter, 400, Some("invalidCursor")).await;
    let other_count = get(vec![("cursor", next.clone()), ("count", "2".into())]).await;
    assert_scim_error(other_count, 400, Some("invalidCursor")).await;
    let forged = get(vec![("cursor", format!("x{next}")), ("count", "1".into())]).await;
    assert_scim_error(forged, 400, Some("invalidCursor")).await;
    let negative = get(vec![("cursor", String::new()), ("count", "-1".into())]).await;
    assert_scim_error(negative, 400, Some("invalidCount")).await;
    app.clock.advance(chrono::TimeDelta::hours(2));
    let expired = get(vec![("cursor", next), ("count", "1".into())]).await;
    assert_scim_error(expired, 400, Some("expiredCursor")).await;
}

both_backends!(listing_pages_by_cursor_and_merges_both_types_without_http);

/// `service::listing` is the whole of listing: called directly, no HTTP in between.
async fn listing_pages_by_cursor_and_merges_both_types_without_http(backend: Backend) {
    use scimbus::domain::ResourceKind;
    use scimbus::scim::projection::Projection;
    use scimbus::service::groups::Members;
    use scimbus::service::listing::{self, ListRequest};
    use scimbus::service::resource::ResourceBody;
    let app = spawn_app(backend).await;
    for i in 0..5 {
        app.create_user(&crate::helpers::user(&format!("u{i}")))
            .await;
    }
    for name in ["g0", "g1"] {
        assert_eq!(app.post("/Groups", &group(name, &[])).await.status(), 201);
    }
    let tenant = scimbus::service::tenants::live_tenant(&app.ctx, "acme")
        .await
        .unwrap();
    let request = |cursor: Option<String>, start: Option<i64>, count: i64| ListRequest {
        query: scimbus::service::ListQuery::default(),
        start_index: start,
        count: Some(count),
        cursor,
        projection: Projection::default(),
        members: Members::Exclude,
    };
    let json = |l: &ResourceBody| serde_json::to_value(l).unwrap();
    let id = |l: &ResourceBody| json(l)["id"].as_str().unwrap().to_owned();
    // Cursor paging: 2 at a time, to the end, each user once.
    let mut seen = Vec::new();
    let mut cursor = Some(String::new());
    while let Some(c) = cursor {
        let page = listing::list(
            &app.ctx,
            &tenant,
            &request(Some(c), None, 2),
            ResourceKind::User,
        )
        .await
        .unwrap();
        assert_eq!(page.total_results, 5);
        seen.extend(page.resources.iter().map(id));
        cursor = page.next_cursor;
    }
    seen.sort();
    seen.dedup();
    assert_eq!(seen.len(), 5);
    // A negative count beside a cursor is invalidCount.
    let refused = listing::list(
        &app.ctx,
        &tenant,
        &request(Some(String::new()), None, -1),
        ResourceKind::User,
    )
    .await
    .unwrap_err();
    assert_eq!(refused.to_scim("").status, 400);
    // The root search: users then groups, one index page across both.
    let merged = listing::search_all(&app.ctx, &tenant, &request(None, Some(5), 3))
        .await
        .unwrap();
    assert_eq!(merged.total_results, 7);
    let kinds: Vec<bool> = merged
        .resources
        .iter()
        .map(|l| json(l)["meta"]["resourceType"] == "Group")
        .collect();
    assert_eq!(kinds, [false, true, true]);
}
