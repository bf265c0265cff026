//! RabbitMQ for tests and benches: the test broker's URL, a consumer ([`Sink`]: a queue of
//! its own bound to an exchange, every delivery counted and shown to a callback), a test
//! queue read message by message ([`TestQueue`]), topology clean-up, and the plain lapin
//! publisher the relay is compared with. Declaring the relay's own topology is left to the
//! caller (`scimbus::events::publisher::Publisher::connect`), so this crate does not
//! depend on scimbus.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use futures_util::StreamExt;
use lapin::message::{BasicGetMessage, Delivery};
use lapin::options::{
    BasicAckOptions, BasicConsumeOptions, BasicGetOptions, BasicPublishOptions,
    ConfirmSelectOptions, ExchangeDeclareOptions, ExchangeDeleteOptions, QueueBindOptions,
    QueueDeclareOptions, QueueDeleteOptions,
};
use lapin::types::{AMQPValue, FieldTable, LongString, ShortString};
use lapin::{
    BasicProperties, Channel, Confirmation, Connection, ConnectionProperties, Consumer,
    ExchangeKind,
};
use tokio::sync::Notify;

/// `SCIMBUS_TEST_AMQP_URL`, or the local default.
pub fn test_url() -> String {
    std::env::var("SCIMBUS_TEST_AMQP_URL")
        .unwrap_or_else(|_| "amqp://guest:guest@127.0.0.1:5672/%2f".to_owned())
}

/// `host:port` of the test broker.
pub fn broker_address() -> String {
    let real = test_url();
    let rest = real.split_once('@').map_or("127.0.0.1:5672", |(_, r)| r);
    rest.split('/')
        .next()
        .unwrap_or("127.0.0.1:5672")
        .to_owned()
}

/// A field table of `entries` (queue arguments).
pub fn table(entries: &[(&str, AMQPValue)]) -> FieldTable {
    let mut table = FieldTable::default();
    for (k, v) in entries {
        table.insert(ShortString::from(*k), v.clone());
    }
    table
}

/// How a [`Sink`] declares and consumes its queue.
#[derive(Clone, Debug)]
pub struct SinkOptions {
    /// The connection's name, as the broker's management shows it.
    pub connection_name: String,
    /// The queue's name (bound to `#`).
    pub queue: String,
    pub durable: bool,
    /// Exclusive and auto-delete: the queue goes with the connection.
    pub exclusive: bool,
    /// `x-expires` of the queue, ms (an abandoned queue disappears).
    pub expires_ms: Option<i64>,
    /// Acknowledge each delivery after the callback (else consume with auto-ack, so the
    /// broker never waits on the consumer).
    pub ack: bool,
    /// Wait (up to 10 s, passively) for the exchange to be declared by someone else,
    /// e.g. a relay in another process, instead of requiring it now.
    pub wait_for_exchange: bool,
}

impl SinkOptions {
    /// Auto-ack, non-durable, a queue `{prefix}.{uuid}.consumer` expiring after 10 minutes.
    pub fn new(connection_name: &str, prefix: &str) -> Self {
        Self {
            connection_name: connection_name.to_owned(),
            queue: format!("{prefix}.{}.consumer", uuid::Uuid::new_v4().simple()),
            durable: false,
            exclusive: false,
            expires_ms: Some(600_000),
            ack: false,
            wait_for_exchange: false,
        }
    }
}

/// A queue bound to `#` on an exchange, consumed from the start: every delivery is counted
/// and shown to a callback with its arrival instant.
pub struct Sink {
    queue: String,
    received: Arc<AtomicU64>,
    arrived: Arc<Notify>,
    task: tokio::task::JoinHandle<()>,
    channel: Channel,
    connection: Connection,
}

