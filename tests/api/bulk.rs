//! `/Bulk` (RFC 7644 §3.7): operations in one request, `bulkId` references in any order,
//! circular and dangling references, `failOnErrors`, limits, and one transaction and one
//! set of events per operation.

use serde_json::{Value, json};

use crate::both_backends;
use crate::helpers::{Backend, TestApp, assert_scim_error, spawn_app, user};

both_backends!(
    a_bulk_request_creates_users_and_a_group_whose_members_refer_to_them_by_bulk_id,
    bulk_ids_resolve_whatever_the_order_of_the_operations,
    put_patch_and_delete_operations_target_ids_and_bulk_ids,
    an_operation_failing_leaves_the_others_and_its_dependants_fail_with_409,
    circular_and_undefined_bulk_ids_fail_with_409_and_create_nothing_of_theirs,
    fail_on_errors_stops_the_job_after_that_many_errors,
    bulk_limits_answer_413_and_malformed_requests_400,
    a_body_past_a_value_limit_is_refused_whole_and_changes_nothing,
);

const BULK: &str = "urn:ietf:params:scim:api:messages:2.0:BulkRequest";
const GROUP: &str = "urn:ietf:params:scim:schemas:core:2.0:Group";

async fn bulk(app: &TestApp, operations: Value, fail_on_errors: Option<u64>) -> Value {
    let mut body = json!({"schemas": [BULK], "Operations": operations});
    if let Some(n) = fail_on_errors {
        body["failOnErrors"] = json!(n);
    }
    let response = app.post("/Bulk", &body).await;
    assert_eq!(response.status(), 200);
    let body: Value = response.json().await.unwrap();
    assert_eq!(
        body["schemas"],
        json!(["urn:ietf:params:scim:api:messages:2.0:BulkResponse"])
    );
    body
}

fn statuses(response: &Value) -> Vec<(String, String)> {
    response["Operations"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| {
            (
                o["bulkId"].as_str().unwrap_or("-").to_owned(),
                o["status"].as_str().unwrap().to_owned(),
            )
        })
        .collect()
}

fn id_of(response: &Value, bulk_id: &str) -> String {
    let op = response["Operations"]
        .as_array()
        .unwrap()
        .iter()
        .find(|o| o["bulkId"] == bulk_id)
        .unwrap();
    op["location"]
        .as_str()
        .unwrap()
        .rsplit('/')
        .next()
        .unwrap()
        .to_owned()
}

async fn a_bulk_request_creates_users_and_a_group_whose_members_refer_to_them_by_bulk_id(
    backend: Backend,
) {
    let app = spawn_app(backend).await;
    let response = bulk(
        &app,
        json!([
            {"method": "POST", "path": "/Users", "bulkId": "alice", "data": user("alice")},
            {"method": "POST", "path": "/Users", "bulkId": "bob", "data": user("bob")},
            {"method": "POST", "path": "/Groups", "bulkId": "staff", "data": {
                "schemas": [GROUP], "displayName": "Staff",
                "members": [{"value": "bulkId:alice", "type": "User"}, {"value": "bulkId:bob"}]
            }},
        ]),
        None,
    )
    .await;
    assert_eq!(
        statuses(&response),
        vec![
            ("alice".to_owned(), "201".to_owned()),
            ("bob".to_owned(), "201".to_owned()),
            ("staff".to_owned(), "201".to_owned()),
        ]
    );
    let op = &response["Operations"][0];
    assert_eq!(op["method"], "POST");
    assert_eq!(op["version"], "W/\"1\"");
    assert!(
        op["location"]
            .as_str()
            .unwrap()
            .contains("/scim/v2/acme/Users/")
    );
    let group = app
        .get(&format!("/Groups/{}", id_of(&response, "staff")))
        .await
        .json::<Value>()
        .await
        .unwrap();
    let mut members: Vec<&str> = group["members"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["value"].as_str().unwrap())
        .collect();
    members.sort_unstable();
    let mut expected = vec![id_of(&response, "alice"), id_of(&response, "bob")];
    expected.sort();
    assert_eq!(members, expected);
    // Each operation committed and emitted on its own: 2 user events, a group event and
    // its membership event.
    let types: Vec<String> = app
        .events()
        .await
        .into_iter()
        .map(|e| e.event_type)
        .collect();
    assert_eq!(
        types,
        vec![
            "scimbus.user.created",
            "scimbus.user.created",
            "scimbus.group.created",
            "scimbus.group.members_added"
        ]
    );
}

