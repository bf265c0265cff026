//! Every user write inserts its event rows in the same transaction, numbered by the
//! tenant's gap-free sequence, in the envelope and `data` of DESIGN 11, valid against the
//! committed JSON Schemas.

use sea_orm::ConnectionTrait;
use serde_json::{Value, json};

use crate::both_backends;
use crate::helpers::{Backend, USER_URN, spawn_app, user};

both_backends!(
    each_user_write_appends_one_event_in_sequence_with_its_version,
    events_carry_the_cloudevents_envelope_and_validate_against_their_schema,
    an_update_event_names_what_changed_and_its_previous_values,
);

pub fn schema_for(event_type: &str) -> Value {
    let path = format!(
        "{}/openapi/events/{event_type}.json",
        env!("CARGO_MANIFEST_DIR")
    );
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
    serde_json::from_str(&text).unwrap()
}

async fn each_user_write_appends_one_event_in_sequence_with_its_version(backend: Backend) {
    let app = spawn_app(backend).await;
    let created = app.create_user(&user("bjensen")).await;
    let path = format!("/Users/{}", created["id"].as_str().unwrap());
    let mut body = user("bjensen");
    body["title"] = json!("Tour Guide");
    assert_eq!(app.put(&path, &body).await.status(), 200);
    body["active"] = json!(false);
    assert_eq!(app.put(&path, &body).await.status(), 200);
    body["active"] = json!(true);
    body["title"] = json!("Manager");
    assert_eq!(app.put(&path, &body).await.status(), 200);
    assert_eq!(app.delete(&path).await.status(), 204);

    let events = app.events().await;
    let summary: Vec<(i64, &str, i64)> = events
        .iter()
        .map(|e| {
            (
                e.sequence,
                e.event_type.as_str(),
                e.payload["data"]["version"].as_i64().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        summary,
        vec![
            (2, "scimbus.user.created", 1),
            (3, "scimbus.user.updated", 2),
            (4, "scimbus.user.deactivated", 3),
            (5, "scimbus.user.reactivated", 4),
            (6, "scimbus.user.deleted", 5),
        ]
    );
    let keys: Vec<&str> = events.iter().map(|e| e.routing_key.as_str()).collect();
    assert_eq!(
        keys,
        vec![
            "acme.user.created",
            "acme.user.updated",
            "acme.user.deactivated",
            "acme.user.reactivated",
            "acme.user.deleted"
        ]
    );
    assert!(events.iter().all(|e| e.published_at.is_none()));
    // The reactivation also changed the title, and says so.
    assert_eq!(
        events[3].payload["data"]["changed"],
        json!(["active", "title"])
    );
}

async fn events_carry_the_cloudevents_envelope_and_validate_against_their_schema(backend: Backend) {
    let app = spawn_app(backend).await;
    let enterprise = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User";
    let created = app
        .create_user(&json!({"schemas": [USER_URN, enterprise], "userName": "bjensen", "active": true, enterprise: {"department": "Tour"}, "x-custom": 1}))
        .await;
    let id = created["id"].as_str().unwrap();
    let path = format!("/Users/{id}");
    let mut body = user("bjensen");
    body["active"] = json!(false);
    app.put(&path, &body).await;
    body["active"] = json!(true);
    app.put(&path, &body).await;
    body["nickName"] = json!("Babs");
    app.put(&path, &body).await;
    app.delete(&path).await;

    let events = app.events().await;
    assert_eq!(events.len(), 5);
    for event in &events {
        let payload = &event.payload;
        assert_eq!(payload["specversion"], "1.0");
        assert_eq!(payload["id"], event.id.as_str());
        assert_eq!(payload["type"], event.event_type.as_str());
        assert_eq!(payload["source"], "/scim/v2/acme");
        assert_eq!(payload["subject"], format!("Users/{id}"));
        assert_eq!(payload["tenant"], "acme");
        assert_eq!(payload["sequence"], format!("{:019}", event.sequence));
        assert_eq!(payload["datacontenttype"], "application/json");
        assert_eq!(
            payload["dataschema"],
            format!("urn:scimbus:events:v1:{}", event.event_type)
        );
        assert_eq!(
            uuid::Uuid::parse_str(&event.id).unwrap().get_version_num(),
            7
        );
        assert!(payload["data"]["resource"].get("groups").is_none());
        assert!(payload["data"]["resource"].get("password").is_none());

        let schema = schema_for(&event.event_type);
        let validator = jsonschema::validator_for(&schema).unwrap();
        let errors: Vec<String> = validator
            .iter_errors(payload)
            .map(|e| e.to_string())
            .collect();
        assert!(
            errors.is_empty(),
            "{} does not fit its schema: {errors:?}",
            event.event_type
        );
    }
    assert_eq!(events[0].payload["data"]["resource"], created);
}

async fn an_update_event_names_what_changed_and_its_previous_values(backend: Backend) {
    let app = spawn_app(backend).await;
    let created = app
        .create_user(&json!({"schemas": [USER_URN], "userName": "bjensen", "title": "Guide", "nickName": "B"}))
        .await;
    let path = format!("/Users/{}", created["id"].as_str().unwrap());
    let replaced: Value = app
        .put(&path, &json!({"schemas": [USER_URN], "userName": "bjensen", "title": "Manager", "displayName": "Babs"}))
        .await
        .json()
        .await
        .unwrap();
    let events = app.events().await;
    let data = &events[1].payload["data"];
    assert_eq!(data["changed"], json!(["displayName", "nickName", "title"]));
    assert_eq!(
        data["previous"],
        json!({"displayName": null, "nickName": "B", "title": "Guide"})
    );
    assert_eq!(data["resource"], replaced);
    assert_eq!(data["version"], 2);
}

both_backends!(an_event_carries_the_request_id_of_the_write_that_made_it);

async fn an_event_carries_the_request_id_of_the_write_that_made_it(backend: Backend) {
    let app = spawn_app(backend).await;
    let response = app.post("/Users", &user("bjensen")).await;
    assert_eq!(response.status(), 201);
    let request_id = response.headers()["x-request-id"]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(!request_id.is_empty());
    let events = app.events().await;
    assert_eq!(events[0].payload["correlationid"], request_id.as_str());
    // Another request, another id.
    let other = app.get("/Users").await;
    assert_ne!(
        other.headers()["x-request-id"].to_str().unwrap(),
        request_id
    );
}

/// PostgreSQL serialises the commits of every transaction that sent a `NOTIFY`: the write
/// transaction never does; the announcer's own connection tells other processes' relays
/// after the commit.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn relays_elsewhere_are_woken_by_the_announcer_not_by_the_write_transaction() {
    let app = spawn_app(Backend::Postgres).await;
    let mut listener = sea_orm::sqlx::postgres::PgListener::connect(app.ctx.store.url())
        .await
        .unwrap();
    listener
        .listen(scimbus::store::outbox::NOTIFY_CHANNEL)
        .await
        .unwrap();
    for i in 0..5 {
        app.create_user(&user(&format!("writer{i}"))).await;
        let note = tokio::time::timeout(std::time::Duration::from_secs(30), listener.recv())
            .await
            .expect("a notification after a committed write")
            .unwrap();
        let sender: Option<String> = app
            .ctx
            .store
            .conn()
            .query_one_raw(sea_orm::Statement::from_sql_and_values(
                sea_orm::DbBackend::Postgres,
                "SELECT application_name::text AS name FROM pg_stat_activity WHERE pid = $1",
                [(note.process_id() as i32).into()],
            ))
            .await
            .unwrap()
            .map(|row| row.try_get("", "name").unwrap());
        assert_eq!(
            sender.as_deref(),
            Some(scimbus::events::announce::APPLICATION_NAME),
            "notification {i} came from backend {} (not the announcer)",
            note.process_id()
        );
    }
}

both_backends!(an_event_carries_the_trace_context_of_the_request_that_made_it);

/// CloudEvents distributed tracing: without an exporter (as here) a valid incoming
/// `traceparent` is copied unchanged, `tracestate` with it; an invalid one is no context.
async fn an_event_carries_the_trace_context_of_the_request_that_made_it(backend: Backend) {
    let app = spawn_app(backend).await;
    let traceparent = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01";
    let post = |name: &'static str, headers: Vec<(&'static str, &'static str)>| {
        let mut request = app
            .client
            .post(app.url("/Users"))
            .bearer_auth(&app.token)
            .header("Content-Type", "application/scim+json")
            .body(user(name).to_string());
        for (header, value) in headers {
            request = request.header(header, value);
        }
        async move { request.send().await.unwrap().status() }
    };
    let traced = [
        ("traceparent", traceparent),
        ("tracestate", "vendor=opaque,other=1"),
    ];
    assert_eq!(post("traced", traced.to_vec()).await, 201);
    let broken = [("traceparent", "00-not-a-trace-01")];
    assert_eq!(post("broken", broken.to_vec()).await, 201);
    assert_eq!(post("plain", vec![]).await, 201);

    let events = app.events().await;
    let by_user = |name: &str| {
        events
            .iter()
            .find(|e| e.payload["data"]["resource"]["userName"] == name)
            .unwrap()
            .payload
            .clone()
    };
    let event = by_user("traced");
    assert_eq!(event["traceparent"], traceparent);
    assert_eq!(event["tracestate"], "vendor=opaque,other=1");
    let schema = schema_for("scimbus.user.created");
    let validator = jsonschema::validator_for(&schema).unwrap();
    assert!(validator.is_valid(&event), "{event}");
    // A snapshot is no change: the read asking for it does not put it in its trace.
    let mut snapshots = app
        .client
        .get(format!("{}/events/v1/acme/snapshot/Users", app.address))
        .bearer_auth(
            crate::helpers::issue(&app.ctx, "acme", vec![scimbus::domain::Scope::EventsRead]).await,
        )
        .header("traceparent", traceparent)
        .send()
        .await
        .unwrap()
        .json::<Value>()
        .await
        .unwrap();
    let snapshots = snapshots["events"].as_array_mut().unwrap();
    assert_eq!(snapshots.len(), 3);
    assert!(snapshots.iter().all(|e| e.get("traceparent").is_none()));
    for name in ["broken", "plain"] {
        let event = by_user(name);
        assert!(event.get("traceparent").is_none(), "{event}");
        assert!(event.get("tracestate").is_none(), "{event}");
        assert!(validator.is_valid(&event), "{event}");
    }
}

