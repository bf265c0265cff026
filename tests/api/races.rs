//! Races on PostgreSQL, each forced: a failpoint (`scimbus::failpoints`) pauses one write
//! at its racy step while the test makes the other side happen, then lets it go on. The
//! outcome must agree with the events and with the rest of the data, whichever side wins.

use reqwest::Method;
use scimbus::failpoints::Pause;
use scimbus::service::maintenance::{self, PurgeStep};
use serde_json::{Value, json};

use crate::helpers::{Backend, TestApp, spawn_app, user};

const GROUP_URN: &str = "urn:ietf:params:scim:schemas:core:2.0:Group";
const PATCH_URN: &str = "urn:ietf:params:scim:api:messages:2.0:PatchOp";

async fn group(app: &TestApp, name: &str) -> String {
    let response = app
        .post(
            "/Groups",
            &json!({"schemas": [GROUP_URN], "displayName": name}),
        )
        .await;
    assert_eq!(response.status(), 201);
    let body: Value = response.json().await.unwrap();
    body["id"].as_str().unwrap().to_owned()
}

fn add_member(app: &TestApp, group: &str, member: &str) -> reqwest::RequestBuilder {
    app.client
        .patch(app.url(&format!("/Groups/{group}")))
        .bearer_auth(&app.token)
        .json(&json!({
            "schemas": [PATCH_URN],
            "Operations": [{"op": "add", "path": "members", "value": [{"value": member}]}]
        }))
}

async fn member_ids(app: &TestApp, group: &str) -> Vec<String> {
    let body: Value = app
        .get(&format!("/Groups/{group}"))
        .await
        .json()
        .await
        .unwrap();
    body["members"]
        .as_array()
        .map(|m| {
            m.iter()
                .map(|m| m["value"].as_str().unwrap().to_owned())
                .collect()
        })
        .unwrap_or_default()
}

/// Finding 6: PATCH add U resolves U, DELETE /Users/U commits, the PATCH inserts the row.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn adding_a_member_while_it_is_deleted_leaves_no_dangling_row() {
    for round in 0..3 {
        let app = spawn_app(Backend::Postgres).await;
        let u = app.create_user(&user(&format!("u{round}"))).await;
        let u = u["id"].as_str().unwrap().to_owned();
        let g = group(&app, "g").await;
        let mut pause = Pause::arm("group.members.resolved", &g);
        let patch = tokio::spawn(add_member(&app, &g, &u).send());
        assert!(pause.reached().await);
        // The deletion runs while the PATCH holds its resolved member.
        let delete = tokio::spawn(
            app.client
                .delete(app.url(&format!("/Users/{u}")))
                .bearer_auth(&app.token)
                .send(),
        );
        tokio::time::sleep(std::time::Duration::from_millis(300)).await;
        pause.release();
        let patched = patch.await.unwrap().unwrap().status().as_u16();
        let deleted = delete.await.unwrap().unwrap().status().as_u16();
        assert_eq!(deleted, 204);
        assert!(
            patched == 200 || patched == 204 || patched == 400,
            "{patched}"
        );
        // Whoever won, the group lists no member that 404s ...
        assert!(member_ids(&app, &g).await.is_empty(), "dangling member");
        // ... and no event adds U after `user.deleted`.
        let events = app.events().await;
        let deleted_at = events
            .iter()
            .position(|e| e.event_type == "scimbus.user.deleted")
            .unwrap();
        assert!(
            !events[deleted_at..]
                .iter()
                .any(|e| e.event_type == "scimbus.group.members_added"),
            "members_added after user.deleted"
        );
    }
}

/// Finding 7: "G1 add G2" and "G2 add G1", each past its cycle check before the other
/// commits.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_nestings_cannot_make_a_cycle() {
    let app = spawn_app(Backend::Postgres).await;
    let g1 = group(&app, "g1").await;
    let g2 = group(&app, "g2").await;
    let mut pause = Pause::arm("group.members.resolved", &g1);
    let first = tokio::spawn(add_member(&app, &g1, &g2).send());
    assert!(pause.reached().await);
    let second = tokio::spawn(add_member(&app, &g2, &g1).send());
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    pause.release();
    let first = first.await.unwrap().unwrap().status().as_u16();
    let second = second.await.unwrap().unwrap().status().as_u16();
    let nested = [
        member_ids(&app, &g1).await.contains(&g2),
        member_ids(&app, &g2).await.contains(&g1),
    ];
    assert!(
        !(nested[0] && nested[1]),
        "a cycle was created ({first}, {second})"
    );
    assert!(
        nested[0] || nested[1],
        "one of the two succeeds ({first}, {second})"
    );
}

