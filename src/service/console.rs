//! The operator console's sessions and overviews (docs/decisions.md, Operator console).
//! An operator signs in with a named admin token; the browser then holds a session cookie
//! (its SHA-256 is stored) that lives at most [`SESSION_HOURS`] and no longer than the token:
//! each request checks the token again, so revoking it ends its sessions at once. Every
//! action of the console goes through the same service functions as the admin API, as
//! `admin:<operator>`.

use chrono::{DateTime, Duration, Utc};
use secrecy::{ExposeSecret, SecretString};
use serde_json::json;

use super::audit::{self, Actor};
use super::{Context, ServiceError};
use crate::domain::{JournalEntry, JournalQuery, Tenant, Timestamp};
use crate::scim::error::ScimError;
use crate::store::console::{self as store, SessionRow};
use crate::store::{journal, tenants, tokens};
use crate::tenancy::token;

/// How long a console session lives.
pub const SESSION_HOURS: i64 = 8;
/// Tenants on one page of the console's list.
pub const TENANTS_PER_PAGE: usize = 50;

/// A signed-in operator.
#[derive(Debug, Clone)]
pub struct Operator {
    pub name: String,
    /// The token the session's forms carry.
    pub csrf: String,
}

impl Operator {
    pub fn actor(&self) -> Actor {
        Actor::admin(&self.name)
    }
}

/// Signs an operator in with their admin token: the session's cookie value and expiry.
pub async fn sign_in(
    ctx: &Context,
    secret: &str,
) -> Result<(Operator, SecretString, DateTime<Utc>), ServiceError> {
    let admin = crate::tenancy::auth::authenticate_admin(
        &ctx.store,
        ctx.clock.as_ref(),
        Some(secret.trim()),
    )
    .await
    .map_err(|_| ScimError::new(401, None, "this is not a live operator token"))?;
    let now = ctx.clock.now();
    let expires = now + Duration::hours(SESSION_HOURS);
    let session = token::generate("");
    let csrf = token::hash(token::generate("").expose_secret());
    let txn = ctx.store.begin_write().await?;
    store::insert(
        &txn,
        &token::hash_secret(&session),
        &SessionRow {
            token_id: admin.token_id.clone(),
            csrf: csrf.clone(),
            expires_at: Timestamp::at(expires),
        },
        &Timestamp::at(now),
    )
    .await?;
    audit::record(
        &txn,
        ctx,
        &Actor::admin(&admin.name),
        "console.sign_in",
        None,
        Some(&admin.token_id),
        json!({}),
    )
    .await?;
    txn.commit().await?;
    Ok((
        Operator {
            name: admin.name,
            csrf,
        },
        session,
        expires,
    ))
}

/// The operator of a session cookie, if the session and its token are both live.
pub async fn operator(ctx: &Context, session: &str) -> Result<Option<Operator>, ServiceError> {
    let now = ctx.clock.now();
    let conn = ctx.store.conn();
    let Some(row) = store::find(conn, &token::hash(session), &Timestamp::at(now)).await? else {
        return Ok(None);
    };
    let Some(admin) = tokens::find_admin(conn, &row.token_id).await? else {
        return Ok(None);
    };
    let expired = admin
        .expires_at
        .as_ref()
        .and_then(|e| e.instant())
        .is_some_and(|e| e <= now);
    if admin.revoked_at.is_some() || expired {
        return Ok(None);
    }
    Ok(Some(Operator {
        name: admin.name,
        csrf: row.csrf,
    }))
}

/// Ends a session.
pub async fn sign_out(ctx: &Context, session: &str) -> Result<(), ServiceError> {
    let now = Timestamp::at(ctx.clock.now());
    store::delete(ctx.store.conn(), &token::hash(session), &now).await?;
    Ok(())
}

/// One row of the console's tenant list.
#[derive(Debug, Clone)]
pub struct TenantHealth {
    pub tenant: Tenant,
    /// The newest request of its IdP.
    pub last_request: Option<JournalEntry>,
    /// Its requests answered 4xx or 5xx in the last hour (at most 100 counted).
    pub errors_last_hour: usize,
    /// Since when its brake holds its events, if it does.
    pub held_since: Option<Timestamp>,
}

/// A page of live tenants whose slug contains `search`, after the slug `after`, in slug
/// order, each with its health.
pub async fn tenants(
    ctx: &Context,
    search: Option<&str>,
    after: Option<&str>,
) -> Result<(Vec<TenantHealth>, bool), ServiceError> {
    let conn = ctx.store.conn();
    let mut all: Vec<Tenant> = tenants::list(conn)
        .await?
        .into_iter()
        .filter(|t| t.deleted_at.is_none())
        .filter(|t| search.is_none_or(|s| t.slug.as_str().contains(s.trim())))
        .filter(|t| after.is_none_or(|a| t.slug.as_str() > a))
        .collect();
    all.sort_by(|a, b| a.slug.as_str().cmp(b.slug.as_str()));
    let more = all.len() > TENANTS_PER_PAGE;
    all.truncate(TENANTS_PER_PAGE);
    let hour_ago = Timestamp::at(ctx.clock.now() - Duration::hours(1));
    let mut rows = Vec::with_capacity(all.len());
    for tenant in all {
        let newest = JournalQuery {
            limit: 1,
            ..JournalQuery::default()
        };
        let last_request = journal::list(conn, &tenant.id, &newest).await?.pop();
        let errors = JournalQuery {
            since: Some(&hour_ago),
            status: Some((400, 600)),
            limit: 100,
            ..JournalQuery::default()
        };
        let errors_last_hour = journal::list(conn, &tenant.id, &errors).await?.len();
        let held_since = super::brake::show(ctx, tenant.slug.as_str())
            .await?
            .hold
            .map(|h| h.held_at);
        rows.push(TenantHealth {
            tenant,
            last_request,
            errors_last_hour,
            held_since,
        });
    }
    Ok((rows, more))
}

/// One entry of a tenant's journal.
pub async fn journal_entry(
    ctx: &Context,
    slug: &str,
    id: &str,
) -> Result<JournalEntry, ServiceError> {
    let query = JournalQuery {
        id: Some(id),
        limit: 1,
        ..JournalQuery::default()
    };
    super::journal::list(ctx, slug, &query)
        .await?
        .pop()
        .ok_or_else(|| ServiceError::NotFound(format!("journal entry {id} not found")))
}
