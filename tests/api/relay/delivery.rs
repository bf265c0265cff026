//! Delivery: sequence order and envelopes, unroutable keys, broker outages, republishing after
//! a stop, nacks, gap-free concurrent writers, oversized events, pipelined drains.

use lapin::types::{AMQPValue, LongString};
use scimbus::events::RelayOutcome;
use scimbus::events::metrics::RelayMetrics;
use scimbus::store::outbox;
use serde_json::{Value, json};

use crate::both_backends;
use crate::broker::{
    Proxy, TestQueue, amqp_url, body, broker_address, cleanup, relay, relay_settings, take,
};
use crate::helpers::{Backend, spawn_app, user};

use super::{relay_settings_named, write_lifecycle};

both_backends!(
    each_user_write_is_published_in_sequence_order_with_its_envelope,
    a_routing_key_nobody_binds_lands_in_unrouted_and_later_events_flow,
    while_the_broker_is_unreachable_writes_succeed_and_everything_arrives_after,
    a_relay_stopped_between_publish_and_mark_republishes_the_same_ids,
    a_nack_in_the_middle_of_a_batch_never_reorders,
    concurrent_writers_get_gap_free_sequences_published_in_order,
    an_event_too_large_to_publish_is_parked_loudly_and_blocks_nothing,
    a_pipelined_drain_publishes_a_backlog_of_many_batches_once_and_in_order,
);

async fn each_user_write_is_published_in_sequence_order_with_its_envelope(backend: Backend) {
    let app = spawn_app(backend).await;
    let settings = relay_settings(&amqp_url());
    let mut queue = TestQueue::bind(&settings, &["acme.#"], &[]).await;
    write_lifecycle(&app).await;
    let mut relay = relay(&app, &settings);
    assert_eq!(
        relay.relay_once().await.unwrap(),
        RelayOutcome::Published {
            published: 4,
            held_back: 0
        }
    );
    assert_eq!(relay.relay_once().await.unwrap(), RelayOutcome::Empty);

    let stored = app.events().await;
    let messages = queue.take(4).await;
    for (message, event) in messages.iter().zip(&stored) {
        assert_eq!(message.routing_key.as_str(), event.routing_key);
        let properties = &message.properties;
        assert_eq!(properties.message_id().as_ref().unwrap().as_str(), event.id);
        assert_eq!(
            properties.content_type().as_ref().unwrap().as_str(),
            "application/cloudevents+json"
        );
        assert_eq!(*properties.delivery_mode(), Some(2), "persistent");
        let payload = body(message);
        assert_eq!(payload, event.payload);
        let schema = crate::outbox::schema_for(&event.event_type);
        let validator = jsonschema::validator_for(&schema).unwrap();
        assert!(validator.is_valid(&payload), "{}", event.event_type);
        assert!(event.published_at.is_some());
    }
    let types: Vec<Value> = messages.iter().map(|m| body(m)["type"].clone()).collect();
    assert_eq!(
        types,
        vec![
            json!("scimbus.user.created"),
            json!("scimbus.user.updated"),
            json!("scimbus.user.deactivated"),
            json!("scimbus.user.deleted")
        ]
    );
    assert_eq!(RelayMetrics::get(&app.ctx.relay_metrics.published), 4);
    assert!(
        app.metrics_text()
            .await
            .contains("scimbus_relay_published_events_total 4"),
        "the relay's count is the exposed counter"
    );
    relay.shutdown().await;
    cleanup(&settings).await;
}

