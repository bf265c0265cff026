//! SET receivers registered for an application credential: one receiver of every tenant
//! the credential reads (a chosen set, or all, those created later included), pushed to or
//! polled with one credential.
//!
//! Such a receiver is a group (`set_receiver_groups`: what its lanes share, and a polling
//! group's credential) and one lane per tenant, each an ordinary receiver of its tenant
//! (its own position, order, retries and failing state); a poll of the group reads every
//! lane that is behind ([`gather`]). [`reconcile`] keeps the lanes equal to what the credential
//! reads: a tenant it gains gets a lane from the start of what retention keeps (a new
//! tenant: all of its events), a tenant it loses loses its lane; a deleted tenant keeps its
//! lane (its last events are delivered) until its removal takes the lane with it. A revoked
//! credential's receivers are removed with the revocation; an expired one's at the next
//! reconcile. At most one lane per group and tenant exists, whatever replicas reconcile at
//! once (a unique index), and a group's removal waits for a reconcile adding lanes to it,
//! then removes those too (the group's row is locked by both).

use std::collections::{BTreeMap, HashSet};
use std::time::Duration;

use secrecy::SecretString;
use serde::Serialize;
use serde_json::json;

use super::audit::{self, Actor};
use super::sets::{
    self, Collected, OrderedSets, PollRequest, PollResponse, Poller, ReceiverInfo, ReceiverRequest,
    check, start_of,
};
use super::{Context, ServiceError};
use crate::domain::TenantId;
use crate::scim::error::ScimError;
use crate::store::sets::{self as store, GroupRow, ReceiverRow};
use crate::store::{apps, outbox, tenants};
use crate::tenancy::token;

/// How often the pusher reconciles the groups' lanes with what their credentials read.
pub const RECONCILE_EVERY: Duration = Duration::from_secs(30);

/// An application credential's receiver as the admin API shows it.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct GroupInfo {
    pub id: String,
    pub app: String,
    pub name: String,
    /// `poll` (RFC 8936, with the credential given at registration) or `push` (RFC 8935).
    pub delivery: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub endpoint: Option<String>,
    /// One lane per tenant the credential reads, each with its position and state.
    pub lanes: Vec<ReceiverInfo>,
}

fn no_app(id: &str) -> ServiceError {
    ServiceError::NotFound(format!("no live application credential {id}"))
}

/// The tenants `app_id` reads (deleted ones not yet removed included); `None` when the
/// credential is not live.
async fn readable(
    conn: &impl sea_orm::ConnectionTrait,
    ctx: &Context,
    app_id: &str,
) -> Result<Option<Vec<TenantId>>, ServiceError> {
    let Some(app) = apps::find(conn, app_id).await? else {
        return Ok(None);
    };
    let now = ctx.now();
    if app.revoked_at.is_some() || app.expires_at.as_ref().is_some_and(|e| **e <= *now) {
        return Ok(None);
    }
    let credential = (!app.all_tenants).then_some(app_id);
    Ok(Some(apps::tenant_ids(conn, credential).await?))
}

