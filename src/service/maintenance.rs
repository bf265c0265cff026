//! Background upkeep (DESIGN 13, 15): retention prunes events past their age, and deleted
//! tenants are purged in batches, then announced with `scimbus.tenant.deleted`, then
//! removed once that event is past retention too (their slug is retired, never reused). Each step has
//! a one-step function tests call; `run` loops them.

use std::time::Duration;

use chrono::TimeDelta;
use serde_json::json;

use super::emit::emit;
use super::{Context, ServiceError};
use crate::domain::Timestamp;
use crate::events::{EventType, PendingEvent};
use crate::store::{outbox, purge, tenants};

/// Rows one purge or prune step touches (one short transaction each).
pub const BATCH: u64 = 1000;

/// Failed purge steps after which a maintenance round moves on to retention.
const MAX_PURGE_FAILURES_PER_ROUND: u32 = 3;

/// What one purge step did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PurgeStep {
    /// Deleted this many rows of the tenant's data.
    Deleted { tenant: String, rows: u64 },
    /// The tenant is empty: `tenant.deleted` is written.
    Completed { tenant: String },
    /// No deleted tenant waits.
    Idle,
}

/// One step of purging the oldest deleted tenant.
#[tracing::instrument(skip_all, err(level = "warn"))]
pub async fn purge_once(ctx: &Context) -> Result<PurgeStep, ServiceError> {
    let Some(tenant) = tenants::next_to_purge(ctx.store.conn()).await? else {
        return Ok(PurgeStep::Idle);
    };
    let step = purge_step(ctx, &tenant).await;
    if step.is_err() {
        // Behind the other deleted tenants from now on: one purge that fails never holds
        // up another.
        if let Err(error) = tenants::record_purge_failure(ctx.store.conn(), &tenant.id).await {
            tracing::warn!(%error, tenant = %tenant.slug, "could not record a failed purge");
        }
    }
    step
}

async fn purge_step(
    ctx: &Context,
    tenant: &crate::domain::Tenant,
) -> Result<PurgeStep, ServiceError> {
    for table in purge::RESOURCE_TABLES {
        let txn = ctx.store.begin_write().await?;
        let rows = purge::delete_batch(&txn, table, &tenant.id, BATCH).await?;
        txn.commit().await?;
        if rows > 0 {
            return Ok(PurgeStep::Deleted {
                tenant: tenant.slug.to_string(),
                rows,
            });
        }
    }
    let txn = ctx.store.begin_write().await?;
    let now = ctx.now();
    // Its request journal (at most `SCIMBUS_JOURNAL_ENTRIES` rows) goes with the purge.
    crate::store::journal::delete_all(&txn, &tenant.id).await?;
    crate::store::jobs::delete_all(&txn, &tenant.id).await?;
    // Exactly once across replicas: only the process that sets `purged_at` emits.
    if tenants::mark_purged(&txn, &tenant.id, &now).await? {
        let event = PendingEvent {
            event_type: EventType::TenantDeleted,
            subject: format!("Tenants/{}", tenant.slug),
            data: json!({"tenant": tenant.slug.as_str()}),
        };
        emit(&txn, tenant, &now, None, vec![event]).await?;
    }
    txn.commit().await?;
    ctx.signal_events(&tenant.id);
    tracing::info!(tenant = %tenant.slug, "tenant purged; tenant.deleted written");
    Ok(PurgeStep::Completed {
        tenant: tenant.slug.to_string(),
    })
}

