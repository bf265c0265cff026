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

use std::collections::{HashMap, HashSet};
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
/// How long a lease keeps other processes off a lane.
const LEASE: Duration = Duration::from_secs(60);
/// Lanes pushed at once by one process.
const CONCURRENT_LANES: usize = 16;
/// Receivers looked at per round.
const DUE_PER_ROUND: u64 = 256;
/// With no wake-up, look again after this long (retries that fell due, brake releases,
/// other processes' leases that ran out).
const TICK: Duration = Duration::from_secs(1);
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
    let mut running: HashSet<String> = HashSet::new();
    let (done_tx, mut done_rx) = tokio::sync::mpsc::unbounded_channel::<Done>();
    // A lane with nothing to send at a tenant sequence (what follows is held or filtered)
    // is not taken again at that sequence before this long.
    let mut idle: HashMap<String, (i64, Instant)> = HashMap::new();
    let mut woken = ctx.event_waiters.subscribe_any();
    // Events written before this process started (or while it did not look).
    let mut number_every_push_tenant = true;
    while !*stop.borrow() {
        let touched = ctx.event_waiters.take_touched();
        if let Err(error) = number(&ctx, touched, number_every_push_tenant).await {
            tracing::warn!(%error, "SET pusher: numbering events failed; retrying");
        }
        number_every_push_tenant = false;
        while let Ok(message) = done_rx.try_recv() {
            note_done(&message, &mut running, &mut idle);
        }
        let now = ctx.now();
        match store::due_push_receivers(ctx.store.conn(), &now, DUE_PER_ROUND).await {
            Ok(due) => {
                for (receiver, latest) in due {
                    if running.contains(&receiver.id) {
                        continue;
                    }
                    if idle
                        .get(&receiver.id)
                        .is_some_and(|(at, when)| *at == latest && when.elapsed() < TICK * 5)
                    {
                        continue;
                    }
                    let until = Timestamp::at(
                        ctx.clock.now() + chrono::TimeDelta::from_std(LEASE).unwrap_or_default(),
                    );
                    match store::lease(ctx.store.conn(), &receiver.id, &now, &until).await {
                        Ok(true) => {}
                        Ok(false) => continue,
                        Err(error) => {
                            tracing::warn!(%error, "SET pusher: a lease failed");
                            continue;
                        }
                    }
                    let Ok(permit) = permits.clone().acquire_owned().await else {
                        break;
                    };
                    running.insert(receiver.id.clone());
                    idle.remove(&receiver.id);
                    let (ctx, client, done) = (ctx.clone(), client.clone(), done_tx.clone());
                    lanes.spawn(async move {
                        let id = receiver.id.clone();
                        let busy = lane(&ctx, &client, receiver).await;
                        // Nothing to send at this sequence: not taken again at once.
                        let idle_at = (busy == Some(false)).then_some(latest);
                        let _ = done.send(Done { id, idle_at });
                        drop(permit);
                    });
                }
            }
            Err(error) => tracing::warn!(%error, "SET pusher: reading receivers failed"),
        }
        tokio::select! {
            _ = stop.changed() => {}
            _ = woken.changed() => {}
            () = tokio::time::sleep(TICK) => {}
            Some(message) = done_rx.recv() => {
                note_done(&message, &mut running, &mut idle);
            }
        }
        while let Ok(message) = done_rx.try_recv() {
            note_done(&message, &mut running, &mut idle);
        }
        while lanes.try_join_next().is_some() {}
    }
    // Batches in hand finish (bounded by their timeouts), so that what they delivered is
    // recorded; a stop that does not wait for them sends those SETs again at the next start.
    while lanes.join_next().await.is_some() {}
}

/// A lane's batch ended.
struct Done {
    id: String,
    /// It had nothing to send at this tenant sequence.
    idle_at: Option<i64>,
}

fn note_done(
    done: &Done,
    running: &mut HashSet<String>,
    idle: &mut HashMap<String, (i64, Instant)>,
) {
    running.remove(&done.id);
    if let Some(latest) = done.idle_at {
        idle.insert(done.id.clone(), (latest, Instant::now()));
    }
}

