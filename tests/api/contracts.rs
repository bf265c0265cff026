//! `openapi/asyncapi.yaml` is the event contract: one channel per routing key of the
//! catalogue, one message per published event type, each message's payload the committed
//! JSON Schema; events the relay really publishes match a channel and validate against
//! the schema its message names.

use std::collections::HashMap;

use serde_json::Value;

use crate::both_backends;
use crate::broker::{TestQueue, amqp_url, body, cleanup, relay, relay_settings};
use crate::helpers::{Backend, spawn_app, user};
use scimbus::events::EventType;

fn asyncapi() -> Value {
    let path = format!("{}/openapi/asyncapi.yaml", env!("CARGO_MANIFEST_DIR"));
    let text = std::fs::read_to_string(&path).unwrap();
    serde_yaml_ng::from_str(&text).unwrap()
}

/// Routing-key pattern (address with `{tenant}`) → the schema file its message names.
fn channels(doc: &Value) -> HashMap<String, String> {
    let messages = &doc["components"]["messages"];
    doc["channels"]
        .as_object()
        .unwrap()
        .values()
        .map(|channel| {
            let address = channel["address"].as_str().unwrap().to_owned();
            let reference = channel["messages"]
                .as_object()
                .unwrap()
                .values()
                .next()
                .unwrap()["$ref"]
                .as_str()
                .unwrap();
            let name = reference.rsplit('/').next().unwrap();
            let schema = messages[name]["payload"]["$ref"]
                .as_str()
                .unwrap()
                .to_owned();
            (address, schema)
        })
        .collect()
}

#[test]
fn every_published_event_type_has_a_channel_and_a_message_with_its_schema() {
    let doc = asyncapi();
    assert_eq!(doc["asyncapi"], "3.0.0");
    let channels = channels(&doc);
    let published: Vec<EventType> = EventType::ALL
        .into_iter()
        .filter(|t| !matches!(t, EventType::UserSnapshot | EventType::GroupSnapshot))
        .collect();
    assert_eq!(channels.len(), published.len(), "{channels:?}");
    for t in published {
        let address = t.routing_key("{tenant}");
        let schema = channels
            .get(&address)
            .unwrap_or_else(|| panic!("no channel {address}"));
        assert_eq!(schema, &format!("./events/{}.json", t.name()));
        let file = format!(
            "{}/openapi/events/{}.json",
            env!("CARGO_MANIFEST_DIR"),
            t.name()
        );
        assert!(std::path::Path::new(&file).exists(), "{file}");
    }
    for operation in doc["operations"].as_object().unwrap().values() {
        assert_eq!(operation["action"], "send");
    }
}

both_backends!(relayed_events_follow_the_asyncapi_contract);

async fn relayed_events_follow_the_asyncapi_contract(backend: Backend) {
    let app = spawn_app(backend).await;
    let settings = relay_settings(&amqp_url());
    let mut queue = TestQueue::bind(&settings, &["acme.#"], &[]).await;
    let created = app.create_user(&user("bjensen")).await;
    let id = created["id"].as_str().unwrap();
    let group = app
        .post(
            "/Groups",
            &serde_json::json!({
                "schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group"],
                "displayName": "Staff",
                "members": [{"value": id}],
            }),
        )
        .await;
    assert_eq!(group.status(), 201);
    assert_eq!(app.delete(&format!("/Users/{id}")).await.status(), 204);
    let expected = app.events().await.len();
    relay(&app, &settings).relay_once().await.unwrap();

    let channels = channels(&asyncapi());
    for delivery in queue.take(expected).await {
        let key = delivery.routing_key.as_str();
        let (tenant, rest) = key.split_once('.').unwrap();
        assert_eq!(tenant, "acme");
        let schema_ref = channels
            .get(&format!("{{tenant}}.{rest}"))
            .unwrap_or_else(|| panic!("routing key {key} matches no channel"));
        let schema_path = format!(
            "{}/openapi/{}",
            env!("CARGO_MANIFEST_DIR"),
            schema_ref.trim_start_matches("./")
        );
        let schema: Value =
            serde_json::from_str(&std::fs::read_to_string(schema_path).unwrap()).unwrap();
        let event = body(&delivery);
        let validator = jsonschema::validator_for(&schema).unwrap();
        let errors: Vec<String> = validator
            .iter_errors(&event)
            .map(|e| e.to_string())
            .collect();
        assert!(errors.is_empty(), "{key}: {errors:?}");
        assert_eq!(
            delivery
                .properties
                .content_type()
                .as_ref()
                .unwrap()
                .as_str(),
            "application/cloudevents+json"
        );
    }
    cleanup(&settings).await;
}
