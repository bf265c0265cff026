//! Security event tokens' rows: signing keys (sealed), receivers of a tenant's SETs with
//! their acknowledged position in its event sequence, and acknowledgements received past
//! that position (RFC 8936 acknowledges SETs one by one, in any order).

use sea_orm::{ConnectionTrait, DbBackend, Statement};

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
    /// `poll` or `push`.
    pub delivery: String,
    /// Where a push receiver's SETs go.
    pub endpoint: Option<String>,
    /// Its `Authorization` value, sealed like the signing keys (the receiver id the
    /// associated data).
    pub authorization: Option<Vec<u8>>,
    pub lane: LaneState,
    /// The receiver this lane belongs to when it was registered for an application
    /// credential (one lane per tenant the credential reads); `None`: its own.
    pub group_id: Option<String>,
    pub app_id: Option<String>,
    /// The token of the push batch that holds the lane (none: free).
    pub lease_owner: Option<String>,
}

/// The state of a push receiver's lane.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LaneState {
    /// `ok` or `failing`.
    pub state: String,
    /// Consecutive failed attempts.
    pub attempts: i32,
    /// The next attempt is not before this.
    pub retry_at: Option<Timestamp>,
    /// The first failure of the current run of failures.
    pub failing_since: Option<Timestamp>,
    pub last_error: Option<String>,
    pub delivered_at: Option<Timestamp>,
    /// SETs it refused for good.
    pub parked: i64,
}

const RECEIVER_COLUMNS: &str = "id, tenant_id, name, form, events, signals, alg, audience, \
                                position, created_at, last_polled_at, delivery, endpoint, \
                                auth_sealed, state, attempts, retry_at, failing_since, \
                                last_error, delivered_at, parked, group_id, app_id, \
                                lease_owner";

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
        delivery: row.try_get("", "delivery")?,
        endpoint: row.try_get("", "endpoint")?,
        authorization: row.try_get("", "auth_sealed")?,
        lane: LaneState {
            state: row.try_get("", "state")?,
            attempts: row.try_get("", "attempts")?,
            retry_at: row.try_get("", "retry_at")?,
            failing_since: row.try_get("", "failing_since")?,
            last_error: row.try_get("", "last_error")?,
            delivered_at: row.try_get("", "delivered_at")?,
            parked: row.try_get("", "parked")?,
        },
        group_id: row.try_get("", "group_id")?,
        app_id: row.try_get("", "app_id")?,
        lease_owner: row.try_get("", "lease_owner")?,
    })
}

pub async fn insert_receiver(
    conn: &impl ConnectionTrait,
    r: &ReceiverRow,
    token_hash: &str,
) -> Result<(), StoreError> {
    insert_row(conn, r, token_hash, "").await.map(|_| ())
}

/// Inserts a lane of a group unless the group has one in its tenant; whether it did.
pub async fn insert_lane(
    conn: &impl ConnectionTrait,
    r: &ReceiverRow,
    token_hash: &str,
) -> Result<bool, StoreError> {
    Ok(insert_row(
        conn,
        r,
        token_hash,
        " ON CONFLICT (group_id, tenant_id) DO NOTHING",
    )
    .await?
        > 0)
}

async fn insert_row(
    conn: &impl ConnectionTrait,
    r: &ReceiverRow,
    token_hash: &str,
    conflict: &str,
) -> Result<u64, StoreError> {
    let events = serde_json::to_string(&r.events)
        .map_err(|e| StoreError::Corrupt(format!("set_receivers.events: {e}")))?;
    let done = conn
        .execute_raw(statement(
            conn,
            &format!(
                "INSERT INTO set_receivers (id, tenant_id, name, form, events, signals, alg, \
             audience, position, created_at, token_hash, delivery, endpoint, auth_sealed, \
             group_id, app_id) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16)\
             {conflict}"
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
                r.delivery.clone().into(),
                r.endpoint.clone().into(),
                r.authorization.clone().into(),
                r.group_id.clone().into(),
                r.app_id.clone().into(),
            ],
        ))
        .await?;
    Ok(done.rows_affected())
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
        .query_one_raw(receiver_by_hash_statement(
            conn.get_database_backend(),
            hash,
        ))
        .await?;
    row.as_ref().map(receiver).transpose()
}

pub fn receiver_by_hash_statement(backend: DbBackend, hash: &str) -> Statement {
    super::backend_statement(
        backend,
        &format!("SELECT {RECEIVER_COLUMNS} FROM set_receivers WHERE token_hash = $1"),
        vec![hash.into()],
    )
}

