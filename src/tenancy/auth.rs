//! Authentication of tenant and admin requests. Every failure to authenticate looks the
//! same to the client (missing, unknown, revoked, expired, other tenant's, admin token,
//! unknown or deleted tenant); only a live token lacking the scope is told so (403).
//! No cache: a revocation holds on the very next request.

use crate::clock::Clock;
use crate::domain::{Scope, Tenant, TenantSlug};
use crate::scim::time;
use crate::store::{Store, StoreError, tokens};

/// The tenant a request is authenticated for.
#[derive(Debug, Clone)]
pub struct AuthenticatedTenant {
    pub tenant: Tenant,
    pub token_id: String,
    pub token_name: String,
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
    #[error(transparent)]
    Store(#[from] StoreError),
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

/// How often a token's `last_used_at` is written at most.
pub const LAST_USED_SAMPLE: chrono::TimeDelta = chrono::TimeDelta::seconds(60);

fn stale(last_used_at: Option<&str>, clock: &dyn Clock) -> bool {
    let threshold = time::format(clock.now() - LAST_USED_SAMPLE);
    last_used_at.is_none_or(|at| at < threshold.as_str())
}

/// Authenticates `token` for the tenant of `slug` with `scope`.
pub async fn authenticate_tenant(
    store: &Store,
    clock: &dyn Clock,
    slug: &str,
    token: Option<&str>,
    scope: Scope,
) -> Result<AuthenticatedTenant, AuthError> {
    let token = token.ok_or(AuthError::Unauthenticated)?;
    let slug = TenantSlug::parse(slug).map_err(|_| AuthError::Unauthenticated)?;
    let (tenant, record) =
        tokens::find_with_tenant(store.conn(), &slug, &super::token::hash(token))
            .await?
            .filter(|(tenant, _)| tenant.deleted_at.is_none())
            .ok_or(AuthError::Unauthenticated)?;
    let now = time::format(clock.now());
    if !live(
        record.expires_at.as_deref(),
        record.revoked_at.as_deref(),
        &now,
    ) {
        return Err(AuthError::Unauthenticated);
    }
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
    let now = time::format(clock.now());
    if !live(
        record.expires_at.as_deref(),
        record.revoked_at.as_deref(),
        &now,
    ) {
        return Err(AuthError::Unauthenticated);
    }
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
