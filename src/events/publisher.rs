//! The AMQP side of the relay (lapin): one connection and one confirm-mode channel, the
//! topology declared at connect, and batch publishing that reports each message's fate in
//! order.

use std::time::Duration;

use lapin::options::{
    BasicPublishOptions, ConfirmSelectOptions, ExchangeDeclareOptions, QueueBindOptions,
    QueueDeclareOptions,
};
use lapin::types::{AMQPValue, FieldTable, LongString, ShortString};
use lapin::{
    BasicProperties, Channel, Confirmation, Connection, ConnectionProperties, ExchangeKind,
};
use secrecy::ExposeSecret;

use crate::config::RelaySettings;
use crate::store::outbox::Pending;

/// Media type of a CloudEvents structured-mode message.
pub const CLOUDEVENTS_JSON: &str = "application/cloudevents+json";

/// How long a batch may wait for its confirms before it counts as failed.
const CONFIRM_TIMEOUT: Duration = Duration::from_secs(30);

/// What became of one message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Delivery {
    /// Confirmed; `returned` when the broker also returned it as unroutable.
    Acked { returned: bool },
    /// The broker refused it (e.g. a full queue with `reject-publish`).
    Nacked,
    /// It may not have reached the broker (connection or channel failure).
    Failed(String),
}

pub struct Publisher {
    connection: Connection,
    channel: Channel,
    exchange: ShortString,
}

fn table(entries: &[(&str, AMQPValue)]) -> FieldTable {
    let mut table = FieldTable::default();
    for (key, value) in entries {
        table.insert(ShortString::from(*key), value.clone());
    }
    table
}

impl Publisher {
    /// Connects and declares the topology: a durable topic exchange whose alternate
    /// exchange (fanout) feeds a durable, length-limited queue, so a routing key nobody
    /// binds never stalls the relay.
    pub async fn connect(settings: &RelaySettings) -> Result<Self, lapin::Error> {
        let properties =
            ConnectionProperties::default().with_connection_name(LongString::from("scimbus-relay"));
        let connection = Connection::connect(settings.amqp_url.expose_secret(), properties).await?;
        let channel = connection.create_channel().await?;
        let durable = ExchangeDeclareOptions {
            durable: true,
            ..Default::default()
        };
        channel
            .exchange_declare(
                ShortString::from(settings.unrouted_exchange.as_str()),
                ExchangeKind::Fanout,
                durable,
                FieldTable::default(),
            )
            .await?;
        channel
            .queue_declare(
                ShortString::from(settings.unrouted_queue.as_str()),
                QueueDeclareOptions {
                    durable: true,
                    ..Default::default()
                },
                table(&[(
                    "x-max-length",
                    AMQPValue::LongLongInt(i64::from(settings.unrouted_max_length)),
                )]),
            )
            .await?;
        channel
            .queue_bind(
                ShortString::from(settings.unrouted_queue.as_str()),
                ShortString::from(settings.unrouted_exchange.as_str()),
                ShortString::from(""),
                QueueBindOptions::default(),
                FieldTable::default(),
            )
            .await?;
        channel
            .exchange_declare(
                ShortString::from(settings.exchange.as_str()),
                ExchangeKind::Topic,
                durable,
                table(&[(
                    "alternate-exchange",
                    AMQPValue::LongString(LongString::from(settings.unrouted_exchange.as_str())),
                )]),
            )
            .await?;
        channel
            .confirm_select(ConfirmSelectOptions::default())
            .await?;
        Ok(Self {
            connection,
            channel,
            exchange: ShortString::from(settings.exchange.as_str()),
        })
    }

    pub fn is_connected(&self) -> bool {
        self.connection.status().connected() && self.channel.status().connected()
    }

    /// Publishes `events` as persistent messages, pipelined, then waits for each confirm in
    /// order. The result has one entry per event.
    pub async fn publish(&self, events: &[Pending]) -> Vec<Delivery> {
        let mut confirms = Vec::with_capacity(events.len());
        let mut send_error = None;
        for event in events {
            if send_error.is_some() {
                break;
            }
            let properties = BasicProperties::default()
                .with_delivery_mode(2)
                .with_message_id(ShortString::from(event.id.as_str()))
                .with_content_type(ShortString::from(CLOUDEVENTS_JSON))
                .with_app_id(ShortString::from("scimbus"));
            let sent = self
                .channel
                .basic_publish(
                    self.exchange.clone(),
                    ShortString::from(event.routing_key.as_str()),
                    BasicPublishOptions {
                        mandatory: true,
                        ..Default::default()
                    },
                    event.body.as_bytes(),
                    properties,
                )
                .await;
            match sent {
                Ok(confirm) => confirms.push(confirm),
                Err(e) => send_error = Some(e.to_string()),
            }
        }
        let mut deliveries = Vec::with_capacity(events.len());
        let waited = tokio::time::timeout(CONFIRM_TIMEOUT, async {
            for confirm in confirms {
                deliveries.push(match confirm.await {
                    Ok(Confirmation::Ack(returned)) => Delivery::Acked {
                        returned: returned.is_some(),
                    },
                    Ok(Confirmation::Nack(_)) => Delivery::Nacked,
                    Ok(Confirmation::NotRequested) => Delivery::Failed(
                        "publisher confirms are not enabled on the channel".to_owned(),
                    ),
                    Err(e) => Delivery::Failed(e.to_string()),
                });
            }
        })
        .await;
        if waited.is_err() {
            send_error.get_or_insert_with(|| "timed out waiting for confirms".to_owned());
        }
        let reason = send_error.unwrap_or_else(|| "not sent".to_owned());
        deliveries.resize(events.len(), Delivery::Failed(reason));
        deliveries
    }

    pub async fn close(self) {
        let _ = self
            .connection
            .close(200, ShortString::from("relay stopping"))
            .await;
    }
}
