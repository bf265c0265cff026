//! Outbox rows. Written only inside the transaction of the change they describe.

use sea_orm::sea_query::Expr;
use sea_orm::{
    ColumnTrait, Condition, ConnectionTrait, DbBackend, EntityTrait, ExprTrait, QueryFilter,
    QueryOrder, QuerySelect, Set, Statement,
};
use serde_json::Value;

use super::StoreError;
use super::entities::outbox;
use crate::domain::{TenantId, Timestamp};

/// An event row ready to insert.
#[derive(Debug, Clone)]
pub struct OutboxRow {
    pub sequence: i64,
    pub id: String,
    pub event_type: String,
    pub routing_key: String,
    pub subject: String,
    pub payload: Value,
    pub created_at: Timestamp,
}

/// A stored event row.
#[derive(Debug, Clone)]
pub struct StoredEvent {
    pub sequence: i64,
    pub id: String,
    pub event_type: String,
    pub routing_key: String,
    pub subject: String,
    pub payload: Value,
    pub published_at: Option<Timestamp>,
    pub attempts: i32,
    pub last_error: Option<String>,
    pub failed_at: Option<Timestamp>,
}

/// Channel of the PostgreSQL notification that wakes relays in other processes, sent
/// after commits by `events::announce`, never inside a write transaction.
pub const NOTIFY_CHANNEL: &str = "scimbus_outbox";

/// An unpublished event, as the relay needs it: the message body is the stored payload's
/// text, published as it is (no parse and re-serialise on the relay's hot path).
#[derive(Debug, Clone)]
pub struct Pending {
    pub tenant_id: TenantId,
    pub sequence: i64,
    pub id: String,
    pub routing_key: String,
    pub body: String,
}

/// Identifies one event row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EventKey {
    pub tenant_id: TenantId,
    pub sequence: i64,
}

impl Pending {
    pub fn key(&self) -> EventKey {
        EventKey {
            tenant_id: self.tenant_id.clone(),
            sequence: self.sequence,
        }
    }
}

fn stored(m: outbox::Model) -> StoredEvent {
    StoredEvent {
        sequence: m.sequence,
        id: m.id,
        event_type: m.event_type,
        routing_key: m.routing_key,
        subject: m.subject,
        payload: m.payload,
        published_at: m.published_at,
        attempts: m.attempts,
        last_error: m.last_error,
        failed_at: m.failed_at,
    }
}

/// The payload as text, as the relay publishes it (no parse and re-serialise).
fn payload_text(conn: &impl ConnectionTrait) -> &'static str {
    match conn.get_database_backend() {
        DbBackend::Postgres => "payload::text",
        _ => "CAST(payload AS TEXT)",
    }
}

/// Rows of `tenant_id, sequence, id, routing_key, body` as [`Pending`] events.
fn pending_rows(rows: Vec<sea_orm::QueryResult>) -> Result<Vec<Pending>, StoreError> {
    rows.into_iter()
        .map(|row| {
            Ok(Pending {
                tenant_id: row.try_get("", "tenant_id")?,
                sequence: row.try_get("", "sequence")?,
                id: row.try_get("", "id")?,
                routing_key: row.try_get("", "routing_key")?,
                body: row.try_get("", "body")?,
            })
        })
        .collect()
}

/// The oldest unpublished, unparked events: per tenant in `sequence` order. Only the
/// columns the relay needs, the payload as text. (The relay reads by lane,
/// [`fetch_lanes`]; this is for redelivery tests and the relay bench.)
pub async fn fetch_unpublished(
    conn: &impl ConnectionTrait,
    limit: u64,
) -> Result<Vec<Pending>, StoreError> {
    let sql = format!(
        "SELECT tenant_id, sequence, id, routing_key, {} AS body FROM outbox \
         WHERE published_at IS NULL AND failed_at IS NULL \
         ORDER BY tenant_id, sequence LIMIT $1",
        payload_text(conn)
    );
    let limit = i64::try_from(limit).unwrap_or(i64::MAX);
    let rows = conn
        .query_all_raw(super::statement(conn, &sql, vec![limit.into()]))
        .await?;
    pending_rows(rows)
}

