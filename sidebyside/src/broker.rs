//! RabbitMQ side: the bench's consumer (`scimbus_support::amqp::Sink`: a queue of its own
//! bound to everything the relay publishes, consumed with auto-ack so the broker never backs
//! up), which can note when each event arrived, and the plain lapin publisher the relay is
//! compared with.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use scimbus_support::amqp::{self, Sink, SinkOptions};

pub use scimbus_support::amqp::Message;

pub struct Consumer {
    sink: Sink,
    /// When set, the receipt instant of each event is kept by its `subject`.
    pub track: Arc<AtomicBool>,
    pub seen: Arc<Mutex<HashMap<String, Instant>>>,
}

#[derive(serde::Deserialize)]
struct Subject {
    subject: Option<String>,
}

impl Consumer {
    /// Waits for the relay to declare the exchange (with its alternate exchange), then
    /// binds a queue of the bench's own to `#`.
    pub async fn start(url: &str, exchange: &str) -> anyhow::Result<Self> {
        let track = Arc::new(AtomicBool::new(false));
        let seen = Arc::new(Mutex::new(HashMap::new()));
        let options = SinkOptions {
            queue: format!("{exchange}.consumer"),
            exclusive: true,
            expires_ms: None,
            wait_for_exchange: true,
            ..SinkOptions::new("scimbus-sidebyside", "bench")
        };
        let (t, s) = (track.clone(), seen.clone());
        let sink = Sink::start(url, exchange, options, move |data, at| {
            if t.load(Ordering::Relaxed)
                && let Ok(Subject {
                    subject: Some(subject),
                }) = serde_json::from_slice(data)
                && let Ok(mut map) = s.lock()
            {
                map.insert(subject, at);
            }
        })
        .await?;
        Ok(Self { sink, track, seen })
    }

    pub fn count(&self) -> u64 {
        self.sink.count()
    }

    /// Waits until `target` messages have arrived; `None` after `limit` without progress.
    pub async fn wait_for(&self, target: u64, limit: Duration) -> Option<Instant> {
        self.sink.wait_while_arriving(target, limit).await
    }

    pub async fn delete_exchange(&self, exchange: &str) {
        let _ = self.sink.delete(&[], &[exchange]).await;
    }
}

/// The plain lapin publisher (`scimbus_support::amqp::plain_publish`) with the relay's
/// content type.
pub async fn plain_publish(
    url: &str,
    exchange: &str,
    messages: &[Message],
    batch: usize,
) -> anyhow::Result<Duration> {
    amqp::plain_publish(
        url,
        "scimbus-sidebyside-plain",
        exchange,
        "application/cloudevents+json",
        messages,
        batch,
    )
    .await
}
