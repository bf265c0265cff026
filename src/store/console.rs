//! Operator console sessions (docs/decisions.md, Operator console), by the SHA-256 of the
//! session cookie.

use sea_orm::{ConnectionTrait, DbBackend, Statement};

use super::{StoreError, statement};
use crate::domain::{TenantId, Timestamp};

/// A signed-in browser.
#[derive(Debug, Clone)]
pub struct SessionRow {
    /// The admin token it signed in with.
    pub token_id: String,
    /// The token every form of the session carries.
    pub csrf: String,
    pub expires_at: Timestamp,
}

pub async fn insert(
    conn: &impl ConnectionTrait,
    session_hash: &str,
    row: &SessionRow,
    now: &Timestamp,
) -> Result<(), StoreError> {
    conn.execute_raw(statement(
        conn,
        "INSERT INTO console_sessions (session_hash, token_id, csrf, created_at, expires_at) \
         VALUES ($1, $2, $3, $4, $5)",
        vec![
            session_hash.into(),
            row.token_id.clone().into(),
            row.csrf.clone().into(),
            now.clone().into(),
            row.expires_at.clone().into(),
        ],
    ))
    .await?;
    Ok(())
}

/// The session with this hash that has not expired at `now`.
pub async fn find(
    conn: &impl ConnectionTrait,
    session_hash: &str,
    now: &Timestamp,
) -> Result<Option<SessionRow>, StoreError> {
    let row = conn
        .query_one_raw(statement(
            conn,
            "SELECT token_id, csrf, expires_at FROM console_sessions \
             WHERE session_hash = $1 AND expires_at > $2",
            vec![session_hash.into(), now.clone().into()],
        ))
        .await?;
    row.map(|r| {
        Ok(SessionRow {
            token_id: r.try_get("", "token_id")?,
            csrf: r.try_get("", "csrf")?,
            expires_at: r.try_get("", "expires_at")?,
        })
    })
    .transpose()
}

/// Ends the session with this hash, and every expired one.
pub async fn delete(
    conn: &impl ConnectionTrait,
    session_hash: &str,
    now: &Timestamp,
) -> Result<(), StoreError> {
    conn.execute_raw(statement(
        conn,
        "DELETE FROM console_sessions WHERE session_hash = $1 OR expires_at <= $2",
        vec![session_hash.into(), now.clone().into()],
    ))
    .await?;
    Ok(())
}

/// Counts of a tenant's events stop here: a backlog this large reads as "at least".
pub const BACKLOG_CAP: i64 = 10_000;

/// One row of the console's tenant list: the tenant and its health.
#[derive(Debug, Clone)]
pub struct TenantHealthRow {
    pub slug: String,
    /// The newest request its IdP sent (time, method, status).
    pub last_request: Option<(Timestamp, String, i32)>,
    /// Its requests answered 4xx or 5xx since the cutoff.
    pub errors: i64,
    /// Events not yet published (numbered or waiting to be), at most `BACKLOG_CAP + 1`.
    pub backlog: i64,
    /// When the oldest of them was written.
    pub oldest_unpublished: Option<Timestamp>,
    /// Since when its brake holds its events, and how many it holds.
    pub held: Option<(Timestamp, i64)>,
}

/// The page of live tenants after the slug `after` whose slug contains `search`, in slug
/// order, each with its health, in one statement: the tenants along the slug index, every
/// figure an index probe or a range of the tenant's own rows (its journal, bounded by
/// `SCIMBUS_JOURNAL_ENTRIES`; its backlog, counted to `BACKLOG_CAP + 1`), nothing written.
pub fn tenant_health_statement(
    backend: DbBackend,
    search: Option<&str>,
    after: &str,
    errors_since: &Timestamp,
    limit: u64,
) -> Statement {
    let cap = BACKLOG_CAP + 1;
    let unpublished = "FROM outbox o WHERE o.tenant_id = t.id AND o.published_at IS NULL \
                       AND o.failed_at IS NULL";
    let last = |column: &str| {
        format!(
            "(SELECT j.{column} FROM request_journal j WHERE j.tenant_id = t.id \
             ORDER BY j.id DESC LIMIT 1) AS last_{column}"
        )
    };
    let mut values: Vec<sea_orm::Value> = vec![after.into(), errors_since.clone().into()];
    let search_clause = match search {
        Some(s) => {
            let escaped = s
                .trim()
                .to_lowercase()
                .replace('\\', "\\\\")
                .replace('%', "\\%")
                .replace('_', "\\_");
            values.push(format!("%{escaped}%").into());
            format!(" AND t.slug LIKE ${} ESCAPE '\\'", values.len())
        }
        None => String::new(),
    };
    values.push(i64::try_from(limit).unwrap_or(i64::MAX).into());
    let sql = format!(
        "SELECT t.slug AS slug, {at}, {method}, {status}, \
         (SELECT COUNT(*) FROM request_journal j WHERE j.tenant_id = t.id AND j.at >= $2 \
          AND j.status >= 400) AS errors, \
         (SELECT COUNT(*) FROM (SELECT 1 AS x {unpublished} LIMIT {cap}) n) \
          + (SELECT COUNT(*) FROM (SELECT 1 AS x FROM outbox_pending p WHERE p.tenant_id = t.id \
             LIMIT {cap}) n) AS backlog, \
         (SELECT o.created_at {unpublished} ORDER BY o.sequence LIMIT 1) AS oldest_numbered, \
         (SELECT p.created_at FROM outbox_pending p WHERE p.tenant_id = t.id \
          ORDER BY p.position LIMIT 1) AS oldest_waiting, \
         (SELECT b.held_at {held}) AS held_at, \
         (SELECT CAST(t.event_seq - b.held_from + 1 AS BIGINT) {held}) AS held \
         FROM tenants t WHERE t.deleted_at IS NULL AND t.slug > $1{search_clause} \
         ORDER BY t.slug LIMIT ${limit}",
        held = "FROM tenant_brakes b WHERE b.tenant_id = t.id AND b.held_from IS NOT NULL",
        at = last("at"),
        method = last("method"),
        status = last("status"),
        limit = values.len(),
    );
    super::backend_statement(backend, &sql, values)
}