/// Finding 7: a chain longer than the walk's depth bound cannot be closed into a cycle.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cycle_through_a_chain_deeper_than_the_bound_is_refused() {
    let app = spawn_app(Backend::Postgres).await;
    let mut chain = Vec::new();
    for i in 0..70 {
        chain.push(group(&app, &format!("c{i}")).await);
    }
    for pair in chain.windows(2) {
        let response = add_member(&app, &pair[0], &pair[1]).send().await.unwrap();
        assert!(response.status().is_success(), "{}", response.status());
    }
    // c69 add c0 closes a 70-group cycle.
    let response = add_member(&app, &chain[69], &chain[0])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 400);
    assert!(!member_ids(&app, &chain[69]).await.contains(&chain[0]));
}

/// Users of a tenant, counted in the database (the tenant's tokens are revoked).
async fn users_in_database(app: &TestApp, tenant_id: &str) -> i64 {
    use sea_orm::ConnectionTrait;
    let row = app
        .ctx
        .store
        .conn()
        .query_one_raw(sea_orm::Statement::from_sql_and_values(
            sea_orm::DbBackend::Postgres,
            "SELECT COUNT(*) AS n FROM users WHERE tenant_id = $1",
            [tenant_id.into()],
        ))
        .await
        .unwrap()
        .unwrap();
    row.try_get("", "n").unwrap()
}

/// Finding 8: a /Bulk in flight while its tenant is deleted and purged.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_write_lands_and_no_event_follows_once_the_tenant_is_deleted() {
    let app = spawn_app(Backend::Postgres).await;
    let tenant_id = app.tenant_row().await.id;
    let mut pause = Pause::arm("emit", &tenant_id);
    let bulk = json!({
        "schemas": ["urn:ietf:params:scim:api:messages:2.0:BulkRequest"],
        "Operations": (0..3).map(|i| json!({
            "method": "POST", "path": "/Users", "bulkId": format!("b{i}"),
            "data": user(&format!("bulk{i}")),
        })).collect::<Vec<_>>(),
    });
    let in_flight = tokio::spawn(
        app.client
            .post(app.url("/Bulk"))
            .bearer_auth(&app.token)
            .json(&bulk)
            .send(),
    );
    assert!(pause.reached().await);
    // While the first operation is about to commit, the tenant is deleted; when the
    // deletion does not wait for the write in hand, the purge runs to its end and
    // `tenant.deleted` is written before the write goes on.
    let deletion = tokio::spawn(
        app.client
            .request(
                Method::DELETE,
                format!("{}/admin/v1/tenants/acme", app.address),
            )
            .bearer_auth(crate::helpers::ADMIN_TOKEN)
            .send(),
    );
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    if deletion.is_finished() {
        while maintenance::purge_once(&app.ctx).await.unwrap() != PurgeStep::Idle {}
    }
    pause.release();
    assert_eq!(deletion.await.unwrap().unwrap().status(), 204);
    let _ = in_flight.await.unwrap().unwrap();
    while maintenance::purge_once(&app.ctx).await.unwrap() != PurgeStep::Idle {}
    let events = app.events_of("acme").await;
    assert_eq!(
        events.last().unwrap().event_type,
        "scimbus.tenant.deleted",
        "no event follows tenant.deleted"
    );
    assert_eq!(
        users_in_database(&app, tenant_id.as_str()).await,
        0,
        "no user of a purged tenant"
    );
}

/// How many users the filter `costCenter eq value` of the test extension finds.
async fn cost_centers(app: &TestApp, value: &str) -> u64 {
    const URN: &str = "urn:example:acme:1.0:User";
    app.list_users(&[("filter", &format!("{URN}:costCenter eq \"{value}\""))])
        .await["totalResults"]
        .as_u64()
        .unwrap()
}

/// Registers the extension of [`register_cost_center`] and waits for its re-index.
async fn registered_cost_center(app: &TestApp) {
    let registered = register_cost_center(app).send().await.unwrap();
    assert_eq!(registered.status(), 202);
    let accepted: Value = registered.json().await.unwrap();
    let job = app
        .finished_job(accepted["job"]["id"].as_str().unwrap())
        .await;
    assert_eq!(job["state"], "succeeded", "{job}");
}