/// The lane of `group` in `tenant_id` at `position`.
fn lane_of(
    ctx: &Context,
    group: &GroupRow,
    tenant_id: &TenantId,
    position: i64,
) -> Result<ReceiverRow, ServiceError> {
    let text = |key: &str| {
        group.settings[key]
            .as_str()
            .map(str::to_owned)
            .ok_or_else(|| {
                ServiceError::Internal(anyhow::anyhow!(
                    "receiver group {} has no `{key}`",
                    group.id
                ))
            })
    };
    let events: Vec<String> = group.settings["events"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|e| e.as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default();
    let endpoint = group.settings["endpoint"].as_str().map(str::to_owned);
    Ok(ReceiverRow {
        id: uuid::Uuid::now_v7().to_string(),
        tenant_id: tenant_id.clone(),
        name: text("name")?,
        form: text("form")?,
        events,
        signals: group.settings["signals"].as_bool().unwrap_or(false),
        alg: text("alg")?,
        audience: text("audience")?,
        position,
        created_at: ctx.now(),
        last_polled_at: None,
        delivery: if endpoint.is_some() { "push" } else { "poll" }.to_owned(),
        endpoint,
        authorization: group.auth_sealed.clone(),
        lane: store::LaneState {
            state: "ok".to_owned(),
            ..store::LaneState::default()
        },
        group_id: Some(group.id.clone()),
        app_id: Some(group.app_id.clone()),
        lease_owner: None,
    })
}

/// A lane's own poll credential: a hash nobody holds (push lanes never poll; a polling
/// group's lanes are polled through the group's credential).
fn unused_credential() -> String {
    token::hash_secret(&token::generate(sets::RECEIVER_PREFIX))
}

/// Registers a receiver of every tenant `app_id` reads (its lanes start at each tenant's
/// latest event: what happens from now on): pushed to, or, without an endpoint, polled
/// with the credential returned here once.
pub async fn register(
    ctx: &Context,
    actor: &Actor,
    app_id: &str,
    request: ReceiverRequest,
) -> Result<(GroupInfo, Option<SecretString>), ServiceError> {
    if request.after.is_some() {
        return Err(ServiceError::invalid_value(
            "`after` names a sequence of one tenant: a receiver of an application credential \
             starts at each tenant's latest event",
        ));
    }
    let tenant_ids = readable(ctx.store.conn(), ctx, app_id)
        .await?
        .ok_or_else(|| no_app(app_id))?;
    let checked = check(ctx, request).await?;
    let id = uuid::Uuid::now_v7().to_string();
    let request = &checked.request;
    let group = GroupRow {
        id: id.clone(),
        app_id: app_id.to_owned(),
        settings: json!({
            "name": checked.name.as_str(),
            "form": request.form.as_str(),
            "events": request.events,
            "signals": request.signals,
            "alg": checked.alg.as_str(),
            "audience": request.audience.clone()
                .unwrap_or_else(|| format!("urn:scimbus:set-receiver:{id}")),
            "endpoint": request.push.as_ref().map(|p| p.endpoint.clone()),
        }),
        auth_sealed: checked.sealed_authorization(ctx, &id)?,
    };
    let mut lanes = Vec::new();
    for tenant_id in &tenant_ids {
        let (start, _) = start_of(ctx, tenant_id).await?;
        lanes.push(lane_of(ctx, &group, tenant_id, start)?);
    }
    let secret = request
        .push
        .is_none()
        .then(|| token::generate(sets::RECEIVER_PREFIX));
    let hash = secret.as_ref().map(token::hash_secret);
    let txn = ctx.store.begin_write().await?;
    store::insert_group(&txn, &group, hash.as_deref(), &ctx.now()).await?;
    for lane in &lanes {
        store::insert_lane(&txn, lane, &unused_credential()).await?;
    }
    audit::record(
        &txn,
        ctx,
        actor,
        "set_receiver.register",
        None,
        Some(&id),
        json!({"app": app_id, "settings": group.settings,
               "delivery": if secret.is_some() { "poll" } else { "push" },
               "tenants": lanes.len()}),
    )
    .await?;
    txn.commit().await?;
    for lane in &lanes {
        ctx.event_waiters.wake(lane.tenant_id.as_str());
    }
    Ok((info(ctx, &group).await?, secret))
}

async fn info(ctx: &Context, group: &GroupRow) -> Result<GroupInfo, ServiceError> {
    let mut lanes = Vec::new();
    for lane in store::group_lanes(ctx.store.conn(), &group.id).await? {
        let Some(tenant) = tenants::find_by_id(ctx.store.conn(), &lane.tenant_id).await? else {
            continue;
        };
        let latest = tenants::event_sequence(ctx.store.conn(), &tenant.id).await?;
        lanes.push(sets::info(ctx, &tenant, &lane, latest));
    }
    Ok(GroupInfo {
        id: group.id.clone(),
        app: group.app_id.clone(),
        name: group.settings["name"]
            .as_str()
            .unwrap_or_default()
            .to_owned(),
        delivery: if group.settings["endpoint"].is_string() {
            "push"
        } else {
            "poll"
        }
        .to_owned(),
        endpoint: group.settings["endpoint"].as_str().map(str::to_owned),
        lanes,
    })
}

/// The credential's receivers with their lanes.
pub async fn list(ctx: &Context, app_id: &str) -> Result<Vec<GroupInfo>, ServiceError> {
    if apps::find(ctx.store.conn(), app_id).await?.is_none() {
        return Err(ServiceError::NotFound(format!(
            "no application credential {app_id}"
        )));
    }
    let mut listed = Vec::new();
    for group in store::groups(ctx.store.conn(), Some(app_id)).await? {
        listed.push(info(ctx, &group).await?);
    }
    Ok(listed)
}

/// Removes a credential's receiver: every lane of it.
pub async fn remove(
    ctx: &Context,
    actor: &Actor,
    app_id: &str,
    group: &str,
) -> Result<(), ServiceError> {
    let txn = ctx.store.begin_write().await?;
    if store::lock_group(&txn, group)
        .await?
        .is_none_or(|g| g.app_id != app_id)
    {
        return Err(ServiceError::NotFound(format!(
            "no SET receiver {group} of this application credential"
        )));
    }
    let removed = store::delete_group(&txn, group).await?;
    audit::record(
        &txn,
        ctx,
        actor,
        "set_receiver.remove",
        None,
        Some(group),
        json!({"app": app_id, "lanes": removed}),
    )
    .await?;
    txn.commit().await?;
    Ok(())
}

/// Removes every receiver of a credential (its revocation), in the caller's transaction.
pub async fn remove_all(
    txn: &impl sea_orm::ConnectionTrait,
    app_id: &str,
) -> Result<u64, ServiceError> {
    let mut removed = 0;
    for group in store::groups(txn, Some(app_id)).await? {
        removed += store::delete_group(txn, &group.id).await?;
    }
    Ok(removed)
}

/// Makes every group's lanes match the tenants its credential reads now; returns the lanes
/// added and removed. A group that fails is logged and the others go on.
pub async fn reconcile(ctx: &Context) -> Result<(usize, usize), ServiceError> {
    let (mut added, mut removed) = (0, 0);
    for group in store::groups(ctx.store.conn(), None).await? {
        match reconcile_group(ctx, &group.id).await {
            Ok((a, r)) => {
                added += a;
                removed += r;
            }
            Err(error) => {
                tracing::warn!(group = %group.id, %error,
                    "SET receiver of an application credential not reconciled");
            }
        }
    }
    if added + removed > 0 {
        tracing::info!(
            added,
            removed,
            "SET receivers of application credentials follow their tenants"
        );
    }
    Ok((added, removed))
}

async fn reconcile_group(ctx: &Context, id: &str) -> Result<(usize, usize), ServiceError> {
    let txn = ctx.store.begin_write().await?;
    // Locked: a removal that starts now waits, then removes what this adds.
    let Some(group) = store::lock_group(&txn, id).await? else {
        return Ok((0, 0));
    };
    let Some(want) = readable(&txn, ctx, &group.app_id).await? else {
        // Expired (a revocation removes its receivers itself).
        let removed = store::delete_group(&txn, id).await?;
        txn.commit().await?;
        return Ok((0, usize::try_from(removed).unwrap_or(usize::MAX)));
    };
    let want: HashSet<String> = want.iter().map(ToString::to_string).collect();
    let have: BTreeMap<String, ReceiverRow> = store::group_lanes(&txn, id)
        .await?
        .into_iter()
        .map(|l| (l.tenant_id.to_string(), l))
        .collect();
    let gone: Vec<String> = have
        .keys()
        .filter(|t| !want.contains(*t))
        .cloned()
        .collect();
    let removed = store::delete_group_lanes(&txn, id, Some(&gone)).await?;
    let mut added = 0;
    for tenant in want.iter().filter(|t| !have.contains_key(*t)) {
        let tenant_id = TenantId::from(tenant.as_str());
        // A tenant new to the credential: from the start of what retention keeps.
        let start = tenants::events_pruned_through(&txn, &tenant_id).await?;
        let lane = lane_of(ctx, &group, &tenant_id, start)?;
        if store::insert_lane(&txn, &lane, &unused_credential()).await? {
            added += 1;
        }
    }
    txn.commit().await?;
    if added > 0 {
        for tenant in &want {
            ctx.event_waiters.wake(tenant);
        }
    }
    Ok((added, usize::try_from(removed).unwrap_or(usize::MAX)))
}

/// The polling group whose credential hashes to `hash`, while its credential is live.
pub(super) async fn authenticate(
    ctx: &Context,
    hash: &str,
) -> Result<Option<Poller>, ServiceError> {
    let Some(group) = store::group_by_hash(ctx.store.conn(), hash).await? else {
        return Ok(None);
    };
    let Some(app) = apps::find(ctx.store.conn(), &group.app_id).await? else {
        return Ok(None);
    };
    let now = ctx.now();
    let live = app.revoked_at.is_none() && app.expires_at.as_ref().is_none_or(|e| **e > *now);
    Ok(live.then_some(Poller::Group(group)))
}

/// The lanes of a polling group that are behind, each with its tenant, after numbering the
/// events its tenants wrote (PostgreSQL numbers them after commit).
async fn behind(
    ctx: &Context,
    group: &GroupRow,
) -> Result<Vec<(ReceiverRow, crate::domain::Tenant)>, ServiceError> {
    for tenant_id in store::group_unnumbered_tenants(ctx.store.conn(), &group.id).await? {
        crate::events::sequencer::number_tenant(&ctx.store, &tenant_id).await?;
    }
    let mut lanes = Vec::new();
    for lane in store::behind_lanes(ctx.store.conn(), &group.id).await? {
        if let Some(tenant) = tenants::find_by_id(ctx.store.conn(), &lane.tenant_id).await? {
            lanes.push((lane, tenant));
        }
    }
    Ok(lanes)
}

/// The tenants whose events a waiting poll of the group wakes for: its lanes' tenants;
/// `None` when its credential reads every tenant (any tenant's event may be its, a new
/// tenant's included).
pub(super) async fn watched_tenants(
    ctx: &Context,
    group: &GroupRow,
) -> Result<Option<std::sync::Arc<HashSet<String>>>, ServiceError> {
    let conn = ctx.store.conn();
    let every = apps::find(conn, &group.app_id)
        .await?
        .is_none_or(|app| app.all_tenants);
    if every {
        return Ok(None);
    }
    let lanes = store::group_lanes(conn, &group.id).await?;
    Ok(Some(std::sync::Arc::new(
        lanes.into_iter().map(|l| l.tenant_id.to_string()).collect(),
    )))
}

/// Records a group poll's acknowledgements in the lanes whose events they name, and moves
/// those lanes on.
pub(super) async fn acknowledge(
    ctx: &Context,
    group: &GroupRow,
    request: &PollRequest,
) -> Result<(), ServiceError> {
    let mut jtis = sets::acknowledged(request, &group.id);
    if jtis.is_empty() {
        return Ok(());
    }
    // The lanes whose tenants hold the events acknowledged: the others stay as they are
    // (their position, and their last poll, which orders whose turn comes first).
    let lanes = behind(ctx, group).await?;
    let tenant_ids: Vec<TenantId> = lanes.iter().map(|(_, t)| t.id.clone()).collect();
    let events: Vec<&str> = jtis.iter().filter_map(|j| sets::event_id(j)).collect();
    let holding = outbox::tenants_holding(ctx.store.conn(), &tenant_ids, &events).await?;
    for (lane, tenant) in lanes.into_iter().filter(|(_, t)| holding.contains(&t.id)) {
        let (_, recorded) = skip_removed(
            sets::acknowledge(ctx, &tenant, &lane.id, &jtis)
                .await
                .map(|(_, recorded)| ((), recorded)),
        )?;
        jtis.retain(|j| !recorded.contains_key(*j));
        if jtis.is_empty() {
            break;
        }
    }
    Ok(())
}

/// Gathers up to `max` signed SETs from the group's lanes that are behind, each lane's in
/// its tenant's order; the lanes share `max`, so one busy tenant does not hold back the
/// others. A lane whose events all went to no SET for it (filtered out) moves on. The SETs
/// are collected first (twice for a lane that gets the room others left) and signed once.
pub(super) async fn gather(
    ctx: &Context,
    group: &GroupRow,
    max: usize,
) -> Result<PollResponse, ServiceError> {
    let mut lanes = behind(ctx, group).await?;
    // The lanes served least recently first: when more lanes are behind than `maxEvents`
    // has room for, each gets its turn.
    lanes.sort_by(|a, b| a.0.last_polled_at.cmp(&b.0.last_polled_at));
    let share = (max / lanes.len().max(1)).max(MIN_SHARE).min(max);
    // Each lane's part: its share first; then what room is left goes to the lanes that
    // have more, in order (a lane's SETs are always the first it has not had acknowledged).
    let mut parts: Vec<Option<Collected>> = Vec::with_capacity(lanes.len());
    let mut total = 0;
    for (lane, tenant) in &lanes {
        let room = max - total;
        if room == 0 {
            parts.push(Some(Collected::unread()));
            continue;
        }
        let part = lane_part(ctx, tenant, lane, share.min(room)).await?;
        if part.as_ref().is_none_or(Collected::is_empty) {
            // Nothing for it in what it read (its events filtered out, or acknowledged):
            // its position moves on, so the next poll reads further.
            skip_removed(
                sets::acknowledge(ctx, tenant, &lane.id, &[])
                    .await
                    .map(|_| ()),
            )?;
        }
        total += part.as_ref().map_or(0, Collected::len);
        parts.push(part);
    }
    for ((lane, tenant), part) in lanes.iter().zip(parts.iter_mut()) {
        let room = max - total;
        if room == 0 {
            break;
        }
        let had = match part {
            Some(p) if p.more && !p.is_empty() => p.len(),
            _ => continue,
        };
        let more = lane_part(ctx, tenant, lane, had + room).await?;
        total = total - had + more.as_ref().map_or(0, Collected::len);
        *part = more;
    }
    // A lane whose tenant is gone gives nothing and has nothing more.
    let more_available = parts.iter().flatten().any(|p| p.more);
    let (lanes_with, collected): (Vec<_>, Vec<_>) = lanes
        .iter()
        .zip(parts)
        .filter_map(|(lane, part)| part.map(|p| (lane, p)))
        .unzip();
    let signed = sets::sign(ctx, collected).await?;
    let mut answer = PollResponse {
        more_available,
        ..PollResponse::default()
    };
    let mut all = Vec::with_capacity(total);
    for ((lane, _), part) in lanes_with.into_iter().zip(signed) {
        if !part.is_empty() {
            store::touch_receiver(ctx.store.conn(), &lane.id, &ctx.now()).await?;
        }
        all.extend(part.0);
    }
    answer.sets = OrderedSets(all);
    Ok(answer)
}

/// What one lane gives a group's poll, collected: nothing when its tenant is gone (purged
/// meanwhile); past retention, the 410 names its tenant and lane (the operator resyncs that
/// tenant and replays that lane). A lane removed after `behind` read it still gives what
/// it read; its acknowledgements then find no lane, which they skip.
async fn lane_part(
    ctx: &Context,
    tenant: &crate::domain::Tenant,
    lane: &ReceiverRow,
    max: usize,
) -> Result<Option<Collected>, ServiceError> {
    match sets::collect(ctx, tenant, lane, max).await {
        Ok(part) => Ok(Some(part)),
        Err(ServiceError::NotFound(_)) => Ok(None),
        Err(ServiceError::Invalid(e)) if e.status == 410 => Err(ScimError::new(
            410,
            None,
            format!("tenant {}, lane {}: {}", tenant.slug, lane.id, e.detail),
        )
        .into()),
        Err(other) => Err(other),
    }
}

/// A lane removed while a poll was in hand (its tenant left the credential) is skipped.
fn skip_removed<T: Default>(result: Result<T, ServiceError>) -> Result<T, ServiceError> {
    match result {
        Err(ServiceError::NotFound(_)) => Ok(T::default()),
        other => other,
    }
}

/// The fewest SETs a lane may give to one poll of its group (when many lanes are behind).
const MIN_SHARE: usize = 10;
