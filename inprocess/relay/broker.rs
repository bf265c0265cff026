//! The broker side: relay settings of the bench's own and a consumer of everything.

use super::*;

/// Relay settings with exchange and queue names of this bench alone.
pub(crate) fn relay_settings(amqp: &str) -> RelaySettings {
    let id = uuid::Uuid::new_v4().simple().to_string();
    RelaySettings {
        amqp_url: SecretString::from(amqp.to_owned()),
        exchange: format!("bench.{id}.events"),
        unrouted_exchange: format!("bench.{id}.unrouted"),
        unrouted_queue: format!("bench.{id}.unrouted"),
        unrouted_max_length: 1000,
        batch_size: BATCH,
        poll_interval: Duration::from_millis(1000),
        max_message_bytes: 64 * 1024 * 1024,
    }
}

/// Declares the relay's topology, then a queue bound to `#` on its exchange, consumed with
/// auto-ack from the start; `on_message` sees every body with its arrival instant.
pub(crate) async fn sink(
    settings: &RelaySettings,
    durable: bool,
    on_message: impl Fn(&[u8], Instant) + Send + 'static,
) -> anyhow::Result<Sink> {
    Publisher::connect(settings).await?.close().await;
    let options = SinkOptions {
        durable,
        ..SinkOptions::new("scimbus-bench-consumer", "bench")
    };
    Sink::start(
        settings.amqp_url.expose_secret(),
        &settings.exchange,
        options,
        on_message,
    )
    .await
}

/// Deletes the sink's queue and the relay's exchanges and unrouted queue.
pub(crate) async fn remove(sink: Sink, settings: &RelaySettings) {
    sink.remove(
        &[&settings.unrouted_queue],
        &[&settings.exchange, &settings.unrouted_exchange],
    )
    .await;
}
