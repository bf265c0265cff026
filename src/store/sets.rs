//! Security event tokens' rows: signing keys (sealed), receivers of a tenant's SETs with
//! their acknowledged position in its event sequence, and acknowledgements received past
//! that position (RFC 8936 acknowledges SETs one by one, in any order).

use sea_orm::ConnectionTrait;

use super::{StoreError, json_column, statement};
use crate::domain::{TenantId, Timestamp};

/// A signing key as stored.
#[derive(Debug, Clone)]
pub struct KeyRow {
    pub kid: String,
    pub alg: String,
    pub public_jwk: serde_json::Value,
    pub sealed_key: Vec<u8>,
    pub created_at: Timestamp,
    /// When a newer key of its algorithm replaced it (it signs no more).
    pub replaced_at: Option<Timestamp>,
    /// When it leaves the JWKS.
    pub unpublish_at: Option<Timestamp>,
}

pub async fn insert_key(conn: &impl ConnectionTrait, key: &KeyRow) -> Result<(), StoreError> {
    conn.execute_raw(statement(
        conn,
        "INSERT INTO set_keys (kid, alg, public_jwk, sealed_key, created_at, replaced_at, \
         unpublish_at) VALUES ($1, $2, $3, $4, $5, NULL, NULL)",
        vec![
            key.kid.clone().into(),
            key.alg.clone().into(),
            key.public_jwk.to_string().into(),
            key.sealed_key.clone().into(),
            key.created_at.clone().into(),
        ],
    ))
    .await?;
    Ok(())
}

/// Marks every signing key of `alg` but `kid` replaced, published until `unpublish_at`.
pub async fn replace_keys(
    conn: &impl ConnectionTrait,
    alg: &str,
    kid: &str,
    now: &Timestamp,
    unpublish_at: &Timestamp,
) -> Result<u64, StoreError> {
    let done = conn
        .execute_raw(statement(
            conn,
            "UPDATE set_keys SET replaced_at = $3, unpublish_at = $4 \
             WHERE alg = $1 AND kid <> $2 AND replaced_at IS NULL",
            vec![alg.into(), kid.into(), now.into(), unpublish_at.into()],
        ))
        .await?;
    Ok(done.rows_affected())
}

/// Every key, newest first.
pub async fn keys(conn: &impl ConnectionTrait) -> Result<Vec<KeyRow>, StoreError> {
    let rows = conn
        .query_all_raw(statement(
            conn,
            "SELECT kid, alg, public_jwk, sealed_key, created_at, replaced_at, unpublish_at \
             FROM set_keys ORDER BY created_at DESC, kid DESC",
            vec![],
        ))
        .await?;
    rows.iter()
        .map(|row| {
            Ok(KeyRow {
                kid: row.try_get("", "kid")?,
                alg: row.try_get("", "alg")?,
                public_jwk: json_column(row, "public_jwk")?,
                sealed_key: row.try_get("", "sealed_key")?,
                created_at: row.try_get("", "created_at")?,
                replaced_at: row.try_get("", "replaced_at")?,
                unpublish_at: row.try_get("", "unpublish_at")?,
            })
        })
        .collect()
}

/// Removes keys whose publication ended before `now`; returns how many went.
pub async fn delete_unpublished_keys(
    conn: &impl ConnectionTrait,
    now: &Timestamp,
) -> Result<u64, StoreError> {
    let done = conn
        .execute_raw(statement(
            conn,
            "DELETE FROM set_keys WHERE unpublish_at IS NOT NULL AND unpublish_at < $1",
            vec![now.into()],
        ))
        .await?;
    Ok(done.rows_affected())
}

/// A receiver as stored.
#[derive(Debug, Clone)]
pub struct ReceiverRow {
    pub id: String,
    pub tenant_id: TenantId,
    pub name: String,
    pub form: String,
    pub events: Vec<String>,
    pub signals: bool,
    pub alg: String,
    pub audience: String,
    pub position: i64,
    pub created_at: Timestamp,
    pub last_polled_at: Option<Timestamp>,
}

const RECEIVER_COLUMNS: &str = "id, tenant_id, name, form, events, signals, alg, audience, \
                                position, created_at, last_polled_at";

