//! Who did an admin action, and the audit log that records it in the action's own
//! transaction (so an action and its record commit or fail together).

use sea_orm::ConnectionTrait;
use serde_json::Value;

use super::{Context, ServiceError};
use crate::store::StoreError;
use crate::store::audit;
pub use crate::store::audit::AuditEntry;
use crate::telemetry::Correlation;

/// The actor of an admin action: a named admin token or the OS user running the CLI.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Actor(String, Option<Correlation>);

impl Actor {
    /// An admin token, by its name (`admin:<name>`).
    pub fn admin(name: &str) -> Self {
        Self(format!("admin:{name}"), None)
    }

    /// The OS user running the CLI (`os:<user>`), from `$USER` or `$LOGNAME`.
    pub fn os_user() -> Self {
        let user = std::env::var("USER")
            .or_else(|_| std::env::var("LOGNAME"))
            .unwrap_or_else(|_| "unknown".to_owned());
        Self(format!("os:{user}"), None)
    }

    /// The process itself (background maintenance).
    /// The customer who used a setup link (`setup-link:<id>`).
    pub fn setup_link(id: &str) -> Self {
        Self(format!("setup-link:{id}"), None)
    }

    pub fn system() -> Self {
        Self("system".to_owned(), None)
    }

    /// Acting in the request `correlation` (an admin API call).
    pub fn in_request(self, correlation: Option<Correlation>) -> Self {
        Self(self.0, correlation)
    }

    /// The request the action comes from, if any.
    pub fn correlation(&self) -> Option<&Correlation> {
        self.1.as_ref()
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// Appends one entry to the audit log.
pub async fn record(
    conn: &impl ConnectionTrait,
    ctx: &Context,
    actor: &Actor,
    action: &str,
    tenant: Option<&str>,
    target: Option<&str>,
    detail: Value,
) -> Result<(), StoreError> {
    audit::insert(
        conn,
        AuditEntry {
            id: uuid::Uuid::now_v7().to_string(),
            at: ctx.now(),
            actor: actor.0.clone(),
            action: action.to_owned(),
            tenant: tenant.map(str::to_owned),
            target: target.map(str::to_owned),
            detail,
        },
    )
    .await
}

/// Entries after the entry `after`, oldest first, optionally of one tenant.
pub async fn list(
    ctx: &Context,
    tenant: Option<&str>,
    after: Option<&str>,
    limit: u64,
) -> Result<Vec<AuditEntry>, ServiceError> {
    Ok(audit::list(ctx.store.conn(), tenant, after, limit).await?)
}

/// A live tenant's entries before the entry `before`, newest first.
pub async fn newest(
    ctx: &Context,
    slug: &str,
    before: Option<&str>,
    limit: u64,
) -> Result<Vec<AuditEntry>, ServiceError> {
    let tenant = super::tenants::live_tenant(ctx, slug).await?;
    Ok(audit::newest(ctx.store.conn(), tenant.slug.as_str(), before, limit).await?)
}
