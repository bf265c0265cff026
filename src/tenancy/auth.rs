//! Authentication of tenant and admin requests. Every failure to authenticate looks the
//! same to the client (missing, unknown, revoked, expired, other tenant's, admin token,
//! unknown or deleted tenant); only a live token lacking the scope is told so (403).
//! No cache: a revocation holds on the very next request.

use crate::clock::Clock;
use crate::domain::{Scope, Tenant, TenantSlug, Timestamp};
use crate::scim::time;
use crate::store::apps::{self, AppRecord};
use crate::store::{Store, StoreError, tenants, tokens};

/// The tenant a request is authenticated for.
#[derive(Debug, Clone)]
pub struct AuthenticatedTenant {
    pub tenant: Tenant,
    /// The tenant token's id, or the application credential's.
    pub token_id: String,
    /// The tenant token's name, or `app:<name>` for an application credential.
    pub token_name: String,
}

/// Who reads the pull API's tenant listing: an application credential, or a tenant's
/// `events:read` token (which lists its own tenant).
#[derive(Debug, Clone)]
pub enum Reader {
    App(AppRecord),
    Tenant(Tenant),
}

/// The admin a request is authenticated as (its name is the audit actor).
#[derive(Debug, Clone)]
pub struct AdminActor {
    pub token_id: String,
    pub name: String,
}

#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    /// 401: no valid credential for this resource.
    #[error("authentication required")]
    Unauthenticated,
    /// 403: the credential is valid but lacks the scope.
    #[error("the token lacks the `{}` scope", .0.as_str())]
    InsufficientScope(Scope),
    /// 503: the database is out of reach (the IdP retries).
    #[error("the database is unavailable")]
    Unavailable,
    /// 500: anything else the store reported.
    #[error(transparent)]
    Internal(anyhow::Error),
}

impl From<StoreError> for AuthError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::Unavailable(_) => Self::Unavailable,
            other => Self::Internal(other.into()),
        }
    }
}

/// The token of an `Authorization: Bearer <token>` header value.
pub fn bearer(header: Option<&str>) -> Option<&str> {
    let value = header?.trim();
    let (scheme, token) = value.split_once(' ')?;
    let token = token.trim();
    (scheme.eq_ignore_ascii_case("bearer") && !token.is_empty()).then_some(token)
}

fn live(expires_at: Option<&str>, revoked_at: Option<&str>, now: &str) -> bool {
    // Fixed-width UTC text compares as time.
    revoked_at.is_none() && expires_at.is_none_or(|e| e > now)
}

/// The time now (as stored), or 401 when the credential is not live.
fn live_now(
    clock: &dyn Clock,
    expires_at: Option<&str>,
    revoked_at: Option<&str>,
) -> Result<Timestamp, AuthError> {
    let now = Timestamp::at(clock.now());
    if live(expires_at, revoked_at, &now) {
        Ok(now)
    } else {
        Err(AuthError::Unauthenticated)
    }
}

/// How often a token's `last_used_at` is written at most.
pub const LAST_USED_SAMPLE: chrono::TimeDelta = chrono::TimeDelta::seconds(60);

fn stale(last_used_at: Option<&str>, clock: &dyn Clock) -> bool {
    let threshold = time::format(clock.now() - LAST_USED_SAMPLE);
    last_used_at.is_none_or(|at| at < threshold.as_str())
}

/// Authenticates `token` for the tenant of `slug` with `scope`: a token of that tenant, or
/// for `events:read` an application credential that covers the tenant.
pub async fn authenticate_tenant(
    store: &Store,
    clock: &dyn Clock,
    slug: &str,
    token: Option<&str>,
    scope: Scope,
) -> Result<AuthenticatedTenant, AuthError> {
    let token = token.ok_or(AuthError::Unauthenticated)?;
    let slug = TenantSlug::parse(slug).map_err(|_| AuthError::Unauthenticated)?;
    if scope == Scope::EventsRead && token.starts_with(super::token::APP_PREFIX) {
        return authenticate_app(store, clock, &slug, token).await;
    }
    let (tenant, record) =
        tokens::find_with_tenant(store.conn(), &slug, &super::token::hash(token))
            .await?
            .filter(|(tenant, _)| tenant.deleted_at.is_none())
            .ok_or(AuthError::Unauthenticated)?;
    let now = live_now(
        clock,
        record.expires_at.as_deref(),
        record.revoked_at.as_deref(),
    )?;
    if !record.scopes.contains(&scope) {
        return Err(AuthError::InsufficientScope(scope));
    }
    // Sampled: the lookup above read `last_used_at` anyway, so a request writes only when
    // the recorded use is older than the sampling interval (not a write per request).
    if stale(record.last_used_at.as_deref(), clock) {
        tokens::touch(store.conn(), &tenant.id, &record.id, &now).await?;
    }
    Ok(AuthenticatedTenant {
        tenant,
        token_id: record.id,
        token_name: record.name,
    })
}