fn receiver(row: &sea_orm::QueryResult) -> Result<ReceiverRow, StoreError> {
    let events: String = row.try_get("", "events")?;
    Ok(ReceiverRow {
        id: row.try_get("", "id")?,
        tenant_id: row.try_get("", "tenant_id")?,
        name: row.try_get("", "name")?,
        form: row.try_get("", "form")?,
        events: serde_json::from_str(&events)
            .map_err(|e| StoreError::Corrupt(format!("set_receivers.events: {e}")))?,
        signals: row.try_get("", "signals")?,
        alg: row.try_get("", "alg")?,
        audience: row.try_get("", "audience")?,
        position: row.try_get("", "position")?,
        created_at: row.try_get("", "created_at")?,
        last_polled_at: row.try_get("", "last_polled_at")?,
    })
}

pub async fn insert_receiver(
    conn: &impl ConnectionTrait,
    r: &ReceiverRow,
    token_hash: &str,
) -> Result<(), StoreError> {
    let events = serde_json::to_string(&r.events)
        .map_err(|e| StoreError::Corrupt(format!("set_receivers.events: {e}")))?;
    conn.execute_raw(statement(
        conn,
        &format!(
            "INSERT INTO set_receivers ({RECEIVER_COLUMNS}, token_hash) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, NULL, $11)"
        ),
        vec![
            r.id.clone().into(),
            r.tenant_id.clone().into(),
            r.name.clone().into(),
            r.form.clone().into(),
            events.into(),
            r.signals.into(),
            r.alg.clone().into(),
            r.audience.clone().into(),
            r.position.into(),
            r.created_at.clone().into(),
            token_hash.into(),
        ],
    ))
    .await?;
    Ok(())
}

/// The tenant's receivers, in id order.
pub async fn receivers(
    conn: &impl ConnectionTrait,
    tenant_id: &TenantId,
) -> Result<Vec<ReceiverRow>, StoreError> {
    let rows = conn
        .query_all_raw(statement(
            conn,
            &format!(
                "SELECT {RECEIVER_COLUMNS} FROM set_receivers WHERE tenant_id = $1 ORDER BY id"
            ),
            vec![tenant_id.into()],
        ))
        .await?;
    rows.iter().map(receiver).collect()
}

/// One receiver of the tenant; with `lock`, its row is locked for the transaction
/// (PostgreSQL; SQLite writes one at a time anyway).
pub async fn find_receiver(
    conn: &impl ConnectionTrait,
    tenant_id: &TenantId,
    id: &str,
    lock: bool,
) -> Result<Option<ReceiverRow>, StoreError> {
    let lock = if lock && conn.get_database_backend() == sea_orm::DbBackend::Postgres {
        " FOR UPDATE"
    } else {
        ""
    };
    let row = conn
        .query_one_raw(statement(
            conn,
            &format!(
                "SELECT {RECEIVER_COLUMNS} FROM set_receivers WHERE tenant_id = $1 AND id = $2{lock}"
            ),
            vec![tenant_id.into(), id.into()],
        ))
        .await?;
    row.as_ref().map(receiver).transpose()
}

/// The receiver whose poll credential hashes to `hash`.
pub async fn receiver_by_hash(
    conn: &impl ConnectionTrait,
    hash: &str,
) -> Result<Option<ReceiverRow>, StoreError> {
    let row = conn
        .query_one_raw(statement(
            conn,
            &format!("SELECT {RECEIVER_COLUMNS} FROM set_receivers WHERE token_hash = $1"),
            vec![hash.into()],
        ))
        .await?;
    row.as_ref().map(receiver).transpose()
}

/// Deletes a receiver and its acknowledgements; whether it existed.
pub async fn delete_receiver(
    conn: &impl ConnectionTrait,
    tenant_id: &TenantId,
    id: &str,
) -> Result<bool, StoreError> {
    conn.execute_raw(statement(
        conn,
        "DELETE FROM set_acks WHERE receiver_id = $1",
        vec![id.into()],
    ))
    .await?;
    let done = conn
        .execute_raw(statement(
            conn,
            "DELETE FROM set_receivers WHERE tenant_id = $1 AND id = $2",
            vec![tenant_id.into(), id.into()],
        ))
        .await?;
    Ok(done.rows_affected() > 0)
}

