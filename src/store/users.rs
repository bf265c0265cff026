//! Users: the SCIM document with hot columns beside it. Every function takes the tenant.

use sea_orm::{
    ActiveModelTrait, ConnectionTrait, DbBackend, EntityTrait, FromQueryResult, QuerySelect, Set,
};
use serde_json::Value;

use super::StoreError;
use super::entities::user;
use crate::domain::{Membership, NewUser, StoredUser};
use crate::scim::fold::fold;

pub(super) fn to_domain(m: user::Model) -> Result<StoredUser, StoreError> {
    let Value::Object(document) = m.resource else {
        return Err(StoreError::Corrupt(format!(
            "user {} is not an object",
            m.id
        )));
    };
    Ok(StoredUser {
        id: m.id,
        active: m.active,
        document,
        version: m.version,
        created_at: m.created_at,
        updated_at: m.updated_at,
    })
}

fn columns(
    new: &NewUser,
) -> (
    String,
    String,
    Option<String>,
    Option<String>,
    Option<String>,
) {
    let hot = &new.hot;
    (
        hot.user_name.as_str().to_owned(),
        hot.user_name.folded(),
        hot.external_id.as_ref().map(|e| e.as_str().to_owned()),
        hot.display_name.clone(),
        hot.display_name.as_deref().map(fold),
    )
}

pub async fn insert(
    conn: &impl ConnectionTrait,
    tenant_id: &str,
    id: &str,
    new: NewUser,
    now: &str,
) -> Result<StoredUser, StoreError> {
    let (user_name, user_name_ci, external_id, display_name, display_name_ci) = columns(&new);
    let model = user::ActiveModel {
        tenant_id: Set(tenant_id.to_owned()),
        id: Set(id.to_owned()),
        user_name: Set(user_name),
        user_name_ci: Set(user_name_ci),
        external_id: Set(external_id),
        active: Set(new.hot.active),
        display_name: Set(display_name),
        display_name_ci: Set(display_name_ci),
        resource: Set(Value::Object(new.document)),
        search: Set(Some(new.search)),
        version: Set(1),
        created_at: Set(now.to_owned()),
        updated_at: Set(now.to_owned()),
    }
    .insert(conn)
    .await?;
    to_domain(model)
}

pub async fn find(
    conn: &impl ConnectionTrait,
    tenant_id: &str,
    id: &str,
) -> Result<Option<StoredUser>, StoreError> {
    user::Entity::find_by_id((tenant_id.to_owned(), id.to_owned()))
        .one(conn)
        .await?
        .map(to_domain)
        .transpose()
}

/// A user and its groups (direct and through nested groups) in one statement: what a GET
/// answers with, in one round trip. The search document is not read.
pub async fn find_with_groups(
    conn: &impl ConnectionTrait,
    tenant_id: &str,
    id: &str,
) -> Result<Option<(StoredUser, Vec<Membership>)>, StoreError> {
    read_with_groups(conn, tenant_id, id, false).await
}

/// [`find_with_groups`], locking the user's row until the transaction ends (PostgreSQL
/// `FOR UPDATE`; SQLite's write transactions are serialised already): a write reads what
/// it changes and what it answers with in one round trip.
pub async fn find_for_update_with_groups(
    conn: &impl ConnectionTrait,
    tenant_id: &str,
    id: &str,
) -> Result<Option<(StoredUser, Vec<Membership>)>, StoreError> {
    read_with_groups(conn, tenant_id, id, true).await
}

async fn read_with_groups(
    conn: &impl ConnectionTrait,
    tenant_id: &str,
    id: &str,
    lock: bool,
) -> Result<Option<(StoredUser, Vec<Membership>)>, StoreError> {
    let statement = find_with_groups_statement(conn.get_database_backend(), tenant_id, id, lock);
    let Some(row) = conn.query_one_raw(statement).await? else {
        return Ok(None);
    };
    let groups = super::members::memberships_column(&row)?;
    let user = to_domain(user::Model::from_query_result(&row, "")?)?;
    Ok(Some((user, groups)))
}

