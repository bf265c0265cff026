//! RFC 8935 push delivery: every push receiver is its own ordered lane over its tenant's
//! event sequence, run by whichever process holds its lease.
//!
//! The pusher wakes when events commit (in this process or, through the announcer,
//! another), numbers the events of tenants with push receivers, and takes every receiver
//! that is behind, not leased and not waiting for a retry. A lane's batch gathers the SETs
//! after its position exactly as a poll does (same order, same brake holds, same erasure,
//! same acknowledgements), POSTs them one by one, and records each one the receiver
//! accepted as acknowledged, then moves the position over what is all acknowledged.
//!
//! - 2xx: delivered.
//! - 400 about the SET (`invalid_request`): it is parked (listed, counted, logged) and
//!   counts as delivered: sending it again cannot succeed, and the lane goes on.
//! - 400 about the transmitter (`invalid_key`, `invalid_issuer`, `invalid_audience`,
//!   `authentication_failed`, `access_denied`), 401 and 403: the receiver is marked
//!   `failing` at once and the lane stops there, retried with backoff until someone fixes
//!   the configuration (a replay retries at once).
//! - Anything else (network errors, timeouts, redirects, 404, 429, 5xx): retried with
//!   exponential backoff and jitter, not before a `Retry-After`; after
//!   `SCIMBUS_SET_PUSH_FAILING_AFTER_SECONDS` of failures the receiver is marked `failing`.
//!
//! Acknowledgements are recorded after the receiver answered: a process that stops between
//! the two sends the SET again (receivers deduplicate on `jti`), so nothing is lost.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::{Duration, Instant};

use rand::Rng;
use tokio::sync::{Semaphore, watch};
use tokio::task::JoinSet;

use super::sets::{advance, gather, key_error, record_acks};
use super::{Context, ServiceError};
use crate::domain::Timestamp;
use crate::events::push::{Outcome, PushClient};
use crate::store::sets::{self as store, LaneState, Parked, ReceiverRow};
use crate::store::tenants;

/// SETs one batch gathers.
const BATCH: usize = 100;
/// A batch stops sending after this long, well within its lease.
const BATCH_TIME: Duration = Duration::from_secs(20);
/// How long a lease keeps other processes off a lane: well beyond a batch (its sending
/// time, one more request's timeout, gathering and signing before). A batch records
/// nothing once its lease was taken from it.
const LEASE: Duration = Duration::from_secs(90);
/// After our own failure (not the receiver's), the lane is tried again after this long.
const INTERNAL_RETRY: Duration = Duration::from_secs(5);
/// Lanes pushed at once by one process.
const CONCURRENT_LANES: usize = 16;
/// Receivers looked at per round.
const DUE_PER_ROUND: u64 = 256;
/// With no wake-up, look again after this long (retries that fell due, brake releases,
/// other processes' leases that ran out).
const TICK: Duration = Duration::from_secs(1);
/// The soonest a write of a tenant without push lanes reconciles again.
const RECONCILE_SOON: Duration = Duration::from_secs(2);
/// The first retry's delay; each failure doubles it up to [`MAX_BACKOFF`].
const FIRST_BACKOFF: Duration = Duration::from_secs(1);
const MAX_BACKOFF: Duration = Duration::from_secs(300);
/// The longest `Retry-After` honoured.
const MAX_RETRY_AFTER: Duration = Duration::from_secs(3600);

/// How many deliveries ended which way (`scimbus_set_push_deliveries`).
pub fn count(ctx: &Context, outcome: &'static str) {
    ctx.metrics
        .set_push_deliveries
        .get_or_create(&crate::metrics::OutcomeLabels { outcome })
        .inc();
}