/// Up to `limit` tenants with unpublished, unparked events, in tenant order after `after`
/// (`""` for the first): the relay's lanes. One index probe per tenant found (a loose scan
/// of the partial index of unpublished events), however many events each has waiting.
pub async fn pending_tenants(
    conn: &impl ConnectionTrait,
    after: &TenantId,
    limit: u64,
) -> Result<Vec<TenantId>, StoreError> {
    const NEXT: &str = "SELECT o.tenant_id FROM outbox o \
         WHERE o.published_at IS NULL AND o.failed_at IS NULL AND o.tenant_id > {after} \
         ORDER BY o.tenant_id LIMIT 1";
    let sql = format!(
        "WITH RECURSIVE lanes(tenant_id, n) AS ( \
           SELECT ({first}), CAST(1 AS BIGINT) \
           UNION ALL \
           SELECT ({next}), lanes.n + 1 FROM lanes \
           WHERE lanes.tenant_id IS NOT NULL AND lanes.n < $2 \
         ) SELECT tenant_id FROM lanes WHERE tenant_id IS NOT NULL",
        first = NEXT.replace("{after}", "$1"),
        next = NEXT.replace("{after}", "lanes.tenant_id"),
    );
    let limit = i64::try_from(limit).unwrap_or(i64::MAX);
    let rows = conn
        .query_all_raw(super::statement(
            conn,
            &sql,
            vec![after.into(), limit.into()],
        ))
        .await?;
    rows.into_iter()
        .map(|row| Ok(row.try_get("", "tenant_id")?))
        .collect()
}

/// The next unpublished, unparked events of each lane: for each `(tenant, after)`, up to
/// `per_lane` events with a sequence above `after`, in `sequence` order, lane after lane.
pub async fn fetch_lanes(
    conn: &impl ConnectionTrait,
    lanes: &[(TenantId, i64)],
    per_lane: u64,
) -> Result<Vec<Pending>, StoreError> {
    if lanes.is_empty() {
        return Ok(Vec::new());
    }
    let body = payload_text(conn);
    let per_lane = i64::try_from(per_lane).unwrap_or(i64::MAX);
    let mut values: Vec<sea_orm::Value> = vec![per_lane.into()];
    let mut parts = Vec::with_capacity(lanes.len());
    for (lane, (tenant_id, after)) in lanes.iter().enumerate() {
        values.push(tenant_id.as_str().into());
        values.push((*after).into());
        let (t, a) = (values.len() - 1, values.len());
        parts.push(format!(
            "SELECT * FROM (SELECT {lane} AS lane, tenant_id, sequence, id, routing_key, \
             {body} AS body FROM outbox \
             WHERE tenant_id = ${t} AND published_at IS NULL AND failed_at IS NULL \
             AND sequence > ${a} AND sequence < COALESCE((SELECT b.held_from FROM \
             tenant_brakes b WHERE b.tenant_id = ${t}), {UNHELD}) \
             ORDER BY sequence LIMIT $1) AS l{lane}"
        ));
    }
    let sql = format!("{} ORDER BY lane, sequence", parts.join(" UNION ALL "));
    let rows = conn
        .query_all_raw(super::statement(conn, &sql, values))
        .await?;
    pending_rows(rows)
}

/// Marks confirmed events published in one statement: for each tenant, the range from its
/// first to its last confirmed sequence (the confirmed prefix of that tenant in the batch).
pub async fn mark_published(
    conn: &impl ConnectionTrait,
    ranges: &[(TenantId, i64, i64)],
    now: &Timestamp,
) -> Result<u64, StoreError> {
    if ranges.is_empty() {
        return Ok(0);
    }
    let mut any = Condition::any();
    for (tenant_id, first, last) in ranges {
        any = any.add(
            Condition::all()
                .add(outbox::Column::TenantId.eq(tenant_id))
                .add(outbox::Column::Sequence.between(*first, *last)),
        );
    }
    let result = outbox::Entity::update_many()
        .col_expr(outbox::Column::PublishedAt, Expr::value(now))
        .filter(outbox::Column::PublishedAt.is_null())
        .filter(outbox::Column::FailedAt.is_null())
        .filter(any)
        .exec(conn)
        .await?;
    Ok(result.rows_affected)
}

