//! Application credentials (DESIGN 21): one secret that reads the events of the tenants it
//! is granted, or of every tenant; looked up by the SHA-256 of the secret.

use std::collections::HashMap;

use sea_orm::sea_query::Expr;
use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, DbBackend, EntityTrait, PaginatorTrait,
    QueryFilter, QueryOrder, QuerySelect, QueryTrait, Set, Statement,
};

use super::StoreError;
use super::entities::{app_credential, app_credential_tenant, tenant};
use crate::domain::{AppInfo, TenantId, TenantSlug, Timestamp};

/// What authentication needs of a credential.
#[derive(Debug, Clone)]
pub struct AppRecord {
    pub id: String,
    pub name: String,
    pub all_tenants: bool,
    pub expires_at: Option<Timestamp>,
    pub revoked_at: Option<Timestamp>,
    pub last_used_at: Option<Timestamp>,
}

/// A new credential's row and grants.
pub struct NewApp<'a> {
    pub id: &'a str,
    pub name: &'a str,
    pub hash: &'a str,
    /// `None`: every tenant; otherwise `(id, slug)` of each.
    pub tenants: Option<&'a [(TenantId, TenantSlug)]>,
    pub now: &'a Timestamp,
    pub expires_at: Option<Timestamp>,
}

pub async fn insert(conn: &impl ConnectionTrait, app: NewApp<'_>) -> Result<(), StoreError> {
    app_credential::ActiveModel {
        id: Set(app.id.to_owned()),
        name: Set(app.name.to_owned()),
        token_hash: Set(app.hash.to_owned()),
        all_tenants: Set(app.tenants.is_none()),
        created_at: Set(app.now.to_owned()),
        expires_at: Set(app.expires_at),
        revoked_at: Set(None),
        last_used_at: Set(None),
    }
    .insert(conn)
    .await?;
    let grants: Vec<app_credential_tenant::ActiveModel> = app
        .tenants
        .unwrap_or_default()
        .iter()
        .map(|(tenant_id, slug)| app_credential_tenant::ActiveModel {
            credential_id: Set(app.id.to_owned()),
            tenant_id: Set(tenant_id.clone()),
            tenant_slug: Set(slug.to_string()),
        })
        .collect();
    // In chunks: a statement's bind parameters are bounded (SQLite: 32 766).
    for chunk in grants.chunks(1000) {
        app_credential_tenant::Entity::insert_many(chunk.to_vec())
            .exec_without_returning(conn)
            .await?;
    }
    Ok(())
}

pub async fn find_by_hash(
    conn: &impl ConnectionTrait,
    hash: &str,
) -> Result<Option<AppRecord>, StoreError> {
    Ok(app_credential::Entity::find()
        .filter(app_credential::Column::TokenHash.eq(hash))
        .one(conn)
        .await?
        .map(AppRecord::from))
}

impl From<app_credential::Model> for AppRecord {
    fn from(m: app_credential::Model) -> Self {
        Self {
            id: m.id,
            name: m.name,
            all_tenants: m.all_tenants,
            expires_at: m.expires_at,
            revoked_at: m.revoked_at,
            last_used_at: m.last_used_at,
        }
    }
}

/// The credential with id `id`.
pub async fn find(conn: &impl ConnectionTrait, id: &str) -> Result<Option<AppRecord>, StoreError> {
    Ok(app_credential::Entity::find_by_id(id.to_owned())
        .one(conn)
        .await?
        .map(AppRecord::from))
}

/// The ids of every tenant a credential reads that is not removed (deleted ones too: their
/// last events are still delivered): every tenant, or those granted to `credential_id`.
pub async fn tenant_ids(
    conn: &impl ConnectionTrait,
    credential_id: Option<&str>,
) -> Result<Vec<TenantId>, StoreError> {
    let (sql, values): (&str, Vec<sea_orm::Value>) = match credential_id {
        None => ("SELECT id FROM tenants", vec![]),
        Some(id) => (
            "SELECT t.id AS id FROM app_credential_tenants g JOIN tenants t \
             ON t.id = g.tenant_id WHERE g.credential_id = $1",
            vec![id.into()],
        ),
    };
    conn.query_all_raw(super::statement(conn, sql, values))
        .await?
        .iter()
        .map(|row| Ok(row.try_get::<String>("", "id")?.into()))
        .collect()
}

/// Whether the credential was granted the tenant (one primary-key probe).
pub async fn granted(
    conn: &impl ConnectionTrait,
    credential_id: &str,
    tenant_id: &TenantId,
) -> Result<bool, StoreError> {
    Ok(app_credential_tenant::Entity::find()
        .filter(app_credential_tenant::Column::CredentialId.eq(credential_id))
        .filter(app_credential_tenant::Column::TenantId.eq(tenant_id))
        .count(conn)
        .await?
        > 0)
}

