//! RabbitMQ for tests: relay settings with names of the test's own, a consumer queue with
//! `x-expires` (`scimbus_support::amqp::TestQueue`), and a TCP proxy the test can cut and
//! restore (the shared broker is never stopped).

use std::time::Duration;

use lapin::message::Delivery;
use lapin::types::AMQPValue;
use scimbus::config::RelaySettings;
use scimbus::events::Relay;
use scimbus::events::publisher::Publisher;
use scimbus_support::amqp;
use secrecy::SecretString;

use crate::helpers::TestApp;

pub use scimbus_support::amqp::{broker_address, test_url as amqp_url};
pub use scimbus_support::proxy::Proxy;

/// How long a test waits for a message before it fails (a guard against a hang).
const PATIENCE: Duration = Duration::from_secs(20);

/// Relay settings whose exchange and queue names belong to this test alone.
pub fn relay_settings(amqp: &str) -> RelaySettings {
    let id = uuid::Uuid::new_v4().simple().to_string();
    RelaySettings {
        amqp_url: SecretString::from(amqp.to_owned()),
        exchange: format!("test.{id}.events"),
        unrouted_exchange: format!("test.{id}.unrouted"),
        unrouted_queue: format!("test.{id}.unrouted"),
        unrouted_max_length: 1000,
        batch_size: 500,
        poll_interval: Duration::from_millis(50),
        max_message_bytes: 64 * 1024 * 1024,
    }
}

pub fn relay(app: &TestApp, settings: &RelaySettings) -> Relay {
    Relay::new(
        app.ctx.store.clone(),
        app.ctx.clock.clone(),
        settings.clone(),
        app.ctx.relay_metrics.clone(),
    )
}

/// A queue of the test's, bound to the relay's exchange.
pub struct TestQueue(amqp::TestQueue);

impl std::ops::Deref for TestQueue {
    type Target = amqp::TestQueue;
    fn deref(&self) -> &amqp::TestQueue {
        &self.0
    }
}

impl TestQueue {
    /// Declares the relay's topology, then a queue bound with `keys` and extra `arguments`.
    pub async fn bind(
        settings: &RelaySettings,
        keys: &[&str],
        arguments: &[(&str, AMQPValue)],
    ) -> Self {
        Publisher::connect(settings).await.unwrap().close().await;
        Self(
            amqp::TestQueue::bind(&amqp_url(), &settings.exchange, keys, arguments)
                .await
                .unwrap(),
        )
    }

    /// Consumes another queue (e.g. the unrouted one) on this connection.
    pub async fn other(&self, queue: &str) -> lapin::Consumer {
        self.0.other(queue).await.unwrap()
    }

    /// The next `n` messages, acknowledged. The queue is consumed from the first call on.
    pub async fn take(&mut self, n: usize) -> Vec<Delivery> {
        self.0.take(n, PATIENCE).await.unwrap()
    }

    /// Up to `n` messages that are in the queue now, fetched one by one and acknowledged,
    /// without a standing consumer (so the queue can fill up).
    pub async fn get(&self, n: usize) -> Vec<lapin::message::BasicGetMessage> {
        self.0.get(n).await.unwrap()
    }
}

/// The next `n` messages of `consumer`, acknowledged.
pub async fn take(consumer: &mut lapin::Consumer, n: usize) -> Vec<Delivery> {
    amqp::take(consumer, n, PATIENCE).await.unwrap()
}

pub fn body(delivery: &Delivery) -> serde_json::Value {
    serde_json::from_slice(&delivery.data).unwrap()
}

/// Deletes the relay's exchanges and unrouted queue.
pub async fn cleanup(settings: &RelaySettings) {
    let _ = amqp::delete(
        &amqp_url(),
        &[&settings.unrouted_queue],
        &[&settings.exchange, &settings.unrouted_exchange],
    )
    .await;
}
