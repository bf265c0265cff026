//! RabbitMQ for tests: relay settings with names of the test's own, a consumer queue with
//! `x-expires`, and a TCP proxy the test can cut and restore (the shared broker is never
//! stopped).

use std::time::Duration;

use futures_util::StreamExt;
use lapin::message::Delivery;
use lapin::options::{
    BasicAckOptions, BasicConsumeOptions, ExchangeDeleteOptions, QueueBindOptions,
    QueueDeclareOptions, QueueDeleteOptions,
};
use lapin::types::{AMQPValue, FieldTable, ShortString};
use lapin::{Channel, Connection, ConnectionProperties, Consumer};
use scimbus::config::RelaySettings;
use scimbus::events::Relay;
use scimbus::events::publisher::Publisher;
use secrecy::SecretString;

use crate::helpers::TestApp;

pub fn amqp_url() -> String {
    std::env::var("SCIMBUS_TEST_AMQP_URL")
        .unwrap_or_else(|_| "amqp://guest:guest@127.0.0.1:5672/%2f".to_owned())
}

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
pub struct TestQueue {
    pub channel: Channel,

    name: String,
    consumer: Option<Consumer>,
    _connection: Connection,
}

fn table(entries: &[(&str, AMQPValue)]) -> FieldTable {
    let mut table = FieldTable::default();
    for (k, v) in entries {
        table.insert(ShortString::from(*k), v.clone());
    }
    table
}

impl TestQueue {
    /// Declares the relay's topology, then a queue bound with `keys` and extra `arguments`.
    pub async fn bind(
        settings: &RelaySettings,
        keys: &[&str],
        arguments: &[(&str, AMQPValue)],
    ) -> Self {
        Publisher::connect(settings).await.unwrap().close().await;
        let connection = Connection::connect(&amqp_url(), ConnectionProperties::default())
            .await
            .unwrap();
        let channel = connection.create_channel().await.unwrap();
        let name = format!("test.{}.consumer", uuid::Uuid::new_v4().simple());
        let mut args = vec![("x-expires", AMQPValue::LongLongInt(120_000))];
        args.extend(arguments.iter().cloned());
        channel
            .queue_declare(
                ShortString::from(name.as_str()),
                QueueDeclareOptions::default(),
                table(&args),
            )
            .await
            .unwrap();
        for key in keys {
            channel
                .queue_bind(
                    ShortString::from(name.as_str()),
                    ShortString::from(settings.exchange.as_str()),
                    ShortString::from(*key),
                    QueueBindOptions::default(),
                    FieldTable::default(),
                )
                .await
                .unwrap();
        }
        Self {
            channel,
            name,
            consumer: None,
            _connection: connection,
        }
    }

    /// Consumes another queue (e.g. the unrouted one) on this connection.
    pub async fn other(&self, queue: &str) -> Consumer {
        Self::consume(&self.channel, queue).await
    }

    async fn consume(channel: &Channel, queue: &str) -> Consumer {
        channel
            .basic_consume(
                ShortString::from(queue),
                ShortString::from(format!("c-{}", uuid::Uuid::new_v4().simple()).as_str()),
                BasicConsumeOptions::default(),
                FieldTable::default(),
            )
            .await
            .unwrap()
    }

    /// The next `n` messages, acknowledged (a generous timeout guards against a hang). The
    /// queue is consumed from the first call on.
    pub async fn take(&mut self, n: usize) -> Vec<Delivery> {
        if self.consumer.is_none() {
            self.consumer = Some(Self::consume(&self.channel, &self.name).await);
        }
        match self.consumer.as_mut() {
            Some(consumer) => take(consumer, n).await,
            None => unreachable!(),
        }
    }

    /// Up to `n` messages that are in the queue now, fetched one by one and acknowledged,
    /// without a standing consumer (so the queue can fill up).
    pub async fn get(&self, n: usize) -> Vec<lapin::message::BasicGetMessage> {
        let mut out = Vec::new();
        while out.len() < n {
            let Some(message) = self
                .channel
                .basic_get(
                    ShortString::from(self.name.as_str()),
                    lapin::options::BasicGetOptions::default(),
                )
                .await
                .unwrap()
            else {
                break;
            };
            message
                .delivery
                .ack(BasicAckOptions::default())
                .await
                .unwrap();
            out.push(message);
        }
        out
    }
}

pub async fn take(consumer: &mut Consumer, n: usize) -> Vec<Delivery> {
    let mut out = Vec::with_capacity(n);
    while out.len() < n {
        let next = tokio::time::timeout(Duration::from_secs(20), consumer.next())
            .await
            .expect("a message within 20 s")
            .expect("the consumer is open")
            .unwrap();
        next.ack(BasicAckOptions::default()).await.unwrap();
        out.push(next);
    }
    out
}

pub fn body(delivery: &Delivery) -> serde_json::Value {
    serde_json::from_slice(&delivery.data).unwrap()
}

/// Deletes the relay's exchanges and unrouted queue.
pub async fn cleanup(settings: &RelaySettings) {
    let connection = Connection::connect(&amqp_url(), ConnectionProperties::default())
        .await
        .unwrap();
    let channel = connection.create_channel().await.unwrap();
    let _ = channel
        .queue_delete(
            ShortString::from(settings.unrouted_queue.as_str()),
            QueueDeleteOptions::default(),
        )
        .await;
    for exchange in [&settings.exchange, &settings.unrouted_exchange] {
        let _ = channel
            .exchange_delete(
                ShortString::from(exchange.as_str()),
                ExchangeDeleteOptions::default(),
            )
            .await;
    }
}

pub use super::proxy::{Proxy, broker_address};
