//! The mass-deprovisioning brake for operators (DESIGN 20), shared by the admin API and
//! the CLI: what a tenant's brake holds, its settings, release and discard. Counting and
//! tripping happen where events are numbered (`store::brake::observe`).

use std::collections::BTreeMap;

use serde::Serialize;
use serde_json::json;

use super::audit::{self, Actor};
use super::tenants::live_tenant;
use super::{Context, ServiceError};
use crate::domain::BrakeSettings;
use crate::domain::{ResourceId, Tenant, Timestamp};
use crate::events::EventType;
use crate::events::brake::MEASURES;
use crate::store::brake::{self, HeldEvent};
use crate::store::resources::Lock;
use crate::store::users;

/// One held event, as listed.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct HeldSummary {
    pub sequence: i64,
    #[serde(rename = "type")]
    pub event_type: String,
    pub subject: String,
    pub time: String,
}

impl From<&HeldEvent> for HeldSummary {
    fn from(e: &HeldEvent) -> Self {
        Self {
            sequence: e.sequence,
            event_type: e.event_type.clone(),
            subject: e.subject.clone(),
            time: e.created_at.to_string(),
        }
    }
}

/// What a brake holds.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Hold {
    /// The first held sequence: consumers see nothing from it on until release.
    pub held_from: i64,
    #[schema(value_type = String)]
    pub held_at: Timestamp,
    /// The thresholds that tripped.
    pub tripped: Vec<String>,
    /// Events held, by type.
    pub counts: BTreeMap<String, i64>,
    pub first: Option<HeldSummary>,
    pub last: Option<HeldSummary>,
}

/// A tenant's brake.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct BrakeView {
    pub tenant: String,
    pub settings: BrakeSettings,
    /// The tenant has settings of its own (otherwise the defaults apply).
    pub custom: bool,
    /// The window's estimates of each measure now.
    pub window: BTreeMap<String, f64>,
    pub hold: Option<Hold>,
}

async fn view(ctx: &Context, tenant: &Tenant) -> Result<BrakeView, ServiceError> {
    let conn = ctx.store.conn();
    crate::events::sequencer::number_tenant(&ctx.store, &tenant.id).await?;
    let row = brake::load(conn, &tenant.id).await?;
    let settings = row.effective();
    let now = ctx.clock.now().timestamp();
    let mut window = row.window;
    window.advance(now, settings.window_seconds);
    let estimates = MEASURES
        .iter()
        .map(|m| {
            (
                m.name().to_owned(),
                window.estimate(*m, now, settings.window_seconds),
            )
        })
        .collect();
    let hold = match row.held_from {
        None => None,
        Some(from) => {
            let events = brake::held_events(conn, &tenant.id, from).await?;
            let mut counts = BTreeMap::new();
            for e in &events {
                *counts.entry(e.event_type.clone()).or_insert(0) += 1;
            }
            Some(Hold {
                held_from: from,
                held_at: row.held_at.clone().unwrap_or_default(),
                tripped: row.tripped.clone(),
                counts,
                first: events.first().map(HeldSummary::from),
                last: events.last().map(HeldSummary::from),
            })
        }
    };
    Ok(BrakeView {
        tenant: tenant.slug.to_string(),
        custom: row.settings.is_some(),
        settings,
        window: estimates,
        hold,
    })
}

pub async fn show(ctx: &Context, slug: &str) -> Result<BrakeView, ServiceError> {
    let tenant = live_tenant(ctx, slug).await?;
    view(ctx, &tenant).await
}

/// Sets the tenant's brake settings (`None`: back to the defaults).
pub async fn configure(
    ctx: &Context,
    actor: &Actor,
    slug: &str,
    settings: Option<BrakeSettings>,
) -> Result<BrakeView, ServiceError> {
    let tenant = live_tenant(ctx, slug).await?;
    if let Some(s) = &settings {
        s.check().map_err(ServiceError::invalid_value)?;
    }
    let txn = ctx.store.begin_write().await?;
    brake::lock(&txn, &tenant.id).await?;
    let mut row = brake::load(&txn, &tenant.id).await?;
    row.settings = settings.clone();
    brake::save(&txn, &tenant.id, &row).await?;
    audit::record(
        &txn,
        ctx,
        actor,
        "brake.configure",
        Some(tenant.slug.as_str()),
        None,
        json!({"settings": settings}),
    )
    .await?;
    txn.commit().await?;
    view(ctx, &tenant).await
}

/// What a release or a discard did.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Released {
    /// Events that flow now, in order.
    pub released: u64,
    /// Events marked discarded: never published nor served.
    pub discarded: u64,
}

/// 409 without a `scimType` (none of RFC 7644's fits): the brake is not in that state.
fn conflict(detail: String) -> ServiceError {
    ServiceError::Invalid(crate::scim::error::ScimError::new(409, None, detail))
}

fn not_held(tenant: &Tenant) -> ServiceError {
    conflict(format!("tenant {}'s brake holds nothing", tenant.slug))
}

/// A held tenant's decision in hand: its write transaction (serialised with numbering),
/// the first held sequence and every held event not discarded.
struct Decision {
    tenant: Tenant,
    txn: sea_orm::DatabaseTransaction,
    from: i64,
    held: Vec<HeldEvent>,
}

