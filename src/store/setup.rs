//! Customer setup links (docs/decisions.md, Setup links): one row each, found by the SHA-256 of the link's
//! secret; the browser that used a link is known by the hash of its session cookie.

use sea_orm::ConnectionTrait;

use super::{StoreError, statement};
use crate::domain::{TenantId, Timestamp};

/// A setup link as stored.
#[derive(Debug, Clone)]
pub struct SetupLinkRow {
    pub id: String,
    pub tenant_id: TenantId,
    pub created_at: Timestamp,
    pub created_by: String,
    pub expires_at: Timestamp,
    /// When its token was revealed (the link is used).
    pub used_at: Option<Timestamp>,
    /// The hash of the session cookie of the browser that used it.
    pub session_hash: Option<String>,
    /// The token it revealed.
    pub token_id: Option<String>,
    pub revoked_at: Option<Timestamp>,
}

const COLUMNS: &str = "id, tenant_id, created_at, created_by, expires_at, used_at, session_hash, token_id, revoked_at";

fn row(r: &sea_orm::QueryResult) -> Result<SetupLinkRow, StoreError> {
    Ok(SetupLinkRow {
        id: r.try_get("", "id")?,
        tenant_id: r.try_get("", "tenant_id")?,
        created_at: r.try_get("", "created_at")?,
        created_by: r.try_get("", "created_by")?,
        expires_at: r.try_get("", "expires_at")?,
        used_at: r.try_get("", "used_at")?,
        session_hash: r.try_get("", "session_hash")?,
        token_id: r.try_get("", "token_id")?,
        revoked_at: r.try_get("", "revoked_at")?,
    })
}

pub async fn insert(
    conn: &impl ConnectionTrait,
    link: &SetupLinkRow,
    link_hash: &str,
) -> Result<(), StoreError> {
    conn.execute_raw(statement(
        conn,
        "INSERT INTO setup_links (id, tenant_id, link_hash, created_at, created_by, expires_at) \
         VALUES ($1, $2, $3, $4, $5, $6)",
        vec![
            link.id.clone().into(),
            link.tenant_id.clone().into(),
            link_hash.into(),
            link.created_at.clone().into(),
            link.created_by.clone().into(),
            link.expires_at.clone().into(),
        ],
    ))
    .await?;
    Ok(())
}

/// The link with this secret's hash.
pub async fn by_hash(
    conn: &impl ConnectionTrait,
    link_hash: &str,
) -> Result<Option<SetupLinkRow>, StoreError> {
    let found = conn
        .query_one_raw(statement(
            conn,
            &format!("SELECT {COLUMNS} FROM setup_links WHERE link_hash = $1"),
            vec![link_hash.into()],
        ))
        .await?;
    found.as_ref().map(row).transpose()
}

/// The tenant's links, newest first.
pub async fn list(
    conn: &impl ConnectionTrait,
    tenant_id: &TenantId,
) -> Result<Vec<SetupLinkRow>, StoreError> {
    let rows = conn
        .query_all_raw(statement(
            conn,
            &format!("SELECT {COLUMNS} FROM setup_links WHERE tenant_id = $1 ORDER BY id DESC"),
            vec![tenant_id.clone().into()],
        ))
        .await?;
    rows.iter().map(row).collect()
}

/// Marks the tenant's link `id` revoked at `now`; whether it was there (revoked before or
/// not).
pub async fn revoke(
    conn: &impl ConnectionTrait,
    tenant_id: &TenantId,
    id: &str,
    now: &Timestamp,
) -> Result<bool, StoreError> {
    let done = conn
        .execute_raw(statement(
            conn,
            "UPDATE setup_links SET revoked_at = COALESCE(revoked_at, $3) \
             WHERE tenant_id = $1 AND id = $2",
            vec![tenant_id.clone().into(), id.into(), now.clone().into()],
        ))
        .await?;
    Ok(done.rows_affected() == 1)
}

/// Uses the link `id`: only the first of concurrent uses of a live link wins (`true`).
pub async fn mark_used(
    conn: &impl ConnectionTrait,
    id: &str,
    session_hash: &str,
    token_id: &str,
    now: &Timestamp,
) -> Result<bool, StoreError> {
    let done = conn
        .execute_raw(statement(
            conn,
            "UPDATE setup_links SET used_at = $2, session_hash = $3, token_id = $4 \
             WHERE id = $1 AND used_at IS NULL AND revoked_at IS NULL AND expires_at > $2",
            vec![
                id.into(),
                now.clone().into(),
                session_hash.into(),
                token_id.into(),
            ],
        ))
        .await?;
    Ok(done.rows_affected() == 1)
}
