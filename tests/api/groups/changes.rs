//! Membership changes: PUT and PATCH emit only the difference, deletions' events, ETags and
//! preconditions, concurrent additions, ten thousand members, event schemas.

use serde_json::{Value, json};

use crate::both_backends;
use crate::helpers::{Backend, assert_scim_error, spawn_app, user};

use super::{GROUP_URN, group, id, member_ids, patch_op, sorted};

both_backends!(
    a_group_put_replaces_the_member_set_and_emits_only_the_difference,
    a_group_patch_adds_and_removes_members_and_answers_204_with_the_etag,
    a_patch_adding_an_existing_member_changes_nothing,
    deleting_a_user_removes_it_from_its_groups_before_user_deleted,
    deleting_a_group_emits_members_removed_for_its_parents_then_group_deleted,
    if_match_and_if_none_match_follow_rfc_7644_3_14,
    concurrent_member_additions_to_one_group_lose_no_member,
    a_group_put_with_ten_thousand_members_fits_and_emits_chunks,
    every_group_event_fits_its_schema,
);

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
            &"2026-01-01T00:00:00.000Z".into(),
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
