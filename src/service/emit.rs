//! Writes a transaction's events to the outbox: the tenant's counter is advanced by the
//! number of events (locking the tenant row until commit), then the rows are inserted with
//! the sequences just taken. Both run last in the transaction, so the tenant lock is held
//! only for the commit; sequences are gap-free and in commit order (DESIGN 10).

use sea_orm::ConnectionTrait;

use crate::domain::Tenant;
use crate::events::{Envelope, PendingEvent};
use crate::store::outbox::OutboxRow;
use crate::store::{StoreError, outbox, tenants};

pub async fn emit(
    conn: &impl ConnectionTrait,
    tenant: &Tenant,
    now: &str,
    events: Vec<PendingEvent>,
) -> Result<(), StoreError> {
    if events.is_empty() {
        return Ok(());
    }
    let n = events.len() as i64;
    let last = tenants::advance_sequence(conn, &tenant.id, n).await?;
    let first = last - n + 1;
    let rows = events
        .into_iter()
        .enumerate()
        .map(|(i, event)| {
            let sequence = first + i as i64;
            let routing_key = event.event_type.routing_key(tenant.slug.as_str());
            let envelope = Envelope::new(tenant.slug.as_str(), sequence, now, event);
            let payload = serde_json::to_value(&envelope)
                .map_err(|e| StoreError::Corrupt(format!("event does not serialise: {e}")))?;
            Ok(OutboxRow {
                sequence,
                id: envelope.id,
                event_type: envelope.event_type,
                routing_key,
                subject: envelope.subject,
                payload,
                created_at: now.to_owned(),
            })
        })
        .collect::<Result<Vec<_>, StoreError>>()?;
    outbox::insert(conn, &tenant.id, rows).await
}
