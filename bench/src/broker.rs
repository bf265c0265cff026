//! RabbitMQ side: the bench's consumer (a queue of its own bound to everything the relay
//! publishes, consumed with auto-ack so the broker never backs up) and the plain lapin
//! publisher the relay is compared with.

use anyhow::bail;
use lapin::options::{
    BasicConsumeOptions, BasicPublishOptions, ConfirmSelectOptions, ExchangeDeclareOptions,
    ExchangeDeleteOptions, QueueBindOptions, QueueDeclareOptions,
};
use lapin::types::{FieldTable, LongString, ShortString};
use lapin::{
    BasicProperties, Channel, Confirmation, Connection, ConnectionProperties, ExchangeKind,
};
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::Notify;

pub struct Consumer {
    pub received: Arc<AtomicU64>,
    notify: Arc<Notify>,
    /// When set, the receipt instant of each event is kept by its `subject`.
    pub track: Arc<AtomicBool>,
    pub seen: Arc<Mutex<HashMap<String, Instant>>>,
    channel: Channel,
    _connection: Connection,
}

#[derive(serde::Deserialize)]
struct Subject {
    subject: Option<String>,
}

impl Consumer {
    /// Declares the exchange as the relay does (topic, durable) and a queue of the bench's
    /// own bound to `#`.
    pub async fn start(url: &str, exchange: &str) -> anyhow::Result<Self> {
        let connection = Connection::connect(
            url,
            ConnectionProperties::default().with_connection_name(LongString::from("scimbus-bench")),
        )
        .await?;
        // The relay declares the exchange (with its alternate exchange) when it starts:
        // wait for it, passively.
        let mut attempts = 0;
        let channel = loop {
            let channel = connection.create_channel().await?;
            let declared = channel
                .exchange_declare(
                    ShortString::from(exchange),
                    ExchangeKind::Topic,
                    ExchangeDeclareOptions {
                        passive: true,
                        ..Default::default()
                    },
                    FieldTable::default(),
                )
                .await;
            match declared {
                Ok(()) => break channel,
                Err(e) if attempts >= 100 => bail!("exchange {exchange} never appeared: {e}"),
                Err(_) => {
                    attempts += 1;
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            }
        };
        let queue = format!("{exchange}.consumer");
        channel
            .queue_declare(
                ShortString::from(queue.as_str()),
                QueueDeclareOptions {
                    exclusive: true,
                    auto_delete: true,
                    ..Default::default()
                },
                FieldTable::default(),
            )
            .await?;
        channel
            .queue_bind(
                ShortString::from(queue.as_str()),
                ShortString::from(exchange),
                ShortString::from("#"),
                QueueBindOptions::default(),
                FieldTable::default(),
            )
            .await?;
        let consumer = channel
            .basic_consume(
                ShortString::from(queue.as_str()),
                ShortString::from("bench"),
                BasicConsumeOptions {
                    no_ack: true,
                    ..Default::default()
                },
                FieldTable::default(),
            )
            .await?;
        let received = Arc::new(AtomicU64::new(0));
        let notify = Arc::new(Notify::new());
        let track = Arc::new(AtomicBool::new(false));
        let seen = Arc::new(Mutex::new(HashMap::new()));
        {
            let (received, notify, track, seen) = (
                received.clone(),
                notify.clone(),
                track.clone(),
                seen.clone(),
            );
            tokio::spawn(async move {
                use futures_lite::StreamExt;
                let mut consumer = consumer;
                while let Some(Ok(delivery)) = consumer.next().await {
                    let at = Instant::now();
                    if track.load(Ordering::Relaxed)
                        && let Ok(Subject {
                            subject: Some(subject),
                        }) = serde_json::from_slice(&delivery.data)
                        && let Ok(mut map) = seen.lock()
                    {
                        map.insert(subject, at);
                    }
                    received.fetch_add(1, Ordering::Relaxed);
                    notify.notify_waiters();
                }
            });
        }
        Ok(Self {
            received,
            notify,
            track,
            seen,
            channel,
            _connection: connection,
        })
    }

    pub fn count(&self) -> u64 {
        self.received.load(Ordering::Relaxed)
    }

    /// Waits until `target` messages have arrived; `None` after `limit` without progress.
    pub async fn wait_for(&self, target: u64, limit: Duration) -> Option<Instant> {
        loop {
            let notified = self.notify.notified();
            if self.count() >= target {
                return Some(Instant::now());
            }
            let before = self.count();
            if tokio::time::timeout(limit, notified).await.is_err() && self.count() == before {
                return None;
            }
        }
    }

    pub async fn delete_exchange(&self, exchange: &str) {
        let _ = self
            .channel
            .exchange_delete(
                ShortString::from(exchange),
                ExchangeDeleteOptions::default(),
            )
            .await;
    }
}

/// One message as the relay publishes it.
pub struct Message {
    pub id: String,
    pub routing_key: String,
    pub body: Vec<u8>,
}

/// A plain lapin publisher: confirm mode, the relay's properties, the same bodies in the
/// same order, `batch` pipelined then every confirm awaited. Times connect → last confirm.
pub async fn plain_publish(
    url: &str,
    exchange: &str,
    messages: &[Message],
    batch: usize,
) -> anyhow::Result<Duration> {
    let exchange = ShortString::from(exchange);
    let start = Instant::now();
    let connection = Connection::connect(
        url,
        ConnectionProperties::default()
            .with_connection_name(LongString::from("scimbus-bench-plain")),
    )
    .await?;
    let channel = connection.create_channel().await?;
    channel
        .confirm_select(ConfirmSelectOptions::default())
        .await?;
    for chunk in messages.chunks(batch) {
        let mut confirms = Vec::with_capacity(chunk.len());
        for m in chunk {
            let properties = BasicProperties::default()
                .with_delivery_mode(2)
                .with_message_id(ShortString::from(m.id.as_str()))
                .with_content_type(ShortString::from("application/cloudevents+json"))
                .with_app_id(ShortString::from("scimbus"));
            confirms.push(
                channel
                    .basic_publish(
                        exchange.clone(),
                        ShortString::from(m.routing_key.as_str()),
                        BasicPublishOptions {
                            mandatory: true,
                            ..Default::default()
                        },
                        &m.body,
                        properties,
                    )
                    .await?,
            );
        }
        for confirm in confirms {
            match confirm.await? {
                Confirmation::Ack(_) => {}
                other => bail!("the broker did not ack: {other:?}"),
            }
        }
    }
    let elapsed = start.elapsed();
    connection.close(200, ShortString::from("done")).await?;
    Ok(elapsed)
}