async fn a_routing_key_nobody_binds_lands_in_unrouted_and_later_events_flow(backend: Backend) {
    let app = spawn_app(backend).await;
    let settings = relay_settings(&amqp_url());
    let mut queue = TestQueue::bind(&settings, &["acme.user.updated"], &[]).await;
    let mut unrouted = queue.other(&settings.unrouted_queue).await;
    let created = app.create_user(&user("bjensen")).await;
    let mut body_ = user("bjensen");
    body_["title"] = json!("Guide");
    app.put(
        &format!("/Users/{}", created["id"].as_str().unwrap()),
        &body_,
    )
    .await;
    let mut relay = relay(&app, &settings);
    assert_eq!(
        relay.relay_once().await.unwrap(),
        RelayOutcome::Published {
            published: 2,
            held_back: 0
        }
    );
    let lost = take(&mut unrouted, 1).await;
    assert_eq!(lost[0].routing_key.as_str(), "acme.user.created");
    let routed = queue.take(1).await;
    assert_eq!(routed[0].routing_key.as_str(), "acme.user.updated");
    assert_eq!(RelayMetrics::get(&app.ctx.relay_metrics.returned), 0);
    relay.shutdown().await;
    cleanup(&settings).await;
}

async fn while_the_broker_is_unreachable_writes_succeed_and_everything_arrives_after(
    backend: Backend,
) {
    let app = spawn_app(backend).await;
    let proxy = Proxy::start(&broker_address()).await.unwrap();
    let settings = relay_settings(&proxy.url());
    let mut queue = TestQueue::bind(&relay_settings_named(&settings), &["acme.#"], &[]).await;
    let mut relay = relay(&app, &settings);
    let first = app.create_user(&user("before")).await;
    assert_eq!(
        relay.relay_once().await.unwrap(),
        RelayOutcome::Published {
            published: 1,
            held_back: 0
        }
    );

    proxy.cut();
    let path = format!("/Users/{}", first["id"].as_str().unwrap());
    let mut renamed = user("before");
    for title in ["one", "two", "three"] {
        renamed["title"] = json!(title);
        assert_eq!(
            app.put(&path, &renamed).await.status(),
            200,
            "SCIM writes go on"
        );
    }
    app.create_user(&user("during")).await;
    for _ in 0..3 {
        match relay.relay_once().await {
            Ok(RelayOutcome::Published { published, .. }) => assert_eq!(published, 0),
            Ok(other) => panic!("unexpected {other:?}"),
            Err(_) => {}
        }
    }
    let (backlog, oldest) = outbox::backlog(app.ctx.store.conn()).await.unwrap();
    assert_eq!(backlog, 4);
    assert!(oldest.is_some());
    let waiting = app.events().await;
    assert!(
        waiting[1].attempts >= 1 && waiting[1].last_error.is_some(),
        "attempts are recorded"
    );

    proxy.restore();
    let mut published = 0;
    while published < 4 {
        match relay.relay_once().await {
            Ok(RelayOutcome::Published { published: n, .. }) => published += n,
            Ok(RelayOutcome::Empty) => break,
            Ok(RelayOutcome::NotLeader) => panic!("lost leadership"),
            Err(_) => {}
        }
    }
    assert_eq!(published, 4);
    let messages = queue.take(5).await;
    let sequences: Vec<String> = messages
        .iter()
        .map(|m| body(m)["sequence"].as_str().unwrap().to_owned())
        .collect();
    let mut sorted = sequences.clone();
    sorted.sort();
    assert_eq!(sequences, sorted, "per-tenant order intact");
    let versions: Vec<i64> = messages
        .iter()
        .filter(|m| body(m)["subject"] == json!(format!("Users/{}", first["id"].as_str().unwrap())))
        .map(|m| body(m)["data"]["version"].as_i64().unwrap())
        .collect();
    assert_eq!(versions, vec![1, 2, 3, 4]);
    relay.shutdown().await;
    cleanup(&settings).await;
}

