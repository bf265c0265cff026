//! Groups: the SCIM document (without members) with hot columns beside it.

use sea_orm::{ActiveModelTrait, ConnectionTrait, EntityTrait, QuerySelect, Set};
use serde_json::Value;

use super::StoreError;
use super::entities::group;
use crate::domain::{NewGroup, StoredGroup};
use crate::scim::fold::fold;

pub(super) fn to_domain(m: group::Model) -> Result<StoredGroup, StoreError> {
    let Value::Object(document) = m.resource else {
        return Err(StoreError::Corrupt(format!(
            "group {} is not an object",
            m.id
        )));
    };
    Ok(StoredGroup {
        id: m.id,
        display_name: m.display_name,
        document,
        version: m.version,
        created_at: m.created_at,
        updated_at: m.updated_at,
    })
}

fn active_model(tenant_id: &str, id: &str, new: NewGroup) -> group::ActiveModel {
    group::ActiveModel {
        tenant_id: Set(tenant_id.to_owned()),
        id: Set(id.to_owned()),
        display_name_ci: Set(fold(&new.hot.display_name)),
        display_name: Set(new.hot.display_name),
        external_id: Set(new.hot.external_id.map(|e| e.as_str().to_owned())),
        resource: Set(Value::Object(new.document)),
        search: Set(Some(new.search)),
        ..Default::default()
    }
}

pub async fn insert(
    conn: &impl ConnectionTrait,
    tenant_id: &str,
    id: &str,
    new: NewGroup,
    now: &str,
) -> Result<StoredGroup, StoreError> {
    let mut model = active_model(tenant_id, id, new);
    model.version = Set(1);
    model.created_at = Set(now.to_owned());
    model.updated_at = Set(now.to_owned());
    to_domain(model.insert(conn).await?)
}

pub async fn find(
    conn: &impl ConnectionTrait,
    tenant_id: &str,
    id: &str,
) -> Result<Option<StoredGroup>, StoreError> {
    group::Entity::find_by_id((tenant_id.to_owned(), id.to_owned()))
        .one(conn)
        .await?
        .map(to_domain)
        .transpose()
}

/// Reads a group and locks its row until the transaction ends: membership changes of one
/// group are serialised (PostgreSQL `FOR UPDATE`; SQLite serialises writes already).
pub async fn find_for_update(
    conn: &impl ConnectionTrait,
    tenant_id: &str,
    id: &str,
) -> Result<Option<StoredGroup>, StoreError> {
    group::Entity::find_by_id((tenant_id.to_owned(), id.to_owned()))
        .lock_exclusive()
        .one(conn)
        .await?
        .map(to_domain)
        .transpose()
}

/// Like [`find_for_update`], for a change that keeps the row (`FOR NO KEY UPDATE` on
/// PostgreSQL): writes adding the group as a member (`FOR KEY SHARE`) do not wait for it.
pub async fn find_for_change(
    conn: &impl ConnectionTrait,
    tenant_id: &str,
    id: &str,
) -> Result<Option<StoredGroup>, StoreError> {
    group::Entity::find_by_id((tenant_id.to_owned(), id.to_owned()))
        .lock(sea_orm::sea_query::LockType::NoKeyUpdate)
        .one(conn)
        .await?
        .map(to_domain)
        .transpose()
}

/// Writes a group's document and hot columns with `version`.
pub async fn update(
    conn: &impl ConnectionTrait,
    tenant_id: &str,
    id: &str,
    new: NewGroup,
    version: i64,
    now: &str,
) -> Result<StoredGroup, StoreError> {
    let mut model = active_model(tenant_id, id, new);
    model.version = Set(version);
    model.updated_at = Set(now.to_owned());
    let model = model.update(conn).await.map_err(|e| match e {
        sea_orm::DbErr::RecordNotUpdated => StoreError::NotFound,
        other => other.into(),
    })?;
    to_domain(model)
}

/// Bumps only the version and `updated_at` (a membership change).
pub async fn touch(
    conn: &impl ConnectionTrait,
    tenant_id: &str,
    id: &str,
    version: i64,
    now: &str,
) -> Result<(), StoreError> {
    group::ActiveModel {
        tenant_id: Set(tenant_id.to_owned()),
        id: Set(id.to_owned()),
        version: Set(version),
        updated_at: Set(now.to_owned()),
        ..Default::default()
    }
    .update(conn)
    .await?;
    Ok(())
}

pub async fn delete(
    conn: &impl ConnectionTrait,
    tenant_id: &str,
    id: &str,
) -> Result<(), StoreError> {
    let result = group::Entity::delete_by_id((tenant_id.to_owned(), id.to_owned()))
        .exec(conn)
        .await?;
    if result.rows_affected == 0 {
        return Err(StoreError::NotFound);
    }
    Ok(())
}

/// Up to `limit` rows written before search documents existed: (tenant, id, document).
pub async fn missing_search(
    conn: &impl ConnectionTrait,
    limit: u64,
) -> Result<Vec<(String, String, Value)>, StoreError> {
    use sea_orm::{ColumnTrait, QueryFilter};
    Ok(group::Entity::find()
        .filter(group::Column::Search.is_null())
        .limit(limit)
        .all(conn)
        .await?
        .into_iter()
        .map(|m| (m.tenant_id, m.id, m.resource))
        .collect())
}

/// Stores the search document of one row.
pub async fn set_search(
    conn: &impl ConnectionTrait,
    tenant_id: &str,
    id: &str,
    search: Value,
) -> Result<(), StoreError> {
    use sea_orm::{ColumnTrait, QueryFilter};
    // `update_many`: a row deleted meanwhile is no error.
    group::Entity::update_many()
        .col_expr(
            group::Column::Search,
            sea_orm::sea_query::Expr::value(search),
        )
        .filter(group::Column::TenantId.eq(tenant_id))
        .filter(group::Column::Id.eq(id))
        .exec(conn)
        .await?;
    Ok(())
}

/// A page of the tenant's groups in id order after `after` (snapshots for resync; with
/// `for_change`, locked for the re-index that rewrites their search documents).
pub async fn page_by_id(
    conn: &impl ConnectionTrait,
    tenant_id: &str,
    after: Option<&str>,
    limit: u64,
    for_change: bool,
) -> Result<Vec<StoredGroup>, StoreError> {
    use sea_orm::{ColumnTrait, QueryFilter, QueryOrder};
    let mut query = group::Entity::find().filter(group::Column::TenantId.eq(tenant_id));
    if let Some(after) = after {
        query = query.filter(group::Column::Id.gt(after));
    }
    if for_change {
        // Locked until commit (`FOR NO KEY UPDATE` on PostgreSQL): a write of one of
        // these waits, and one that went first is what is read.
        query = query.lock(sea_orm::sea_query::LockType::NoKeyUpdate);
    }
    query
        .order_by_asc(group::Column::Id)
        .limit(limit)
        .all(conn)
        .await?
        .into_iter()
        .map(to_domain)
        .collect()
}
