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
use crate::domain::{JournalEntry, JournalQuery, Timestamp};
use crate::scim::error::ScimError;
use crate::store::console::{self as store, SessionRow};
pub use crate::store::console::{BACKLOG_CAP, EventMinute, TenantHealthRow};
use crate::store::tokens;
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

/// A page of live tenants whose slug contains `search`, after the slug `after`, in slug
/// order, each with its health (`store::console::tenant_health_statement`: one statement,
/// reading the page's tenants and nothing written), and whether more follow.
pub async fn tenants(
    ctx: &Context,
    search: Option<&str>,
    after: Option<&str>,
) -> Result<(Vec<TenantHealthRow>, bool), ServiceError> {
    let hour_ago = Timestamp::at(ctx.clock.now() - Duration::hours(1));
    let mut rows = store::tenant_health(
        ctx.store.conn(),
        search,
        after.unwrap_or(""),
        &hour_ago,
        TENANTS_PER_PAGE as u64 + 1,
    )
    .await?;
    let more = rows.len() > TENANTS_PER_PAGE;
    rows.truncate(TENANTS_PER_PAGE);
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

/// The longest window the events chart covers.
pub const CHART_MAX_HOURS: i64 = 24;

/// A live tenant's events of the last `hours` (1 to [`CHART_MAX_HOURS`]) by minute, every
/// minute of the window present (empty ones with no events and no lag), oldest first.
pub async fn event_minutes(
    ctx: &Context,
    slug: &str,
    hours: i64,
) -> Result<Vec<EventMinute>, ServiceError> {
    let tenant = super::tenants::live_tenant(ctx, slug).await?;
    let now = ctx.clock.now();
    let hours = hours.clamp(1, CHART_MAX_HOURS);
    let start = now - Duration::minutes(hours * 60 - 1);
    let minute = |at: DateTime<Utc>| at.format("%Y-%m-%dT%H:%M").to_string();
    let seen = store::event_minutes(
        ctx.store.conn(),
        &tenant.id,
        &Timestamp::from(format!("{}:00.000Z", minute(start))),
        &Timestamp::at(now),
    )
    .await?;
    let mut seen = seen.into_iter().peekable();
    let mut all = Vec::with_capacity(usize::try_from(hours * 60).unwrap_or(0));
    for i in 0..hours * 60 {
        let key = minute(start + Duration::minutes(i));
        match seen.next_if(|m| m.minute == key) {
            Some(m) => all.push(m),
            None => all.push(EventMinute {
                minute: key,
                events: 0,
                max_lag_seconds: 0.0,
            }),
        }
    }
    Ok(all)
}
