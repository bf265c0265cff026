//! Removal of a deleted tenant's data in bounded batches, so that purging a tenant of
//! 100 000 users never holds one long transaction (DESIGN 15).

use sea_orm::ConnectionTrait;

use super::{StoreError, statement};
use crate::domain::{TenantId, Timestamp};

/// Tables holding a tenant's resources, in the order a purge empties them (memberships
/// first: they reference both users and groups).
pub const RESOURCE_TABLES: [&str; 3] = ["group_members", "users", "groups"];

/// Deletes at most `limit` rows of `table` (one of [`RESOURCE_TABLES`]) of the tenant;
/// returns how many went.
pub async fn delete_batch(
    conn: &impl ConnectionTrait,
    table: &str,
    tenant_id: &TenantId,
    limit: u64,
) -> Result<u64, StoreError> {
    let key = match table {
        "group_members" => "group_id, member_id",
        "users" | "groups" => "id",
        other => return Err(StoreError::Corrupt(format!("no purge of table {other}"))),
    };
    let limit = i64::try_from(limit).unwrap_or(i64::MAX);
    // The subquery picks the batch; row values compare on both backends.
    let sql = format!(
        "DELETE FROM {table} WHERE tenant_id = $1 AND ({key}) IN \
         (SELECT {key} FROM {table} WHERE tenant_id = $1 LIMIT $2)"
    );
    let result = conn
        .execute_raw(statement(conn, &sql, vec![tenant_id.into(), limit.into()]))
        .await?;
    Ok(result.rows_affected())
}

/// Deletes the tenant's tokens and its row, and retires its slug: the last step, once its
/// events are gone. Journal entries of requests still queued when the purge emptied the
/// journal go here too (the journal has no foreign key to `tenants`).
pub async fn remove_tenant(
    conn: &impl ConnectionTrait,
    tenant_id: &TenantId,
    slug: &str,
    now: &Timestamp,
) -> Result<(), StoreError> {
    conn.execute_raw(statement(
        conn,
        "INSERT INTO retired_slugs (slug, retired_at) VALUES ($1, $2)",
        vec![slug.into(), now.into()],
    ))
    .await?;
    super::sets::delete_tenant_receivers(conn, tenant_id).await?;
    for sql in [
        "DELETE FROM outbox WHERE tenant_id = $1",
        "DELETE FROM setup_links WHERE tenant_id = $1",
        "DELETE FROM tokens WHERE tenant_id = $1",
        "DELETE FROM tenant_schemas WHERE tenant_id = $1",
        "DELETE FROM request_journal WHERE tenant_id = $1",
        "DELETE FROM tenants WHERE id = $1",
    ] {
        conn.execute_raw(statement(conn, sql, vec![tenant_id.into()]))
            .await?;
    }
    Ok(())
}