/// Records a failed attempt on events: one more attempt and the last error.
pub async fn record_attempt(
    conn: &impl ConnectionTrait,
    keys: &[EventKey],
    error: &str,
) -> Result<(), StoreError> {
    if keys.is_empty() {
        return Ok(());
    }
    let mut any = Condition::any();
    for key in keys {
        any = any.add(
            Condition::all()
                .add(outbox::Column::TenantId.eq(key.tenant_id.as_str()))
                .add(outbox::Column::Sequence.eq(key.sequence)),
        );
    }
    outbox::Entity::update_many()
        .col_expr(
            outbox::Column::Attempts,
            Expr::col(outbox::Column::Attempts).add(1),
        )
        .col_expr(outbox::Column::LastError, Expr::value(error))
        .filter(any)
        .exec(conn)
        .await?;
    Ok(())
}

/// Parks an event that can never be published: the relay skips it from now on; the pull
/// API still serves it.
pub async fn mark_failed(
    conn: &impl ConnectionTrait,
    key: &EventKey,
    error: &str,
    now: &Timestamp,
) -> Result<(), StoreError> {
    outbox::Entity::update_many()
        .col_expr(
            outbox::Column::Attempts,
            Expr::col(outbox::Column::Attempts).add(1),
        )
        .col_expr(outbox::Column::LastError, Expr::value(error))
        .col_expr(outbox::Column::FailedAt, Expr::value(now))
        .filter(outbox::Column::TenantId.eq(key.tenant_id.as_str()))
        .filter(outbox::Column::Sequence.eq(key.sequence))
        .exec(conn)
        .await?;
    Ok(())
}

/// How many events wait for the relay (numbered or not yet), and when the oldest was
/// written.
pub async fn backlog(conn: &impl ConnectionTrait) -> Result<(u64, Option<String>), StoreError> {
    // One statement, so one snapshot: the sequencer moves events from `outbox_pending` to
    // `outbox`, and two reads could each miss an event it moved between them.
    const UNPUBLISHED: &str = "FROM outbox WHERE published_at IS NULL AND failed_at IS NULL";
    let row = conn
        .query_one_raw(Statement::from_string(
            conn.get_database_backend(),
            format!(
                "SELECT (SELECT COUNT(*) {UNPUBLISHED}) AS numbered, \
                 (SELECT MIN(created_at) {UNPUBLISHED}) AS oldest_numbered, \
                 (SELECT COUNT(*) FROM outbox_pending) AS unnumbered, \
                 (SELECT MIN(created_at) FROM outbox_pending) AS oldest_unnumbered"
            ),
        ))
        .await?
        .ok_or(StoreError::NotFound)?;
    let numbered: i64 = row.try_get("", "numbered")?;
    let unnumbered: i64 = row.try_get("", "unnumbered")?;
    let oldest = match (
        row.try_get::<Option<String>>("", "oldest_numbered")?,
        row.try_get::<Option<String>>("", "oldest_unnumbered")?,
    ) {
        (Some(a), Some(b)) => Some(Ord::min(a, b)),
        (a, b) => a.or(b),
    };
    Ok((u64::try_from(numbered + unnumbered).unwrap_or(0), oldest))
}

pub async fn insert(
    conn: &impl ConnectionTrait,
    tenant_id: &TenantId,
    rows: Vec<OutboxRow>,
) -> Result<(), StoreError> {
    if rows.is_empty() {
        return Ok(());
    }
    let models = rows.into_iter().map(|r| outbox::ActiveModel {
        tenant_id: Set(tenant_id.to_owned()),
        sequence: Set(r.sequence),
        id: Set(r.id),
        event_type: Set(r.event_type),
        routing_key: Set(r.routing_key),
        subject: Set(r.subject),
        payload: Set(r.payload),
        created_at: Set(r.created_at),
        published_at: Set(None),
        attempts: Set(0),
        last_error: Set(None),
        failed_at: Set(None),
        discarded_at: Set(None),
    });
    outbox::Entity::insert_many(models).exec(conn).await?;
    Ok(())
}