/// Opens the decision on `slug`'s hold; 409 when nothing is held.
async fn open_hold(ctx: &Context, slug: &str) -> Result<Decision, ServiceError> {
    let tenant = live_tenant(ctx, slug).await?;
    crate::events::sequencer::number_tenant(&ctx.store, &tenant.id).await?;
    let txn = ctx.store.begin_write().await?;
    brake::lock(&txn, &tenant.id).await?;
    let Some(from) = brake::load(&txn, &tenant.id).await?.held_from else {
        return Err(not_held(&tenant));
    };
    let held = brake::held_events(&txn, &tenant.id, from).await?;
    Ok(Decision {
        tenant,
        txn,
        from,
        held,
    })
}

/// Ends the hold with `discarded` of its events marked: audited as `action`, committed,
/// then the relay and long-polls woken for what flows now.
async fn close_hold(
    ctx: &Context,
    actor: &Actor,
    decision: Decision,
    action: &str,
    discarded: u64,
) -> Result<Released, ServiceError> {
    let Decision {
        tenant,
        txn,
        from,
        held,
    } = decision;
    let released = held.len() as u64 - discarded;
    brake::clear_hold(&txn, &tenant.id).await?;
    audit::record(
        &txn,
        ctx,
        actor,
        action,
        Some(tenant.slug.as_str()),
        None,
        json!({"heldFrom": from, "discarded": discarded, "released": released}),
    )
    .await?;
    txn.commit().await?;
    tracing::info!(tenant = %tenant.slug, discarded, released, actor = actor.as_str(), action, "brake hold ended");
    ctx.signal_events(&tenant.id);
    Ok(Released {
        released,
        discarded,
    })
}

/// Releases the hold: every held event flows, in order.
pub async fn release(ctx: &Context, actor: &Actor, slug: &str) -> Result<Released, ServiceError> {
    let decision = open_hold(ctx, slug).await?;
    close_hold(ctx, actor, decision, "brake.release", 0).await
}

/// Whether a held deprovisioning event may be discarded: its resource is no longer
/// deprovisioned (the IdP corrected itself), so consumers converge on the current state
/// through version gap repair. `None`: not a deprovisioning event (it flows).
async fn discardable(
    conn: &impl sea_orm::ConnectionTrait,
    tenant: &Tenant,
    event: &HeldEvent,
) -> Result<Option<bool>, ServiceError> {
    let id = ResourceId::from(event.subject.split_once('/').map_or("", |(_, id)| id));
    Ok(match EventType::from_name(&event.event_type) {
        Some(EventType::UserDeactivated | EventType::UserDeleted) => Some(
            users::find(conn, &tenant.id, &id, Lock::None)
                .await?
                .is_some_and(|u| u.active),
        ),
        Some(EventType::GroupMembersRemoved) => {
            let members: Vec<ResourceId> = event.payload["data"]["members"]
                .as_array()
                .map(|m| {
                    m.iter()
                        .filter_map(|v| v.as_str().map(ResourceId::from))
                        .collect()
                })
                .unwrap_or_default();
            let present = brake::present_members(conn, &tenant.id, &id, &members).await?;
            Some(present == members.len())
        }
        // A deleted group never comes back with its id.
        Some(EventType::GroupDeleted) => Some(false),
        _ => None,
    })
}

/// Discards the held deprovisioning events — only when every one of them is of a resource
/// no longer deprovisioned (reactivated, re-added); otherwise 409 and nothing changes —
/// then releases the rest in order.
pub async fn discard(ctx: &Context, actor: &Actor, slug: &str) -> Result<Released, ServiceError> {
    let decision = open_hold(ctx, slug).await?;
    let mut discard = Vec::new();
    let mut still = Vec::new();
    for event in &decision.held {
        match discardable(&decision.txn, &decision.tenant, event).await? {
            Some(true) => discard.push(event.sequence),
            Some(false) => still.push(event.subject.clone()),
            None => {}
        }
    }
    if !still.is_empty() {
        still.dedup();
        let shown: Vec<&str> = still.iter().take(5).map(String::as_str).collect();
        return Err(conflict(format!(
            "{} held deprovisioning events are of resources still deprovisioned (e.g. {}): \
             correct them in the IdP first, or release",
            still.len(),
            shown.join(", ")
        )));
    }
    let discarded =
        brake::discard(&decision.txn, &decision.tenant.id, &discard, &ctx.now()).await?;
    close_hold(ctx, actor, decision, "brake.discard", discarded).await
}

/// Releases the holds older than their tenant's `auto_release_seconds` (maintenance).
pub async fn auto_release(ctx: &Context) -> Result<u64, ServiceError> {
    let conn = ctx.store.conn();
    let now = ctx.clock.now();
    let mut released = 0;
    for (tenant_id, held_at) in brake::holds(conn).await? {
        let settings = brake::load(conn, &tenant_id).await?.effective();
        let (Some(after), Some(at)) = (
            settings.auto_release_seconds,
            crate::scim::time::parse(&held_at),
        ) else {
            continue;
        };
        if (now - at).num_seconds() < after {
            continue;
        }
        let Some(tenant) = crate::store::tenants::find_by_id(conn, &tenant_id).await? else {
            continue;
        };
        // One tenant's failure does not keep the others held.
        match release(ctx, &Actor::system(), tenant.slug.as_str()).await {
            Ok(_) => released += 1,
            Err(error) => {
                tracing::warn!(tenant = %tenant.slug, %error, "auto-release of a brake failed");
            }
        }
    }
    Ok(released)
}
