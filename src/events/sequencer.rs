//! Numbers committed events (PostgreSQL): moves each tenant's `outbox_pending` rows to
//! `outbox` with the next sequences of its counter, in insertion order, one short
//! transaction per tenant and batch (DESIGN 10, docs/decisions.md "Events").
//!
//! Who numbers: the relay leader at the start of each step, readers that must see every
//! committed event (pull API, snapshots, erasure) for their tenant before reading, and in
//! a `serve` without a relay, [`run`]. Numberings of one tenant wait for each other on the
//! tenant's row, so any number of them may run. On SQLite writers number their own events
//! and there is nothing to do.

use std::sync::Arc;

use tokio::sync::{Notify, watch};

use super::catalog::SEQUENCE_WIDTH;
use crate::domain::TenantId;
use crate::store::{Backend, Store, StoreError, brake, outbox};

/// Rows numbered per transaction.
pub const BATCH: u64 = 1_000;

/// Numbers every waiting event of the tenant; returns how many.
///
/// Nothing waiting (a read, no lock) returns at once: a numbering takes the tenant's row
/// lock, a write flushed at commit, and the callers that number on every wake-up (the SET
/// pusher and each push lane, polls) would otherwise make the relay's numbering wait for
/// theirs. Every event committed before the call is still numbered when it returns: a
/// numbering in progress has not yet committed the removal of what it numbers, so its events
/// still show as waiting, and this call waits for its lock.
pub async fn number_tenant(store: &Store, tenant_id: &TenantId) -> Result<u64, StoreError> {
    if store.backend() != Backend::Postgres
        || !outbox::has_unnumbered(store.conn(), tenant_id).await?
    {
        return Ok(0);
    }
    number_waiting(store, tenant_id).await
}

/// Numbers the tenant's waiting events, batch by batch, under its row lock.
async fn number_waiting(store: &Store, tenant_id: &TenantId) -> Result<u64, StoreError> {
    let mut total = 0;
    loop {
        let txn = store.begin_write().await?;
        let numbered = outbox::number_unnumbered(&txn, tenant_id, BATCH, SEQUENCE_WIDTH).await?;
        // Counted by the brake in the numbering's transaction: a hold it sets is there
        // before any reader sees the numbered events.
        brake::observe(&txn, tenant_id, &numbered, chrono::Utc::now()).await?;
        txn.commit().await?;
        let n = numbered.len() as u64;
        total += n;
        if n < BATCH {
            return Ok(total);
        }
    }
}

/// Numbers every waiting event of every tenant; returns how many.
pub async fn number_all(store: &Store) -> Result<u64, StoreError> {
    if store.backend() != Backend::Postgres {
        return Ok(0);
    }
    let mut total = 0;
    for tenant_id in outbox::tenants_with_unnumbered(store.conn()).await? {
        total += number_waiting(store, &tenant_id).await?;
    }
    Ok(total)
}

/// Until `stop` turns true: numbers after every wake-up (writes committed in this
/// process). Runs in a `serve` without a relay; with one, the relay numbers.
pub async fn run(store: Store, wake: Arc<Notify>, mut stop: watch::Receiver<bool>) {
    while !*stop.borrow() {
        tokio::select! {
            _ = stop.changed() => break,
            () = wake.notified() => {}
        }
        if let Err(error) = number_all(&store).await {
            tracing::warn!(%error, "numbering events failed; the next write retries");
        }
    }
}
