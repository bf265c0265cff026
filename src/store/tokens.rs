//! Tenant tokens and admin tokens, looked up by the SHA-256 of the secret.

use sea_orm::sea_query::Expr;
use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, DbBackend, EntityTrait, JoinType,
    PaginatorTrait, QueryFilter, QueryOrder, QuerySelect, QueryTrait, RelationDef, Set, Statement,
};

use super::StoreError;
use super::entities::{admin_token, tenant, token};
use crate::domain::{Scope, Tenant, TenantId, TenantSlug, Timestamp, TokenInfo};

/// A token row needed to authenticate a request.
#[derive(Debug, Clone)]
pub struct TokenRecord {
    pub id: String,
    pub name: String,
    pub scopes: Vec<Scope>,
    pub expires_at: Option<Timestamp>,
    pub revoked_at: Option<Timestamp>,
    pub last_used_at: Option<Timestamp>,
}

fn info(m: token::Model) -> TokenInfo {
    TokenInfo {
        id: m.id,
        name: m.name,
        scopes: Scope::parse_list(&m.scopes),
        created_at: m.created_at,
        expires_at: m.expires_at,
        revoked_at: m.revoked_at,
        last_used_at: m.last_used_at,
    }
}

/// A new token's row.
pub struct NewToken<'a> {
    pub tenant_id: &'a TenantId,
    pub id: &'a str,
    pub name: &'a str,
    pub hash: &'a str,
    pub scopes: &'a [Scope],
    pub now: &'a Timestamp,
    pub expires_at: Option<Timestamp>,
}

pub async fn insert(conn: &impl ConnectionTrait, t: NewToken<'_>) -> Result<TokenInfo, StoreError> {
    let model = token::ActiveModel {
        tenant_id: Set(t.tenant_id.clone()),
        id: Set(t.id.to_owned()),
        name: Set(t.name.to_owned()),
        token_hash: Set(t.hash.to_owned()),
        scopes: Set(Scope::join(t.scopes)),
        created_at: Set(t.now.to_owned()),
        expires_at: Set(t.expires_at),
        revoked_at: Set(None),
        last_used_at: Set(None),
    }
    .insert(conn)
    .await?;
    Ok(info(model))
}

fn record(m: token::Model) -> TokenRecord {
    TokenRecord {
        scopes: Scope::parse_list(&m.scopes),
        id: m.id,
        name: m.name,
        expires_at: m.expires_at,
        revoked_at: m.revoked_at,
        last_used_at: m.last_used_at,
    }
}

/// The token with this hash in the tenant with this slug, with its tenant (deleted or
/// not): authentication's lookup, one statement instead of one per table. Every
/// statement outside a transaction costs a round trip and sqlx's ping of the connection
/// when it returns to the pool (docs/benchmarks.md).
pub async fn find_with_tenant(
    conn: &impl ConnectionTrait,
    slug: &TenantSlug,
    hash: &str,
) -> Result<Option<(Tenant, TokenRecord)>, StoreError> {
    find_in(conn, Some(slug), hash).await
}

/// The token with this hash, whatever its tenant, with its tenant (the pull API's tenant
/// listing, whose path names no tenant; `tokens_token_hash_idx`).
pub async fn find_by_hash(
    conn: &impl ConnectionTrait,
    hash: &str,
) -> Result<Option<(Tenant, TokenRecord)>, StoreError> {
    find_in(conn, None, hash).await
}

/// The statement of [`find_by_hash`], for plan tests.
pub fn find_by_hash_statement(backend: DbBackend, hash: &str) -> Statement {
    find_query(None, hash).build(backend)
}

fn find_query(
    slug: Option<&TenantSlug>,
    hash: &str,
) -> sea_orm::SelectTwo<token::Entity, tenant::Entity> {
    let to_tenant: RelationDef = token::Entity::belongs_to(tenant::Entity)
        .from(token::Column::TenantId)
        .to(tenant::Column::Id)
        .into();
    let query = token::Entity::find()
        .select_also(tenant::Entity)
        .join(JoinType::InnerJoin, to_tenant)
        .filter(token::Column::TokenHash.eq(hash));
    match slug {
        Some(slug) => query.filter(tenant::Column::Slug.eq(slug.as_str())),
        None => query,
    }
}

