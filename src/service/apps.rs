//! Application credentials (DESIGN 21), shared by the admin API and the CLI: one secret
//! for an app that reads the events of many customer tenants (a chosen set, or all, those
//! created later included), and the pull API's listing of the tenants a reader may read.
//! They read events only: the SCIM and admin APIs refuse them like any unknown token.

use chrono::{DateTime, Utc};
use secrecy::SecretString;
use serde::Serialize;
use serde_json::json;

use super::audit::{self, Actor};
use super::tenants::live_tenant;
use super::{Context, ServiceError};
use crate::domain::{AppInfo, Timestamp, TokenName};
use crate::store::apps::{self, NewApp};
use crate::tenancy::auth::Reader;
use crate::tenancy::token;

/// Most tenants one credential names (beyond, cover all tenants).
pub const MAX_TENANTS: usize = 10_000;

/// Which tenants a credential reads.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TenantScope {
    /// Every tenant, those created later included.
    All,
    /// These slugs (live tenants when issued).
    Only(Vec<String>),
}

/// What to issue.
#[derive(Debug, Clone)]
pub struct AppRequest {
    pub name: String,
    pub tenants: TenantScope,
    pub expires_at: Option<DateTime<Utc>>,
}

/// Issues a credential; the secret is returned once and only its hash is stored.
#[tracing::instrument(skip(ctx, actor, request), err(level = "debug"))]
pub async fn issue(
    ctx: &Context,
    actor: &Actor,
    request: AppRequest,
) -> Result<(AppInfo, SecretString), ServiceError> {
    let name = TokenName::parse(&request.name).map_err(ServiceError::invalid_value)?;
    let now = ctx.clock.now();
    if request.expires_at.is_some_and(|e| e <= now) {
        return Err(ServiceError::invalid_value("expiry must be in the future"));
    }
    let granted = match &request.tenants {
        TenantScope::All => None,
        TenantScope::Only(slugs) => {
            if slugs.is_empty() || slugs.len() > MAX_TENANTS {
                return Err(ServiceError::invalid_value(format!(
                    "name 1 to {MAX_TENANTS} tenants, or all tenants"
                )));
            }
            let mut ids = Vec::with_capacity(slugs.len());
            for slug in slugs {
                let tenant = live_tenant(ctx, slug).await.map_err(|e| match e {
                    ServiceError::NotFound(detail) => ServiceError::invalid_value(detail),
                    other => other,
                })?;
                ids.push((tenant.id, tenant.slug));
            }
            ids.sort_by(|a, b| a.0.cmp(&b.0));
            ids.dedup_by(|a, b| a.0 == b.0);
            Some(ids)
        }
    };
    let secret = token::generate(token::APP_PREFIX);
    let id = uuid::Uuid::now_v7().to_string();
    let txn = ctx.store.begin_write().await?;
    apps::insert(
        &txn,
        NewApp {
            id: &id,
            name: name.as_str(),
            hash: &token::hash_secret(&secret),
            tenants: granted.as_deref(),
            now: &Timestamp::at(now),
            expires_at: request.expires_at.map(Timestamp::at),
        },
    )
    .await?;
    let tenants = match &request.tenants {
        TenantScope::All => json!("all"),
        TenantScope::Only(slugs) => json!(slugs),
    };
    audit::record(
        &txn,
        ctx,
        actor,
        "app.issue",
        None,
        Some(&id),
        json!({"name": name.as_str(), "tenants": tenants}),
    )
    .await?;
    txn.commit().await?;
    let info = list(ctx)
        .await?
        .into_iter()
        .find(|a| a.id == id)
        .ok_or_else(|| {
            ServiceError::Internal(anyhow::anyhow!("issued credential {id} vanished"))
        })?;
    Ok((info, secret))
}

pub async fn list(ctx: &Context) -> Result<Vec<AppInfo>, ServiceError> {
    Ok(apps::list(ctx.store.conn()).await?)
}

/// Revokes a credential: its next request gets 401.
#[tracing::instrument(skip(ctx, actor), err(level = "debug"))]
pub async fn revoke(ctx: &Context, actor: &Actor, id: &str) -> Result<(), ServiceError> {
    let txn = ctx.store.begin_write().await?;
    if !apps::revoke(&txn, id, &ctx.now()).await? {
        return Err(ServiceError::NotFound(format!(
            "no live application credential {id}"
        )));
    }
    // Its SET receivers end with it.
    let lanes = super::set_groups::remove_all(&txn, id).await?;
    audit::record(
        &txn,
        ctx,
        actor,
        "app.revoke",
        None,
        Some(id),
        json!({"set_receiver_lanes": lanes}),
    )
    .await?;
    txn.commit().await?;
    Ok(())
}

/// One tenant of the listing.
#[derive(Debug, Serialize)]
pub struct ListedTenant {
    pub tenant: String,
    /// Deleted: its events (ending with `scimbus.tenant.deleted`) stay readable by an
    /// application credential until retention removes the tenant.
    pub deleted: bool,
}

/// A page of the tenants a reader may read.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct TenantPage {
    pub tenants: Vec<ListedTenant>,
    /// The credential covers every tenant, those created later included.
    pub all_tenants: bool,
    /// The `after` of the next page (the last slug returned), `null` at the end.
    pub next: Option<String>,
    pub has_more: bool,
}

/// The tenants `reader` may read, after the slug `after`, in slug order.
pub async fn readable_tenants(
    ctx: &Context,
    reader: &Reader,
    after: &str,
    limit: u64,
) -> Result<TenantPage, ServiceError> {
    let (tenants, all_tenants) = match reader {
        Reader::Tenant(tenant) => {
            let own = (tenant.slug.as_str() > after).then(|| ListedTenant {
                tenant: tenant.slug.to_string(),
                deleted: false,
            });
            (own.into_iter().collect::<Vec<_>>(), false)
        }
        Reader::App(app) => {
            let credential = (!app.all_tenants).then_some(app.id.as_str());
            let rows =
                apps::readable_tenants(ctx.store.conn(), credential, after, limit + 1).await?;
            let listed = rows
                .into_iter()
                .map(|r| ListedTenant {
                    tenant: r.slug.to_string(),
                    deleted: r.deleted,
                })
                .collect();
            (listed, app.all_tenants)
        }
    };
    let mut tenants = tenants;
    let has_more = tenants.len() as u64 > limit;
    tenants.truncate(usize::try_from(limit).unwrap_or(usize::MAX));
    let next = has_more
        .then(|| tenants.last().map(|t| t.tenant.clone()))
        .flatten();
    Ok(TenantPage {
        tenants,
        all_tenants,
        next,
        has_more,
    })
}