/// A tenant's events after `after`, in sequence order.
pub async fn list_after(
    conn: &impl ConnectionTrait,
    tenant_id: &TenantId,
    after: i64,
) -> Result<Vec<StoredEvent>, StoreError> {
    Ok(outbox::Entity::find()
        .filter(outbox::Column::TenantId.eq(tenant_id))
        .filter(outbox::Column::Sequence.gt(after))
        .order_by_asc(outbox::Column::Sequence)
        .all(conn)
        .await?
        .into_iter()
        .map(stored)
        .collect())
}

/// Above every sequence: the bound of a lane that does not hold.
const UNHELD: i64 = i64::MAX;

/// A page of a tenant's committed events after `after`, in sequence order, whatever their
/// publish state, discarded ones left out, and none from a brake's held sequence on: the
/// hold is read in the same statement, so a page that sees an event sees the hold its
/// numbering set (they commit together); `types` (full CloudEvents types) narrows it when
/// not empty.
pub async fn page(
    conn: &impl ConnectionTrait,
    tenant_id: &TenantId,
    after: i64,
    types: &[String],
    limit: u64,
) -> Result<Vec<(i64, Value)>, StoreError> {
    // Placeholders numbered in order of appearance (SQLite's are positional).
    let mut values: Vec<sea_orm::Value> = vec![
        tenant_id.into(),
        after.into(),
        tenant_id.into(),
        UNHELD.into(),
    ];
    let mut sql = String::from(
        "SELECT sequence, payload FROM outbox WHERE tenant_id = $1 AND sequence > $2 \
         AND sequence < COALESCE((SELECT b.held_from FROM tenant_brakes b \
         WHERE b.tenant_id = $3), $4) AND discarded_at IS NULL",
    );
    if !types.is_empty() {
        let first = values.len() + 1;
        let list: Vec<String> = (first..first + types.len())
            .map(|n| format!("${n}"))
            .collect();
        sql.push_str(&format!(" AND event_type IN ({})", list.join(", ")));
        values.extend(types.iter().map(|t| sea_orm::Value::from(t.clone())));
    }
    sql.push_str(&format!(" ORDER BY sequence LIMIT ${}", values.len() + 1));
    values.push(i64::try_from(limit).unwrap_or(i64::MAX).into());
    let rows = conn
        .query_all_raw(super::statement(conn, &sql, values))
        .await?;
    rows.into_iter()
        .map(|row| {
            let sequence: i64 = row.try_get("", "sequence")?;
            let payload = super::json_column(&row, "payload")?;
            Ok((sequence, payload))
        })
        .collect()
}

/// What retention needs to know of an event.
#[derive(Debug, Clone)]
pub struct Age {
    pub sequence: i64,
    pub created_at: Timestamp,
    /// Published, or parked as unpublishable: nothing more will happen to it.
    pub settled: bool,
}

/// The oldest `limit` events of a tenant after `after`, in sequence order.
pub async fn oldest(
    conn: &impl ConnectionTrait,
    tenant_id: &TenantId,
    after: i64,
    limit: u64,
) -> Result<Vec<Age>, StoreError> {
    let rows: Vec<(i64, Timestamp, Option<Timestamp>, Option<Timestamp>)> = outbox::Entity::find()
        .select_only()
        .column(outbox::Column::Sequence)
        .column(outbox::Column::CreatedAt)
        .column(outbox::Column::PublishedAt)
        .column(outbox::Column::FailedAt)
        .filter(outbox::Column::TenantId.eq(tenant_id))
        .filter(outbox::Column::Sequence.gt(after))
        .order_by_asc(outbox::Column::Sequence)
        .limit(limit)
        .into_tuple()
        .all(conn)
        .await?;
    Ok(rows
        .into_iter()
        .map(|(sequence, created_at, published, failed)| Age {
            sequence,
            created_at,
            settled: published.is_some() || failed.is_some(),
        })
        .collect())
}

