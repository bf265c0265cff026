//! Administration of tenants and tokens, shared by the admin API and the CLI.

use chrono::{DateTime, Utc};
use secrecy::SecretString;

use serde_json::json;

use super::audit::{self, Actor};
use super::emit::emit;
use super::{Context, ServiceError};
use crate::domain::{Scope, Tenant, TenantId, TenantSlug, Timestamp, TokenInfo, TokenName};
use crate::events::{EventType, PendingEvent};
use crate::store::tokens::NewToken;
use crate::store::{StoreError, tenants, tokens};
use crate::tenancy::token;

/// Name of the admin token bootstrapped from `SCIMBUS_ADMIN_TOKEN`.
pub const BOOTSTRAP_ADMIN: &str = "bootstrap";
/// Slug of the tenant `serve --demo` creates, and the name of its token.
pub const DEMO: &str = "demo";

fn slug(value: &str) -> Result<TenantSlug, ServiceError> {
    TenantSlug::parse(value).map_err(ServiceError::invalid_value)
}

/// The live tenant with this slug; 404 when there is none (or it is deleted).
pub async fn live_tenant(ctx: &Context, slug_value: &str) -> Result<Tenant, ServiceError> {
    let slug = slug(slug_value)?;
    tenants::find_live(ctx.store.conn(), &slug)
        .await?
        .ok_or_else(|| ServiceError::NotFound(format!("tenant {slug} not found")))
}

#[tracing::instrument(skip(ctx, actor), err(level = "debug"))]
pub async fn create_tenant(
    ctx: &Context,
    actor: &Actor,
    slug_value: &str,
) -> Result<Tenant, ServiceError> {
    let slug = slug(slug_value)?;
    let id = TenantId::generate();
    let txn = ctx.store.begin_write().await?;
    let tenant = tenants::insert(&txn, &id, &slug, &ctx.now())
        .await
        .map_err(|e| match e {
            // A deleted tenant keeps its slug (DESIGN 15).
            StoreError::Unique("tenants_slug_key") => ServiceError::uniqueness(format!(
                "tenant slug {slug} is taken (a deleted tenant's slug is never reused)"
            )),
            other => other.into(),
        })?;
    // Checked after the insert: a removal committing meanwhile (the insert waits for it on
    // the unique index) is seen by this read.
    if tenants::slug_retired(&txn, slug.as_str()).await? {
        return Err(ServiceError::uniqueness(format!(
            "tenant slug {slug} belonged to a removed tenant and is never reused \
             (consumers and routing keys know tenants by slug)"
        )));
    }
    audit::record(
        &txn,
        ctx,
        actor,
        "tenant.create",
        Some(slug.as_str()),
        None,
        json!({}),
    )
    .await?;
    // The tenant's first event, so that a consumer of all tenants learns of it.
    let event = PendingEvent {
        event_type: EventType::TenantCreated,
        subject: format!("Tenants/{slug}"),
        data: json!({"tenant": slug.as_str()}),
    };
    emit(
        &txn,
        &tenant,
        &tenant.created_at,
        actor.correlation(),
        vec![event],
    )
    .await?;
    txn.commit().await?;
    ctx.signal_events(&tenant.id);
    Ok(tenant)
}

pub async fn list_tenants(ctx: &Context) -> Result<Vec<Tenant>, ServiceError> {
    Ok(tenants::list(ctx.store.conn()).await?)
}

pub async fn get_tenant(ctx: &Context, slug_value: &str) -> Result<Tenant, ServiceError> {
    live_tenant(ctx, slug_value).await
}

/// Disables a tenant at once: marks it deleted and revokes its tokens in one transaction
/// (the next request with any of them gets 401). The maintenance loop then purges its data
/// in batches and writes `scimbus.tenant.deleted` (`service::maintenance`).
#[tracing::instrument(skip(ctx, actor), err(level = "debug"))]
pub async fn delete_tenant(
    ctx: &Context,
    actor: &Actor,
    slug_value: &str,
) -> Result<(), ServiceError> {
    let tenant = live_tenant(ctx, slug_value).await?;
    let txn = ctx.store.begin_write().await?;
    let now = ctx.now();
    tenants::mark_deleted(&txn, &tenant.id, &now).await?;
    let revoked = tokens::revoke_all(&txn, &tenant.id, None, &now).await?;
    // Deleting the tenant decides what a brake held: it flows, then `tenant.deleted`
    // (otherwise nothing could release it, and the tenant would never be removed).
    crate::store::brake::lock(&txn, &tenant.id).await?;
    let held = crate::store::brake::held_from(&txn, &tenant.id).await?;
    if held.is_some() {
        crate::store::brake::clear_hold(&txn, &tenant.id).await?;
    }
    audit::record(
        &txn,
        ctx,
        actor,
        "tenant.delete",
        Some(tenant.slug.as_str()),
        None,
        json!({"tokensRevoked": revoked, "brakeHeldFrom": held}),
    )
    .await?;
    txn.commit().await?;
    ctx.signal_maintenance();
    Ok(())
}