async fn bulk_ids_resolve_whatever_the_order_of_the_operations(backend: Backend) {
    let app = spawn_app(backend).await;
    // The group comes first and refers to users created after it; a nested group refers
    // to the group.
    let response = bulk(
        &app,
        json!([
            {"method": "POST", "path": "/Groups", "bulkId": "outer", "data": {
                "schemas": [GROUP], "displayName": "Outer",
                "members": [{"value": "bulkId:inner", "type": "Group"}]
            }},
            {"method": "POST", "path": "/Groups", "bulkId": "inner", "data": {
                "schemas": [GROUP], "displayName": "Inner",
                "members": [{"value": "bulkId:carol"}]
            }},
            {"method": "POST", "path": "/Users", "bulkId": "carol", "data": user("carol")},
        ]),
        None,
    )
    .await;
    let mut got = statuses(&response);
    got.sort();
    assert_eq!(
        got,
        vec![
            ("carol".to_owned(), "201".to_owned()),
            ("inner".to_owned(), "201".to_owned()),
            ("outer".to_owned(), "201".to_owned()),
        ]
    );
    let carol = id_of(&response, "carol");
    let user = app
        .get(&format!("/Users/{carol}"))
        .await
        .json::<Value>()
        .await
        .unwrap();
    let mut groups: Vec<&str> = user["groups"]
        .as_array()
        .unwrap()
        .iter()
        .map(|g| g["display"].as_str().unwrap())
        .collect();
    groups.sort_unstable();
    assert_eq!(groups, vec!["Inner", "Outer"], "direct and indirect");
}

async fn put_patch_and_delete_operations_target_ids_and_bulk_ids(backend: Backend) {
    let app = spawn_app(backend).await;
    let existing = app.create_user(&user("dave")).await;
    let dave = existing["id"].as_str().unwrap();
    let mut replaced = user("dave");
    replaced["title"] = json!("Engineer");
    let response = bulk(
        &app,
        json!([
            {"method": "PUT", "path": format!("/Users/{dave}"), "version": "W/\"1\"", "data": replaced},
            {"method": "POST", "path": "/Users", "bulkId": "erin", "data": user("erin")},
            {"method": "PATCH", "path": "/Users/bulkId:erin", "data": {
                "schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
                "Operations": [{"op": "Replace", "path": "active", "value": "False"}]
            }},
            {"method": "DELETE", "path": format!("/Users/{dave}")},
        ]),
        None,
    )
    .await;
    assert_eq!(
        statuses(&response),
        vec![
            ("-".to_owned(), "200".to_owned()),
            ("erin".to_owned(), "201".to_owned()),
            ("-".to_owned(), "200".to_owned()),
            ("-".to_owned(), "204".to_owned()),
        ]
    );
    assert_eq!(response["Operations"][0]["version"], "W/\"2\"");
    assert_eq!(response["Operations"][2]["version"], "W/\"2\"");
    assert_eq!(app.get(&format!("/Users/{dave}")).await.status(), 404);
    let erin = id_of(&response, "erin");
    let body = app
        .get(&format!("/Users/{erin}"))
        .await
        .json::<Value>()
        .await
        .unwrap();
    assert_eq!(body["active"], false);
    // A stale version fails that operation with 412.
    let response = bulk(
        &app,
        json!([{"method": "PUT", "path": format!("/Users/{erin}"), "version": "W/\"1\"", "data": user("erin")}]),
        None,
    )
    .await;
    assert_eq!(response["Operations"][0]["status"], "412");
}

