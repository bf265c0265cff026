//! Named operators (DESIGN 15, 21): the admin tokens, issued, listed and revoked per
//! operator through the admin API and the CLI. Every admin action's audit entry names its
//! operator (`admin:<name>`). The token from `SCIMBUS_ADMIN_TOKEN` is the operator
//! `bootstrap`, stored by `serve` at start only (`tenants::bootstrap_admin`), and revoked
//! like any other.

use chrono::{DateTime, Utc};
use secrecy::SecretString;
use serde_json::json;

use super::audit::{self, Actor};
use super::tenants::BOOTSTRAP_ADMIN;
use super::{Context, ServiceError};
use crate::domain::{Timestamp, TokenName};
use crate::store::tokens::{self, AdminTokenInfo};
use crate::tenancy::token;

/// Issues an admin token for the operator `name`; the secret is returned once and only its
/// hash is stored. An operator may hold several (a new one before the old is revoked).
#[tracing::instrument(skip(ctx, actor), err(level = "debug"))]
pub async fn issue(
    ctx: &Context,
    actor: &Actor,
    name: &str,
    expires_at: Option<DateTime<Utc>>,
) -> Result<(AdminTokenInfo, SecretString), ServiceError> {
    let name = TokenName::parse(name).map_err(ServiceError::invalid_value)?;
    if name.as_str() == BOOTSTRAP_ADMIN {
        return Err(ServiceError::invalid_value(format!(
            "`{BOOTSTRAP_ADMIN}` names the token of SCIMBUS_ADMIN_TOKEN; choose another name"
        )));
    }
    let now = ctx.clock.now();
    if expires_at.is_some_and(|e| e <= now) {
        return Err(ServiceError::invalid_value("expiry must be in the future"));
    }
    let secret = token::generate(token::ADMIN_PREFIX);
    let id = uuid::Uuid::now_v7().to_string();
    let txn = ctx.store.begin_write().await?;
    tokens::insert_admin(
        &txn,
        &id,
        name.as_str(),
        &token::hash_secret(&secret),
        &Timestamp::at(now),
        expires_at.map(Timestamp::at).as_ref(),
    )
    .await?;
    let info = tokens::find_admin(&txn, &id)
        .await?
        .ok_or_else(|| ServiceError::invalid_value("the token was not stored"))?;
    audit::record(
        &txn,
        ctx,
        actor,
        "operator.issue",
        None,
        Some(&id),
        json!({ "name": info.name, "expiresAt": info.expires_at }),
    )
    .await?;
    txn.commit().await?;
    Ok((info, secret))
}

/// Every admin token, revoked and expired ones included, oldest first; never a secret.
pub async fn list(ctx: &Context) -> Result<Vec<AdminTokenInfo>, ServiceError> {
    Ok(tokens::list_admin(ctx.store.conn()).await?)
}

/// Revokes the admin token `id` (the bootstrap one included): its next request gets 401,
/// and a `serve` started again with the same `SCIMBUS_ADMIN_TOKEN` leaves it revoked.
#[tracing::instrument(skip(ctx, actor), err(level = "debug"))]
pub async fn revoke(ctx: &Context, actor: &Actor, id: &str) -> Result<(), ServiceError> {
    let txn = ctx.store.begin_write().await?;
    let Some(info) = tokens::find_admin(&txn, id).await? else {
        return Err(ServiceError::NotFound(format!("no admin token {id}")));
    };
    if !tokens::revoke_admin(&txn, id, &ctx.now()).await? {
        return Err(ServiceError::NotFound(format!("no live admin token {id}")));
    }
    audit::record(
        &txn,
        ctx,
        actor,
        "operator.revoke",
        None,
        Some(id),
        json!({ "name": info.name }),
    )
    .await?;
    txn.commit().await?;
    Ok(())
}
