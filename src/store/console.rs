//! Operator console sessions (docs/decisions.md, Operator console), by the SHA-256 of the
//! session cookie.

use sea_orm::ConnectionTrait;

use super::{StoreError, statement};
use crate::domain::Timestamp;

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
