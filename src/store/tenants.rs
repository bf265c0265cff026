//! Tenants and their event counter.

use sea_orm::ExprTrait;
use sea_orm::sea_query::{Expr, Query};
use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter, QueryOrder, Set,
};

use super::StoreError;
use super::entities::tenant;
use crate::domain::{Tenant, TenantId, TenantSlug, Timestamp};

pub(super) fn to_domain(m: tenant::Model) -> Result<Tenant, StoreError> {
    Ok(Tenant {
        slug: TenantSlug::parse(&m.slug).map_err(StoreError::Corrupt)?,
        id: m.id,
        created_at: m.created_at,
        deleted_at: m.deleted_at,
        purged_at: m.purged_at,
        events_pruned_through: m.events_pruned_through,
        schema_version: m.schema_version,
        registry: crate::scim::schema::Registry::core_shared(),
    })
}

pub async fn insert(
    conn: &impl ConnectionTrait,
    id: &TenantId,
    slug: &TenantSlug,
    now: &Timestamp,
) -> Result<Tenant, StoreError> {
    let model = tenant::ActiveModel {
        id: Set(id.clone()),
        slug: Set(slug.as_str().to_owned()),
        event_seq: Set(0),
        created_at: Set(now.to_owned()),
        deleted_at: Set(None),
        events_pruned_through: Set(0),
        purged_at: Set(None),
        schema_version: Set(0),
        purge_failures: Set(0),
    }
    .insert(conn)
    .await?;
    to_domain(model)
}

/// The tenant with this slug, deleted or not.
pub async fn find(
    conn: &impl ConnectionTrait,
    slug: &TenantSlug,
) -> Result<Option<Tenant>, StoreError> {
    tenant::Entity::find()
        .filter(tenant::Column::Slug.eq(slug.as_str()))
        .one(conn)
        .await?
        .map(to_domain)
        .transpose()
}

/// The tenant with this id, deleted or not.
pub async fn find_by_id(
    conn: &impl ConnectionTrait,
    id: &TenantId,
) -> Result<Option<Tenant>, StoreError> {
    tenant::Entity::find_by_id(id.clone())
        .one(conn)
        .await?
        .map(to_domain)
        .transpose()
}

/// The tenant with this slug if it is not deleted.
pub async fn find_live(
    conn: &impl ConnectionTrait,
    slug: &TenantSlug,
) -> Result<Option<Tenant>, StoreError> {
    Ok(find(conn, slug).await?.filter(|t| t.deleted_at.is_none()))
}

pub async fn list(conn: &impl ConnectionTrait) -> Result<Vec<Tenant>, StoreError> {
    tenant::Entity::find()
        .order_by_asc(tenant::Column::Slug)
        .all(conn)
        .await?
        .into_iter()
        .map(to_domain)
        .collect()
}

pub async fn mark_deleted(
    conn: &impl ConnectionTrait,
    tenant_id: &TenantId,
    now: &Timestamp,
) -> Result<(), StoreError> {
    // `FOR UPDATE` waits for every write in hand (each holds the row `FOR KEY SHARE` from
    // its events' insert to its commit); writes after this one commits find the tenant
    // deleted.
    if conn.get_database_backend() == sea_orm::DbBackend::Postgres {
        conn.execute_raw(super::statement(
            conn,
            "SELECT id FROM tenants WHERE id = $1 FOR UPDATE",
            vec![tenant_id.into()],
        ))
        .await?;
    }
    tenant::Entity::update_many()
        .col_expr(tenant::Column::DeletedAt, Expr::value(now))
        .filter(tenant::Column::Id.eq(tenant_id))
        .exec(conn)
        .await?;
    Ok(())
}

/// Advances the tenant's event counter by `n` and returns the last sequence now taken.
/// The row stays locked until commit, so sequences are gap-free and in commit order
/// (DESIGN 10).
pub async fn advance_sequence(
    conn: &impl ConnectionTrait,
    tenant_id: &TenantId,
    n: i64,
    require_live: bool,
    schema_version: Option<i64>,
) -> Result<i64, StoreError> {
    let mut stmt = Query::update()
        .table(tenant::Entity)
        .value(
            tenant::Column::EventSeq,
            Expr::col(tenant::Column::EventSeq).add(n),
        )
        .and_where(Expr::col(tenant::Column::Id).eq(tenant_id))
        .returning(
            Query::returning().columns([tenant::Column::EventSeq, tenant::Column::SchemaVersion]),
        )
        .to_owned();
    if require_live {
        stmt.and_where(Expr::col(tenant::Column::DeletedAt).is_null());
    }
    let row = conn.query_one(&stmt).await?.ok_or(if require_live {
        StoreError::TenantDeleted
    } else {
        StoreError::NotFound
    })?;
    // A registration committed since the write loaded its registry: see
    // `StoreError::SchemaChanged`.
    if let Some(expected) = schema_version
        && row.try_get::<i64>("", "schema_version")? != expected
    {
        return Err(StoreError::SchemaChanged);
    }
    Ok(row.try_get::<i64>("", "event_seq")?)
}