/// The live application credential of `token`.
async fn live_app(store: &Store, clock: &dyn Clock, token: &str) -> Result<AppRecord, AuthError> {
    let record = apps::find_by_hash(store.conn(), &super::token::hash(token))
        .await?
        .ok_or(AuthError::Unauthenticated)?;
    let now = live_now(
        clock,
        record.expires_at.as_deref(),
        record.revoked_at.as_deref(),
    )?;
    if stale(record.last_used_at.as_deref(), clock) {
        apps::touch(store.conn(), &record.id, &now).await?;
    }
    Ok(record)
}

/// An application credential reading the tenant of `slug`: 401, as for any credential
/// that does not fit, when it does not cover the tenant. A deleted tenant stays readable
/// until retention removes it, so its `tenant.deleted` reaches the app.
async fn authenticate_app(
    store: &Store,
    clock: &dyn Clock,
    slug: &TenantSlug,
    token: &str,
) -> Result<AuthenticatedTenant, AuthError> {
    let app = live_app(store, clock, token).await?;
    let tenant = tenants::find(store.conn(), slug)
        .await?
        .ok_or(AuthError::Unauthenticated)?;
    if !app.all_tenants && !apps::granted(store.conn(), &app.id, &tenant.id).await? {
        return Err(AuthError::Unauthenticated);
    }
    Ok(AuthenticatedTenant {
        tenant,
        token_id: app.id,
        token_name: format!("app:{}", app.name),
    })
}

/// Authenticates the reader of the pull API's tenant listing: an application credential,
/// or a live `events:read` token of a live tenant.
pub async fn authenticate_reader(
    store: &Store,
    clock: &dyn Clock,
    token: Option<&str>,
) -> Result<Reader, AuthError> {
    let token = token.ok_or(AuthError::Unauthenticated)?;
    if token.starts_with(super::token::APP_PREFIX) {
        return Ok(Reader::App(live_app(store, clock, token).await?));
    }
    let (tenant, record) = tokens::find_by_hash(store.conn(), &super::token::hash(token))
        .await?
        .filter(|(tenant, _)| tenant.deleted_at.is_none())
        .ok_or(AuthError::Unauthenticated)?;
    let now = live_now(
        clock,
        record.expires_at.as_deref(),
        record.revoked_at.as_deref(),
    )?;
    if !record.scopes.contains(&Scope::EventsRead) {
        return Err(AuthError::InsufficientScope(Scope::EventsRead));
    }
    if stale(record.last_used_at.as_deref(), clock) {
        tokens::touch(store.conn(), &tenant.id, &record.id, &now).await?;
    }
    Ok(Reader::Tenant(tenant))
}

/// Authenticates an admin token.
pub async fn authenticate_admin(
    store: &Store,
    clock: &dyn Clock,
    token: Option<&str>,
) -> Result<AdminActor, AuthError> {
    let token = token.ok_or(AuthError::Unauthenticated)?;
    let record = tokens::find_admin_by_hash(store.conn(), &super::token::hash(token))
        .await?
        .ok_or(AuthError::Unauthenticated)?;
    live_now(
        clock,
        record.expires_at.as_deref(),
        record.revoked_at.as_deref(),
    )?;
    Ok(AdminActor {
        token_id: record.id,
        name: record.name,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bearer_tokens_are_read_from_the_header() {
        assert_eq!(bearer(Some("Bearer abc")), Some("abc"));
        assert_eq!(bearer(Some("bearer   abc ")), Some("abc"));
        assert_eq!(bearer(Some("Basic abc")), None);
        assert_eq!(bearer(Some("Bearer")), None);
        assert_eq!(bearer(None), None);
    }

    #[test]
    fn expiry_and_revocation_end_a_token() {
        let now = "2026-01-01T00:00:00.000Z";
        assert!(live(None, None, now));
        assert!(live(Some("2026-01-01T00:00:00.001Z"), None, now));
        assert!(!live(Some(now), None, now));
        assert!(!live(None, Some("2025-12-31T00:00:00.000Z"), now));
    }
}