async fn find_in(
    conn: &impl ConnectionTrait,
    slug: Option<&TenantSlug>,
    hash: &str,
) -> Result<Option<(Tenant, TokenRecord)>, StoreError> {
    match find_query(slug, hash).one(conn).await? {
        Some((token, Some(tenant))) => {
            Ok(Some((super::tenants::to_domain(tenant)?, record(token))))
        }
        _ => Ok(None),
    }
}

/// Records that a token was used at `now`.
pub async fn touch(
    conn: &impl ConnectionTrait,
    tenant_id: &TenantId,
    id: &str,
    now: &Timestamp,
) -> Result<(), StoreError> {
    token::Entity::update_many()
        .col_expr(token::Column::LastUsedAt, Expr::value(now))
        .filter(token::Column::TenantId.eq(tenant_id))
        .filter(token::Column::Id.eq(id))
        .exec(conn)
        .await?;
    Ok(())
}

pub async fn list(
    conn: &impl ConnectionTrait,
    tenant_id: &TenantId,
) -> Result<Vec<TokenInfo>, StoreError> {
    Ok(token::Entity::find()
        .filter(token::Column::TenantId.eq(tenant_id))
        .order_by_asc(token::Column::CreatedAt)
        .order_by_asc(token::Column::Id)
        .all(conn)
        .await?
        .into_iter()
        .map(info)
        .collect())
}

/// Revokes one live token; `false` when there is no live token with that id.
pub async fn revoke(
    conn: &impl ConnectionTrait,
    tenant_id: &TenantId,
    id: &str,
    now: &Timestamp,
) -> Result<bool, StoreError> {
    let result = token::Entity::update_many()
        .col_expr(token::Column::RevokedAt, Expr::value(now))
        .filter(token::Column::TenantId.eq(tenant_id))
        .filter(token::Column::Id.eq(id))
        .filter(token::Column::RevokedAt.is_null())
        .exec(conn)
        .await?;
    Ok(result.rows_affected > 0)
}

/// Revokes every live token of a tenant, or only those named `name`.
pub async fn revoke_all(
    conn: &impl ConnectionTrait,
    tenant_id: &TenantId,
    name: Option<&str>,
    now: &Timestamp,
) -> Result<u64, StoreError> {
    let mut update = token::Entity::update_many()
        .col_expr(token::Column::RevokedAt, Expr::value(now))
        .filter(token::Column::TenantId.eq(tenant_id))
        .filter(token::Column::RevokedAt.is_null());
    if let Some(name) = name {
        update = update.filter(token::Column::Name.eq(name));
    }
    Ok(update.exec(conn).await?.rows_affected)
}

/// An admin token row needed to authenticate a request.
#[derive(Debug, Clone)]
pub struct AdminRecord {
    pub id: String,
    pub name: String,
    pub expires_at: Option<Timestamp>,
    pub revoked_at: Option<Timestamp>,
}

pub async fn find_admin_by_hash(
    conn: &impl ConnectionTrait,
    hash: &str,
) -> Result<Option<AdminRecord>, StoreError> {
    Ok(admin_token::Entity::find()
        .filter(admin_token::Column::TokenHash.eq(hash))
        .one(conn)
        .await?
        .map(|m| AdminRecord {
            id: m.id,
            name: m.name,
            expires_at: m.expires_at,
            revoked_at: m.revoked_at,
        }))
}

/// Stores the bootstrap admin token under `name` (only `serve` calls this, at start).
/// A secret already stored, live or revoked, is left as it is: replicas started with the
/// same value agree, and a revoked bootstrap token stays revoked. A new secret revokes the
/// live tokens of that name and is stored; replicas doing so at once insert it once (the
/// hash is unique; the loser's insert does nothing).
pub async fn put_named_admin(
    conn: &impl ConnectionTrait,
    id: &str,
    name: &str,
    hash: &str,
    now: &Timestamp,
) -> Result<(), StoreError> {
    if find_admin_by_hash(conn, hash).await?.is_some() {
        return Ok(());
    }
    admin_token::Entity::update_many()
        .col_expr(admin_token::Column::RevokedAt, Expr::value(now))
        .filter(admin_token::Column::Name.eq(name))
        .filter(admin_token::Column::RevokedAt.is_null())
        .filter(admin_token::Column::TokenHash.ne(hash))
        .exec(conn)
        .await?;
    insert_admin(conn, id, name, hash, now, None).await
}