/// The request registering the extension `urn:example:acme:1.0:User` (a `costCenter`
/// string) for tenant `acme`.
fn register_cost_center(app: &TestApp) -> reqwest::RequestBuilder {
    let definition = json!({
        "id": "urn:example:acme:1.0:User", "name": "Acme", "resourceType": "User",
        "attributes": [{"name": "costCenter", "type": "string"}]
    });
    app.client
        .post(format!("{}/admin/v1/tenants/acme/schemas", app.address))
        .bearer_auth(crate::helpers::ADMIN_TOKEN)
        .json(&definition)
}

/// Finding 10: re-indexing after a registration reads a batch, a PUT changes one of its
/// users and a DELETE removes another, then the batch is written.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reindexing_never_overwrites_a_concurrent_write_or_fails_after_committing() {
    const URN: &str = "urn:example:acme:1.0:User";
    let app = spawn_app(Backend::Postgres).await;
    let body = |name: &str, cost: &str| json!({"schemas": [crate::helpers::USER_URN, URN], "userName": name, URN: {"costCenter": cost}});
    let changed = app.create_user(&body("changed", "OLD")).await;
    let gone = app.create_user(&body("gone", "X")).await;
    let tenant_id = app.tenant_row().await.id;
    let mut pause = Pause::arm("reindex.batch", &format!("{tenant_id}:0"));
    let registration = register_cost_center(&app).send().await.unwrap();
    assert_eq!(registration.status(), 202);
    let accepted: Value = registration.json().await.unwrap();
    assert!(pause.reached().await);
    let put = tokio::spawn(
        app.client
            .put(app.url(&format!("/Users/{}", changed["id"].as_str().unwrap())))
            .bearer_auth(&app.token)
            .json(&body("changed", "NEW"))
            .send(),
    );
    let delete = tokio::spawn(
        app.client
            .delete(app.url(&format!("/Users/{}", gone["id"].as_str().unwrap())))
            .bearer_auth(&app.token)
            .send(),
    );
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    pause.release();
    let job = app
        .finished_job(accepted["job"]["id"].as_str().unwrap())
        .await;
    assert_eq!(job["state"], "succeeded", "{job}");
    assert_eq!(put.await.unwrap().unwrap().status(), 200);
    assert_eq!(delete.await.unwrap().unwrap().status(), 204);
    let found = |value: &'static str| cost_centers(&app, value);
    assert_eq!(
        found("NEW").await,
        1,
        "the concurrent write's search document stands"
    );
    assert_eq!(found("OLD").await, 0);
}

/// Finding 10 (continued): a PUT that built its user with the registry it loaded before a
/// registration, and writes after the registration and its re-index are over, would store
/// a search document without the new typing (filters miss it until its next write). It is
/// refused (503, nothing written) and its retry is indexed with the new registry.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_write_built_before_a_registration_never_lands_with_the_old_typing() {
    const URN: &str = "urn:example:acme:1.0:User";
    for backend in [Backend::Postgres, Backend::Sqlite] {
        let app = spawn_app(backend).await;
        let body = |cost: &str| json!({"schemas": [crate::helpers::USER_URN, URN], "userName": "late", URN: {"costCenter": cost}});
        let user = app.create_user(&body("OLD")).await;
        let path = format!("/Users/{}", user["id"].as_str().unwrap());
        let tenant_id = app.tenant_row().await.id;
        let mut pause = Pause::arm("user.write", &tenant_id);
        let put = tokio::spawn(
            app.client
                .put(app.url(&path))
                .bearer_auth(&app.token)
                .json(&body("NEW"))
                .send(),
        );
        assert!(pause.reached().await);
        registered_cost_center(&app).await;
        pause.release();
        let answer = put.await.unwrap().unwrap();
        let status = answer.status().as_u16();
        let found = |value: &'static str| cost_centers(&app, value);
        // Whatever the answer, the index agrees with what is stored.
        let stored: Value = app.get(&path).await.json().await.unwrap();
        let cost = stored[URN]["costCenter"].as_str().unwrap().to_owned();
        assert_eq!(
            found("NEW").await,
            u64::from(cost == "NEW"),
            "{backend:?}: the index misses the stored value"
        );
        assert_eq!(status, 503, "{backend:?}: the stale write is refused");
        assert_eq!(cost, "OLD", "{backend:?}: nothing of it was written");
        let retried = app
            .client
            .put(app.url(&path))
            .bearer_auth(&app.token)
            .json(&body("NEW"))
            .send()
            .await
            .unwrap();
        assert_eq!(retried.status(), 200);
        assert_eq!(found("NEW").await, 1, "{backend:?}: the retry is indexed");
    }
}

