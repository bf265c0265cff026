//! Lifecycle events: the catalogue and CloudEvents envelope (DESIGN 11), and the relay
//! that publishes committed outbox rows to RabbitMQ in order, with confirms (DESIGN 12).

pub mod announce;
pub mod brake;
pub mod catalog;
pub mod jws;
pub mod leader;
pub mod metrics;
pub mod publisher;
pub mod push;
pub mod relay;
pub mod sequencer;
pub mod set;
pub mod signing;
pub mod waiters;

pub use catalog::{Envelope, EventType, PendingEvent};
pub use metrics::RelayMetrics;
pub use relay::{Relay, RelayOutcome};