/// Inserts an admin token; a token of the same hash already stored is left as it is.
pub async fn insert_admin(
    conn: &impl ConnectionTrait,
    id: &str,
    name: &str,
    hash: &str,
    now: &Timestamp,
    expires_at: Option<&Timestamp>,
) -> Result<(), StoreError> {
    let insert = admin_token::Entity::insert(admin_token::ActiveModel {
        id: Set(id.to_owned()),
        name: Set(name.to_owned()),
        token_hash: Set(hash.to_owned()),
        created_at: Set(now.to_owned()),
        expires_at: Set(expires_at.cloned()),
        revoked_at: Set(None),
        last_used_at: Set(None),
    })
    .on_conflict(
        sea_orm::sea_query::OnConflict::column(admin_token::Column::TokenHash)
            .do_nothing()
            .to_owned(),
    )
    .try_insert();
    insert.exec(conn).await?;
    Ok(())
}

/// An operator's admin token as listed (never its hash).
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct AdminTokenInfo {
    pub id: String,
    /// The operator it belongs to.
    pub name: String,
    pub created_at: Timestamp,
    pub expires_at: Option<Timestamp>,
    pub revoked_at: Option<Timestamp>,
    pub last_used_at: Option<Timestamp>,
}

fn admin_info(m: admin_token::Model) -> AdminTokenInfo {
    AdminTokenInfo {
        id: m.id,
        name: m.name,
        created_at: m.created_at,
        expires_at: m.expires_at,
        revoked_at: m.revoked_at,
        last_used_at: m.last_used_at,
    }
}

/// Every admin token, oldest first.
pub async fn list_admin(conn: &impl ConnectionTrait) -> Result<Vec<AdminTokenInfo>, StoreError> {
    Ok(admin_token::Entity::find()
        .order_by_asc(admin_token::Column::Id)
        .all(conn)
        .await?
        .into_iter()
        .map(admin_info)
        .collect())
}

/// The admin token `id`, if stored.
pub async fn find_admin(
    conn: &impl ConnectionTrait,
    id: &str,
) -> Result<Option<AdminTokenInfo>, StoreError> {
    Ok(admin_token::Entity::find_by_id(id.to_owned())
        .one(conn)
        .await?
        .map(admin_info))
}

/// Revokes the live admin token `id`; false when there is none.
pub async fn revoke_admin(
    conn: &impl ConnectionTrait,
    id: &str,
    now: &Timestamp,
) -> Result<bool, StoreError> {
    Ok(admin_token::Entity::update_many()
        .col_expr(admin_token::Column::RevokedAt, Expr::value(now))
        .filter(admin_token::Column::Id.eq(id))
        .filter(admin_token::Column::RevokedAt.is_null())
        .exec(conn)
        .await?
        .rows_affected
        == 1)
}

/// How many admin tokens are not revoked.
pub async fn count_live_admin(conn: &impl ConnectionTrait) -> Result<u64, StoreError> {
    Ok(admin_token::Entity::find()
        .filter(admin_token::Column::RevokedAt.is_null())
        .count(conn)
        .await?)
}

/// Per tenant slug, how many live tokens expire after `now` and before `until`.
pub async fn expiring_between(
    conn: &impl ConnectionTrait,
    now: &Timestamp,
    until: &Timestamp,
) -> Result<Vec<(String, i64)>, StoreError> {
    let sql = "SELECT t.slug AS slug, CAST(COUNT(*) AS BIGINT) AS n FROM tokens k \
               JOIN tenants t ON t.id = k.tenant_id \
               WHERE k.revoked_at IS NULL AND k.expires_at > $1 AND k.expires_at <= $2 \
               AND t.deleted_at IS NULL GROUP BY t.slug";
    let rows = conn
        .query_all_raw(super::statement(conn, sql, vec![now.into(), until.into()]))
        .await?;
    rows.into_iter()
        .map(|row| Ok((row.try_get("", "slug")?, row.try_get("", "n")?)))
        .collect()
}