impl Sink {
    pub async fn start(
        url: &str,
        exchange: &str,
        options: SinkOptions,
        on_message: impl Fn(&[u8], Instant) + Send + 'static,
    ) -> anyhow::Result<Self> {
        let connection = Connection::connect(
            url,
            ConnectionProperties::default()
                .with_connection_name(LongString::from(options.connection_name.as_str())),
        )
        .await?;
        let channel = if options.wait_for_exchange {
            let mut attempts = 0;
            loop {
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
            }
        } else {
            connection.create_channel().await?
        };
        let queue = options.queue.clone();
        let arguments: Vec<(&str, AMQPValue)> = options
            .expires_ms
            .map(|ms| ("x-expires", AMQPValue::LongLongInt(ms)))
            .into_iter()
            .collect();
        channel
            .queue_declare(
                ShortString::from(queue.as_str()),
                QueueDeclareOptions {
                    durable: options.durable,
                    exclusive: options.exclusive,
                    auto_delete: options.exclusive,
                    ..Default::default()
                },
                table(&arguments),
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
        let mut consumer = channel
            .basic_consume(
                ShortString::from(queue.as_str()),
                ShortString::from(options.connection_name.as_str()),
                BasicConsumeOptions {
                    no_ack: !options.ack,
                    ..Default::default()
                },
                FieldTable::default(),
            )
            .await?;
        let received = Arc::new(AtomicU64::new(0));
        let arrived = Arc::new(Notify::new());
        let (counter, notify, ack) = (received.clone(), arrived.clone(), options.ack);
        let task = tokio::spawn(async move {
            while let Some(Ok(delivery)) = consumer.next().await {
                let at = Instant::now();
                on_message(&delivery.data, at);
                if ack {
                    let _ = delivery.ack(BasicAckOptions::default()).await;
                }
                counter.fetch_add(1, Ordering::Relaxed);
                notify.notify_waiters();
            }
        });
        Ok(Self {
            queue,
            received,
            arrived,
            task,
            channel,
            connection,
        })
    }

    /// Deliveries so far.
    pub fn count(&self) -> u64 {
        self.received.load(Ordering::Relaxed)
    }

    /// The sink's queue.
    pub fn queue(&self) -> &str {
        &self.queue
    }

    /// Waits until `target` deliveries have arrived, at most `timeout` in all; the instant
    /// the target was seen, `None` on timeout.
    pub async fn wait_for(&self, target: u64, timeout: Duration) -> Option<Instant> {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let notified = self.arrived.notified();
            if self.count() >= target {
                return Some(Instant::now());
            }
            if tokio::time::timeout_at(deadline, notified).await.is_err() {
                return (self.count() >= target).then(Instant::now);
            }
        }
    }

    /// Waits until `target` deliveries have arrived while they keep coming: `None` once
    /// `idle` passes without one.
    pub async fn wait_while_arriving(&self, target: u64, idle: Duration) -> Option<Instant> {
        loop {
            let notified = self.arrived.notified();
            if self.count() >= target {
                return Some(Instant::now());
            }
            let before = self.count();
            if tokio::time::timeout(idle, notified).await.is_err() && self.count() == before {
                return None;
            }
        }
    }

    /// Deletes `queues` and `exchanges` (trying every one; the first failure is returned).
    pub async fn delete(&self, queues: &[&str], exchanges: &[&str]) -> anyhow::Result<()> {
        delete_on(&self.channel, queues, exchanges).await
    }

    /// Stops consuming, deletes the sink's queue and `queues` and `exchanges`, and closes
    /// the connection; a failure is reported, not returned.
    pub async fn remove(self, queues: &[&str], exchanges: &[&str]) {
        self.task.abort();
        let removed = async {
            let mut all = vec![self.queue.as_str()];
            all.extend_from_slice(queues);
            delete_on(&self.channel, &all, exchanges).await?;
            self.connection
                .close(200, ShortString::from("done"))
                .await?;
            anyhow::Ok(())
        }
        .await;
        if let Err(e) = removed {
            eprintln!("warning: broker clean-up failed: {e:#}");
        }
    }
}

async fn delete_on(channel: &Channel, queues: &[&str], exchanges: &[&str]) -> anyhow::Result<()> {
    let mut first = Ok(());
    for queue in queues {
        let deleted = channel
            .queue_delete(ShortString::from(*queue), QueueDeleteOptions::default())
            .await;
        if let (Err(e), Ok(())) = (deleted, &first) {
            first = Err(e).with_context(|| format!("deleting queue {queue}"));
        }
    }
    for exchange in exchanges {
        let deleted = channel
            .exchange_delete(
                ShortString::from(*exchange),
                ExchangeDeleteOptions::default(),
            )
            .await;
        if let (Err(e), Ok(())) = (deleted, &first) {
            first = Err(e).with_context(|| format!("deleting exchange {exchange}"));
        }
    }
    first
}

/// Deletes `queues` and `exchanges` on the broker of `url`, over a connection of its own
/// (trying every one; the first failure is returned).
pub async fn delete(url: &str, queues: &[&str], exchanges: &[&str]) -> anyhow::Result<()> {
    let connection = Connection::connect(url, ConnectionProperties::default()).await?;
    let channel = connection.create_channel().await?;
    let deleted = delete_on(&channel, queues, exchanges).await;
    let _ = connection.close(200, ShortString::from("done")).await;
    deleted
}

