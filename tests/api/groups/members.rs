//! Group bodies and their members: creation, uniqueness, existence and cycle checks, a user's
//! computed groups, excluded members, lookups, and malformed or older member shapes.

use serde_json::{Value, json};

use crate::both_backends;
use crate::helpers::{Backend, assert_scim_error, spawn_app, user};

use super::{GROUP_URN, group, id, patch_op};

both_backends!(
    creating_a_group_with_members_returns_them_with_ref_display_and_type,
    a_taken_display_name_answers_409_whatever_its_case,
    a_member_that_does_not_exist_answers_400_and_changes_nothing,
    nested_groups_may_not_form_a_cycle,
    a_users_groups_list_direct_and_indirect_memberships,
    excluded_members_are_not_returned,
    groups_are_found_by_display_name_and_external_id,
    bad_members_in_a_group_body_answer_scim_errors_and_change_nothing,
    members_given_as_one_object_or_null_are_read_as_before,
);

async fn creating_a_group_with_members_returns_them_with_ref_display_and_type(backend: Backend) {
    let app = spawn_app(backend).await;
    let mut babs = user("bjensen");
    babs["displayName"] = json!("Babs Jensen");
    let babs = app.create_user(&babs).await;
    let inner = app.create_group(&group("Inner", &[])).await;
    let response = app
        .post("/Groups", &group("Tour Guides", &[&babs, &inner]))
        .await;
    assert_eq!(response.status(), 201);
    assert_eq!(response.headers()["etag"], "W/\"1\"");
    let created: Value = response.json().await.unwrap();
    assert_eq!(created["displayName"], "Tour Guides");
    assert_eq!(created["meta"]["resourceType"], "Group");
    let members = created["members"].as_array().unwrap();
    assert_eq!(members.len(), 2);
    let m = members.iter().find(|m| m["value"] == babs["id"]).unwrap();
    assert_eq!(m["type"], "User");
    assert_eq!(m["display"], "Babs Jensen");
    assert_eq!(m["$ref"], format!("{}/Users/{}", app.base, id(&babs)));
    let g = members.iter().find(|m| m["value"] == inner["id"]).unwrap();
    assert_eq!(g["type"], "Group");
    assert_eq!(g["$ref"], format!("{}/Groups/{}", app.base, id(&inner)));
    assert_eq!(
        app.fetch(&format!("/Groups/{}", id(&created))).await,
        created
    );
}

async fn a_taken_display_name_answers_409_whatever_its_case(backend: Backend) {
    let app = spawn_app(backend).await;
    app.create_group(&group("Admins", &[])).await;
    assert_scim_error(
        app.post("/Groups", &group("ADMINS", &[])).await,
        409,
        Some("uniqueness"),
    )
    .await;
    let other = app.create_group(&group("Others", &[])).await;
    let renamed = app
        .put(&format!("/Groups/{}", id(&other)), &group("admins", &[]))
        .await;
    assert_scim_error(renamed, 409, Some("uniqueness")).await;
    let list: Value = app.fetch("/Groups").await;
    assert_eq!(list["totalResults"], 2);
}