/// The statement of [`find_with_groups`] (`lock`: of [`find_for_update_with_groups`]).
pub fn find_with_groups_statement(
    backend: DbBackend,
    tenant_id: &str,
    id: &str,
    lock: bool,
) -> sea_orm::Statement {
    let (no_search, lock) = match backend {
        DbBackend::Postgres => ("NULL::jsonb", if lock { " FOR UPDATE OF r" } else { "" }),
        _ => ("NULL", ""),
    };
    let columns = format!(
        "r.tenant_id, r.id, r.user_name, r.user_name_ci, r.external_id, r.active, \
         r.display_name, r.display_name_ci, r.resource, {no_search} AS search, r.version, \
         r.created_at, r.updated_at"
    );
    let mut statement =
        super::members::with_memberships_statement(backend, "users", &columns, tenant_id, id);
    statement.sql.push_str(lock);
    statement
}

/// Reads a user and locks its row until the transaction ends (PostgreSQL `FOR UPDATE`;
/// SQLite's write transactions are serialised already).
pub async fn find_for_update(
    conn: &impl ConnectionTrait,
    tenant_id: &str,
    id: &str,
) -> Result<Option<StoredUser>, StoreError> {
    user::Entity::find_by_id((tenant_id.to_owned(), id.to_owned()))
        .lock_exclusive()
        .one(conn)
        .await?
        .map(to_domain)
        .transpose()
}

/// Replaces a user's document and hot columns and sets its version.
pub async fn update(
    conn: &impl ConnectionTrait,
    tenant_id: &str,
    id: &str,
    new: NewUser,
    version: i64,
    now: &str,
) -> Result<StoredUser, StoreError> {
    let (user_name, user_name_ci, external_id, display_name, display_name_ci) = columns(&new);
    let model = user::ActiveModel {
        tenant_id: Set(tenant_id.to_owned()),
        id: Set(id.to_owned()),
        user_name: Set(user_name),
        user_name_ci: Set(user_name_ci),
        external_id: Set(external_id),
        active: Set(new.hot.active),
        display_name: Set(display_name),
        display_name_ci: Set(display_name_ci),
        resource: Set(Value::Object(new.document)),
        search: Set(Some(new.search)),
        version: Set(version),
        updated_at: Set(now.to_owned()),
        ..Default::default()
    }
    .update(conn)
    .await
    .map_err(|e| match e {
        sea_orm::DbErr::RecordNotUpdated => StoreError::NotFound,
        other => other.into(),
    })?;
    to_domain(model)
}

pub async fn delete(
    conn: &impl ConnectionTrait,
    tenant_id: &str,
    id: &str,
) -> Result<(), StoreError> {
    let result = user::Entity::delete_by_id((tenant_id.to_owned(), id.to_owned()))
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
    Ok(user::Entity::find()
        .filter(user::Column::Search.is_null())
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
    user::Entity::update_many()
        .col_expr(
            user::Column::Search,
            sea_orm::sea_query::Expr::value(search),
        )
        .filter(user::Column::TenantId.eq(tenant_id))
        .filter(user::Column::Id.eq(id))
        .exec(conn)
        .await?;
    Ok(())
}

/// A page of the tenant's users in id order after `after` (snapshots for resync; with
/// `for_change`, locked for the re-index that rewrites their search documents).
pub async fn page_by_id(
    conn: &impl ConnectionTrait,
    tenant_id: &str,
    after: Option<&str>,
    limit: u64,
    for_change: bool,
) -> Result<Vec<StoredUser>, StoreError> {
    use sea_orm::{ColumnTrait, QueryFilter, QueryOrder};
    let mut query = user::Entity::find().filter(user::Column::TenantId.eq(tenant_id));
    if let Some(after) = after {
        query = query.filter(user::Column::Id.gt(after));
    }
    if for_change {
        // Locked until commit (`FOR NO KEY UPDATE` on PostgreSQL): a write of one of
        // these waits, and one that went first is what is read.
        query = query.lock(sea_orm::sea_query::LockType::NoKeyUpdate);
    }
    query
        .order_by_asc(user::Column::Id)
        .limit(limit)
        .all(conn)
        .await?
        .into_iter()
        .map(to_domain)
        .collect()
}
