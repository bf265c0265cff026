//! Outbox rows. Written only inside the transaction of the change they describe.

use sea_orm::{ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter, QueryOrder, Set};
use serde_json::Value;

use super::StoreError;
use super::entities::outbox;

/// An event row ready to insert.
#[derive(Debug, Clone)]
pub struct OutboxRow {
    pub sequence: i64,
    pub id: String,
    pub event_type: String,
    pub routing_key: String,
    pub subject: String,
    pub payload: Value,
    pub created_at: String,
}

/// A stored event row.
#[derive(Debug, Clone)]
pub struct StoredEvent {
    pub sequence: i64,
    pub id: String,
    pub event_type: String,
    pub routing_key: String,
    pub subject: String,
    pub payload: Value,
    pub published_at: Option<String>,
}

pub async fn insert(
    conn: &impl ConnectionTrait,
    tenant_id: &str,
    rows: Vec<OutboxRow>,
) -> Result<(), StoreError> {
    if rows.is_empty() {
        return Ok(());
    }
    let models = rows.into_iter().map(|r| outbox::ActiveModel {
        tenant_id: Set(tenant_id.to_owned()),
        sequence: Set(r.sequence),
        id: Set(r.id),
        event_type: Set(r.event_type),
        routing_key: Set(r.routing_key),
        subject: Set(r.subject),
        payload: Set(r.payload),
        created_at: Set(r.created_at),
        published_at: Set(None),
        attempts: Set(0),
        last_error: Set(None),
    });
    outbox::Entity::insert_many(models).exec(conn).await?;
    Ok(())
}

/// A tenant's events after `after`, in sequence order.
pub async fn list_after(
    conn: &impl ConnectionTrait,
    tenant_id: &str,
    after: i64,
) -> Result<Vec<StoredEvent>, StoreError> {
    Ok(outbox::Entity::find()
        .filter(outbox::Column::TenantId.eq(tenant_id))
        .filter(outbox::Column::Sequence.gt(after))
        .order_by_asc(outbox::Column::Sequence)
        .all(conn)
        .await?
        .into_iter()
        .map(|m| StoredEvent {
            sequence: m.sequence,
            id: m.id,
            event_type: m.event_type,
            routing_key: m.routing_key,
            subject: m.subject,
            payload: m.payload,
            published_at: m.published_at,
        })
        .collect())
}
