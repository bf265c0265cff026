//! Users: the SCIM document with hot columns beside it. Every function takes the tenant.

use sea_orm::{ActiveModelTrait, ConnectionTrait, DbBackend, FromQueryResult, Set};
use serde_json::Value;

use super::StoreError;
use super::entities::user;
use super::resources::Lock;
use crate::domain::{Membership, NewUser, ResourceId, StoredUser, TenantId, Timestamp, UserHot};
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
    hot: &UserHot,
) -> (
    String,
    String,
    Option<String>,
    Option<String>,
    Option<String>,
) {
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
    tenant_id: &TenantId,
    id: &ResourceId,
    new: NewUser,
    now: &Timestamp,
) -> Result<StoredUser, StoreError> {
    let (user_name, user_name_ci, external_id, display_name, display_name_ci) = columns(&new.hot);
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

/// How [`write_announced`] writes the user's row.
pub enum AnnouncedWrite {
    /// Inserts it (a create).
    Insert,
    /// Updates it if its version is still this one (the version read before the change).
    UpdateFrom(i64),
}

/// Writes a user's row and the events that announce it (PostgreSQL) in one statement,
/// outside any transaction: one round trip where `BEGIN`, the row, the events and `COMMIT`
/// took four. The tenant row is checked and locked as [`super::outbox::insert_unnumbered`]
/// does it, and the user's row is written only if it passes, so a write refused for a
/// deleted tenant or a changed schema leaves nothing behind. `Ok(false)`: an update found
/// the row gone or at another version (a concurrent write came first), and wrote nothing.
#[allow(clippy::too_many_arguments)]
pub async fn write_announced(
    conn: &impl ConnectionTrait,
    tenant_id: &TenantId,
    schema_version: i64,
    how: AnnouncedWrite,
    user: &StoredUser,
    hot: &UserHot,
    search: &Value,
    events: Vec<super::outbox::UnnumberedRow>,
) -> Result<bool, StoreError> {
    let (user_name, user_name_ci, external_id, display_name, display_name_ci) = columns(hot);
    let resource = serde_json::to_string(&user.document)
        .map_err(|e| StoreError::Corrupt(format!("user does not serialise: {e}")))?;
    let mut values: Vec<sea_orm::Value> = vec![
        tenant_id.into(),
        user.id.as_str().into(),
        user_name.into(),
        user_name_ci.into(),
        external_id.into(),
        hot.active.into(),
        display_name.into(),
        display_name_ci.into(),
        resource.into(),
        search.to_string().into(),
        user.version.into(),
        user.created_at.as_str().into(),
        user.updated_at.as_str().into(),
        schema_version.into(),
    ];
    let write = match how {
        AnnouncedWrite::Insert => "INSERT INTO users (tenant_id, id, user_name, user_name_ci, \
             external_id, active, display_name, display_name_ci, resource, search, version, \
             created_at, updated_at) \
           SELECT $1, $2, $3, $4, $5, $6, $7, $8, CAST($9 AS jsonb), CAST($10 AS jsonb), $11, \
             $12, $13 FROM live WHERE live.schema_version = $14 RETURNING id"
            .to_owned(),
        AnnouncedWrite::UpdateFrom(version) => {
            values.push(version.into());
            "UPDATE users SET user_name = $3, user_name_ci = $4, external_id = $5, active = $6, \
               display_name = $7, display_name_ci = $8, resource = CAST($9 AS jsonb), \
               search = CAST($10 AS jsonb), version = $11, updated_at = $13 \
             WHERE tenant_id = $1 AND id = $2 AND version = $15 \
               AND EXISTS (SELECT 1 FROM live WHERE live.schema_version = $14) RETURNING id"
                .to_owned()
        }
    };
    let sql = format!(
        "{live}, written AS ({write}), announced AS ( \
           INSERT INTO outbox_pending (tenant_id, id, event_type, routing_key, subject, \
             payload, created_at) \
           SELECT $1, v.* FROM (VALUES {events}) v WHERE EXISTS (SELECT 1 FROM written) \
         ) SELECT (SELECT COUNT(*) FROM live) AS live, \
           (SELECT schema_version FROM live) AS schema_version, \
           (SELECT COUNT(*) FROM written) AS written",
        live = super::outbox::live_cte(true),
        events = super::outbox::pending_values(events, &mut values),
    );
    let row = conn
        .query_one_raw(super::statement(conn, &sql, values))
        .await?;
    super::outbox::check_live(row.as_ref(), schema_version)?;
    let written: i64 = match row {
        Some(row) => row.try_get("", "written")?,
        None => 0,
    };
    Ok(written > 0)
}

/// Reads one user, locked as `lock` says.
pub async fn find(
    conn: &impl ConnectionTrait,
    tenant_id: &TenantId,
    id: &ResourceId,
    lock: Lock,
) -> Result<Option<StoredUser>, StoreError> {
    super::resources::by_key::<user::Entity>(tenant_id, id, lock)?
        .one(conn)
        .await?
        .map(to_domain)
        .transpose()
}

/// A user and its groups (direct and through nested groups) in one statement: what a GET
/// answers with, in one round trip. The search document is not read.
pub async fn find_with_groups(
    conn: &impl ConnectionTrait,
    tenant_id: &TenantId,
    id: &ResourceId,
) -> Result<Option<(StoredUser, Vec<Membership>)>, StoreError> {
    read_with_groups(conn, tenant_id, id, false).await
}

/// [`find_with_groups`], locking the user's row until the transaction ends (PostgreSQL
/// `FOR UPDATE`; SQLite's write transactions are serialised already): a write reads what
/// it changes and what it answers with in one round trip.
pub async fn find_for_update_with_groups(
    conn: &impl ConnectionTrait,
    tenant_id: &TenantId,
    id: &ResourceId,
) -> Result<Option<(StoredUser, Vec<Membership>)>, StoreError> {
    read_with_groups(conn, tenant_id, id, true).await
}

async fn read_with_groups(
    conn: &impl ConnectionTrait,
    tenant_id: &TenantId,
    id: &ResourceId,
    lock: bool,
) -> Result<Option<(StoredUser, Vec<Membership>)>, StoreError> {
    let statement = find_with_groups_statement(conn.get_database_backend(), tenant_id, id, lock);
    conn.query_one_raw(statement)
        .await?
        .map(|row| with_groups_from_row(&row))
        .transpose()
}

/// The statement of [`find_with_groups`] (`lock`: of [`find_for_update_with_groups`]).
pub fn find_with_groups_statement(
    backend: DbBackend,
    tenant_id: &TenantId,
    id: &ResourceId,
    lock: bool,
) -> sea_orm::Statement {
    let lock = match backend {
        DbBackend::Postgres if lock => " FOR UPDATE OF r",
        _ => "",
    };
    let columns = read_columns(backend, "r");
    let mut statement =
        super::members::with_memberships_statement(backend, "users", &columns, tenant_id, id);
    statement.sql.push_str(lock);
    statement
}

/// The columns of a user row `alias` as [`user::Model`] reads them, but for the search
/// document, which no answer needs (NULL: its decoding was a JSON parse per row).
pub(super) fn read_columns(backend: DbBackend, alias: &str) -> String {
    let no_search = match backend {
        DbBackend::Postgres => "NULL::jsonb",
        _ => "NULL",
    };
    format!(
        "{alias}.tenant_id, {alias}.id, {alias}.user_name, {alias}.user_name_ci, \
         {alias}.external_id, {alias}.active, {alias}.display_name, {alias}.display_name_ci, \
         {alias}.resource, {no_search} AS search, {alias}.version, {alias}.created_at, \
         {alias}.updated_at"
    )
}

/// A user row read with its `memberships` column (see [`read_columns`]).
pub(super) fn with_groups_from_row(
    row: &sea_orm::QueryResult,
) -> Result<(StoredUser, Vec<Membership>), StoreError> {
    let groups = super::members::memberships_column(row)?;
    let user = to_domain(user::Model::from_query_result(row, "")?)?;
    Ok((user, groups))
}

/// Replaces a user's document and hot columns and sets its version.
pub async fn update(
    conn: &impl ConnectionTrait,
    tenant_id: &TenantId,
    id: &ResourceId,
    new: NewUser,
    version: i64,
    now: &Timestamp,
) -> Result<StoredUser, StoreError> {
    let (user_name, user_name_ci, external_id, display_name, display_name_ci) = columns(&new.hot);
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

/// A page of the tenant's users in id order after `after` (snapshots for resync; with
/// `for_change`, locked for the re-index that rewrites their search documents).
pub async fn page_by_id(
    conn: &impl ConnectionTrait,
    tenant_id: &TenantId,
    after: Option<&ResourceId>,
    limit: u64,
    for_change: bool,
) -> Result<Vec<StoredUser>, StoreError> {
    super::resources::page_by_id::<user::Entity>(tenant_id, after, limit, for_change)?
        .all(conn)
        .await?
        .into_iter()
        .map(to_domain)
        .collect()
}