/// Numbers the waiting events of the woken tenants that have push receivers (PostgreSQL
/// numbers events after commit; a lane reads numbered events only).
async fn number(
    ctx: &Context,
    touched: Option<HashSet<String>>,
    every: bool,
) -> Result<(), ServiceError> {
    if ctx.store.backend() != crate::store::Backend::Postgres {
        return Ok(());
    }
    let push = store::push_tenants(ctx.store.conn()).await?;
    let tenants: Vec<&String> = match (&touched, every) {
        (Some(touched), false) => push.iter().filter(|t| touched.contains(*t)).collect(),
        _ => push.iter().collect(),
    };
    for tenant in tenants {
        let id = crate::domain::TenantId::from(tenant.as_str());
        crate::events::sequencer::number_tenant(&ctx.store, &id).await?;
    }
    Ok(())
}

/// One batch of a lane; gives the lease back. Returns whether it had SETs to send (`None`:
/// it failed before sending).
async fn lane(ctx: &Context, client: &PushClient, receiver: ReceiverRow) -> Option<bool> {
    let id = receiver.id.clone();
    let result = batch(ctx, client, &receiver).await;
    match result {
        Ok(busy) => Some(busy),
        Err(error) => {
            tracing::warn!(receiver = %id, %error, "SET push batch failed");
            let mut state = receiver.lane.clone();
            // Past retention: only an operator can move it on (resync, then replay).
            let gone = matches!(&error, ServiceError::Invalid(e) if e.status == 410);
            let detail = match &error {
                ServiceError::Invalid(e) => e.detail.clone(),
                other => other.to_string(),
            };
            fail(ctx, &receiver, &mut state, &detail, gone, None);
            if let Err(error) = store::set_lane(ctx.store.conn(), &id, &state).await {
                tracing::warn!(receiver = %id, %error, "SET push lane state not recorded");
                let _ = store::release(ctx.store.conn(), &id).await;
            }
            None
        }
    }
}

async fn batch(
    ctx: &Context,
    client: &PushClient,
    receiver: &ReceiverRow,
) -> Result<bool, ServiceError> {
    let Some(tenant) = tenants::find_by_id(ctx.store.conn(), &receiver.tenant_id)
        .await?
        .filter(|t| t.deleted_at.is_none())
    else {
        store::release(ctx.store.conn(), &receiver.id).await?;
        return Ok(false);
    };
    let Some(endpoint) = receiver.endpoint.clone() else {
        store::release(ctx.store.conn(), &receiver.id).await?;
        return Ok(false);
    };
    let answer = gather(ctx, &tenant, receiver, BATCH).await?;
    if answer.sets.is_empty() {
        // What follows is filtered out (or held): move over what makes no SET.
        let txn = ctx.store.begin_write().await?;
        advance(&txn, ctx, &tenant, receiver).await?;
        store::release(&txn, &receiver.id).await?;
        txn.commit().await?;
        return Ok(false);
    }
    let authorization = match &receiver.authorization {
        Some(sealed) => {
            let plain = ctx
                .sets
                .sealer()?
                .open(&receiver.id, sealed)
                .map_err(key_error)?;
            Some(String::from_utf8(plain).map_err(|e| ServiceError::Internal(e.into()))?)
        }
        None => None,
    };
    let started = Instant::now();
    let mut delivered: Vec<String> = Vec::new();
    let mut parked: Vec<(String, String, String)> = Vec::new();
    let mut failure: Option<(String, bool, Option<Duration>)> = None;
    for (jti, jws) in &answer.sets.0 {
        match client
            .deliver(&endpoint, authorization.as_deref(), jws)
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
    let Some(mut current) = store::find_receiver(&txn, &tenant.id, &receiver.id, true).await?
    else {
        // Removed meanwhile.
        return Ok(true);
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
    store::insert_parked(&txn, &current.id, &parked_rows).await?;
    current.position = advance(&txn, ctx, &tenant, &current).await?;
    let mut state = current.lane.clone();
    state.parked += parked_rows.len() as i64;
    if !delivered.is_empty() {
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
            fail(ctx, &current, &mut state, &detail, refused, retry_after);
        }
    }
    store::set_lane(&txn, &current.id, &state).await?;
    txn.commit().await?;
    if state.attempts == 0 && answer.more_available {
        // More waits: the next round takes it at once.
        ctx.event_waiters.wake(tenant.id.as_str());
    }
    Ok(true)
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