async fn a_relay_stopped_between_publish_and_mark_republishes_the_same_ids(backend: Backend) {
    let app = spawn_app(backend).await;
    let settings = relay_settings(&amqp_url());
    let mut queue = TestQueue::bind(&settings, &["#"], &[]).await;
    app.create_user(&user("a")).await;
    app.create_user(&user("b")).await;
    let mut crashed = relay(&app, &settings);
    let sent = crashed.publish_without_marking().await.unwrap();
    crashed.shutdown().await;
    let mut next = relay(&app, &settings);
    assert_eq!(
        next.relay_once().await.unwrap(),
        RelayOutcome::Published {
            published: 2,
            held_back: 0
        }
    );
    let ids: Vec<String> = queue
        .take(4)
        .await
        .iter()
        .map(|m| m.properties.message_id().as_ref().unwrap().to_string())
        .collect();
    assert_eq!(ids[..2], sent[..]);
    assert_eq!(ids[2..], sent[..], "the same ids, in the same order");
    next.shutdown().await;
    cleanup(&settings).await;
}

async fn a_nack_in_the_middle_of_a_batch_never_reorders(backend: Backend) {
    let app = spawn_app(backend).await;
    let settings = relay_settings(&amqp_url());
    // A queue that holds two messages and nacks the publisher beyond that.
    let queue = TestQueue::bind(
        &settings,
        &["#"],
        &[
            ("x-max-length", AMQPValue::LongLongInt(2)),
            (
                "x-overflow",
                AMQPValue::LongString(LongString::from("reject-publish")),
            ),
        ],
    )
    .await;
    for i in 0..5 {
        app.create_user(&user(&format!("u{i}"))).await;
    }
    let mut relay = relay(&app, &settings);
    let mut received = Vec::new();
    let mut rounds = 0;
    while received.len() < 5 {
        rounds += 1;
        assert!(rounds < 200, "the relay makes progress");
        match relay.relay_once().await.unwrap() {
            // The refused tenant's lane backs off before its retry.
            RelayOutcome::Empty => tokio::time::sleep(std::time::Duration::from_millis(50)).await,
            RelayOutcome::Published {
                published,
                held_back,
            } => {
                assert!(published <= 2);
                if held_back > 0 {
                    let events = app.events().await;
                    let unpublished: Vec<_> =
                        events.iter().filter(|e| e.published_at.is_none()).collect();
                    assert_eq!(unpublished.len(), held_back);
                    assert!(
                        unpublished
                            .iter()
                            .all(|e| e.last_error.as_deref() == Some("nacked by the broker"))
                    );
                    // Everything before the nack is published, nothing after it.
                    let first_unpublished = unpublished[0].sequence;
                    assert!(
                        events
                            .iter()
                            .all(|e| (e.sequence < first_unpublished) == e.published_at.is_some())
                    );
                }
                let got = queue.get(published).await;
                assert_eq!(got.len(), published);
                received.extend(
                    got.iter()
                        .map(|m| body(&m.delivery)["sequence"].as_str().unwrap().to_owned()),
                );
            }
            other => panic!("unexpected {other:?}"),
        }
    }
    // After the tenant's settled tenant.created (1).
    let expected: Vec<String> = (2..=6).map(|s| format!("{s:019}")).collect();
    assert_eq!(received, expected);
    assert!(RelayMetrics::get(&app.ctx.relay_metrics.publish_failures) >= 3);
    relay.shutdown().await;
    cleanup(&settings).await;
}

