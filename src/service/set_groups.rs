//! SET receivers registered for an application credential: one push receiver of every
//! tenant the credential reads (a chosen set, or all, those created later included).
//!
//! Such a receiver is a group of lanes, one per tenant, each an ordinary push receiver of
//! its tenant (its own position, order, retries and failing state) sharing the group's
//! endpoint, authorization, form, events and audience. [`reconcile`] keeps the lanes equal
//! to what the credential reads: a tenant it gains gets a lane from the start of what
//! retention keeps (a new tenant: all of its events), a tenant it loses (or a revoked
//! credential) loses its lane. The pusher reconciles at start, every
//! [`RECONCILE_EVERY`], and when a tenant without push lanes writes events.

use std::collections::{BTreeMap, HashSet};
use std::time::Duration;

use serde::Serialize;
use serde_json::json;

use super::audit::{self, Actor};
use super::sets::{self, ReceiverInfo, ReceiverRequest, check, start_of};
use super::{Context, ServiceError};
use crate::domain::TenantId;
use crate::store::sets::{self as store, ReceiverRow};
use crate::store::{apps, tenants};
use crate::tenancy::token;

/// How often the pusher reconciles the groups' lanes with what their credentials read.
pub const RECONCILE_EVERY: Duration = Duration::from_secs(30);
/// Tenants read per page of a credential's listing.
const PAGE: u64 = 1000;

/// An application credential's receiver as the admin API shows it.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct GroupInfo {
    pub id: String,
    pub app: String,
    pub name: String,
    pub endpoint: Option<String>,
    /// One lane per tenant the credential reads, each with its position and state.
    pub lanes: Vec<ReceiverInfo>,
}

fn no_app(id: &str) -> ServiceError {
    ServiceError::NotFound(format!("no live application credential {id}"))
}

/// The live tenants `app_id` reads, by id; `None` when the credential is not live.
async fn readable(ctx: &Context, app_id: &str) -> Result<Option<Vec<TenantId>>, ServiceError> {
    let Some(app) = apps::list(ctx.store.conn())
        .await?
        .into_iter()
        .find(|a| a.id == app_id)
    else {
        return Ok(None);
    };
    let now = ctx.now();
    if app.revoked_at.is_some() || app.expires_at.as_ref().is_some_and(|e| **e <= *now) {
        return Ok(None);
    }
    let credential = (!app.all_tenants).then_some(app_id);
    let mut ids = Vec::new();
    let mut after = String::new();
    loop {
        let page = apps::readable_tenants(ctx.store.conn(), credential, &after, PAGE).await?;
        let full = page.len() as u64 == PAGE;
        for t in &page {
            after = t.slug.to_string();
            if t.deleted {
                continue;
            }
            if let Some(tenant) = tenants::find(ctx.store.conn(), &t.slug).await?
                && tenant.deleted_at.is_none()
            {
                ids.push(tenant.id);
            }
        }
        if !full {
            return Ok(Some(ids));
        }
    }
}

/// Registers a push receiver of every tenant `app_id` reads (its lanes start at each
/// tenant's latest event: what happens from now on).
pub async fn register(
    ctx: &Context,
    actor: &Actor,
    app_id: &str,
    request: ReceiverRequest,
) -> Result<GroupInfo, ServiceError> {
    if request.push.is_none() {
        return Err(ServiceError::invalid_value(
            "a receiver of an application credential is pushed to: give an `endpoint`",
        ));
    }
    if request.after.is_some() {
        return Err(ServiceError::invalid_value(
            "`after` names a sequence of one tenant: a receiver of an application credential \
             starts at each tenant's latest event",
        ));
    }
    let checked = check(ctx, request).await?;
    let tenant_ids = readable(ctx, app_id).await?.ok_or_else(|| no_app(app_id))?;
    if tenant_ids.is_empty() {
        // Its lanes carry the group: with none, nothing would follow the tenants later.
        return Err(ServiceError::invalid_value(
            "the application credential reads no live tenant yet",
        ));
    }
    let group = uuid::Uuid::now_v7().to_string();
    let authorization = checked.sealed_authorization(ctx, &group)?;
    let mut lanes = Vec::new();
    for tenant_id in &tenant_ids {
        let (start, _) = start_of(ctx, tenant_id).await?;
        let id = uuid::Uuid::now_v7().to_string();
        let mut lane = checked.lane(ctx, &id, &group, tenant_id, start, authorization.clone());
        lane.group_id = Some(group.clone());
        lane.app_id = Some(app_id.to_owned());
        lanes.push(lane);
    }
    let txn = ctx.store.begin_write().await?;
    for lane in &lanes {
        store::insert_receiver(&txn, lane, &unused_credential()).await?;
    }
    audit::record(
        &txn,
        ctx,
        actor,
        "set_receiver.register",
        None,
        Some(&group),
        json!({"app": app_id, "name": checked.name.as_str(),
               "form": checked.request.form.as_str(), "events": checked.request.events,
               "signals": checked.request.signals, "alg": checked.alg.as_str(),
               "delivery": "push",
               "endpoint": checked.request.push.as_ref().map(|p| p.endpoint.clone()),
               "tenants": lanes.len()}),
    )
    .await?;
    txn.commit().await?;
    for lane in &lanes {
        ctx.event_waiters.wake(lane.tenant_id.as_str());
    }
    list(ctx, app_id)
        .await?
        .into_iter()
        .find(|g| g.id == group)
        .ok_or_else(|| ServiceError::NotFound(format!("SET receiver {group} removed meanwhile")))
}