/// The page of [`tenant_health_statement`].
pub async fn tenant_health(
    conn: &impl ConnectionTrait,
    search: Option<&str>,
    after: &str,
    errors_since: &Timestamp,
    limit: u64,
) -> Result<Vec<TenantHealthRow>, StoreError> {
    let stmt = tenant_health_statement(
        conn.get_database_backend(),
        search,
        after,
        errors_since,
        limit,
    );
    let rows = conn.query_all_raw(stmt).await?;
    rows.into_iter()
        .map(|row| {
            let at: Option<Timestamp> = row.try_get("", "last_at")?;
            let method: Option<String> = row.try_get("", "last_method")?;
            let status: Option<i32> = row.try_get("", "last_status")?;
            let last_request = match (at, method, status) {
                (Some(at), Some(method), Some(status)) => Some((at, method, status)),
                _ => None,
            };
            let oldest = match (
                row.try_get::<Option<Timestamp>>("", "oldest_numbered")?,
                row.try_get::<Option<Timestamp>>("", "oldest_waiting")?,
            ) {
                (Some(a), Some(b)) => Some(Ord::min(a, b)),
                (a, b) => a.or(b),
            };
            let held_at: Option<Timestamp> = row.try_get("", "held_at")?;
            let held: Option<i64> = row.try_get("", "held")?;
            Ok(TenantHealthRow {
                slug: row.try_get("", "slug")?,
                last_request,
                errors: row.try_get("", "errors")?,
                backlog: row.try_get("", "backlog")?,
                oldest_unpublished: oldest,
                held: held_at.map(|at| (at, held.unwrap_or(0))),
            })
        })
        .collect()
}

/// One minute of a tenant's events: how many were written, and the longest any of them
/// waited for the relay (until published or given up; until `now` if neither yet).
#[derive(Debug, Clone, PartialEq)]
pub struct EventMinute {
    /// `YYYY-MM-DDTHH:MM`, UTC.
    pub minute: String,
    pub events: i64,
    pub max_lag_seconds: f64,
}

/// The tenant's events written since `since`, by minute: a range of its
/// `(tenant_id, created_at)` index, bounded by the window, never the tenant's history.
pub fn event_minutes_statement(
    backend: DbBackend,
    tenant_id: &TenantId,
    since: &Timestamp,
    now: &Timestamp,
) -> Statement {
    let waited = match backend {
        DbBackend::Postgres => {
            "EXTRACT(EPOCH FROM (CAST(COALESCE(published_at, failed_at, $3) AS timestamptz) \
             - CAST(created_at AS timestamptz)))"
        }
        // Julian days hold milliseconds only approximately: rounded back to them.
        _ => {
            "ROUND((julianday(COALESCE(published_at, failed_at, $3)) - julianday(created_at)) \
             * 86400.0, 3)"
        }
    };
    super::backend_statement(
        backend,
        &format!(
            "SELECT substr(created_at, 1, 16) AS minute, COUNT(*) AS events, \
             CAST(MAX({waited}) AS DOUBLE PRECISION) AS lag \
             FROM outbox WHERE tenant_id = $1 AND created_at >= $2 \
             GROUP BY substr(created_at, 1, 16) ORDER BY minute"
        ),
        vec![tenant_id.into(), since.clone().into(), now.clone().into()],
    )
}

/// The minutes of [`event_minutes_statement`] that had events, in order.
pub async fn event_minutes(
    conn: &impl ConnectionTrait,
    tenant_id: &TenantId,
    since: &Timestamp,
    now: &Timestamp,
) -> Result<Vec<EventMinute>, StoreError> {
    let stmt = event_minutes_statement(conn.get_database_backend(), tenant_id, since, now);
    let rows = conn.query_all_raw(stmt).await?;
    rows.into_iter()
        .map(|row| {
            Ok(EventMinute {
                minute: row.try_get("", "minute")?,
                events: row.try_get("", "events")?,
                max_lag_seconds: row
                    .try_get::<Option<f64>>("", "lag")?
                    .unwrap_or(0.0)
                    .max(0.0),
            })
        })
        .collect()
}
