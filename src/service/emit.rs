//! Writes a transaction's events to the outbox, as the transaction's last statement.
//!
//! On PostgreSQL the rows go to `outbox_pending` unnumbered: nothing another write of the
//! tenant needs is locked, so one tenant's writes commit in parallel; the sequencer
//! (`events::sequencer`) numbers them after commit. On SQLite, where writes are one at a
//! time anyway, the tenant's counter is advanced and the rows inserted numbered. Either
//! way sequences are gap-free, each resource's events in version order (DESIGN 10).

use sea_orm::{ConnectionTrait, DbBackend};

use crate::domain::{Tenant, Timestamp};
use crate::events::{Envelope, EventType, PendingEvent};
use crate::store::outbox::{OutboxRow, UnnumberedRow};
use crate::store::{StoreError, brake, outbox, tenants};
use crate::telemetry::Correlation;

/// The CloudEvents envelope of `event` with `sequence` in the write transaction `txn`, and
/// its routing key.
fn envelope(
    tenant: &Tenant,
    now: &Timestamp,
    sequence: i64,
    (correlation, txn): (Option<&Correlation>, &str),
    event: PendingEvent,
) -> (Envelope, String) {
    let routing_key = event.event_type.routing_key(tenant.slug.as_str());
    let mut envelope = Envelope::new(tenant.slug.as_str(), sequence, now, correlation, event);
    envelope.txn = Some(txn.to_owned());
    (envelope, routing_key)
}

/// A new write transaction's id (the events' `txn`).
fn transaction_id() -> String {
    uuid::Uuid::now_v7().to_string()
}

fn unserialisable(e: serde_json::Error) -> StoreError {
    StoreError::Corrupt(format!("event does not serialise: {e}"))
}

/// A write's events as `outbox_pending` rows (PostgreSQL), sequence 0 until the sequencer
/// numbers them: for [`emit`], or for a statement that writes them with their change.
pub fn unnumbered(
    tenant: &Tenant,
    now: &Timestamp,
    correlation: Option<&Correlation>,
    events: Vec<PendingEvent>,
) -> Result<Vec<UnnumberedRow>, StoreError> {
    let txn = transaction_id();
    events
        .into_iter()
        .map(|event| {
            let (envelope, routing_key) = envelope(tenant, now, 0, (correlation, &txn), event);
            let payload = serde_json::to_string(&envelope).map_err(unserialisable)?;
            Ok(UnnumberedRow {
                id: envelope.id,
                event_type: envelope.event_type,
                routing_key,
                subject: envelope.subject,
                payload,
                created_at: now.to_owned(),
            })
        })
        .collect()
}

pub async fn emit(
    conn: &impl ConnectionTrait,
    tenant: &Tenant,
    now: &Timestamp,
    correlation: Option<&Correlation>,
    events: Vec<PendingEvent>,
) -> Result<(), StoreError> {
    if events.is_empty() {
        return Ok(());
    }
    crate::failpoints::point("emit", &tenant.id).await;
    // Every write's events but the tenant's own last one need the tenant not deleted: a
    // write in hand when the tenant is deleted fails here and lands nothing.
    let require_live = !events
        .iter()
        .all(|e| e.event_type == EventType::TenantDeleted);
    if conn.get_database_backend() == DbBackend::Postgres {
        return outbox::insert_unnumbered(
            conn,
            &tenant.id,
            unnumbered(tenant, now, correlation, events)?,
            require_live,
            tenant.schema_version,
        )
        .await;
    }
    let n = events.len() as i64;
    let last = tenants::advance_sequence(
        conn,
        &tenant.id,
        n,
        require_live,
        require_live.then_some(tenant.schema_version),
    )
    .await?;
    let first = last - n + 1;
    let numbered: Vec<brake::Numbered> = events
        .iter()
        .enumerate()
        .map(|(i, event)| brake::Numbered {
            sequence: first + i as i64,
            event_type: event.event_type.name(),
            members: event.data["members"]
                .as_array()
                .map_or(0, |m| m.len() as i64),
        })
        .collect();
    let txn = transaction_id();
    let rows = events
        .into_iter()
        .enumerate()
        .map(|(i, event)| {
            let sequence = first + i as i64;
            let (envelope, routing_key) =
                envelope(tenant, now, sequence, (correlation, &txn), event);
            let payload = serde_json::to_value(&envelope).map_err(unserialisable)?;
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
    outbox::insert(conn, &tenant.id, rows).await?;
    // Numbered here on SQLite: the brake counts them in this transaction.
    brake::observe(conn, &tenant.id, &numbered, chrono::Utc::now()).await?;
    Ok(())
}