/// Deletes the tenant's events with `sequence <= through`.
pub async fn delete_through(
    conn: &impl ConnectionTrait,
    tenant_id: &TenantId,
    through: i64,
) -> Result<u64, StoreError> {
    let result = outbox::Entity::delete_many()
        .filter(outbox::Column::TenantId.eq(tenant_id))
        .filter(outbox::Column::Sequence.lte(through))
        .exec(conn)
        .await?;
    Ok(result.rows_affected)
}

/// The tenant's events about `subject` (`Users/{id}`, `Groups/{id}`), oldest first.
pub async fn of_subject(
    conn: &impl ConnectionTrait,
    tenant_id: &TenantId,
    subject: &str,
) -> Result<Vec<(i64, Value)>, StoreError> {
    Ok(outbox::Entity::find()
        .select_only()
        .column(outbox::Column::Sequence)
        .column(outbox::Column::Payload)
        .filter(outbox::Column::TenantId.eq(tenant_id))
        .filter(outbox::Column::Subject.eq(subject))
        .order_by_asc(outbox::Column::Sequence)
        .into_tuple::<(i64, Value)>()
        .all(conn)
        .await?)
}

/// The sequences of the tenant's events with these ids (those still stored).
pub async fn sequences_of(
    conn: &impl ConnectionTrait,
    tenant_id: &TenantId,
    ids: &[&str],
) -> Result<std::collections::HashMap<String, i64>, StoreError> {
    let mut found = std::collections::HashMap::new();
    for chunk in ids.chunks(500) {
        let rows: Vec<(String, i64)> = outbox::Entity::find()
            .select_only()
            .column(outbox::Column::Id)
            .column(outbox::Column::Sequence)
            .filter(outbox::Column::TenantId.eq(tenant_id))
            .filter(outbox::Column::Id.is_in(chunk.iter().copied()))
            .into_tuple::<(String, i64)>()
            .all(conn)
            .await?;
        found.extend(rows);
    }
    Ok(found)
}

/// Which of `tenant_ids` hold any of the events `ids` (probes of the `(tenant_id, id)`
/// index).
pub async fn tenants_holding(
    conn: &impl ConnectionTrait,
    tenant_ids: &[TenantId],
    ids: &[&str],
) -> Result<std::collections::HashSet<TenantId>, StoreError> {
    let mut found = std::collections::HashSet::new();
    for tenants in tenant_ids.chunks(100) {
        for chunk in ids.chunks(500) {
            let rows: Vec<String> = outbox::Entity::find()
                .select_only()
                .column(outbox::Column::TenantId)
                .distinct()
                .filter(outbox::Column::TenantId.is_in(tenants.iter().map(|t| t.as_str())))
                .filter(outbox::Column::Id.is_in(chunk.iter().copied()))
                .into_tuple::<String>()
                .all(conn)
                .await?;
            found.extend(rows.into_iter().map(TenantId::from));
        }
    }
    Ok(found)
}

/// Replaces one event's stored payload (erasure).
pub async fn replace_payload(
    conn: &impl ConnectionTrait,
    tenant_id: &TenantId,
    sequence: i64,
    payload: Value,
) -> Result<(), StoreError> {
    outbox::Entity::update_many()
        .col_expr(outbox::Column::Payload, Expr::value(payload))
        .filter(outbox::Column::TenantId.eq(tenant_id))
        .filter(outbox::Column::Sequence.eq(sequence))
        .exec(conn)
        .await?;
    Ok(())
}

/// An event row not yet numbered (PostgreSQL writers).
#[derive(Debug, Clone)]
pub struct UnnumberedRow {
    pub id: String,
    pub event_type: String,
    pub routing_key: String,
    pub subject: String,
    /// The envelope as JSON text; its `sequence` is set when the row is numbered.
    pub payload: String,
    pub created_at: Timestamp,
}