async fn an_operation_failing_leaves_the_others_and_its_dependants_fail_with_409(backend: Backend) {
    let app = spawn_app(backend).await;
    app.create_user(&user("frank")).await;
    let response = bulk(
        &app,
        json!([
            {"method": "POST", "path": "/Users", "bulkId": "dup", "data": user("FRANK")},
            {"method": "POST", "path": "/Users", "bulkId": "gina", "data": user("gina")},
            {"method": "POST", "path": "/Groups", "bulkId": "team", "data": {
                "schemas": [GROUP], "displayName": "Team", "members": [{"value": "bulkId:dup"}]
            }},
            {"method": "PATCH", "path": "/Users/nope", "data": {
                "schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
                "Operations": [{"op": "replace", "path": "title", "value": "x"}]
            }},
        ]),
        None,
    )
    .await;
    assert_eq!(
        statuses(&response),
        vec![
            ("dup".to_owned(), "409".to_owned()),
            ("gina".to_owned(), "201".to_owned()),
            ("team".to_owned(), "409".to_owned()),
            ("-".to_owned(), "404".to_owned()),
        ]
    );
    let dup = &response["Operations"][0]["response"];
    assert_eq!(dup["scimType"], "uniqueness");
    assert_eq!(dup["status"], "409");
    assert_eq!(
        dup["schemas"],
        json!(["urn:ietf:params:scim:api:messages:2.0:Error"])
    );
    let groups = app.get("/Groups").await.json::<Value>().await.unwrap();
    assert_eq!(groups["totalResults"], 0, "the dependant created nothing");
    assert_eq!(app.user_count().await, 2);
}

async fn circular_and_undefined_bulk_ids_fail_with_409_and_create_nothing_of_theirs(
    backend: Backend,
) {
    let app = spawn_app(backend).await;
    let response = bulk(
        &app,
        json!([
            {"method": "POST", "path": "/Groups", "bulkId": "a", "data": {
                "schemas": [GROUP], "displayName": "A", "members": [{"value": "bulkId:b"}]
            }},
            {"method": "POST", "path": "/Groups", "bulkId": "b", "data": {
                "schemas": [GROUP], "displayName": "B", "members": [{"value": "bulkId:a"}]
            }},
            {"method": "POST", "path": "/Groups", "bulkId": "c", "data": {
                "schemas": [GROUP], "displayName": "C", "members": [{"value": "bulkId:ghost"}]
            }},
            {"method": "POST", "path": "/Users", "bulkId": "h", "data": user("hank")},
        ]),
        None,
    )
    .await;
    assert_eq!(
        statuses(&response),
        vec![
            ("a".to_owned(), "409".to_owned()),
            ("b".to_owned(), "409".to_owned()),
            ("c".to_owned(), "409".to_owned()),
            ("h".to_owned(), "201".to_owned()),
        ]
    );
    let detail = |i: usize| {
        response["Operations"][i]["response"]["detail"]
            .as_str()
            .unwrap()
            .to_owned()
    };
    assert!(detail(0).contains("circular"), "{}", detail(0));
    assert!(detail(2).contains("ghost"), "{}", detail(2));
    let groups = app.get("/Groups").await.json::<Value>().await.unwrap();
    assert_eq!(groups["totalResults"], 0);
}

async fn fail_on_errors_stops_the_job_after_that_many_errors(backend: Backend) {
    let app = spawn_app(backend).await;
    let response = bulk(
        &app,
        json!([
            {"method": "POST", "path": "/Users", "bulkId": "ok1", "data": user("ivy")},
            {"method": "POST", "path": "/Users", "bulkId": "bad1", "data": {"schemas": [crate::helpers::USER_URN]}},
            {"method": "POST", "path": "/Users", "bulkId": "bad2", "data": user("ivy")},
            {"method": "POST", "path": "/Users", "bulkId": "never", "data": user("jack")},
        ]),
        Some(2),
    )
    .await;
    assert_eq!(
        statuses(&response),
        vec![
            ("ok1".to_owned(), "201".to_owned()),
            ("bad1".to_owned(), "400".to_owned()),
            ("bad2".to_owned(), "409".to_owned()),
        ],
        "processing stops at the second error"
    );
    assert_eq!(app.user_count().await, 1);
}

