//! The event catalogue and the CloudEvents 1.0 structured envelope. `openapi/events/`
//! holds one JSON Schema per type; tests validate real rows against them.

use serde::Serialize;
use serde_json::Value;

/// Major version of the event contract; part of every `dataschema`.
pub const CONTRACT_MAJOR: u32 = 1;

/// Every event type scimbus emits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EventType {
    UserCreated,
    UserUpdated,
    UserDeactivated,
    UserReactivated,
    UserDeleted,
}

impl EventType {
    pub const ALL: [EventType; 5] = [
        EventType::UserCreated,
        EventType::UserUpdated,
        EventType::UserDeactivated,
        EventType::UserReactivated,
        EventType::UserDeleted,
    ];

    /// The resource part of the routing key.
    pub fn resource(self) -> &'static str {
        "user"
    }

    /// The action: the last part of the routing key and of the type.
    pub fn action(self) -> &'static str {
        match self {
            EventType::UserCreated => "created",
            EventType::UserUpdated => "updated",
            EventType::UserDeactivated => "deactivated",
            EventType::UserReactivated => "reactivated",
            EventType::UserDeleted => "deleted",
        }
    }

    /// The CloudEvents `type`, e.g. `scimbus.user.created`.
    pub fn name(self) -> String {
        format!("scimbus.{}.{}", self.resource(), self.action())
    }

    /// The AMQP routing key `<tenant>.<resource>.<action>`.
    pub fn routing_key(self, tenant: &str) -> String {
        format!("{tenant}.{}.{}", self.resource(), self.action())
    }

    /// The `dataschema` URI, carrying the contract's major version.
    pub fn dataschema(self) -> String {
        format!("urn:scimbus:events:v{CONTRACT_MAJOR}:{}", self.name())
    }
}

/// An event before it has its sequence.
#[derive(Debug, Clone)]
pub struct PendingEvent {
    pub event_type: EventType,
    /// `Users/{id}`.
    pub subject: String,
    pub data: Value,
}

/// The CloudEvents 1.0 structured-mode envelope.
#[derive(Debug, Clone, Serialize)]
pub struct Envelope {
    pub specversion: &'static str,
    pub id: String,
    pub source: String,
    #[serde(rename = "type")]
    pub event_type: String,
    pub subject: String,
    pub time: String,
    pub datacontenttype: &'static str,
    pub dataschema: String,
    /// Extension attribute: the tenant slug.
    pub tenant: String,
    /// Extension attribute: the per-tenant, gap-free, commit-ordered sequence, zero-padded
    /// so that text order is numeric order.
    pub sequence: String,
    pub data: Value,
}

/// Width of the zero-padded `sequence` (enough for any i64).
pub const SEQUENCE_WIDTH: usize = 19;

pub fn format_sequence(sequence: i64) -> String {
    format!("{sequence:0width$}", width = SEQUENCE_WIDTH)
}

impl Envelope {
    pub fn new(tenant: &str, sequence: i64, time: &str, event: PendingEvent) -> Self {
        Self {
            specversion: "1.0",
            id: uuid::Uuid::now_v7().to_string(),
            source: format!("/scim/v2/{tenant}"),
            event_type: event.event_type.name(),
            subject: event.subject,
            time: time.to_owned(),
            datacontenttype: "application/json",
            dataschema: event.event_type.dataschema(),
            tenant: tenant.to_owned(),
            sequence: format_sequence(sequence),
            data: event.data,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_routing_keys_follow_the_catalogue() {
        assert_eq!(
            EventType::UserDeactivated.name(),
            "scimbus.user.deactivated"
        );
        assert_eq!(
            EventType::UserCreated.routing_key("acme"),
            "acme.user.created"
        );
        assert_eq!(
            EventType::UserDeleted.dataschema(),
            "urn:scimbus:events:v1:scimbus.user.deleted"
        );
        assert_eq!(format_sequence(42), "0000000000000000042");
    }
}
