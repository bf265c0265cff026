//! The audit log of admin actions, appended in the transaction of the action it records.

use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter, QueryOrder,
    QuerySelect, Set, sea_query::Order,
};
use serde_json::Value;

use super::StoreError;
use super::entities::audit;
use crate::domain::Timestamp;

/// One recorded admin action.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct AuditEntry {
    pub id: String,
    pub at: Timestamp,
    /// `admin:<token name>` through the admin API, `os:<user>` through the CLI.
    pub actor: String,
    /// E.g. `tenant.delete`, `token.issue`, `events.purge`.
    pub action: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tenant: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub target: Option<String>,
    pub detail: Value,
}

pub async fn insert(conn: &impl ConnectionTrait, entry: AuditEntry) -> Result<(), StoreError> {
    audit::ActiveModel {
        id: Set(entry.id),
        at: Set(entry.at),
        actor: Set(entry.actor),
        action: Set(entry.action),
        tenant: Set(entry.tenant),
        target: Set(entry.target),
        detail: Set(entry.detail),
    }
    .insert(conn)
    .await?;
    Ok(())
}

/// Entries after `after` (an entry id) in time order, optionally of one tenant.
pub async fn list(
    conn: &impl ConnectionTrait,
    tenant: Option<&str>,
    after: Option<&str>,
    limit: u64,
) -> Result<Vec<AuditEntry>, StoreError> {
    let mut query = audit::Entity::find();
    if let Some(after) = after {
        query = query.filter(audit::Column::Id.gt(after));
    }
    fetch(conn, query, tenant, Order::Asc, limit).await
}

/// A tenant's entries before `before` (an entry id), newest first (along the
/// `(tenant, id)` index).
pub async fn newest(
    conn: &impl ConnectionTrait,
    tenant: &str,
    before: Option<&str>,
    limit: u64,
) -> Result<Vec<AuditEntry>, StoreError> {
    let mut query = audit::Entity::find();
    if let Some(before) = before {
        query = query.filter(audit::Column::Id.lt(before));
    }
    fetch(conn, query, Some(tenant), Order::Desc, limit).await
}

async fn fetch(
    conn: &impl ConnectionTrait,
    mut query: sea_orm::Select<audit::Entity>,
    tenant: Option<&str>,
    order: Order,
    limit: u64,
) -> Result<Vec<AuditEntry>, StoreError> {
    if let Some(tenant) = tenant {
        query = query.filter(audit::Column::Tenant.eq(tenant));
    }
    Ok(query
        .order_by(audit::Column::Id, order)
        .limit(limit)
        .all(conn)
        .await?
        .into_iter()
        .map(to_entry)
        .collect())
}

fn to_entry(m: audit::Model) -> AuditEntry {
    AuditEntry {
        id: m.id,
        at: m.at,
        actor: m.actor,
        action: m.action,
        tenant: m.tenant,
        target: m.target,
        detail: m.detail,
    }
}