async fn concurrent_writers_get_gap_free_sequences_published_in_order(backend: Backend) {
    let app = spawn_app(backend).await;
    let settings = relay_settings(&amqp_url());
    let mut queue = TestQueue::bind(&settings, &["acme.#"], &[]).await;
    let bodies: Vec<Value> = (0..20).map(|i| user(&format!("writer{i}"))).collect();
    let responses =
        futures_util::future::join_all(bodies.iter().map(|b| app.post("/Users", b))).await;
    assert!(responses.iter().all(|r| r.status() == 201));
    let events = app.events().await;
    let sequences: Vec<i64> = events.iter().map(|e| e.sequence).collect();
    assert_eq!(sequences, (2..=21).collect::<Vec<_>>());
    let mut relay = relay(&app, &settings);
    assert_eq!(
        relay.relay_once().await.unwrap(),
        RelayOutcome::Published {
            published: 20,
            held_back: 0
        }
    );
    let received: Vec<String> = queue
        .take(20)
        .await
        .iter()
        .map(|m| body(m)["sequence"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(
        received,
        (2..=21).map(|s| format!("{s:019}")).collect::<Vec<_>>()
    );
    relay.shutdown().await;
    cleanup(&settings).await;
}

async fn an_event_too_large_to_publish_is_parked_loudly_and_blocks_nothing(backend: Backend) {
    let app = spawn_app(backend).await;
    let mut settings = relay_settings(&amqp_url());
    settings.max_message_bytes = 4096;
    let mut queue = TestQueue::bind(&settings, &["#"], &[]).await;
    let mut big = user("big");
    big["nickName"] = json!("x".repeat(5000));
    app.create_user(&big).await;
    app.create_user(&user("small")).await;
    let mut relay = relay(&app, &settings);
    assert_eq!(
        relay.relay_once().await.unwrap(),
        RelayOutcome::Published {
            published: 1,
            held_back: 0
        }
    );
    let events = app.events().await;
    assert!(events[0].failed_at.is_some());
    assert!(events[0].last_error.as_deref().unwrap().contains("exceeds"));
    assert!(events[1].published_at.is_some());
    assert_eq!(RelayMetrics::get(&app.ctx.relay_metrics.unpublishable), 1);
    let received = queue.take(1).await;
    assert_eq!(body(&received[0])["data"]["resource"]["userName"], "small");
    assert_eq!(relay.relay_once().await.unwrap(), RelayOutcome::Empty);
    relay.shutdown().await;
    cleanup(&settings).await;
}

/// `drain` keeps one batch in flight while it reads the next: a backlog of several
/// batches over two tenants goes out once, each tenant in sequence order, all marked.
async fn a_pipelined_drain_publishes_a_backlog_of_many_batches_once_and_in_order(backend: Backend) {
    let app = spawn_app(backend).await;
    let mut settings = relay_settings(&amqp_url());
    settings.batch_size = 7;
    let mut queue = TestQueue::bind(&settings, &["#"], &[]).await;
    let other_token =
        crate::helpers::issue(&app.ctx, "other", vec![scimbus::domain::Scope::Scim]).await;
    for i in 0..20 {
        app.create_user(&user(&format!("a{i}"))).await;
    }
    for i in 0..11 {
        let response = app
            .client
            .post(format!("{}/scim/v2/other/Users", app.address))
            .bearer_auth(&other_token)
            .json(&user(&format!("o{i}")))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 201);
    }
    let mut relay = relay(&app, &settings);
    let (_keep, stop) = tokio::sync::watch::channel(false);
    assert_eq!(
        relay.drain(&stop).await.unwrap(),
        RelayOutcome::Published {
            published: 31,
            held_back: 0
        }
    );
    assert_eq!(relay.drain(&stop).await.unwrap(), RelayOutcome::Empty);
    let received = queue.take(31).await;
    let mut last: std::collections::HashMap<String, i64> = std::collections::HashMap::new();
    for message in &received {
        let event = body(message);
        let tenant = event["tenant"].as_str().unwrap().to_owned();
        let sequence: i64 = event["sequence"].as_str().unwrap().parse().unwrap();
        // After each tenant's settled tenant.created (1).
        let previous = last.insert(tenant.clone(), sequence).unwrap_or(1);
        assert_eq!(sequence, previous + 1, "{tenant}");
    }
    assert_eq!(last.get("acme"), Some(&21));
    assert_eq!(last.get("other"), Some(&12));
    for tenant in ["acme", "other"] {
        assert!(
            app.events_of(tenant)
                .await
                .iter()
                .all(|e| e.published_at.is_some())
        );
    }
    relay.shutdown().await;
    cleanup(&settings).await;
}