/// A queue of a test's own bound to an exchange, read message by message: with a standing
/// consumer ([`TestQueue::take`]) or one fetch at a time ([`TestQueue::get`]), each message
/// acknowledged.
pub struct TestQueue {
    pub channel: Channel,
    name: String,
    consumer: Option<Consumer>,
    _connection: Connection,
}

impl TestQueue {
    /// A queue `test.{uuid}.consumer` (`x-expires` two minutes, and `arguments`) bound to
    /// `exchange` with each of `keys`.
    pub async fn bind(
        url: &str,
        exchange: &str,
        keys: &[&str],
        arguments: &[(&str, AMQPValue)],
    ) -> anyhow::Result<Self> {
        let connection = Connection::connect(url, ConnectionProperties::default()).await?;
        let channel = connection.create_channel().await?;
        let name = format!("test.{}.consumer", uuid::Uuid::new_v4().simple());
        let mut args = vec![("x-expires", AMQPValue::LongLongInt(120_000))];
        args.extend(arguments.iter().cloned());
        channel
            .queue_declare(
                ShortString::from(name.as_str()),
                QueueDeclareOptions::default(),
                table(&args),
            )
            .await?;
        for key in keys {
            channel
                .queue_bind(
                    ShortString::from(name.as_str()),
                    ShortString::from(exchange),
                    ShortString::from(*key),
                    QueueBindOptions::default(),
                    FieldTable::default(),
                )
                .await?;
        }
        Ok(Self {
            channel,
            name,
            consumer: None,
            _connection: connection,
        })
    }

    /// Consumes another queue (e.g. the unrouted one) on this connection.
    pub async fn other(&self, queue: &str) -> anyhow::Result<Consumer> {
        consume(&self.channel, queue).await
    }

    /// The next `n` messages, acknowledged, each within `timeout`. The queue is consumed
    /// from the first call on.
    pub async fn take(&mut self, n: usize, timeout: Duration) -> anyhow::Result<Vec<Delivery>> {
        let consumer = match self.consumer.take() {
            Some(consumer) => consumer,
            None => consume(&self.channel, &self.name).await?,
        };
        let consumer = self.consumer.insert(consumer);
        take(consumer, n, timeout).await
    }

    /// Up to `n` messages that are in the queue now, fetched one by one and acknowledged,
    /// without a standing consumer (so the queue can fill up).
    pub async fn get(&self, n: usize) -> anyhow::Result<Vec<BasicGetMessage>> {
        let mut out = Vec::new();
        while out.len() < n {
            let Some(message) = self
                .channel
                .basic_get(
                    ShortString::from(self.name.as_str()),
                    BasicGetOptions::default(),
                )
                .await?
            else {
                break;
            };
            message.delivery.ack(BasicAckOptions::default()).await?;
            out.push(message);
        }
        Ok(out)
    }
}

async fn consume(channel: &Channel, queue: &str) -> anyhow::Result<Consumer> {
    Ok(channel
        .basic_consume(
            ShortString::from(queue),
            ShortString::from(format!("c-{}", uuid::Uuid::new_v4().simple()).as_str()),
            BasicConsumeOptions::default(),
            FieldTable::default(),
        )
        .await?)
}

/// The next `n` messages of `consumer`, acknowledged, each within `timeout`.
pub async fn take(
    consumer: &mut Consumer,
    n: usize,
    timeout: Duration,
) -> anyhow::Result<Vec<Delivery>> {
    let mut out = Vec::with_capacity(n);
    while out.len() < n {
        let next = tokio::time::timeout(timeout, consumer.next())
            .await
            .with_context(|| format!("no message within {timeout:?}"))?
            .context("the consumer is closed")??;
        next.ack(BasicAckOptions::default()).await?;
        out.push(next);
    }
    Ok(out)
}

/// One message as the relay publishes it.
pub struct Message {
    pub id: String,
    pub routing_key: String,
    pub body: Vec<u8>,
}

/// A plain lapin publisher, the relay's baseline: confirm mode, the relay's properties
/// (persistent, message id, `content_type`, app id `scimbus`), the same bodies in the same
/// order, `batch` pipelined then every confirm awaited. Times connect → last confirm.
pub async fn plain_publish(
    url: &str,
    connection_name: &str,
    exchange: &str,
    content_type: &str,
    messages: &[Message],
    batch: usize,
) -> anyhow::Result<Duration> {
    let exchange = ShortString::from(exchange);
    let start = Instant::now();
    let connection = Connection::connect(
        url,
        ConnectionProperties::default().with_connection_name(LongString::from(connection_name)),
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
                .with_content_type(ShortString::from(content_type))
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