/// Until `stop` turns true: pushes every push receiver's SETs.
pub async fn run(ctx: Context, mut stop: watch::Receiver<bool>) {
    let client = match PushClient::new(ctx.sets.settings.push_allow_private) {
        Ok(client) => Arc::new(client),
        Err(error) => {
            tracing::error!(%error, "the SET push client cannot be built: no push delivery");
            return;
        }
    };
    let permits = Arc::new(Semaphore::new(CONCURRENT_LANES));
    let mut lanes: JoinSet<()> = JoinSet::new();
    // The lanes this process pushes now (a guard takes each out when its batch ends, even
    // by a panic).
    let running: Arc<std::sync::Mutex<HashSet<String>>> = Arc::default();
    let mut woken = ctx.event_waiters.subscribe_any();
    // Events written before this process started (or while it did not look).
    let mut number_every_push_tenant = true;
    let mut reconciled: Option<Instant> = None;
    let mut stranger = false;
    // Receivers are read a page at a time, from after the last one of the previous round
    // while pages are full, so that no receiver waits behind others for long.
    let mut after_id = String::new();
    while !*stop.borrow() {
        let touched = ctx.event_waiters.take_touched();
        match number(&ctx, touched, number_every_push_tenant).await {
            Ok(seen) => stranger |= seen,
            Err(error) => {
                tracing::warn!(%error, "SET pusher: numbering events failed; retrying");
            }
        }
        number_every_push_tenant = false;
        // Application credentials' receivers follow their tenants: now and then, and soon
        // after a tenant with no push lane wrote events (a new tenant, say).
        let due = reconciled.is_none_or(|at| {
            at.elapsed() >= super::set_groups::RECONCILE_EVERY
                || (stranger && at.elapsed() >= RECONCILE_SOON)
        });
        if due {
            reconciled = Some(Instant::now());
            stranger = false;
            if let Err(error) = super::set_groups::reconcile(&ctx).await {
                tracing::warn!(%error, "SET pusher: reconciling application receivers failed");
            }
        }
        let now = ctx.now();
        match store::due_push_receivers(ctx.store.conn(), &now, &after_id, DUE_PER_ROUND).await {
            Ok(due) => {
                after_id = if due.len() as u64 == DUE_PER_ROUND {
                    due.last().map(|(r, _)| r.id.clone()).unwrap_or_default()
                } else {
                    String::new()
                };
                for (receiver, _) in due {
                    if running_lock(&running).contains(&receiver.id) {
                        continue;
                    }
                    // A batch slot first, then the lease: a lease never waits for a slot.
                    let permit = tokio::select! {
                        permit = permits.clone().acquire_owned() => permit,
                        _ = stop.changed() => break,
                    };
                    let Ok(permit) = permit else { break };
                    let owner = uuid::Uuid::new_v4().to_string();
                    let now = ctx.now();
                    let until = Timestamp::at(
                        ctx.clock.now() + chrono::TimeDelta::from_std(LEASE).unwrap_or_default(),
                    );
                    match store::lease(ctx.store.conn(), &receiver.id, &owner, &now, &until).await {
                        Ok(true) => {}
                        Ok(false) => continue,
                        Err(error) => {
                            tracing::warn!(%error, "SET pusher: a lease failed");
                            continue;
                        }
                    }
                    running_lock(&running).insert(receiver.id.clone());
                    let guard = Running {
                        id: receiver.id.clone(),
                        running: running.clone(),
                        _permit: permit,
                    };
                    let (ctx, client) = (ctx.clone(), client.clone());
                    lanes.spawn(async move {
                        lane(&ctx, &client, receiver, &owner).await;
                        drop(guard);
                    });
                }
            }
            Err(error) => tracing::warn!(%error, "SET pusher: reading receivers failed"),
        }
        while let Some(ended) = lanes.try_join_next() {
            if let Err(error) = ended {
                tracing::error!(%error, "a SET push batch panicked; its lane is retried");
            }
        }
        if !after_id.is_empty() {
            // A full page: the next one at once.
            continue;
        }
        tokio::select! {
            _ = stop.changed() => {}
            _ = woken.changed() => {}
            () = tokio::time::sleep(TICK) => {}
            Some(_) = lanes.join_next(), if !lanes.is_empty() => {}
        }
    }
    // Batches in hand finish (bounded by their timeouts), so that what they delivered is
    // recorded; a stop that does not wait for them sends those SETs again at the next start.
    while lanes.join_next().await.is_some() {}
}