/// Every receiver of the tenant and their acknowledgements (tenant removal).
pub async fn delete_tenant_receivers(
    conn: &impl ConnectionTrait,
    tenant_id: &TenantId,
) -> Result<(), StoreError> {
    for sql in [
        "DELETE FROM set_acks WHERE receiver_id IN \
         (SELECT id FROM set_receivers WHERE tenant_id = $1)",
        "DELETE FROM set_receivers WHERE tenant_id = $1",
    ] {
        conn.execute_raw(statement(conn, sql, vec![tenant_id.into()]))
            .await?;
    }
    Ok(())
}

/// Moves the receiver to `position` (everything through it acknowledged) and drops the
/// acknowledgements it covers.
pub async fn set_position(
    conn: &impl ConnectionTrait,
    id: &str,
    position: i64,
) -> Result<(), StoreError> {
    conn.execute_raw(statement(
        conn,
        "UPDATE set_receivers SET position = $2 WHERE id = $1",
        vec![id.into(), position.into()],
    ))
    .await?;
    conn.execute_raw(statement(
        conn,
        "DELETE FROM set_acks WHERE receiver_id = $1 AND sequence <= $2",
        vec![id.into(), position.into()],
    ))
    .await?;
    Ok(())
}

/// Forgets the receiver's acknowledgements (a replay delivers everything again).
pub async fn clear_acks(conn: &impl ConnectionTrait, id: &str) -> Result<(), StoreError> {
    conn.execute_raw(statement(
        conn,
        "DELETE FROM set_acks WHERE receiver_id = $1",
        vec![id.into()],
    ))
    .await?;
    Ok(())
}

pub async fn touch_receiver(
    conn: &impl ConnectionTrait,
    id: &str,
    now: &Timestamp,
) -> Result<(), StoreError> {
    conn.execute_raw(statement(
        conn,
        "UPDATE set_receivers SET last_polled_at = $2 WHERE id = $1",
        vec![id.into(), now.into()],
    ))
    .await?;
    Ok(())
}

/// Records acknowledgements `(jti, sequence)`; one already recorded is kept.
pub async fn insert_acks(
    conn: &impl ConnectionTrait,
    receiver_id: &str,
    acks: &[(String, i64)],
) -> Result<(), StoreError> {
    for chunk in acks.chunks(500) {
        let mut sql = String::from("INSERT INTO set_acks (receiver_id, jti, sequence) VALUES ");
        let mut values: Vec<sea_orm::Value> = vec![receiver_id.into()];
        for (i, (jti, sequence)) in chunk.iter().enumerate() {
            if i > 0 {
                sql.push_str(", ");
            }
            let n = values.len();
            sql.push_str(&format!("($1, ${}, ${})", n + 1, n + 2));
            values.push(jti.clone().into());
            values.push((*sequence).into());
        }
        sql.push_str(" ON CONFLICT (receiver_id, jti) DO NOTHING");
        conn.execute_raw(statement(conn, &sql, values)).await?;
    }
    Ok(())
}

/// The acknowledged jtis past the receiver's position.
pub async fn acked(
    conn: &impl ConnectionTrait,
    receiver_id: &str,
    after: i64,
) -> Result<std::collections::HashSet<String>, StoreError> {
    let rows = conn
        .query_all_raw(statement(
            conn,
            "SELECT jti FROM set_acks WHERE receiver_id = $1 AND sequence > $2",
            vec![receiver_id.into(), after.into()],
        ))
        .await?;
    rows.iter()
        .map(|row| Ok(row.try_get::<String>("", "jti")?))
        .collect()
}

/// The lowest position of the tenant's receivers: retention keeps the events after it.
pub async fn lowest_position(
    conn: &impl ConnectionTrait,
    tenant_id: &TenantId,
) -> Result<Option<i64>, StoreError> {
    let row = conn
        .query_one_raw(statement(
            conn,
            "SELECT MIN(position) AS low FROM set_receivers WHERE tenant_id = $1",
            vec![tenant_id.into()],
        ))
        .await?;
    Ok(row.and_then(|r| r.try_get::<Option<i64>>("", "low").ok().flatten()))
}
