//! Lifecycle events: the catalogue of event types and the CloudEvents envelope (DESIGN 11).
//! Services write them to the outbox in the transaction of the change they describe.

pub mod catalog;

pub use catalog::{Envelope, EventType, PendingEvent};