/// One pass of retention over every tenant: deletes each tenant's oldest events that are
/// older than the retention period and settled (published or parked — or any, when no
/// relay will publish them: `Context::keep_unpublished`), never past the first one that is not, so what remains of a tenant is
/// always a contiguous tail and `events_pruned_through` exact. A purged tenant whose
/// events are all gone is removed. Returns how many events went.
#[tracing::instrument(skip_all, err(level = "warn"))]
pub async fn prune_once(ctx: &Context) -> Result<u64, ServiceError> {
    let retention = TimeDelta::from_std(ctx.event_retention).unwrap_or(TimeDelta::MAX);
    let cutoff = ctx
        .clock
        .now()
        .checked_sub_signed(retention)
        .map(Timestamp::at)
        .unwrap_or_default();
    // What a SET receiver has not acknowledged is kept up to the cap (then it resyncs).
    let cap = TimeDelta::from_std(ctx.sets.settings.retention_cap).unwrap_or(TimeDelta::MAX);
    let cap_cutoff = ctx
        .clock
        .now()
        .checked_sub_signed(cap)
        .map(Timestamp::at)
        .unwrap_or_default();
    // Events committed but not numbered yet are numbered first: retention and the removal
    // of purged tenants then see every committed event.
    crate::events::sequencer::number_all(&ctx.store).await?;
    // Signing keys whose publication ended go (their SETs no longer verify anywhere).
    crate::store::sets::delete_unpublished_keys(ctx.store.conn(), &ctx.now()).await?;
    let mut pruned = 0;
    for tenant in tenants::list(ctx.store.conn()).await? {
        let mut after = tenant.events_pruned_through.max(0);
        // What a brake holds was never delivered: it is kept whatever its age.
        let held_from = crate::store::brake::held_from(ctx.store.conn(), &tenant.id)
            .await?
            .unwrap_or(i64::MAX);
        // A deleted tenant's receivers can no longer poll: they keep nothing.
        let unacknowledged_after = if tenant.deleted_at.is_some() {
            i64::MAX
        } else {
            crate::store::sets::lowest_position(ctx.store.conn(), &tenant.id)
                .await?
                .unwrap_or(i64::MAX)
        };
        loop {
            let ages = outbox::oldest(ctx.store.conn(), &tenant.id, after, BATCH).await?;
            let through = ages
                .iter()
                .take_while(|a| {
                    a.sequence < held_from
                        && a.created_at < cutoff
                        && (a.settled || !ctx.keep_unpublished)
                        && (a.sequence <= unacknowledged_after || a.created_at < cap_cutoff)
                })
                .last()
                .map(|a| a.sequence);
            let Some(through) = through else {
                break;
            };
            let txn = ctx.store.begin_write().await?;
            pruned += outbox::delete_through(&txn, &tenant.id, through).await?;
            tenants::set_pruned_through(&txn, &tenant.id, through).await?;
            // The SETs receivers parked for those events go with them.
            crate::store::sets::prune_parked(&txn, &tenant.id, through).await?;
            txn.commit().await?;
            after = through;
            let whole_batch =
                ages.last().map(|a| a.sequence) == Some(through) && ages.len() as u64 == BATCH;
            if !whole_batch {
                break;
            }
        }
        // Gone means none numbered and none waiting for its number: `tenant.deleted`
        // itself waits a moment after the purge (PostgreSQL).
        if tenant.purged_at.is_some()
            && outbox::oldest(ctx.store.conn(), &tenant.id, 0, 1)
                .await?
                .is_empty()
            && !outbox::has_unnumbered(ctx.store.conn(), &tenant.id).await?
        {
            let txn = ctx.store.begin_write().await?;
            purge::remove_tenant(&txn, &tenant.id, tenant.slug.as_str(), &ctx.now()).await?;
            txn.commit().await?;
            tracing::info!(tenant = %tenant.slug, "deleted tenant removed; its slug is retired");
        }
    }
    Ok(pruned)
}

/// Runs retention and purges every `interval`, and purges at once when woken (a tenant
/// was deleted), until `stop` turns true (a step in hand is finished). Errors are logged
/// and retried on the next round.
pub async fn run(ctx: Context, interval: Duration, mut stop: tokio::sync::watch::Receiver<bool>) {
    while !*stop.borrow() {
        let mut failures = 0;
        loop {
            if *stop.borrow() {
                break;
            }
            match purge_once(&ctx).await {
                Ok(PurgeStep::Idle) => break,
                Ok(_) => tokio::task::yield_now().await,
                Err(error) => {
                    // The failed tenant now waits behind the others: go on with them, a
                    // few failures per round at most.
                    tracing::warn!(%error, "tenant purge failed; retried after the others");
                    failures += 1;
                    if failures >= MAX_PURGE_FAILURES_PER_ROUND {
                        break;
                    }
                }
            }
        }
        if let Err(error) = prune_once(&ctx).await {
            tracing::warn!(%error, "event retention failed; retried next round");
        }
        if let Err(error) = super::brake::auto_release(&ctx).await {
            tracing::warn!(%error, "releasing brakes past their auto-release failed; retried next round");
        }
        tokio::select! {
            () = tokio::time::sleep(interval) => {}
            () = ctx.maintenance_wake.notified() => {}
            _ = stop.changed() => {}
        }
    }
}