/// A lane's poll credential: push lanes never poll, so it is a hash nobody holds.
fn unused_credential() -> String {
    token::hash_secret(&token::generate(sets::RECEIVER_PREFIX))
}

/// The credential's receivers with their lanes.
pub async fn list(ctx: &Context, app_id: &str) -> Result<Vec<GroupInfo>, ServiceError> {
    if !apps::list(ctx.store.conn())
        .await?
        .iter()
        .any(|a| a.id == app_id)
    {
        return Err(ServiceError::NotFound(format!(
            "no application credential {app_id}"
        )));
    }
    let lanes = store::app_lanes(ctx.store.conn(), Some(app_id)).await?;
    let mut groups: BTreeMap<String, GroupInfo> = BTreeMap::new();
    for lane in lanes {
        let Some(group) = lane.group_id.clone() else {
            continue;
        };
        let Some(tenant) = tenants::find_by_id(ctx.store.conn(), &lane.tenant_id).await? else {
            continue;
        };
        let latest = tenants::event_sequence(ctx.store.conn(), &tenant.id).await?;
        let entry = groups.entry(group.clone()).or_insert_with(|| GroupInfo {
            id: group,
            app: app_id.to_owned(),
            name: lane.name.clone(),
            endpoint: lane.endpoint.clone(),
            lanes: Vec::new(),
        });
        entry.lanes.push(sets::info(ctx, &tenant, &lane, latest));
    }
    Ok(groups.into_values().collect())
}

/// Removes a credential's receiver: every lane of it.
pub async fn remove(
    ctx: &Context,
    actor: &Actor,
    app_id: &str,
    group: &str,
) -> Result<(), ServiceError> {
    let owned = store::app_lanes(ctx.store.conn(), Some(app_id))
        .await?
        .iter()
        .any(|l| l.group_id.as_deref() == Some(group));
    if !owned {
        return Err(ServiceError::NotFound(format!(
            "no SET receiver {group} of this application credential"
        )));
    }
    let txn = ctx.store.begin_write().await?;
    let removed = store::delete_group_lanes(&txn, group, None).await?;
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

/// Makes every group's lanes match the tenants its credential reads now; returns the lanes
/// added and removed.
pub async fn reconcile(ctx: &Context) -> Result<(usize, usize), ServiceError> {
    let lanes = store::app_lanes(ctx.store.conn(), None).await?;
    let mut groups: BTreeMap<String, Vec<ReceiverRow>> = BTreeMap::new();
    for lane in lanes {
        if let Some(group) = lane.group_id.clone() {
            groups.entry(group).or_default().push(lane);
        }
    }
    let (mut added, mut removed) = (0, 0);
    for (group, lanes) in groups {
        let Some(first) = lanes.first() else {
            continue;
        };
        let Some(app_id) = first.app_id.clone() else {
            continue;
        };
        let have: HashSet<String> = lanes.iter().map(|l| l.tenant_id.to_string()).collect();
        let Some(readable) = readable(ctx, &app_id).await? else {
            // Revoked or expired: its receivers end.
            let txn = ctx.store.begin_write().await?;
            removed += store::delete_group_lanes(&txn, &group, None).await? as usize;
            txn.commit().await?;
            continue;
        };
        let want: HashSet<String> = readable.iter().map(ToString::to_string).collect();
        let gone: Vec<String> = have.difference(&want).cloned().collect();
        let txn = ctx.store.begin_write().await?;
        if !gone.is_empty() {
            removed += store::delete_group_lanes(&txn, &group, Some(&gone)).await? as usize;
        }
        for tenant_id in readable.iter().filter(|t| !have.contains(t.as_str())) {
            // A tenant new to the credential: from the start of what retention keeps.
            let start = tenants::events_pruned_through(&txn, tenant_id).await?;
            let mut lane = first.clone();
            lane.id = uuid::Uuid::now_v7().to_string();
            lane.tenant_id = tenant_id.clone();
            lane.position = start;
            lane.created_at = ctx.now();
            lane.last_polled_at = None;
            lane.lease_owner = None;
            lane.lane = store::LaneState {
                state: "ok".to_owned(),
                ..store::LaneState::default()
            };
            store::insert_receiver(&txn, &lane, &unused_credential()).await?;
            added += 1;
        }
        txn.commit().await?;
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