fn running_lock(
    running: &std::sync::Mutex<HashSet<String>>,
) -> std::sync::MutexGuard<'_, HashSet<String>> {
    running
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// A lane pushed by this process: taken out of the running set, and its batch slot given
/// back, when the batch ends, however it ends.
struct Running {
    id: String,
    running: Arc<std::sync::Mutex<HashSet<String>>>,
    _permit: tokio::sync::OwnedSemaphorePermit,
}

impl Drop for Running {
    fn drop(&mut self) {
        running_lock(&self.running).remove(&self.id);
    }
}

/// Numbers the waiting events of the woken tenants that have push receivers (PostgreSQL
/// numbers events after commit; a lane reads numbered events only). Returns whether a
/// woken tenant has no push receiver (one an application credential may have gained).
async fn number(
    ctx: &Context,
    touched: Option<HashSet<String>>,
    every: bool,
) -> Result<bool, ServiceError> {
    let push = store::push_tenants(ctx.store.conn()).await?;
    let stranger = touched
        .as_ref()
        .is_some_and(|t| t.iter().any(|id| !push.contains(id)));
    if ctx.store.backend() != crate::store::Backend::Postgres {
        return Ok(stranger);
    }
    let tenants: Vec<&String> = match (&touched, every) {
        (Some(touched), false) => push.iter().filter(|t| touched.contains(*t)).collect(),
        _ => push.iter().collect(),
    };
    for tenant in tenants {
        let id = crate::domain::TenantId::from(tenant.as_str());
        crate::events::sequencer::number_tenant(&ctx.store, &id).await?;
    }
    Ok(stranger)
}

/// One batch of a lane; gives the lease back.
async fn lane(ctx: &Context, client: &PushClient, receiver: ReceiverRow, owner: &str) {
    let id = receiver.id.clone();
    let Err(error) = batch(ctx, client, &receiver, owner).await else {
        return;
    };
    // Our own failure (the database, the keys), or events past retention: the receiver did
    // nothing wrong, so its attempts and state stay, the error is shown and the lane waits
    // a little; past retention, it is failing until an operator acts.
    tracing::warn!(receiver = %id, %error, "SET push batch failed");
    let gone = matches!(&error, ServiceError::Invalid(e) if e.status == 410);
    let detail = match &error {
        ServiceError::Invalid(e) => e.detail.clone(),
        other => other.to_string(),
    };
    let recorded = async {
        let txn = ctx.store.begin_write().await?;
        let Some(current) = store::find_receiver(&txn, &receiver.tenant_id, &id, true).await?
        else {
            return Ok::<(), ServiceError>(());
        };
        let mut state = current.lane.clone();
        if gone {
            fail(ctx, &current, &mut state, &detail, true, None);
        } else {
            state.last_error = Some(detail.chars().take(500).collect());
            state.retry_at = Some(Timestamp::at(
                ctx.clock.now() + chrono::TimeDelta::from_std(INTERNAL_RETRY).unwrap_or_default(),
            ));
        }
        if !store::set_lane(&txn, &id, owner, &state).await? {
            store::release(&txn, &id, owner).await?;
        }
        txn.commit().await?;
        Ok(())
    };
    if let Err(error) = recorded.await {
        tracing::warn!(receiver = %id, %error, "SET push lane state not recorded");
        let _ = store::release(ctx.store.conn(), &id, owner).await;
    }
}

/// The lane as it is while batch `owner` holds it (`None`: removed, or a replay took it).
async fn held(
    conn: &impl sea_orm::ConnectionTrait,
    tenant: &crate::domain::TenantId,
    id: &str,
    owner: &str,
    lock: bool,
) -> Result<Option<ReceiverRow>, ServiceError> {
    Ok(store::find_receiver(conn, tenant, id, lock)
        .await?
        .filter(|r| r.lease_owner.as_deref() == Some(owner)))
}