/// The `live` CTE of a write's statement. With `require_live`, it locks the tenant row
/// `FOR KEY SHARE` if it is not deleted (and says whether it found it): a deletion, which
/// locks the row `FOR UPDATE`, waits for this write's commit, and a write after a deletion
/// fails. It also reads the tenant's schema version: a registration committed since the
/// write loaded its registry fails the write (its search documents predate the re-index).
/// `$1` is the tenant.
pub(crate) fn live_cte(require_live: bool) -> &'static str {
    if require_live {
        "WITH live AS (SELECT id, schema_version FROM tenants WHERE id = $1 \
         AND deleted_at IS NULL FOR KEY SHARE) "
    } else {
        "WITH live AS (SELECT $1 AS id, NULL::bigint AS schema_version) "
    }
}

/// The columns `live` and `schema_version` a write's statement returns (from its `live`
/// CTE), checked: the tenant was there and its schema has not changed since the write
/// loaded it.
pub(crate) fn check_live(
    row: Option<&sea_orm::QueryResult>,
    schema_version: i64,
) -> Result<(), StoreError> {
    let (live, version): (i64, Option<i64>) = match row {
        Some(row) => (row.try_get("", "live")?, row.try_get("", "schema_version")?),
        None => (0, None),
    };
    if live == 0 {
        return Err(StoreError::TenantDeleted);
    }
    if version.is_some_and(|v| v != schema_version) {
        return Err(StoreError::SchemaChanged);
    }
    Ok(())
}

/// `rows` as a `VALUES` list of `(id, event_type, routing_key, subject, payload,
/// created_at)`, their values appended to `values` (placeholders numbered after them).
pub(crate) fn pending_values(rows: Vec<UnnumberedRow>, values: &mut Vec<sea_orm::Value>) -> String {
    let mut sql = String::new();
    for (i, row) in rows.into_iter().enumerate() {
        let n = values.len();
        if i > 0 {
            sql.push_str(", ");
        }
        sql.push_str(&format!(
            "(${}, ${}, ${}, ${}, ${}, ${})",
            n + 1,
            n + 2,
            n + 3,
            n + 4,
            n + 5,
            n + 6
        ));
        values.extend([
            row.id.into(),
            row.event_type.into(),
            row.routing_key.into(),
            row.subject.into(),
            row.payload.into(),
            row.created_at.into(),
        ]);
    }
    sql
}

/// Inserts a write's events into `outbox_pending`, in the write's transaction: no lock on
/// anything another write of the tenant needs.
pub async fn insert_unnumbered(
    conn: &impl ConnectionTrait,
    tenant_id: &TenantId,
    rows: Vec<UnnumberedRow>,
    require_live: bool,
    schema_version: i64,
) -> Result<(), StoreError> {
    if rows.is_empty() {
        return Ok(());
    }
    let mut values: Vec<sea_orm::Value> = vec![tenant_id.into()];
    let sql = format!(
        "{}INSERT INTO outbox_pending (tenant_id, id, event_type, routing_key, subject, \
         payload, created_at) SELECT $1, v.* FROM (VALUES {}) v \
         RETURNING (SELECT COUNT(*) FROM live) AS live, \
         (SELECT schema_version FROM live) AS schema_version",
        live_cte(require_live),
        pending_values(rows, &mut values),
    );
    let inserted = conn
        .query_all_raw(super::statement(conn, &sql, values))
        .await?;
    check_live(inserted.first(), schema_version)
}

/// The tenants with events waiting to be numbered.
pub async fn tenants_with_unnumbered(
    conn: &impl ConnectionTrait,
) -> Result<Vec<TenantId>, StoreError> {
    let rows = conn
        .query_all_raw(Statement::from_string(
            conn.get_database_backend(),
            "SELECT DISTINCT tenant_id FROM outbox_pending",
        ))
        .await?;
    rows.into_iter()
        .map(|row| Ok(row.try_get::<TenantId>("", "tenant_id")?))
        .collect()
}