async fn bulk_limits_answer_413_and_malformed_requests_400(backend: Backend) {
    let app = spawn_app(backend).await;
    let too_many: Vec<Value> = (0..1001)
        .map(|i| json!({"method": "DELETE", "path": format!("/Users/{i}")}))
        .collect();
    let response = app
        .post("/Bulk", &json!({"schemas": [BULK], "Operations": too_many}))
        .await;
    let body = assert_scim_error(response, 413, None).await;
    assert!(body["detail"].as_str().unwrap().contains("maxOperations"));
    let big = "x".repeat(9 * 1024 * 1024);
    let response = app
        .post(
            "/Bulk",
            &json!({"schemas": [BULK], "Operations": [{"method": "POST", "path": "/Users", "bulkId": "x", "data": {"userName": big}}]}),
        )
        .await;
    assert_scim_error(response, 413, None).await;
    for body in [
        json!({"Operations": []}),
        json!({"schemas": [BULK]}),
        json!({"schemas": [BULK], "Operations": [], "failOnErrors": 0}),
        json!([1, 2]),
    ] {
        let response = app.post("/Bulk", &body).await;
        assert_eq!(response.status(), 400, "{body}");
    }
    // Operation-level shape errors are entries, not request errors.
    let response = bulk(
        &app,
        json!([
            {"method": "GET", "path": "/Users"},
            {"method": "POST", "path": "/Users", "data": user("nobulk")},
            {"method": "POST", "path": "/Things", "bulkId": "t", "data": {}},
            {"method": "DELETE", "path": "/Users"},
        ]),
        None,
    )
    .await;
    let got: Vec<String> = statuses(&response).into_iter().map(|(_, s)| s).collect();
    assert_eq!(got, vec!["400", "400", "400", "400"]);
    assert_eq!(app.user_count().await, 0);
    assert_eq!(app.get("/Bulk").await.status(), 405);
}

/// A BulkRequest or a group PatchOp whose values pass a limit is refused as a whole (400
/// `invalidValue`, found while parsing): not even its valid operations run.
async fn a_body_past_a_value_limit_is_refused_whole_and_changes_nothing(backend: Backend) {
    let app = spawn_app(backend).await;
    let wide: serde_json::Map<String, Value> = (0..=scimbus::scim::validate::MAX_ATTRIBUTES)
        .map(|i| (format!("x{i}"), json!(i)))
        .collect();
    let mut stuffed = user("stuffed");
    stuffed.as_object_mut().unwrap().extend(wide.clone());
    let body = json!({"schemas": [BULK], "Operations": [
        {"method": "POST", "path": "/Users", "bulkId": "ok", "data": user("valid")},
        {"method": "POST", "path": "/Users", "bulkId": "wide", "data": stuffed},
    ]});
    let response = app
        .client
        .post(app.url("/Bulk"))
        .bearer_auth(&app.token)
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_scim_error(response, 400, Some("invalidValue")).await;
    assert_eq!(
        app.list_users(&[]).await["totalResults"],
        0,
        "no operation ran"
    );

    let group: Value = app
        .post(
            "/Groups",
            &json!({"schemas": [GROUP], "displayName": "eng"}),
        )
        .await
        .json()
        .await
        .unwrap();
    let member = app.create_user(&user("member")).await;
    let path = format!("/Groups/{}", group["id"].as_str().unwrap());
    let patch = json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"], "Operations": [
        {"op": "add", "path": "members", "value": [{"value": member["id"]}]},
        {"op": "add", "value": wide},
    ]});
    let response = app
        .client
        .patch(app.url(&path))
        .bearer_auth(&app.token)
        .json(&patch)
        .send()
        .await
        .unwrap();
    assert_scim_error(response, 400, Some("invalidValue")).await;
    let after: Value = app.get(&path).await.json().await.unwrap();
    assert_eq!(
        after["meta"]["version"], group["meta"]["version"],
        "the group did not change"
    );
    assert!(
        after
            .get("members")
            .is_none_or(|m| m.as_array().unwrap().is_empty())
    );
}