async fn batch(
    ctx: &Context,
    client: &PushClient,
    receiver: &ReceiverRow,
    owner: &str,
) -> Result<(), ServiceError> {
    // A deleted tenant's last events are still delivered; a removed one took its lanes.
    let Some(tenant) = tenants::find_by_id(ctx.store.conn(), &receiver.tenant_id).await? else {
        store::release(ctx.store.conn(), &receiver.id, owner).await?;
        return Ok(());
    };
    // Read again now that this batch holds it: a replay may have moved it since the round.
    let Some(receiver) = held(ctx.store.conn(), &tenant.id, &receiver.id, owner, false).await?
    else {
        store::release(ctx.store.conn(), &receiver.id, owner).await?;
        return Ok(());
    };
    let Some(endpoint) = receiver.endpoint.clone() else {
        store::release(ctx.store.conn(), &receiver.id, owner).await?;
        return Ok(());
    };
    let answer = gather(ctx, &tenant, &receiver, BATCH).await?;
    if answer.sets.is_empty() {
        // What follows makes no SET for it (filtered out, discarded): move over it.
        let txn = ctx.store.begin_write().await?;
        if let Some(current) = held(&txn, &tenant.id, &receiver.id, owner, true).await? {
            advance(&txn, ctx, &tenant, &current).await?;
        }
        store::release(&txn, &receiver.id, owner).await?;
        txn.commit().await?;
        return Ok(());
    }
    let authorization = match &receiver.authorization {
        Some(sealed) => {
            let plain = ctx
                .sets
                .sealer()?
                .open(receiver.group_id.as_deref().unwrap_or(&receiver.id), sealed)
                .map_err(key_error)?;
            Some(zeroize::Zeroizing::new(
                String::from_utf8(plain.to_vec()).map_err(|e| ServiceError::Internal(e.into()))?,
            ))
        }
        None => None,
    };
    let started = Instant::now();
    let mut delivered: Vec<String> = Vec::new();
    let mut parked: Vec<(String, String, String)> = Vec::new();
    let mut failure: Option<(String, bool, Option<Duration>)> = None;
    for (jti, jws) in &answer.sets.0 {
        match client
            .deliver(&endpoint, authorization.as_ref().map(|a| a.as_str()), jws)
            .await
        {
            Outcome::Delivered => {
                count(ctx, "delivered");
                delivered.push(jti.clone());
            }
            Outcome::Rejected { err, description } => {
                count(ctx, "parked");
                tracing::warn!(receiver = %receiver.id, tenant = %tenant.slug, jti, err,
                    description, "a push receiver refused a SET for good: parked");
                parked.push((jti.clone(), err, description));
            }
            Outcome::Refused { status, detail } => {
                count(ctx, "refused");
                let detail = if status == 0 {
                    detail
                } else {
                    format!("refused: {detail}")
                };
                failure = Some((detail, true, None));
                break;
            }
            Outcome::Retry {
                detail,
                retry_after,
            } => {
                count(ctx, "retry");
                failure = Some((detail, false, retry_after));
                break;
            }
        }
        if started.elapsed() > BATCH_TIME {
            break;
        }
    }
    let txn = ctx.store.begin_write().await?;
    let Some(mut current) = held(&txn, &tenant.id, &receiver.id, owner, true).await? else {
        // Removed, or replayed (which took the lane): nothing of this batch is recorded;
        // what it sent is sent again, with the same `jti`s. The lease is given back.
        store::release(&txn, &receiver.id, owner).await?;
        txn.commit().await?;
        return Ok(());
    };
    let jtis: Vec<&str> = delivered
        .iter()
        .chain(parked.iter().map(|(jti, ..)| jti))
        .map(String::as_str)
        .collect();
    let sequences = record_acks(&txn, &tenant, &current, &jtis).await?;
    let now = ctx.now();
    let parked_rows: Vec<Parked> = parked
        .into_iter()
        .filter_map(|(jti, err, description)| {
            let sequence = *sequences.get(&jti)?;
            Some(Parked {
                jti,
                sequence,
                err,
                description,
                parked_at: now.clone(),
            })
        })
        .collect();
    let newly_parked = store::insert_parked(&txn, &current.id, &parked_rows).await?;
    current.position = advance(&txn, ctx, &tenant, &current).await?;
    let mut state = current.lane.clone();
    state.parked += i64::try_from(newly_parked).unwrap_or(i64::MAX);
    let progressed = !delivered.is_empty();
    if progressed {
        state.delivered_at = Some(now.clone());
    }
    match failure {
        None => {
            if state.state == "failing" {
                tracing::info!(receiver = %current.id, tenant = %tenant.slug,
                    "SET push receiver recovered");
            }
            state.state = "ok".to_owned();
            state.attempts = 0;
            state.retry_at = None;
            state.failing_since = None;
            state.last_error = None;
        }
        Some((detail, refused, retry_after)) => {
            if progressed {
                // It accepted SETs in this batch: a new run of failures starts here (a
                // receiver that rate-limits is slow, not failing).
                state.state = "ok".to_owned();
                state.attempts = 0;
                state.failing_since = None;
            }
            fail(ctx, &current, &mut state, &detail, refused, retry_after);
        }
    }
    if !store::set_lane(&txn, &current.id, owner, &state).await? {
        store::release(&txn, &current.id, owner).await?;
    }
    txn.commit().await?;
    if state.attempts == 0 && answer.more_available {
        // More waits: the next round takes it at once.
        ctx.event_waiters.wake(tenant.id.as_str());
    }
    Ok(())
}