/// A numbering with nothing to number takes no lock and writes nothing: the SET pusher and
/// its lanes number their tenants on every wake-up, and each call that took the tenant's row
/// lock (a write, committed with a flush) made the relay's own numbering wait for it — 9.8 s
/// of lock waits in a 27 s bench run at 300 writes/s with two push receivers. Here another
/// numbering holds the row lock: a call with nothing waiting returns at once, and one with
/// an event waiting still waits for the lock and numbers it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn numbering_a_tenant_with_nothing_waiting_takes_no_lock() {
    use sea_orm::TransactionTrait;
    let app = spawn_app(Backend::Postgres).await;
    app.create_user(&user("numbered")).await;
    let tenant = app.tenant_row().await;
    scimbus::events::sequencer::number_tenant(&app.ctx.store, &tenant.id)
        .await
        .unwrap();
    let holder = app.ctx.store.conn().begin().await.unwrap();
    holder
        .execute_raw(sea_orm::Statement::from_sql_and_values(
            sea_orm::DbBackend::Postgres,
            "SELECT event_seq FROM tenants WHERE id = $1 FOR NO KEY UPDATE",
            [tenant.id.as_str().into()],
        ))
        .await
        .unwrap();
    let numbered = tokio::time::timeout(
        std::time::Duration::from_secs(5),
        scimbus::events::sequencer::number_tenant(&app.ctx.store, &tenant.id),
    )
    .await
    .expect("nothing waits to be numbered: no wait for the tenant's row lock")
    .unwrap();
    assert_eq!(numbered, 0);
    // With an event waiting, a numbering waits for the one holding the lock, then numbers.
    app.create_user(&user("waiting")).await;
    let store = app.ctx.store.clone();
    let id = tenant.id.clone();
    let waiting =
        tokio::spawn(async move { scimbus::events::sequencer::number_tenant(&store, &id).await });
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    assert!(
        !waiting.is_finished(),
        "a waiting event is numbered under the lock"
    );
    holder.commit().await.unwrap();
    // This call numbered it, or the serving process's own numbering got there first.
    assert!(waiting.await.unwrap().unwrap() <= 1);
    let events = app.events_of("acme").await;
    assert_eq!(events.len(), 2, "both creations numbered: {events:?}");
}