/// Deletes a receiver and its acknowledgements; whether it existed.
pub async fn delete_receiver(
    conn: &impl ConnectionTrait,
    tenant_id: &TenantId,
    id: &str,
) -> Result<bool, StoreError> {
    for sql in [
        "DELETE FROM set_acks WHERE receiver_id = $1",
        "DELETE FROM set_parked WHERE receiver_id = $1",
    ] {
        conn.execute_raw(statement(conn, sql, vec![id.into()]))
            .await?;
    }
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
        "DELETE FROM set_parked WHERE receiver_id IN \
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
        .query_all_raw(acked_statement(
            conn.get_database_backend(),
            receiver_id,
            after,
        ))
        .await?;
    rows.iter()
        .map(|row| Ok(row.try_get::<String>("", "jti")?))
        .collect()
}

pub fn acked_statement(backend: DbBackend, receiver_id: &str, after: i64) -> Statement {
    super::backend_statement(
        backend,
        "SELECT jti FROM set_acks WHERE receiver_id = $1 AND sequence > $2",
        vec![receiver_id.into(), after.into()],
    )
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

/// The receiver columns qualified by `r.` (queries that join its tenant).
fn lane_columns() -> String {
    RECEIVER_COLUMNS
        .split(", ")
        .map(|c| format!("r.{}", c.trim()))
        .collect::<Vec<_>>()
        .join(", ")
}

/// Push receivers of live tenants whose position is behind their tenant's latest
/// sequence, not leased by a process and not waiting for a retry, with that sequence.
pub async fn due_push_receivers(
    conn: &impl ConnectionTrait,
    now: &Timestamp,
    after_id: &str,
    limit: u64,
) -> Result<Vec<(ReceiverRow, i64)>, StoreError> {
    let rows = conn
        .query_all_raw(due_push_receivers_statement(
            conn.get_database_backend(),
            now,
            after_id,
            limit,
        ))
        .await?;
    rows.iter()
        .map(|row| Ok((receiver(row)?, row.try_get::<i64>("", "latest")?)))
        .collect()
}

/// A lane is behind when its position is below its tenant's latest sequence and below
/// what a brake holds (held events are numbered but not delivered until released).
pub fn due_push_receivers_statement(
    backend: DbBackend,
    now: &Timestamp,
    after_id: &str,
    limit: u64,
) -> Statement {
    super::backend_statement(
        backend,
        &format!(
            "SELECT {}, t.event_seq AS latest FROM set_receivers r \
             JOIN tenants t ON t.id = r.tenant_id \
             WHERE r.delivery = 'push' AND r.id > $1 \
             AND r.position < t.event_seq \
             AND r.position < COALESCE((SELECT b.held_from - 1 FROM tenant_brakes b \
             WHERE b.tenant_id = r.tenant_id AND b.held_from IS NOT NULL), t.event_seq) \
             AND (r.retry_at IS NULL OR r.retry_at <= $2) \
             AND (r.lease_until IS NULL OR r.lease_until < $3) \
             ORDER BY r.id LIMIT $4",
            lane_columns()
        ),
        vec![
            after_id.into(),
            now.into(),
            now.into(),
            i64::try_from(limit).unwrap_or(i64::MAX).into(),
        ],
    )
}

/// The tenants with push receivers or lanes of an application credential's receiver
/// (their events are numbered as they commit: a group's poll reads numbered events only).
pub async fn push_tenants(
    conn: &impl ConnectionTrait,
) -> Result<std::collections::HashSet<String>, StoreError> {
    let rows = conn
        .query_all_raw(statement(
            conn,
            "SELECT DISTINCT tenant_id FROM set_receivers \
             WHERE delivery = 'push' OR group_id IS NOT NULL",
            vec![],
        ))
        .await?;
    rows.iter()
        .map(|row| Ok(row.try_get::<String>("", "tenant_id")?))
        .collect()
}

/// Takes the lane of receiver `id` for the batch `owner` until `until` unless another
/// batch holds it.
pub async fn lease(
    conn: &impl ConnectionTrait,
    id: &str,
    owner: &str,
    now: &Timestamp,
    until: &Timestamp,
) -> Result<bool, StoreError> {
    let done = conn
        .execute_raw(statement(
            conn,
            "UPDATE set_receivers SET lease_until = $2, lease_owner = $3 \
             WHERE id = $1 AND (lease_until IS NULL OR lease_until < $4) \
             AND (retry_at IS NULL OR retry_at <= $5)",
            vec![
                id.into(),
                until.into(),
                owner.into(),
                now.into(),
                now.into(),
            ],
        ))
        .await?;
    Ok(done.rows_affected() == 1)
}

/// Records a lane's state after a batch and gives its lease back, when the batch `owner`
/// still holds it (a replay or another process may have taken it meanwhile).
pub async fn set_lane(
    conn: &impl ConnectionTrait,
    id: &str,
    owner: &str,
    lane: &LaneState,
) -> Result<bool, StoreError> {
    let done = conn
        .execute_raw(statement(
            conn,
            "UPDATE set_receivers SET state = $3, attempts = $4, retry_at = $5, \
             failing_since = $6, last_error = $7, delivered_at = $8, parked = $9, \
             lease_until = NULL, lease_owner = NULL WHERE id = $1 AND lease_owner = $2",
            vec![
                id.into(),
                owner.into(),
                lane.state.clone().into(),
                lane.attempts.into(),
                lane.retry_at.clone().into(),
                lane.failing_since.clone().into(),
                lane.last_error.clone().into(),
                lane.delivered_at.clone().into(),
                lane.parked.into(),
            ],
        ))
        .await?;
    Ok(done.rows_affected() == 1)
}

/// Gives a lane's lease back without changing it, when the batch `owner` still holds it.
pub async fn release(conn: &impl ConnectionTrait, id: &str, owner: &str) -> Result<(), StoreError> {
    conn.execute_raw(statement(
        conn,
        "UPDATE set_receivers SET lease_until = NULL, lease_owner = NULL \
         WHERE id = $1 AND lease_owner = $2",
        vec![id.into(), owner.into()],
    ))
    .await?;
    Ok(())
}

/// Makes a push receiver due now, its failures forgotten, and takes its lane from any
/// batch in hand: that batch records nothing and gives the lease back when it ends (no
/// other batch starts before, so the lane never has two at once).
pub async fn reset_lane(conn: &impl ConnectionTrait, id: &str) -> Result<(), StoreError> {
    conn.execute_raw(statement(
        conn,
        "UPDATE set_receivers SET state = 'ok', attempts = 0, retry_at = NULL, \
         failing_since = NULL, last_error = NULL, lease_owner = NULL WHERE id = $1",
        vec![id.into()],
    ))
    .await?;
    Ok(())
}

/// A SET a push receiver refused for good.
#[derive(Debug, Clone)]
pub struct Parked {
    pub jti: String,
    pub sequence: i64,
    pub err: String,
    pub description: String,
    pub parked_at: Timestamp,
}

/// Records parked SETs (one parked before is kept); returns how many are new.
pub async fn insert_parked(
    conn: &impl ConnectionTrait,
    receiver_id: &str,
    parked: &[Parked],
) -> Result<u64, StoreError> {
    let mut new = 0;
    let sql = "INSERT INTO set_parked (receiver_id, jti, sequence, err, description, parked_at) \
               VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (receiver_id, jti) DO NOTHING";
    for p in parked {
        new += conn
            .execute_raw(statement(
                conn,
                sql,
                vec![
                    receiver_id.into(),
                    p.jti.clone().into(),
                    p.sequence.into(),
                    p.err.clone().into(),
                    p.description.clone().into(),
                    p.parked_at.clone().into(),
                ],
            ))
            .await?
            .rows_affected();
    }
    Ok(new)
}

/// Forgets the SETs the tenant's receivers parked for events up to `through` (retention
/// pruned those events); how many went.
pub async fn prune_parked(
    conn: &impl ConnectionTrait,
    tenant_id: &TenantId,
    through: i64,
) -> Result<u64, StoreError> {
    let done = conn
        .execute_raw(statement(
            conn,
            "DELETE FROM set_parked WHERE receiver_id IN \
             (SELECT id FROM set_receivers WHERE tenant_id = $1) AND sequence <= $2",
            vec![tenant_id.into(), through.into()],
        ))
        .await?;
    Ok(done.rows_affected())
}

/// The receiver's parked SETs, newest first, at most `limit`.
pub async fn parked(
    conn: &impl ConnectionTrait,
    receiver_id: &str,
    limit: u64,
) -> Result<Vec<Parked>, StoreError> {
    let rows = conn
        .query_all_raw(statement(
            conn,
            "SELECT jti, sequence, err, description, parked_at FROM set_parked \
             WHERE receiver_id = $1 ORDER BY sequence DESC, jti DESC LIMIT $2",
            vec![
                receiver_id.into(),
                i64::try_from(limit).unwrap_or(i64::MAX).into(),
            ],
        ))
        .await?;
    rows.iter()
        .map(|row| {
            Ok(Parked {
                jti: row.try_get("", "jti")?,
                sequence: row.try_get("", "sequence")?,
                err: row.try_get("", "err")?,
                description: row
                    .try_get::<Option<String>>("", "description")?
                    .unwrap_or_default(),
                parked_at: row.try_get("", "parked_at")?,
            })
        })
        .collect()
}

/// Failing receivers per tenant slug (`scimbus_set_receivers_failing`).
pub async fn failing_counts(conn: &impl ConnectionTrait) -> Result<Vec<(String, i64)>, StoreError> {
    let rows = conn
        .query_all_raw(statement(
            conn,
            "SELECT t.slug AS slug, COUNT(*) AS n FROM set_receivers r \
             JOIN tenants t ON t.id = r.tenant_id \
             WHERE r.state = 'failing' AND t.deleted_at IS NULL GROUP BY t.slug",
            vec![],
        ))
        .await?;
    rows.iter()
        .map(|row| Ok((row.try_get("", "slug")?, row.try_get("", "n")?)))
        .collect()
}

/// The lanes of one group.
pub async fn group_lanes(
    conn: &impl ConnectionTrait,
    group_id: &str,
) -> Result<Vec<ReceiverRow>, StoreError> {
    let rows = conn
        .query_all_raw(statement(
            conn,
            &format!(
                "SELECT {RECEIVER_COLUMNS} FROM set_receivers WHERE group_id = $1 \
                 ORDER BY tenant_id"
            ),
            vec![group_id.into()],
        ))
        .await?;
    rows.iter().map(receiver).collect()
}

/// A receiver of an application credential: what its lanes share.
#[derive(Debug, Clone)]
pub struct GroupRow {
    pub id: String,
    pub app_id: String,
    /// `name`, `form`, `events`, `signals`, `alg`, `audience`, `endpoint`.
    pub settings: serde_json::Value,
    pub auth_sealed: Option<Vec<u8>>,
}

/// The columns [`group`] reads.
const GROUP_COLUMNS: &str = "id, app_id, settings, auth_sealed";

fn group(row: &sea_orm::QueryResult) -> Result<GroupRow, StoreError> {
    Ok(GroupRow {
        id: row.try_get("", "id")?,
        app_id: row.try_get("", "app_id")?,
        settings: json_column(row, "settings")?,
        auth_sealed: row.try_get("", "auth_sealed")?,
    })
}

/// Inserts a group; `token_hash` is a polling group's credential (a push group has none).
pub async fn insert_group(
    conn: &impl ConnectionTrait,
    group: &GroupRow,
    token_hash: Option<&str>,
    now: &Timestamp,
) -> Result<(), StoreError> {
    conn.execute_raw(statement(
        conn,
        "INSERT INTO set_receiver_groups (id, app_id, settings, auth_sealed, created_at, \
         token_hash) VALUES ($1, $2, $3, $4, $5, $6)",
        vec![
            group.id.clone().into(),
            group.app_id.clone().into(),
            group.settings.to_string().into(),
            group.auth_sealed.clone().into(),
            now.into(),
            token_hash.map(str::to_owned).into(),
        ],
    ))
    .await?;
    Ok(())
}

/// The groups (of `app_id`, or all), in id order.
pub async fn groups(
    conn: &impl ConnectionTrait,
    app_id: Option<&str>,
) -> Result<Vec<GroupRow>, StoreError> {
    let (filter, values): (&str, Vec<sea_orm::Value>) = match app_id {
        Some(app) => (" WHERE app_id = $1", vec![app.into()]),
        None => ("", vec![]),
    };
    let rows = conn
        .query_all_raw(statement(
            conn,
            &format!(
                "SELECT {GROUP_COLUMNS} FROM set_receiver_groups{filter} \
                 ORDER BY id"
            ),
            values,
        ))
        .await?;
    rows.iter().map(group).collect()
}

/// The polling group whose credential hashes to `hash`.
pub async fn group_by_hash(
    conn: &impl ConnectionTrait,
    hash: &str,
) -> Result<Option<GroupRow>, StoreError> {
    let row = conn
        .query_one_raw(statement(
            conn,
            &format!("SELECT {GROUP_COLUMNS} FROM set_receiver_groups WHERE token_hash = $1"),
            vec![hash.into()],
        ))
        .await?;
    row.as_ref().map(group).transpose()
}

/// The tenants of a group's lanes with events not numbered yet (`outbox_pending` holds only
/// those, a few rows).
pub async fn group_unnumbered_tenants(
    conn: &impl ConnectionTrait,
    group_id: &str,
) -> Result<Vec<TenantId>, StoreError> {
    let rows = conn
        .query_all_raw(statement(
            conn,
            "SELECT DISTINCT p.tenant_id AS tenant_id FROM outbox_pending p \
             JOIN set_receivers r ON r.tenant_id = p.tenant_id WHERE r.group_id = $1",
            vec![group_id.into()],
        ))
        .await?;
    rows.iter()
        .map(|row| Ok(row.try_get::<TenantId>("", "tenant_id")?))
        .collect()
}

/// The lanes of a group that are behind their tenant: position below its latest sequence
/// and below what a brake holds, in id order (what a poll of the group reads).
pub async fn behind_lanes(
    conn: &impl ConnectionTrait,
    group_id: &str,
) -> Result<Vec<ReceiverRow>, StoreError> {
    let rows = conn
        .query_all_raw(behind_lanes_statement(
            conn.get_database_backend(),
            group_id,
        ))
        .await?;
    rows.iter().map(receiver).collect()
}

pub fn behind_lanes_statement(backend: DbBackend, group_id: &str) -> Statement {
    super::backend_statement(
        backend,
        &format!(
            "SELECT {} FROM set_receivers r JOIN tenants t ON t.id = r.tenant_id \
             WHERE r.group_id = $1 AND r.position < t.event_seq \
             AND r.position < COALESCE((SELECT b.held_from - 1 FROM tenant_brakes b \
             WHERE b.tenant_id = r.tenant_id AND b.held_from IS NOT NULL), t.event_seq) \
             ORDER BY r.id",
            lane_columns()
        ),
        vec![group_id.into()],
    )
}

/// The group, locked for the transaction on PostgreSQL (a removal waits for a reconcile
/// that adds lanes, then removes them too); `None` once removed.
pub async fn lock_group(
    conn: &impl ConnectionTrait,
    id: &str,
) -> Result<Option<GroupRow>, StoreError> {
    let lock = if conn.get_database_backend() == DbBackend::Postgres {
        " FOR UPDATE"
    } else {
        ""
    };
    let row = conn
        .query_one_raw(statement(
            conn,
            &format!(
                "SELECT {GROUP_COLUMNS} FROM set_receiver_groups \
                 WHERE id = $1{lock}"
            ),
            vec![id.into()],
        ))
        .await?;
    row.as_ref().map(group).transpose()
}

/// Deletes a group: its row first (waiting for a reconcile that holds it), then every lane
/// of it with their acknowledgements and parked SETs; how many lanes went.
pub async fn delete_group(conn: &impl ConnectionTrait, group_id: &str) -> Result<u64, StoreError> {
    conn.execute_raw(statement(
        conn,
        "DELETE FROM set_receiver_groups WHERE id = $1",
        vec![group_id.into()],
    ))
    .await?;
    delete_group_lanes(conn, group_id, None).await
}

/// Deletes the lanes of a group in the tenants given, or all of them, with their
/// acknowledgements and parked SETs; how many lanes went.
pub async fn delete_group_lanes(
    conn: &impl ConnectionTrait,
    group_id: &str,
    tenant_ids: Option<&[String]>,
) -> Result<u64, StoreError> {
    let mut values: Vec<sea_orm::Value> = vec![group_id.into()];
    let mut filter = String::new();
    if let Some(ids) = tenant_ids {
        if ids.is_empty() {
            return Ok(0);
        }
        let list: Vec<String> = (2..ids.len() + 2).map(|n| format!("${n}")).collect();
        filter = format!(" AND tenant_id IN ({})", list.join(", "));
        values.extend(ids.iter().map(|id| sea_orm::Value::from(id.clone())));
    }
    for table in ["set_acks", "set_parked"] {
        conn.execute_raw(statement(
            conn,
            &format!(
                "DELETE FROM {table} WHERE receiver_id IN \
                 (SELECT id FROM set_receivers WHERE group_id = $1{filter})"
            ),
            values.clone(),
        ))
        .await?;
    }
    let done = conn
        .execute_raw(statement(
            conn,
            &format!("DELETE FROM set_receivers WHERE group_id = $1{filter}"),
            values,
        ))
        .await?;
    Ok(done.rows_affected())
}