/// A failed attempt: counts it, sets when to try again, and marks the receiver failing
/// once it has failed for long enough (at once when it refused us).
fn fail(
    ctx: &Context,
    receiver: &ReceiverRow,
    state: &mut LaneState,
    detail: &str,
    refused: bool,
    retry_after: Option<Duration>,
) {
    let now = ctx.clock.now();
    state.attempts = state.attempts.saturating_add(1);
    let since = state
        .failing_since
        .as_ref()
        .and_then(|t| crate::scim::time::parse(t))
        .unwrap_or(now);
    if state.failing_since.is_none() {
        state.failing_since = Some(Timestamp::at(now));
    }
    state.last_error = Some(detail.chars().take(500).collect());
    let exponent = u32::try_from(state.attempts.saturating_sub(1).min(16)).unwrap_or(16);
    let backoff = FIRST_BACKOFF
        .saturating_mul(2u32.saturating_pow(exponent))
        .min(MAX_BACKOFF);
    // Full jitter over the upper half: lanes that failed together do not retry together.
    let jittered = backoff.mul_f64(rand::rng().random_range(0.5..=1.0));
    let wait = retry_after.map_or(jittered, |r| r.min(MAX_RETRY_AFTER).max(jittered));
    state.retry_at = Some(Timestamp::at(
        now + chrono::TimeDelta::from_std(wait).unwrap_or_default(),
    ));
    let failed_for = (now - since).to_std().unwrap_or_default();
    let failing = refused || failed_for >= ctx.sets.settings.push_failing_after;
    if failing && state.state != "failing" {
        tracing::warn!(receiver = %receiver.id, name = %receiver.name,
            endpoint = receiver.endpoint.as_deref().unwrap_or_default(),
            attempts = state.attempts, error = detail,
            "SET push receiver marked failing; still retried");
        state.state = "failing".to_owned();
    } else {
        tracing::info!(receiver = %receiver.id, attempts = state.attempts, error = detail,
            retry_in_ms = wait.as_millis() as u64, "SET push failed; retrying");
    }
}