async fn a_member_that_does_not_exist_answers_400_and_changes_nothing(backend: Backend) {
    let app = spawn_app(backend).await;
    let ghost = json!({"id": "00000000-0000-0000-0000-000000000000"});
    assert_scim_error(
        app.post("/Groups", &group("G", &[&ghost])).await,
        400,
        Some("invalidValue"),
    )
    .await;
    assert_eq!(app.fetch("/Groups").await["totalResults"], 0);
    let g = app.create_group(&group("G", &[])).await;
    let before = app.events().await.len();
    let add =
        patch_op(json!([{"op": "add", "path": "members", "value": [{"value": ghost["id"]}]}]));
    assert_scim_error(
        app.patch(&format!("/Groups/{}", id(&g)), &add).await,
        400,
        Some("invalidValue"),
    )
    .await;
    // A user of another tenant is not a member candidate either.
    let other_token =
        crate::helpers::issue(&app.ctx, "other", vec![scimbus::domain::Scope::Scim]).await;
    let foreign: Value = app
        .client
        .post(format!("{}/scim/v2/other/Users", app.address))
        .bearer_auth(other_token)
        .json(&user("foreigner"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let add =
        patch_op(json!([{"op": "add", "path": "members", "value": [{"value": foreign["id"]}]}]));
    assert_scim_error(
        app.patch(&format!("/Groups/{}", id(&g)), &add).await,
        400,
        Some("invalidValue"),
    )
    .await;
    assert_eq!(app.fetch(&format!("/Groups/{}", id(&g))).await, g);
    assert_eq!(app.events().await.len(), before);
}

async fn nested_groups_may_not_form_a_cycle(backend: Backend) {
    let app = spawn_app(backend).await;
    let c = app.create_group(&group("C", &[])).await;
    let b = app.create_group(&group("B", &[&c])).await;
    let a = app.create_group(&group("A", &[&b])).await;
    for (target, member) in [(&c, &a), (&c, &b), (&a, &a)] {
        let add = patch_op(
            json!([{"op": "add", "path": "members", "value": [{"value": member["id"], "type": "Group"}]}]),
        );
        let response = app.patch(&format!("/Groups/{}", id(target)), &add).await;
        assert_scim_error(response, 400, Some("invalidValue")).await;
    }
    assert!(
        app.fetch(&format!("/Groups/{}", id(&c)))
            .await
            .get("members")
            .is_none()
    );
}

async fn a_users_groups_list_direct_and_indirect_memberships(backend: Backend) {
    let app = spawn_app(backend).await;
    let babs = app.create_user(&user("bjensen")).await;
    let inner = app.create_group(&group("Inner", &[&babs])).await;
    let outer = app.create_group(&group("Outer", &[&inner])).await;
    let fetched = app.fetch(&format!("/Users/{}", id(&babs))).await;
    let groups = fetched["groups"].as_array().unwrap();
    assert_eq!(groups.len(), 2);
    let direct = groups.iter().find(|g| g["value"] == inner["id"]).unwrap();
    assert_eq!(direct["type"], "direct");
    assert_eq!(direct["display"], "Inner");
    assert_eq!(
        direct["$ref"],
        format!("{}/Groups/{}", app.base, id(&inner))
    );
    let indirect = groups.iter().find(|g| g["value"] == outer["id"]).unwrap();
    assert_eq!(indirect["type"], "indirect");
    // groups is computed, outside the ETag: the user's version did not move.
    assert_eq!(fetched["meta"]["version"], "W/\"1\"");
    let listed = app.list_users(&[]).await;
    assert_eq!(
        listed["Resources"][0]["groups"].as_array().unwrap().len(),
        2
    );
    // readOnly: sent back in a PUT, it is ignored.
    let response = app.put(&format!("/Users/{}", id(&babs)), &fetched).await;
    assert_eq!(response.headers()["etag"], "W/\"1\"");
}

async fn excluded_members_are_not_returned(backend: Backend) {
    let app = spawn_app(backend).await;
    let a = app.create_user(&user("a")).await;
    let g = app.create_group(&group("G", &[&a])).await;
    let one = app
        .fetch(&format!("/Groups/{}?excludedAttributes=members", id(&g)))
        .await;
    assert!(one.get("members").is_none());
    assert_eq!(one["displayName"], "G");
    let list = app.fetch("/Groups?excludedAttributes=members").await;
    assert!(list["Resources"][0].get("members").is_none());
    let list = app.fetch("/Groups").await;
    assert_eq!(list["Resources"][0]["members"].as_array().unwrap().len(), 1);
}

async fn groups_are_found_by_display_name_and_external_id(backend: Backend) {
    let app = spawn_app(backend).await;
    let mut body = group("Tour Guides", &[]);
    body["externalId"] = json!("okta-g-1");
    let g = app.create_group(&body).await;
    app.create_group(&group("Other", &[])).await;
    for filter in [
        r#"displayName eq "tour guides""#,
        r#"externalId eq "okta-g-1""#,
    ] {
        let list = app
            .client
            .get(app.url("/Groups"))
            .bearer_auth(&app.token)
            .query(&[("filter", filter), ("excludedAttributes", "members")])
            .send()
            .await
            .unwrap()
            .json::<Value>()
            .await
            .unwrap();
        assert_eq!(list["totalResults"], 1, "{filter}");
        assert_eq!(list["Resources"][0]["id"], g["id"]);
    }
    let bad = app
        .client
        .get(app.url("/Groups"))
        .bearer_auth(&app.token)
        .query(&[("filter", r#"userName eq "x""#)])
        .send()
        .await
        .unwrap();
    assert_scim_error(bad, 400, Some("invalidFilter")).await;
}

/// Group POST/PUT bodies read `members` element by element (http::body::GroupJson): every
/// bad element still answers its SCIM error and nothing is written.
async fn bad_members_in_a_group_body_answer_scim_errors_and_change_nothing(backend: Backend) {
    let app = spawn_app(backend).await;
    let bjensen = app.create_user(&user("bjensen")).await;
    let created = app.create_group(&group("Admins", &[&bjensen])).await;
    let path = format!("/Groups/{}", created["id"].as_str().unwrap());
    let events_before = app.events().await.len();
    let id = bjensen["id"].clone();
    let cases: Vec<(String, u16, &str)> = vec![
        (
            json!({"schemas": [GROUP_URN], "displayName": "X", "members": [{"value": id}], "Members": []})
                .to_string(),
            400,
            "invalidSyntax",
        ),
        (
            json!({"schemas": [GROUP_URN], "displayName": "X", "members": ["just a string"]})
                .to_string(),
            400,
            "invalidValue",
        ),
        (
            json!({"schemas": [GROUP_URN], "displayName": "X", "members": [{"value": 7}]})
                .to_string(),
            400,
            "invalidValue",
        ),
        (
            r#"{"schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group"], "displayName": "X", "members": [{"value": "a\u0000b"}]}"#
                .to_owned(),
            400,
            "invalidValue",
        ),
        (
            json!({"schemas": [GROUP_URN], "displayName": "X", "members": [{"value": id, "type": "Robot"}]})
                .to_string(),
            400,
            "invalidValue",
        ),
        (
            r#"{"schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group"], "displayName": "X", "members": [{"value": "#
                .to_owned(),
            400,
            "invalidSyntax",
        ),
        ("[1, 2]".to_owned(), 400, "invalidSyntax"),
    ];
    for (body, status, scim_type) in cases {
        for (method, url) in [
            (reqwest::Method::POST, app.url("/Groups")),
            (reqwest::Method::PUT, app.url(&path)),
        ] {
            let response = app
                .client
                .request(method.clone(), url)
                .bearer_auth(&app.token)
                .header("content-type", "application/scim+json")
                .body(body.clone())
                .send()
                .await
                .unwrap();
            assert_scim_error(response, status, Some(scim_type)).await;
        }
    }
    let fetched: Value = app.get(&path).await.json().await.unwrap();
    assert_eq!(fetched["displayName"], "Admins");
    assert_eq!(fetched["members"].as_array().unwrap().len(), 1);
    assert_eq!(app.events().await.len(), events_before);
    let list: Value = app.get("/Groups").await.json().await.unwrap();
    assert_eq!(list["totalResults"], 1);
}

async fn members_given_as_one_object_or_null_are_read_as_before(backend: Backend) {
    let app = spawn_app(backend).await;
    let bjensen = app.create_user(&user("bjensen")).await;
    let single = app
        .create_group(&json!({"schemas": [GROUP_URN], "displayName": "One", "members": {"value": bjensen["id"]}}))
        .await;
    assert_eq!(single["members"][0]["value"], bjensen["id"]);
    assert_eq!(single["members"][0]["type"], "User");
    let none = app
        .create_group(&json!({"schemas": [GROUP_URN], "displayName": "None", "members": null}))
        .await;
    assert!(none.get("members").is_none());
    let path = format!("/Groups/{}", single["id"].as_str().unwrap());
    let response = app
        .put(
            &path,
            &json!({"schemas": [GROUP_URN], "displayName": "One", "MEMBERS": []}),
        )
        .await;
    assert_eq!(response.status(), 200);
    let body: Value = response.json().await.unwrap();
    assert!(body.get("members").is_none(), "{body}");
}