/// Every credential, oldest first, with the slugs of its tenants.
pub async fn list(conn: &impl ConnectionTrait) -> Result<Vec<AppInfo>, StoreError> {
    let credentials = app_credential::Entity::find()
        .order_by_asc(app_credential::Column::CreatedAt)
        .order_by_asc(app_credential::Column::Id)
        .all(conn)
        .await?;
    let mut slugs: HashMap<String, Vec<TenantSlug>> = HashMap::new();
    let grants: Vec<(String, String)> = app_credential_tenant::Entity::find()
        .select_only()
        .column(app_credential_tenant::Column::CredentialId)
        .column(app_credential_tenant::Column::TenantSlug)
        .order_by_asc(app_credential_tenant::Column::TenantSlug)
        .into_tuple()
        .all(conn)
        .await?;
    for (credential, slug) in grants {
        slugs
            .entry(credential)
            .or_default()
            .push(TenantSlug::parse(&slug).map_err(StoreError::Corrupt)?);
    }
    Ok(credentials
        .into_iter()
        .map(|m| AppInfo {
            tenants: slugs.remove(&m.id).unwrap_or_default(),
            id: m.id,
            name: m.name,
            all_tenants: m.all_tenants,
            created_at: m.created_at,
            expires_at: m.expires_at,
            revoked_at: m.revoked_at,
            last_used_at: m.last_used_at,
        })
        .collect())
}

/// Revokes a live credential; `false` when there is no live one with that id.
pub async fn revoke(
    conn: &impl ConnectionTrait,
    id: &str,
    now: &Timestamp,
) -> Result<bool, StoreError> {
    let result = app_credential::Entity::update_many()
        .col_expr(app_credential::Column::RevokedAt, Expr::value(now))
        .filter(app_credential::Column::Id.eq(id))
        .filter(app_credential::Column::RevokedAt.is_null())
        .exec(conn)
        .await?;
    Ok(result.rows_affected > 0)
}

/// Records that a credential was used at `now`.
pub async fn touch(
    conn: &impl ConnectionTrait,
    id: &str,
    now: &Timestamp,
) -> Result<(), StoreError> {
    app_credential::Entity::update_many()
        .col_expr(app_credential::Column::LastUsedAt, Expr::value(now))
        .filter(app_credential::Column::Id.eq(id))
        .exec(conn)
        .await?;
    Ok(())
}

/// A tenant a reader may list: its slug, and whether it was deleted (its events, ending
/// with `tenant.deleted`, stay readable until retention removes the tenant).
#[derive(Debug, Clone)]
pub struct Readable {
    pub slug: TenantSlug,
    pub deleted: bool,
}

/// Up to `limit` tenants after the slug `after`, in slug order: every tenant (the slug
/// index), or those granted to `credential_id` (the grants' `(credential, slug)` index, one
/// primary-key probe of `tenants` each). Never a scan (`tests/api/plans.rs`).
pub async fn readable_tenants(
    conn: &impl ConnectionTrait,
    credential_id: Option<&str>,
    after: &str,
    limit: u64,
) -> Result<Vec<Readable>, StoreError> {
    let statement =
        readable_tenants_statement(conn.get_database_backend(), credential_id, after, limit);
    conn.query_all_raw(statement)
        .await?
        .into_iter()
        .map(|row| {
            let slug: String = row.try_get("", "slug")?;
            let deleted_at: Option<String> = row.try_get("", "deleted_at")?;
            Ok(Readable {
                slug: TenantSlug::parse(&slug).map_err(StoreError::Corrupt)?,
                deleted: deleted_at.is_some(),
            })
        })
        .collect()
}

/// The statement of [`readable_tenants`] (columns `slug`, `deleted_at`).
pub fn readable_tenants_statement(
    backend: DbBackend,
    credential_id: Option<&str>,
    after: &str,
    limit: u64,
) -> Statement {
    match credential_id {
        None => tenant::Entity::find()
            .select_only()
            .column_as(tenant::Column::Slug, "slug")
            .column_as(tenant::Column::DeletedAt, "deleted_at")
            .filter(tenant::Column::Slug.gt(after))
            .order_by_asc(tenant::Column::Slug)
            .limit(limit)
            .build(backend),
        // The grants in their `(credential, slug)` index order, each tenant's deletion
        // mark a primary-key probe: a join let PostgreSQL with stale statistics read every
        // grant after the slug and sort them.
        Some(credential_id) => super::backend_statement(
            backend,
            "SELECT g.tenant_slug AS slug, \
             (SELECT t.deleted_at FROM tenants t WHERE t.id = g.tenant_id) AS deleted_at \
             FROM app_credential_tenants g WHERE g.credential_id = $1 AND g.tenant_slug > $2 \
             ORDER BY g.credential_id, g.tenant_slug LIMIT $3",
            vec![
                credential_id.into(),
                after.into(),
                i64::try_from(limit).unwrap_or(i64::MAX).into(),
            ],
        ),
    }
}