/// A deleted tenant whose data is not purged yet, the oldest deletion first.
pub async fn next_to_purge(conn: &impl ConnectionTrait) -> Result<Option<Tenant>, StoreError> {
    tenant::Entity::find()
        .filter(tenant::Column::DeletedAt.is_not_null())
        .filter(tenant::Column::PurgedAt.is_null())
        // A purge that keeps failing goes behind the others, never in front of them.
        .order_by_asc(tenant::Column::PurgeFailures)
        .order_by_asc(tenant::Column::DeletedAt)
        .one(conn)
        .await?
        .map(to_domain)
        .transpose()
}

/// Counts a failed purge step of a tenant (see [`next_to_purge`]).
pub async fn record_purge_failure(
    conn: &impl ConnectionTrait,
    tenant_id: &TenantId,
) -> Result<(), StoreError> {
    conn.execute_raw(super::statement(
        conn,
        "UPDATE tenants SET purge_failures = purge_failures + 1 WHERE id = $1",
        vec![tenant_id.into()],
    ))
    .await?;
    Ok(())
}

/// Whether `slug` belonged to a removed tenant (a slug is never given to another tenant).
pub async fn slug_retired(conn: &impl ConnectionTrait, slug: &str) -> Result<bool, StoreError> {
    Ok(conn
        .query_one_raw(super::statement(
            conn,
            "SELECT slug FROM retired_slugs WHERE slug = $1",
            vec![slug.into()],
        ))
        .await?
        .is_some())
}

/// Records that the tenant's purge is complete; `false` when another process did first
/// (the row lock taken here makes the two wait for each other).
pub async fn mark_purged(
    conn: &impl ConnectionTrait,
    tenant_id: &TenantId,
    now: &Timestamp,
) -> Result<bool, StoreError> {
    let result = tenant::Entity::update_many()
        .col_expr(tenant::Column::PurgedAt, Expr::value(now))
        .filter(tenant::Column::Id.eq(tenant_id))
        .filter(tenant::Column::PurgedAt.is_null())
        .exec(conn)
        .await?;
    Ok(result.rows_affected == 1)
}

/// Raises the tenant's retention mark to `sequence` (never lowers it).
pub async fn set_pruned_through(
    conn: &impl ConnectionTrait,
    tenant_id: &TenantId,
    sequence: i64,
) -> Result<(), StoreError> {
    tenant::Entity::update_many()
        .col_expr(tenant::Column::EventsPrunedThrough, Expr::value(sequence))
        .filter(tenant::Column::Id.eq(tenant_id))
        .filter(tenant::Column::EventsPrunedThrough.lt(sequence))
        .exec(conn)
        .await?;
    Ok(())
}

/// The tenant's latest committed event sequence.
pub async fn event_sequence(
    conn: &impl ConnectionTrait,
    tenant_id: &TenantId,
) -> Result<i64, StoreError> {
    Ok(row(conn, tenant_id).await?.event_seq)
}

async fn row(
    conn: &impl ConnectionTrait,
    tenant_id: &TenantId,
) -> Result<tenant::Model, StoreError> {
    tenant::Entity::find_by_id(tenant_id.to_owned())
        .one(conn)
        .await?
        .ok_or(StoreError::NotFound)
}

/// The tenant's retention mark now: events up to it are gone.
pub async fn events_pruned_through(
    conn: &impl ConnectionTrait,
    tenant_id: &TenantId,
) -> Result<i64, StoreError> {
    Ok(row(conn, tenant_id).await?.events_pruned_through)
}

/// Counts one more change of the tenant's schema extensions and returns the new version.
/// On PostgreSQL the tenant row is first locked `FOR UPDATE`, which waits for every write
/// in hand (each holds it `FOR KEY SHARE` from its `live` check to its commit): a write
/// either commits before the change — and the re-index that follows reads what it wrote —
/// or sees the new version and fails with `SchemaChanged`. Its search documents, computed
/// with the old registry, never land after the re-index has passed.
pub async fn bump_schema_version(
    conn: &impl ConnectionTrait,
    tenant_id: &TenantId,
) -> Result<i64, StoreError> {
    if conn.get_database_backend() == sea_orm::DbBackend::Postgres {
        conn.execute_raw(super::statement(
            conn,
            "SELECT 1 FROM tenants WHERE id = $1 FOR UPDATE",
            vec![tenant_id.into()],
        ))
        .await?;
    }
    let row = conn
        .query_one_raw(super::statement(
            conn,
            "UPDATE tenants SET schema_version = schema_version + 1 WHERE id = $1 \
             RETURNING schema_version",
            vec![tenant_id.into()],
        ))
        .await?
        .ok_or(StoreError::NotFound)?;
    Ok(row.try_get("", "schema_version")?)
}

/// The schema version of the live tenant, read as a write reads it (PostgreSQL: `FOR KEY
/// SHARE` until commit, so a schema change waits for this transaction); `None` when the
/// tenant is deleted.
pub async fn schema_version_for_write(
    conn: &impl ConnectionTrait,
    tenant_id: &TenantId,
) -> Result<Option<i64>, StoreError> {
    let lock = match conn.get_database_backend() {
        sea_orm::DbBackend::Postgres => " FOR KEY SHARE",
        _ => "",
    };
    let row = conn
        .query_one_raw(super::statement(
            conn,
            &format!(
                "SELECT schema_version FROM tenants WHERE id = $1 AND deleted_at IS NULL{lock}"
            ),
            vec![tenant_id.into()],
        ))
        .await?;
    Ok(match row {
        Some(row) => Some(row.try_get("", "schema_version")?),
        None => None,
    })
}
