//! The request journal's rows (`http::journal` captures them, `service::journal` writes
//! and reads them): per tenant, newest first by `id` (a UUIDv7), on the index
//! `(tenant_id, id)`.

use sea_orm::ConnectionTrait;

use super::{StoreError, statement};
use crate::domain::{JournalEntry, JournalQuery, TenantId, Timestamp};

/// Inserts a batch of entries in one statement.
pub async fn insert(
    conn: &impl ConnectionTrait,
    entries: &[JournalEntry],
) -> Result<(), StoreError> {
    if entries.is_empty() {
        return Ok(());
    }
    let mut sql = String::from(
        "INSERT INTO request_journal (id, tenant_id, at, method, target, status, scim_type, \
         duration_ms, request_id, token_name, subject, request_body, response_body) VALUES ",
    );
    let mut values: Vec<sea_orm::Value> = Vec::with_capacity(entries.len() * 13);
    for (i, e) in entries.iter().enumerate() {
        let row: [sea_orm::Value; 13] = [
            e.id.clone().into(),
            e.tenant_id.clone().into(),
            e.at.clone().into(),
            e.method.clone().into(),
            e.target.clone().into(),
            e.status.into(),
            e.scim_type.clone().into(),
            e.duration_ms.into(),
            e.request_id.clone().into(),
            e.token_name.clone().into(),
            e.subject.clone().into(),
            e.request_body.clone().into(),
            e.response_body.clone().into(),
        ];
        let first = values.len();
        let placeholders: Vec<String> =
            (1..=row.len()).map(|n| format!("${}", first + n)).collect();
        if i > 0 {
            sql.push_str(", ");
        }
        sql.push('(');
        sql.push_str(&placeholders.join(", "));
        sql.push(')');
        values.extend(row);
    }
    conn.execute_raw(statement(conn, &sql, values)).await?;
    Ok(())
}

/// Keeps the tenant's newest `keep` entries younger than `cutoff`; returns how many went.
pub async fn prune(
    conn: &impl ConnectionTrait,
    tenant_id: &TenantId,
    keep: u64,
    cutoff: &Timestamp,
) -> Result<u64, StoreError> {
    let keep = i64::try_from(keep).unwrap_or(i64::MAX);
    let sql = "DELETE FROM request_journal WHERE tenant_id = $1 AND (at < $2 OR id < \
               COALESCE((SELECT id FROM request_journal WHERE tenant_id = $1 \
               ORDER BY id DESC LIMIT 1 OFFSET $3), ''))";
    let done = conn
        .execute_raw(statement(
            conn,
            sql,
            vec![tenant_id.into(), cutoff.into(), (keep - 1).max(0).into()],
        ))
        .await?;
    Ok(done.rows_affected())
}

/// The tenant's entries, newest first.
pub async fn list(
    conn: &impl ConnectionTrait,
    tenant_id: &TenantId,
    q: &JournalQuery<'_>,
) -> Result<Vec<JournalEntry>, StoreError> {
    let mut sql = String::from(
        "SELECT id, tenant_id, at, method, target, status, scim_type, duration_ms, \
         request_id, token_name, subject, request_body, response_body \
         FROM request_journal WHERE tenant_id = $1",
    );
    let mut values: Vec<sea_orm::Value> = vec![tenant_id.into()];
    let mut add = |clause: &str, value: sea_orm::Value, sql: &mut String| {
        values.push(value);
        sql.push_str(&clause.replace('?', &format!("${}", values.len())));
    };
    if let Some(before) = q.before {
        add(" AND id < ?", before.into(), &mut sql);
    }
    if let Some(since) = q.since {
        add(" AND at >= ?", since.into(), &mut sql);
    }
    if let Some((from, to)) = q.status {
        add(" AND status >= ?", from.into(), &mut sql);
        add(" AND status < ?", to.into(), &mut sql);
    }
    if let Some(method) = q.method {
        add(" AND method = ?", method.into(), &mut sql);
    }
    let limit = i64::try_from(q.limit).unwrap_or(i64::MAX);
    add(" ORDER BY id DESC LIMIT ?", limit.into(), &mut sql);
    let rows = conn.query_all_raw(statement(conn, &sql, values)).await?;
    rows.into_iter()
        .map(|row| {
            Ok(JournalEntry {
                id: row.try_get("", "id")?,
                tenant_id: row.try_get("", "tenant_id")?,
                at: row.try_get("", "at")?,
                method: row.try_get("", "method")?,
                target: row.try_get("", "target")?,
                status: row.try_get("", "status")?,
                scim_type: row.try_get("", "scim_type")?,
                duration_ms: row.try_get("", "duration_ms")?,
                request_id: row.try_get("", "request_id")?,
                token_name: row.try_get("", "token_name")?,
                subject: row.try_get("", "subject")?,
                request_body: row.try_get("", "request_body")?,
                response_body: row.try_get("", "response_body")?,
            })
        })
        .collect()
}

/// Erasure: removes the tenant's entries about `id` (their subject, or any mention of it in
/// the target or a body); returns how many went.
pub async fn erase(
    conn: &impl ConnectionTrait,
    tenant_id: &TenantId,
    id: &str,
) -> Result<u64, StoreError> {
    let pattern = format!(
        "%{}%",
        id.replace('\\', "\\\\")
            .replace('%', "\\%")
            .replace('_', "\\_")
    );
    let sql = "DELETE FROM request_journal WHERE tenant_id = $1 AND (subject LIKE $2 ESCAPE '\\' \
               OR target LIKE $2 ESCAPE '\\' OR request_body LIKE $2 ESCAPE '\\' \
               OR response_body LIKE $2 ESCAPE '\\')";
    let done = conn
        .execute_raw(statement(conn, sql, vec![tenant_id.into(), pattern.into()]))
        .await?;
    Ok(done.rows_affected())
}

/// Removes every entry of the tenant (its purge); returns how many went.
pub async fn delete_all(
    conn: &impl ConnectionTrait,
    tenant_id: &TenantId,
) -> Result<u64, StoreError> {
    let done = conn
        .execute_raw(statement(
            conn,
            "DELETE FROM request_journal WHERE tenant_id = $1",
            vec![tenant_id.into()],
        ))
        .await?;
    Ok(done.rows_affected())
}
