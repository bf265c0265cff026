//! What the `users` and `groups` tables have in common: rows keyed by (tenant, id), a
//! `resource` document and its `search` document. The public functions take the
//! [`ResourceKind`]; the query builders `users.rs` and `groups.rs` call are generic over
//! the entity. The rules that differ (hot columns, uniqueness, members) stay in those two.

use std::str::FromStr;

use sea_orm::{ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter, QueryOrder, QuerySelect};
use serde_json::Value;

use super::StoreError;
use super::entities::{group, user};
use crate::domain::{ResourceId, ResourceKind, TenantId};

/// The columns of `E` named `names`.
fn columns<E: EntityTrait, const N: usize>(names: [&str; N]) -> Result<[E::Column; N], StoreError> {
    let mut found = Vec::with_capacity(N);
    for name in names {
        found.push(
            E::Column::from_str(name)
                .map_err(|_| StoreError::Corrupt(format!("no column `{name}`")))?,
        );
    }
    found
        .try_into()
        .map_err(|_| StoreError::Corrupt("column count".to_owned()))
}

/// How a read of one row locks it until the transaction ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lock {
    /// No lock.
    None,
    /// `FOR UPDATE` on PostgreSQL: the row is about to be deleted or its membership changed
    /// (SQLite's write transactions are serialised already).
    Update,
    /// `FOR NO KEY UPDATE` on PostgreSQL: a change that keeps the row's key; writes adding
    /// it as a member (`FOR KEY SHARE`) do not wait for it.
    NoKeyUpdate,
}

/// The query of one row of `E` by (tenant, id), locked as `lock` says.
pub(super) fn by_key<E: EntityTrait>(
    tenant_id: &TenantId,
    id: &ResourceId,
    lock: Lock,
) -> Result<sea_orm::Select<E>, StoreError> {
    let [tenant, key] = columns::<E, 2>(["tenant_id", "id"])?;
    let query = E::find().filter(tenant.eq(tenant_id)).filter(key.eq(id));
    Ok(match lock {
        Lock::None => query,
        Lock::Update => query.lock_exclusive(),
        Lock::NoKeyUpdate => query.lock(sea_orm::sea_query::LockType::NoKeyUpdate),
    })
}

/// Deletes one resource row; `NotFound` when there was none.
pub async fn delete(
    conn: &impl ConnectionTrait,
    kind: ResourceKind,
    tenant_id: &TenantId,
    id: &ResourceId,
) -> Result<(), StoreError> {
    async fn delete<E: EntityTrait>(
        conn: &impl ConnectionTrait,
        tenant_id: &TenantId,
        id: &ResourceId,
    ) -> Result<u64, StoreError> {
        let [tenant, key] = columns::<E, 2>(["tenant_id", "id"])?;
        let result = E::delete_many()
            .filter(tenant.eq(tenant_id))
            .filter(key.eq(id))
            .exec(conn)
            .await?;
        Ok(result.rows_affected)
    }
    let deleted = match kind {
        ResourceKind::User => delete::<user::Entity>(conn, tenant_id, id).await?,
        ResourceKind::Group => delete::<group::Entity>(conn, tenant_id, id).await?,
    };
    if deleted == 0 {
        return Err(StoreError::NotFound);
    }
    Ok(())
}

/// Up to `limit` rows written before search documents existed: (tenant, id, document).
pub async fn missing_search(
    conn: &impl ConnectionTrait,
    kind: ResourceKind,
    limit: u64,
) -> Result<Vec<(TenantId, ResourceId, Value)>, StoreError> {
    async fn missing<E: EntityTrait>(
        conn: &impl ConnectionTrait,
        limit: u64,
    ) -> Result<Vec<(TenantId, ResourceId, Value)>, StoreError> {
        let [tenant, id, resource, search] =
            columns::<E, 4>(["tenant_id", "id", "resource", "search"])?;
        Ok(E::find()
            .select_only()
            .column(tenant)
            .column(id)
            .column(resource)
            .filter(search.is_null())
            .limit(limit)
            .into_tuple()
            .all(conn)
            .await?)
    }
    match kind {
        ResourceKind::User => missing::<user::Entity>(conn, limit).await,
        ResourceKind::Group => missing::<group::Entity>(conn, limit).await,
    }
}

/// The query of a page of the tenant's rows of `E` in id order after `after`; with
/// `for_change`, locked until commit (`FOR NO KEY UPDATE` on PostgreSQL): a write of one
/// of these waits, and one that went first is what is read.
pub(super) fn page_by_id<E: EntityTrait>(
    tenant_id: &TenantId,
    after: Option<&ResourceId>,
    limit: u64,
    for_change: bool,
) -> Result<sea_orm::Select<E>, StoreError> {
    let [tenant, id] = columns::<E, 2>(["tenant_id", "id"])?;
    let mut query = E::find().filter(tenant.eq(tenant_id));
    if let Some(after) = after {
        query = query.filter(id.gt(after));
    }
    if for_change {
        query = query.lock(sea_orm::sea_query::LockType::NoKeyUpdate);
    }
    Ok(query.order_by_asc(id).limit(limit))
}

/// How many resources of `kind` the tenant has.
pub async fn count(
    conn: &impl ConnectionTrait,
    tenant_id: &TenantId,
    kind: ResourceKind,
) -> Result<i64, StoreError> {
    let sql = format!(
        "SELECT COUNT(*) AS n FROM {} WHERE tenant_id = $1",
        kind.table()
    );
    let row = conn
        .query_one_raw(super::statement(conn, &sql, vec![tenant_id.into()]))
        .await?;
    Ok(match row {
        Some(row) => row.try_get("", "n")?,
        None => 0,
    })
}

/// Sets the search documents of the tenant's resources of `kind`, `(id, document)` each,
/// in one statement; a resource deleted meanwhile is no error.
pub async fn set_search_many(
    conn: &impl ConnectionTrait,
    tenant_id: &TenantId,
    kind: ResourceKind,
    rows: Vec<(ResourceId, Value)>,
) -> Result<(), StoreError> {
    if rows.is_empty() {
        return Ok(());
    }
    let table = kind.table();
    let mut values: Vec<sea_orm::Value> = Vec::with_capacity(rows.len() * 2 + 1);
    values.push(tenant_id.into());
    let mut list = String::new();
    for (i, (id, search)) in rows.into_iter().enumerate() {
        if i > 0 {
            list.push_str(", ");
        }
        list.push_str(&format!("(${}, ${})", values.len() + 1, values.len() + 2));
        values.push(id.into_string().into());
        values.push(search.into());
    }
    // `column1`, `column2`: the names both PostgreSQL and SQLite give a VALUES list's columns.
    let sql = format!(
        "UPDATE {table} SET search = v.column2 FROM (VALUES {list}) AS v \
         WHERE {table}.tenant_id = $1 AND {table}.id = v.column1"
    );
    conn.execute_raw(super::statement(conn, &sql, values))
        .await?;
    Ok(())
}