/// A create built with the registry loaded before a registration, written after it (on
/// PostgreSQL one statement without a transaction around it): refused with 503, neither
/// the user nor its event lands, and the retry is indexed with the new registry.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_create_built_before_a_registration_lands_nothing() {
    const URN: &str = "urn:example:acme:1.0:User";
    for backend in [Backend::Postgres, Backend::Sqlite] {
        let app = spawn_app(backend).await;
        let body = json!({"schemas": [crate::helpers::USER_URN, URN], "userName": "early", URN: {"costCenter": "C1"}});
        let tenant_id = app.tenant_row().await.id;
        let mut pause = Pause::arm("user.create", &tenant_id);
        let create = tokio::spawn(
            app.client
                .post(app.url("/Users"))
                .bearer_auth(&app.token)
                .json(&body)
                .send(),
        );
        assert!(pause.reached().await);
        registered_cost_center(&app).await;
        pause.release();
        assert_eq!(create.await.unwrap().unwrap().status(), 503, "{backend:?}");
        let found = app.list_users(&[("filter", "userName eq \"early\"")]).await;
        assert_eq!(found["totalResults"], 0, "{backend:?}: no user landed");
        assert!(
            app.events().await.is_empty(),
            "{backend:?}: no event landed"
        );
        let retried = app.create_user(&body).await;
        assert_eq!(retried["userName"], "early");
        assert_eq!(
            cost_centers(&app, "C1").await,
            1,
            "{backend:?}: the retry is indexed"
        );
        let events = app.events().await;
        assert_eq!(events.len(), 1, "{backend:?}");
        assert_eq!(events[0].event_type, "scimbus.user.created");
    }
}

/// A user's write that read the user, then lost the race to another write before its own
/// write (on PostgreSQL a write first goes without a transaction, on the version it read):
/// it is applied again on top of the winner, under the row lock. Nothing is lost, versions
/// follow each other in sequence order, and a write whose `If-Match` named the version it
/// read is refused with 412 and leaves nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_user_write_that_loses_the_race_after_its_read_goes_on_top_of_the_winner() {
    let app = spawn_app(Backend::Postgres).await;
    let tenant_id = app.tenant_row().await.id;
    let created = app.create_user(&user("racer")).await;
    let path = format!("/Users/{}", created["id"].as_str().unwrap());
    let replace = |attribute: &str, value: &str| {
        json!({
            "schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
            "Operations": [{"op": "replace", "path": attribute, "value": value}]
        })
    };
    let send = |body: Value, if_match: Option<String>| {
        let mut request = app
            .client
            .patch(app.url(&path))
            .bearer_auth(&app.token)
            .json(&body);
        if let Some(tag) = if_match {
            request = request.header("If-Match", tag);
        }
        request.send()
    };

    let mut pause = Pause::arm("emit", &tenant_id);
    let loser = tokio::spawn(send(replace("displayName", "from the loser"), None));
    assert!(pause.reached().await);
    let winner = send(replace("nickName", "from the winner"), None)
        .await
        .unwrap();
    assert_eq!(winner.status(), 200);
    pause.release();
    let loser = loser.await.unwrap().unwrap();
    assert_eq!(loser.status(), 200);
    let etag = loser.headers()["etag"].to_str().unwrap().to_owned();
    let body: Value = loser.json().await.unwrap();
    assert_eq!(body["displayName"], "from the loser");
    assert_eq!(
        body["nickName"], "from the winner",
        "the winner's change stands"
    );
    assert_eq!(body["meta"]["version"], "W/\"3\"");

    let mut pause = Pause::arm("emit", &tenant_id);
    let conditional = tokio::spawn(send(replace("title", "never"), Some(etag)));
    assert!(pause.reached().await);
    let winner = send(replace("title", "stands"), None).await.unwrap();
    assert_eq!(winner.status(), 200);
    pause.release();
    assert_eq!(conditional.await.unwrap().unwrap().status(), 412);
    let stored: Value = app.get(&path).await.json().await.unwrap();
    assert_eq!(stored["title"], "stands");
    assert_eq!(stored["meta"]["version"], "W/\"4\"");

    let events = app.events().await;
    let versions: Vec<i64> = events
        .iter()
        .map(|e| e.payload["data"]["version"].as_i64().unwrap())
        .collect();
    assert_eq!(versions, [1, 2, 3, 4], "one event per version, in order");
    assert_eq!(
        events[2].payload["data"]["resource"]["displayName"],
        "from the loser"
    );
}
