//! The event catalogue and the CloudEvents 1.0 structured envelope. `openapi/events/`
//! holds one JSON Schema per type; tests validate real rows against them.

use crate::domain::ResourceId;
use crate::telemetry::Correlation;
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
    GroupCreated,
    GroupUpdated,
    GroupDeleted,
    GroupMembersAdded,
    GroupMembersRemoved,
    /// Served by the snapshot endpoint of the pull API for resync; never in the outbox.
    UserSnapshot,
    GroupSnapshot,
    /// A tenant was created: its first event.
    TenantCreated,
    /// A deleted tenant's data is purged: its last event.
    TenantDeleted,
}

/// Most member ids one membership event carries; larger changes are split in chunks.
pub const MEMBERS_PER_EVENT: usize = 500;

impl EventType {
    pub const ALL: [EventType; 14] = [
        EventType::UserCreated,
        EventType::UserUpdated,
        EventType::UserDeactivated,
        EventType::UserReactivated,
        EventType::UserDeleted,
        EventType::GroupCreated,
        EventType::GroupUpdated,
        EventType::GroupDeleted,
        EventType::GroupMembersAdded,
        EventType::GroupMembersRemoved,
        EventType::UserSnapshot,
        EventType::GroupSnapshot,
        EventType::TenantCreated,
        EventType::TenantDeleted,
    ];

    /// The resource part of the routing key.
    pub fn resource(self) -> &'static str {
        match self {
            EventType::UserCreated
            | EventType::UserUpdated
            | EventType::UserDeactivated
            | EventType::UserReactivated
            | EventType::UserDeleted
            | EventType::UserSnapshot => "user",
            EventType::TenantCreated | EventType::TenantDeleted => "tenant",
            _ => "group",
        }
    }

    /// The action: the last part of the routing key and of the type.
    pub fn action(self) -> &'static str {
        match self {
            EventType::UserCreated | EventType::GroupCreated | EventType::TenantCreated => {
                "created"
            }
            EventType::UserUpdated | EventType::GroupUpdated => "updated",
            EventType::UserDeactivated => "deactivated",
            EventType::UserReactivated => "reactivated",
            EventType::UserDeleted | EventType::GroupDeleted | EventType::TenantDeleted => {
                "deleted"
            }
            EventType::UserSnapshot | EventType::GroupSnapshot => "snapshot",
            EventType::GroupMembersAdded => "members_added",
            EventType::GroupMembersRemoved => "members_removed",
        }
    }

    /// The CloudEvents `type`, e.g. `scimbus.user.created`.
    pub fn name(self) -> String {
        format!("scimbus.{}.{}", self.resource(), self.action())
    }

    /// The type named `name` (`scimbus.user.created`).
    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|t| t.name() == name)
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

/// The membership events of one change: `ids` split in chunks of at most
/// [`MEMBERS_PER_EVENT`], each saying which chunk it is (`i` of `n`, from 1).
pub fn membership_events(
    event_type: EventType,
    group_id: &ResourceId,
    version: i64,
    ids: &[ResourceId],
) -> Vec<PendingEvent> {
    let chunks: Vec<&[ResourceId]> = ids.chunks(MEMBERS_PER_EVENT).collect();
    let count = chunks.len();
    chunks
        .into_iter()
        .enumerate()
        .map(|(i, chunk)| PendingEvent {
            event_type,
            subject: format!("Groups/{group_id}"),
            data: serde_json::json!({
                "group": group_id,
                "version": version,
                "members": chunk,
                "chunk": {"index": i + 1, "count": count},
            }),
        })
        .collect()
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
    /// Extension attribute: the per-tenant, gap-free sequence (each resource's events in
    /// version order; a sequence once visible never gains an earlier one), zero-padded
    /// so that text order is numeric order.
    pub sequence: String,
    /// Extension attribute: the id of the request that made the change (its
    /// `X-Request-Id`), absent for changes no request made.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub correlationid: Option<String>,
    /// Extension attribute: the id of the write transaction that committed the event,
    /// shared by every event of that transaction (a SET's `txn`, RFC 8417); absent on
    /// snapshots and on events stored before it existed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub txn: Option<String>,
    /// CloudEvents distributed-tracing extension: the W3C trace context of the request
    /// that made the change (its span when scimbus exports traces, else the
    /// `traceparent` it came with); absent without one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub traceparent: Option<String>,
    /// The W3C `tracestate` that came with `traceparent`, when not empty.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tracestate: Option<String>,
    pub data: Value,
}

/// Width of the zero-padded `sequence` (enough for any i64).
pub const SEQUENCE_WIDTH: usize = 19;

pub fn format_sequence(sequence: i64) -> String {
    format!("{sequence:0width$}", width = SEQUENCE_WIDTH)
}

impl Envelope {
    /// The envelope of `event`, from the request `correlation` when it comes from one.
    pub fn new(
        tenant: &str,
        sequence: i64,
        time: &str,
        correlation: Option<&Correlation>,
        event: PendingEvent,
    ) -> Self {
        let trace = correlation.and_then(|c| c.trace.as_ref());
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
            correlationid: correlation.map(|c| c.id.clone()),
            txn: None,
            traceparent: trace.map(|t| t.traceparent.clone()),
            tracestate: trace.and_then(|t| t.tracestate.clone()),
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
        assert_eq!(
            EventType::GroupMembersAdded.routing_key("acme"),
            "acme.group.members_added"
        );
    }

    #[test]
    fn membership_changes_are_split_in_chunks_of_500() {
        let ids: Vec<ResourceId> = (0..1201).map(|i| ResourceId::from(i.to_string())).collect();
        let g = ResourceId::from("g");
        let events = membership_events(EventType::GroupMembersRemoved, &g, 7, &ids);
        assert_eq!(events.len(), 3);
        assert_eq!(events[2].data["members"].as_array().unwrap().len(), 201);
        assert_eq!(
            events[1].data["chunk"],
            serde_json::json!({"index": 2, "count": 3})
        );
        assert!(
            events
                .iter()
                .all(|e| e.data["version"] == 7 && e.subject == "Groups/g")
        );
        assert!(membership_events(EventType::GroupMembersAdded, &g, 1, &[]).is_empty());
    }
}