/// Whether the tenant has events waiting for their number.
pub async fn has_unnumbered(
    conn: &impl ConnectionTrait,
    tenant_id: &TenantId,
) -> Result<bool, StoreError> {
    let row = conn
        .query_one_raw(super::statement(
            conn,
            "SELECT EXISTS (SELECT 1 FROM outbox_pending WHERE tenant_id = $1) AS waiting",
            vec![tenant_id.into()],
        ))
        .await?
        .ok_or(StoreError::NotFound)?;
    Ok(row.try_get::<bool>("", "waiting")?)
}

/// Numbers up to `limit` of a tenant's waiting events, oldest position first, and moves
/// them to `outbox`; returns how many. Run in a transaction of its own: the tenant's row
/// lock (taken first, so the move's statement sees every earlier numbering committed)
/// makes numberings of one tenant one at a time, and the counter and the rows commit
/// together (DESIGN 10: gap-free, and a visible sequence never gains an earlier entry).
/// `sequence_width` is the zero-padded width of the envelope's `sequence` text.
pub async fn number_unnumbered(
    txn: &sea_orm::DatabaseTransaction,
    tenant_id: &TenantId,
    limit: u64,
    sequence_width: usize,
) -> Result<Vec<super::brake::Numbered>, StoreError> {
    let base: i64 = txn
        .query_one_raw(super::statement(
            txn,
            // Not `FOR UPDATE`: writers hold `FOR KEY SHARE` (`insert_unnumbered`) and
            // must not wait for the sequencer, nor it for them.
            "SELECT event_seq FROM tenants WHERE id = $1 FOR NO KEY UPDATE",
            vec![tenant_id.into()],
        ))
        .await?
        .ok_or(StoreError::NotFound)?
        .try_get("", "event_seq")?;
    let limit = i64::try_from(limit).unwrap_or(i64::MAX);
    let width = sequence_width;
    let moved = txn
        .query_all_raw(super::statement(
            txn,
            &format!(
                "WITH moved AS ( \
                   DELETE FROM outbox_pending WHERE tenant_id = $1 AND position IN ( \
                     SELECT position FROM outbox_pending WHERE tenant_id = $1 \
                     ORDER BY position LIMIT $3) \
                   RETURNING position, id, event_type, routing_key, subject, payload, created_at \
                 ), numbered AS ( \
                   SELECT moved.*, $2 + row_number() OVER (ORDER BY position) AS seq FROM moved \
                 ) \
                 INSERT INTO outbox (tenant_id, sequence, id, event_type, routing_key, subject, \
                   payload, created_at, attempts) \
                 SELECT $1, seq, id, event_type, routing_key, subject, \
                   jsonb_set(payload::jsonb, '{{sequence}}', to_jsonb(lpad(seq::text, {width}, '0'))), \
                   created_at, 0 FROM numbered \
                 RETURNING sequence, event_type, CAST(COALESCE(CASE WHEN event_type = \
                   'scimbus.group.members_removed' THEN jsonb_array_length(payload -> 'data' -> 'members') \
                   END, 0) AS BIGINT) AS members"
            ),
            vec![tenant_id.into(), base.into(), limit.into()],
        ))
        .await?;
    let n = moved.len() as i64;
    if n > 0 {
        txn.execute_raw(super::statement(
            txn,
            "UPDATE tenants SET event_seq = $2 WHERE id = $1",
            vec![tenant_id.into(), (base + n).into()],
        ))
        .await?;
    }
    let mut numbered = moved
        .into_iter()
        .map(|row| {
            Ok(super::brake::Numbered {
                sequence: row.try_get("", "sequence")?,
                event_type: row.try_get("", "event_type")?,
                members: row.try_get("", "members")?,
            })
        })
        .collect::<Result<Vec<_>, StoreError>>()?;
    numbered.sort_by_key(|e| e.sequence);
    Ok(numbered)
}
