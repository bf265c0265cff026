//! Groups: members as rows, uniqueness, existence and cycle checks, computed `groups` of a
//! user, membership events in O(delta), ETags and preconditions.

use serde_json::{Value, json};

use crate::both_backends;
use crate::helpers::{Backend, TestApp, assert_scim_error, spawn_app, user};

pub const GROUP_URN: &str = "urn:ietf:params:scim:schemas:core:2.0:Group";

both_backends!(
    creating_a_group_with_members_returns_them_with_ref_display_and_type,
    a_taken_display_name_answers_409_whatever_its_case,
    a_member_that_does_not_exist_answers_400_and_changes_nothing,
    nested_groups_may_not_form_a_cycle,
    a_users_groups_list_direct_and_indirect_memberships,
    a_group_put_replaces_the_member_set_and_emits_only_the_difference,
    a_group_patch_adds_and_removes_members_and_answers_204_with_the_etag,
    a_patch_adding_an_existing_member_changes_nothing,
    excluded_members_are_not_returned,
    groups_are_found_by_display_name_and_external_id,
    deleting_a_user_removes_it_from_its_groups_before_user_deleted,
    deleting_a_group_emits_members_removed_for_its_parents_then_group_deleted,
    if_match_and_if_none_match_follow_rfc_7644_3_14,
    concurrent_member_additions_to_one_group_lose_no_member,
    a_group_put_with_ten_thousand_members_fits_and_emits_chunks,
    every_group_event_fits_its_schema,
    bad_members_in_a_group_body_answer_scim_errors_and_change_nothing,
    members_given_as_one_object_or_null_are_read_as_before,
);

pub fn group(name: &str, members: &[&Value]) -> Value {
    let members: Vec<Value> = members.iter().map(|m| json!({"value": m["id"]})).collect();
    json!({"schemas": [GROUP_URN], "displayName": name, "members": members})
}

impl TestApp {
    pub async fn create_group(&self, body: &Value) -> Value {
        let response = self.post("/Groups", body).await;
        assert_eq!(response.status(), 201, "{:?}", response.text().await);
        response.json().await.unwrap()
    }

    pub async fn patch(&self, path: &str, body: &Value) -> reqwest::Response {
        self.client
            .patch(self.url(path))
            .bearer_auth(&self.token)
            .header("Content-Type", "application/scim+json")
            .body(body.to_string())
            .send()
            .await
            .unwrap()
    }

    pub async fn fetch(&self, path: &str) -> Value {
        let response = self.get(path).await;
        assert_eq!(response.status(), 200, "{path}");
        response.json().await.unwrap()
    }
}

pub fn patch_op(ops: Value) -> Value {
    json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"], "Operations": ops})
}

fn member_ids(group: &Value) -> Vec<String> {
    let mut ids: Vec<String> = group["members"]
        .as_array()
        .map(|m| {
            m.iter()
                .map(|m| m["value"].as_str().unwrap().to_owned())
                .collect()
        })
        .unwrap_or_default();
    ids.sort();
    ids
}

fn id(resource: &Value) -> String {
    resource["id"].as_str().unwrap().to_owned()
}

fn sorted(mut ids: Vec<String>) -> Vec<String> {
    ids.sort();
    ids
}

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

async fn a_group_put_replaces_the_member_set_and_emits_only_the_difference(backend: Backend) {
    let app = spawn_app(backend).await;
    let (a, b, c) = (
        app.create_user(&user("a")).await,
        app.create_user(&user("b")).await,
        app.create_user(&user("c")).await,
    );
    let g = app.create_group(&group("G", &[&a, &b])).await;
    let path = format!("/Groups/{}", id(&g));
    let before = app.events().await.len();
    let response = app.put(&path, &group("G", &[&b, &c])).await;
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["etag"], "W/\"2\"");
    let body: Value = response.json().await.unwrap();
    assert_eq!(member_ids(&body), sorted(vec![id(&b), id(&c)]));
    let events = app.events().await;
    let new: Vec<&scimbus::store::outbox::StoredEvent> = events[before..].iter().collect();
    let types: Vec<&str> = new.iter().map(|e| e.event_type.as_str()).collect();
    assert_eq!(
        types,
        vec![
            "scimbus.group.members_removed",
            "scimbus.group.members_added"
        ]
    );
    assert_eq!(new[0].payload["data"]["members"], json!([id(&a)]));
    assert_eq!(new[1].payload["data"]["members"], json!([id(&c)]));
    assert!(new.iter().all(|e| e.payload["data"]["version"] == 2));
    // The same PUT again (Okta AIW re-sends) changes nothing.
    let again = app.put(&path, &group("G", &[&c, &b])).await;
    assert_eq!(again.headers()["etag"], "W/\"2\"");
    assert_eq!(app.events().await.len(), events.len());
}