/// What to issue.
#[derive(Debug, Clone)]
pub struct TokenRequest {
    pub name: String,
    pub scopes: Vec<Scope>,
    pub expires_at: Option<DateTime<Utc>>,
}

/// Issues a token; the secret is returned once and only its hash is stored.
#[tracing::instrument(skip(ctx, actor, request), err(level = "debug"))]
pub async fn issue_token(
    ctx: &Context,
    actor: &Actor,
    slug_value: &str,
    request: TokenRequest,
) -> Result<(TokenInfo, SecretString), ServiceError> {
    let tenant = live_tenant(ctx, slug_value).await?;
    let name = TokenName::parse(&request.name).map_err(ServiceError::invalid_value)?;
    let mut scopes = request.scopes;
    if scopes.is_empty() {
        scopes.push(Scope::Scim);
    }
    scopes.dedup();
    let now = ctx.clock.now();
    if request.expires_at.is_some_and(|e| e <= now) {
        return Err(ServiceError::invalid_value("expiry must be in the future"));
    }
    let secret = token::generate(token::TENANT_PREFIX);
    let id = uuid::Uuid::now_v7().to_string();
    let txn = ctx.store.begin_write().await?;
    let info = tokens::insert(
        &txn,
        NewToken {
            tenant_id: &tenant.id,
            id: &id,
            name: name.as_str(),
            hash: &token::hash_secret(&secret),
            scopes: &scopes,
            now: &Timestamp::at(now),
            expires_at: request.expires_at.map(Timestamp::at),
        },
    )
    .await?;
    audit::record(
        &txn,
        ctx,
        actor,
        "token.issue",
        Some(tenant.slug.as_str()),
        Some(&info.id),
        json!({
            "name": info.name,
            "scopes": Scope::join(&info.scopes),
            "expiresAt": info.expires_at,
        }),
    )
    .await?;
    txn.commit().await?;
    Ok((info, secret))
}

pub async fn list_tokens(ctx: &Context, slug_value: &str) -> Result<Vec<TokenInfo>, ServiceError> {
    let tenant = live_tenant(ctx, slug_value).await?;
    Ok(tokens::list(ctx.store.conn(), &tenant.id).await?)
}

#[tracing::instrument(skip(ctx, actor), err(level = "debug"))]
pub async fn revoke_token(
    ctx: &Context,
    actor: &Actor,
    slug_value: &str,
    id: &str,
) -> Result<(), ServiceError> {
    let tenant = live_tenant(ctx, slug_value).await?;
    let txn = ctx.store.begin_write().await?;
    if tokens::revoke(&txn, &tenant.id, id, &ctx.now()).await? {
        audit::record(
            &txn,
            ctx,
            actor,
            "token.revoke",
            Some(tenant.slug.as_str()),
            Some(id),
            json!({}),
        )
        .await?;
        txn.commit().await?;
        Ok(())
    } else {
        Err(ServiceError::NotFound(format!(
            "no live token {id} in tenant {}",
            tenant.slug
        )))
    }
}

/// Stores the configured admin secret as the admin token named `bootstrap`.
pub async fn bootstrap_admin(ctx: &Context, secret: &SecretString) -> Result<(), ServiceError> {
    let id = uuid::Uuid::now_v7().to_string();
    tokens::put_named_admin(
        ctx.store.conn(),
        &id,
        BOOTSTRAP_ADMIN,
        &token::hash_secret(secret),
        &ctx.now(),
    )
    .await?;
    Ok(())
}

/// Whether any admin token can authenticate (otherwise the admin API is off).
pub async fn admin_enabled(ctx: &Context) -> Result<bool, ServiceError> {
    Ok(tokens::count_live_admin(ctx.store.conn()).await? > 0)
}

/// `serve --demo`: the demo tenant (created if absent) and a fresh token named `demo`; the
/// previous demo tokens are revoked, so only the last printed one works.
pub async fn demo(ctx: &Context, actor: &Actor) -> Result<(Tenant, SecretString), ServiceError> {
    let slug = slug(DEMO)?;
    let tenant = match tenants::find_live(ctx.store.conn(), &slug).await? {
        Some(t) => t,
        None => create_tenant(ctx, actor, DEMO).await?,
    };
    tokens::revoke_all(ctx.store.conn(), &tenant.id, Some(DEMO), &ctx.now()).await?;
    let (_, secret) = issue_token(
        ctx,
        actor,
        DEMO,
        TokenRequest {
            name: DEMO.to_owned(),
            scopes: vec![Scope::Scim, Scope::EventsRead],
            expires_at: None,
        },
    )
    .await?;
    Ok((tenant, secret))
}