async fn a_group_patch_adds_and_removes_members_and_answers_204_with_the_etag(backend: Backend) {
    let app = spawn_app(backend).await;
    let (a, b, c) = (
        app.create_user(&user("a")).await,
        app.create_user(&user("b")).await,
        app.create_user(&user("c")).await,
    );
    let g = app.create_group(&group("G", &[&a])).await;
    let path = format!("/Groups/{}", id(&g));
    let add = patch_op(
        json!([{"op": "add", "path": "members", "value": [{"value": b["id"]}, {"value": c["id"]}]}]),
    );
    let response = app.patch(&path, &add).await;
    assert_eq!(response.status(), 204);
    assert_eq!(response.headers()["etag"], "W/\"2\"");
    assert_eq!(
        member_ids(&app.fetch(&path).await),
        sorted(vec![id(&a), id(&b), id(&c)])
    );

    // RFC filter form, then Entra's value-array form.
    let remove =
        patch_op(json!([{"op": "remove", "path": format!("members[value eq \"{}\"]", id(&a))}]));
    assert_eq!(app.patch(&path, &remove).await.status(), 204);
    let remove =
        patch_op(json!([{"op": "Remove", "path": "members", "value": [{"value": b["id"]}]}]));
    assert_eq!(app.patch(&path, &remove).await.status(), 204);
    let after = app.fetch(&path).await;
    assert_eq!(member_ids(&after), vec![id(&c)]);
    assert_eq!(after["meta"]["version"], "W/\"4\"");

    // With `attributes`, the PATCH answers 200 with the body.
    let response = app
        .client
        .patch(app.url(&format!("{path}?attributes=displayName,members")))
        .bearer_auth(&app.token)
        .json(&patch_op(
            json!([{"op": "replace", "path": "displayName", "value": "G2"}]),
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["displayName"], "G2");
    assert_eq!(member_ids(&body), vec![id(&c)]);
    let types: Vec<String> = app
        .events()
        .await
        .iter()
        .map(|e| e.event_type.clone())
        .collect();
    assert_eq!(
        types
            .iter()
            .filter(|t| *t == "scimbus.group.updated")
            .count(),
        1
    );
    assert_eq!(
        types
            .iter()
            .filter(|t| *t == "scimbus.group.members_removed")
            .count(),
        2
    );
}

async fn a_patch_adding_an_existing_member_changes_nothing(backend: Backend) {
    let app = spawn_app(backend).await;
    let a = app.create_user(&user("a")).await;
    let g = app.create_group(&group("G", &[&a])).await;
    let before = app.events().await.len();
    let add = patch_op(json!([{"op": "add", "path": "members", "value": [{"value": a["id"]}]}]));
    let response = app.patch(&format!("/Groups/{}", id(&g)), &add).await;
    assert_eq!(response.status(), 204);
    assert_eq!(response.headers()["etag"], "W/\"1\"");
    let rename_to_same =
        patch_op(json!([{"op": "replace", "value": {"id": g["id"], "displayName": "G"}}]));
    let response = app
        .patch(&format!("/Groups/{}", id(&g)), &rename_to_same)
        .await;
    assert_eq!(response.headers()["etag"], "W/\"1\"");
    assert_eq!(app.events().await.len(), before);
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

async fn deleting_a_user_removes_it_from_its_groups_before_user_deleted(backend: Backend) {
    let app = spawn_app(backend).await;
    let a = app.create_user(&user("a")).await;
    let b = app.create_user(&user("b")).await;
    let g1 = app.create_group(&group("G1", &[&a, &b])).await;
    let g2 = app.create_group(&group("G2", &[&a])).await;
    let before = app.events().await.len();
    assert_eq!(
        app.delete(&format!("/Users/{}", id(&a))).await.status(),
        204
    );
    let events = app.events().await;
    let new = &events[before..];
    let types: Vec<&str> = new.iter().map(|e| e.event_type.as_str()).collect();
    assert_eq!(
        types,
        vec![
            "scimbus.group.members_removed",
            "scimbus.group.members_removed",
            "scimbus.user.deleted"
        ]
    );
    for e in &new[..2] {
        assert_eq!(e.payload["data"]["members"], json!([id(&a)]));
        assert_eq!(e.payload["data"]["version"], 2);
    }
    let g1 = app.fetch(&format!("/Groups/{}", id(&g1))).await;
    assert_eq!(member_ids(&g1), vec![id(&b)]);
    assert_eq!(g1["meta"]["version"], "W/\"2\"");
    assert!(
        app.fetch(&format!("/Groups/{}", id(&g2)))
            .await
            .get("members")
            .is_none()
    );
}

async fn deleting_a_group_emits_members_removed_for_its_parents_then_group_deleted(
    backend: Backend,
) {
    let app = spawn_app(backend).await;
    let a = app.create_user(&user("a")).await;
    let inner = app.create_group(&group("Inner", &[&a])).await;
    let outer = app.create_group(&group("Outer", &[&inner])).await;
    let before = app.events().await.len();
    let path = format!("/Groups/{}", id(&inner));
    assert_eq!(app.delete(&path).await.status(), 204);
    assert_scim_error(app.get(&path).await, 404, None).await;
    let events = app.events().await;
    let types: Vec<&str> = events[before..]
        .iter()
        .map(|e| e.event_type.as_str())
        .collect();
    assert_eq!(
        types,
        vec!["scimbus.group.members_removed", "scimbus.group.deleted"]
    );
    assert_eq!(events[before].payload["data"]["group"], outer["id"]);
    assert!(
        app.fetch(&format!("/Groups/{}", id(&outer)))
            .await
            .get("members")
            .is_none()
    );
    assert!(
        app.fetch(&format!("/Users/{}", id(&a)))
            .await
            .get("groups")
            .is_none()
    );
}

async fn if_match_and_if_none_match_follow_rfc_7644_3_14(backend: Backend) {
    let app = spawn_app(backend).await;
    let u = app.create_user(&user("a")).await;
    let g = app.create_group(&group("G", &[])).await;
    for (path, body) in [
        (format!("/Users/{}", id(&u)), user("b")),
        (format!("/Groups/{}", id(&g)), group("H", &[])),
    ] {
        let stale = app
            .client
            .put(app.url(&path))
            .bearer_auth(&app.token)
            .header("If-Match", "W/\"7\"")
            .json(&body)
            .send()
            .await
            .unwrap();
        assert_scim_error(stale, 412, None).await;
        let cached = app
            .client
            .get(app.url(&path))
            .bearer_auth(&app.token)
            .header("If-None-Match", "W/\"1\"")
            .send()
            .await
            .unwrap();
        assert_eq!(cached.status(), 304);
        assert_eq!(cached.headers()["etag"], "W/\"1\"");
        let fresh = app
            .client
            .put(app.url(&path))
            .bearer_auth(&app.token)
            .header("If-Match", "\"1\"")
            .json(&body)
            .send()
            .await
            .unwrap();
        assert_eq!(fresh.status(), 200);
        let stale_delete = app
            .client
            .delete(app.url(&path))
            .bearer_auth(&app.token)
            .header("If-Match", "W/\"1\"")
            .send()
            .await
            .unwrap();
        assert_scim_error(stale_delete, 412, None).await;
        assert_eq!(app.fetch(&path).await["meta"]["version"], "W/\"2\"");
    }
}

async fn concurrent_member_additions_to_one_group_lose_no_member(backend: Backend) {
    let app = spawn_app(backend).await;
    let mut users = Vec::new();
    for i in 0..8 {
        users.push(app.create_user(&user(&format!("u{i}"))).await);
    }
    let g = app.create_group(&group("G", &[])).await;
    let path = format!("/Groups/{}", id(&g));
    let bodies: Vec<Value> = users
        .iter()
        .map(|u| patch_op(json!([{"op": "add", "path": "members", "value": [{"value": u["id"]}]}])))
        .collect();
    let responses =
        futures_util::future::join_all(bodies.iter().map(|b| app.patch(&path, b))).await;
    assert!(responses.iter().all(|r| r.status() == 204));
    let after = app.fetch(&path).await;
    assert_eq!(member_ids(&after).len(), 8);
    assert_eq!(after["meta"]["version"], "W/\"9\"");
    // And two writes to one user lose no update: both bump.
    let u = &users[0];
    let upath = format!("/Users/{}", id(u));
    let (x, y) = (
        patch_op(json!([{"op": "replace", "path": "title", "value": "x"}])),
        patch_op(json!([{"op": "replace", "path": "nickName", "value": "y"}])),
    );
    let (rx, ry) = tokio::join!(app.patch(&upath, &x), app.patch(&upath, &y));
    assert_eq!((rx.status().as_u16(), ry.status().as_u16()), (200, 200));
    let fetched = app.fetch(&upath).await;
    assert_eq!(
        (fetched["title"].as_str(), fetched["nickName"].as_str()),
        (Some("x"), Some("y"))
    );
    assert_eq!(fetched["meta"]["version"], "W/\"3\"");
}

async fn a_group_put_with_ten_thousand_members_fits_and_emits_chunks(backend: Backend) {
    let app = spawn_app(backend).await;
    let tenant = app.tenant_row().await;
    // Users are inserted straight into the store: the test is about the group write.
    let txn = app.ctx.store.begin_write().await.unwrap();
    let mut ids = Vec::with_capacity(10_000);
    for i in 0..10_000 {
        let id = uuid::Uuid::new_v4().to_string();
        let doc = json!({"schemas": [crate::helpers::USER_URN], "userName": format!("bulk{i}")});
        let new = scimbus::domain::NewUser {
            hot: scimbus::domain::UserHot {
                user_name: scimbus::domain::UserName::parse(&format!("bulk{i}")).unwrap(),
                external_id: None,
                active: true,
                display_name: None,
            },
            search: json!({"userName": format!("bulk{i}")}),
            document: doc.as_object().unwrap().clone(),
        };
        scimbus::store::users::insert(
            &txn,
            &tenant.id,
            &id.as_str().into(),
            new,
            "2026-01-01T00:00:00.000Z",
        )
        .await
        .unwrap();
        ids.push(id);
    }
    txn.commit().await.unwrap();
    let g = app.create_group(&group("Everyone", &[])).await;
    let members: Vec<Value> = ids
        .iter()
        .map(|id| json!({"value": id, "type": "User"}))
        .collect();
    let body = json!({"schemas": [GROUP_URN], "displayName": "Everyone", "members": members});
    assert!(body.to_string().len() < 4 * 1024 * 1024);
    let response = app.put(&format!("/Groups/{}", id(&g)), &body).await;
    assert_eq!(response.status(), 200);
    let events = app.events().await;
    let added: Vec<&scimbus::store::outbox::StoredEvent> = events
        .iter()
        .filter(|e| e.event_type == "scimbus.group.members_added")
        .collect();
    assert_eq!(added.len(), 20);
    assert_eq!(
        added[19].payload["data"]["chunk"],
        json!({"index": 20, "count": 20})
    );
    let total: usize = added
        .iter()
        .map(|e| e.payload["data"]["members"].as_array().unwrap().len())
        .sum();
    assert_eq!(total, 10_000);
    // Replacing 1 000 of them touches only those.
    let next: Vec<Value> = ids[1000..].iter().map(|id| json!({"value": id})).collect();
    let response = app
        .put(
            &format!("/Groups/{}", id(&g)),
            &json!({"schemas": [GROUP_URN], "displayName": "Everyone", "members": next}),
        )
        .await;
    assert_eq!(response.status(), 200);
    let events = app.events().await;
    let removed: usize = events
        .iter()
        .filter(|e| e.event_type == "scimbus.group.members_removed")
        .map(|e| e.payload["data"]["members"].as_array().unwrap().len())
        .sum();
    assert_eq!(removed, 1000);
}

async fn every_group_event_fits_its_schema(backend: Backend) {
    let app = spawn_app(backend).await;
    let a = app.create_user(&user("a")).await;
    let g = app.create_group(&group("G", &[&a])).await;
    let path = format!("/Groups/{}", id(&g));
    app.patch(
        &path,
        &patch_op(json!([{"op": "replace", "path": "displayName", "value": "H"}])),
    )
    .await;
    app.patch(
        &path,
        &patch_op(json!([{"op": "remove", "path": "members"}])),
    )
    .await;
    app.delete(&path).await;
    let events = app.events().await;
    let types: Vec<&str> = events.iter().map(|e| e.event_type.as_str()).collect();
    for t in [
        "scimbus.group.created",
        "scimbus.group.members_added",
        "scimbus.group.updated",
        "scimbus.group.members_removed",
        "scimbus.group.deleted",
    ] {
        assert!(types.contains(&t), "{t} emitted");
    }
    for event in events
        .iter()
        .filter(|e| e.event_type.starts_with("scimbus.group."))
    {
        assert!(
            event.payload["data"]
                .get("resource")
                .is_none_or(|r| r.get("members").is_none())
        );
        let schema = crate::outbox::schema_for(&event.event_type);
        let validator = jsonschema::validator_for(&schema).unwrap();
        let errors: Vec<String> = validator
            .iter_errors(&event.payload)
            .map(|e| e.to_string())
            .collect();
        assert!(errors.is_empty(), "{}: {errors:?}", event.event_type);
    }
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
