//! The brake's rows (`tenant_brakes`) and the outbox side of a hold (DESIGN 20). Events are
//! counted where they are numbered — PostgreSQL's sequencer transaction, which holds the
//! tenant's row, or a SQLite write — so every replica counts into one row, one tenant's
//! numberings one at a time, and a held sequence is set before any reader can see it.

use chrono::{DateTime, Utc};
use sea_orm::ConnectionTrait;
use serde_json::json;

use super::StoreError;
use super::audit::{self, AuditEntry};
use crate::domain::{BrakeSettings, ResourceId, TenantId, Timestamp};
use crate::events::EventType;
use crate::events::brake::{self, Window};

/// A tenant's brake as stored (defaults when it has no row yet).
#[derive(Debug, Clone, Default)]
pub struct BrakeRow {
    /// `None`: the defaults (`BrakeSettings::default`).
    pub settings: Option<BrakeSettings>,
    pub window: Window,
    /// Active users, memberships, groups when last counted (the shares' denominators).
    pub bases: [i64; 3],
    pub base_at: i64,
    /// The first sequence no consumer sees until an operator releases.
    pub held_from: Option<i64>,
    pub held_at: Option<Timestamp>,
    /// Which thresholds tripped, for the operator.
    pub tripped: Vec<String>,
}

impl BrakeRow {
    pub fn effective(&self) -> BrakeSettings {
        self.settings.clone().unwrap_or_default()
    }
}

/// A numbered event, as the brake sees it.
#[derive(Debug, Clone)]
pub struct Numbered {
    pub sequence: i64,
    pub event_type: String,
    /// Member ids of a membership event (0 for others).
    pub members: i64,
}

pub async fn load(
    conn: &impl ConnectionTrait,
    tenant_id: &TenantId,
) -> Result<BrakeRow, StoreError> {
    let row = conn
        .query_one_raw(super::statement(
            conn,
            "SELECT settings, window_start, users_cur, users_prev, members_cur, members_prev, \
             groups_cur, groups_prev, base_users, base_members, base_groups, base_at, held_from, \
             held_at, tripped FROM tenant_brakes WHERE tenant_id = $1",
            vec![tenant_id.into()],
        ))
        .await?;
    let Some(row) = row else {
        return Ok(BrakeRow::default());
    };
    let settings: Option<String> = row.try_get("", "settings")?;
    let tripped: Option<String> = row.try_get("", "tripped")?;
    let get = |name: &str| -> Result<i64, StoreError> { Ok(row.try_get("", name)?) };
    Ok(BrakeRow {
        settings: settings
            .map(|s| serde_json::from_str(&s))
            .transpose()
            .map_err(|e| StoreError::Corrupt(format!("brake settings: {e}")))?,
        window: Window {
            start: get("window_start")?,
            current: [get("users_cur")?, get("members_cur")?, get("groups_cur")?],
            previous: [
                get("users_prev")?,
                get("members_prev")?,
                get("groups_prev")?,
            ],
        },
        bases: [
            get("base_users")?,
            get("base_members")?,
            get("base_groups")?,
        ],
        base_at: get("base_at")?,
        held_from: row.try_get("", "held_from")?,
        held_at: row.try_get("", "held_at")?,
        tripped: tripped
            .map(|t| serde_json::from_str(&t))
            .transpose()
            .map_err(|e| StoreError::Corrupt(format!("brake trip: {e}")))?
            .unwrap_or_default(),
    })
}

pub async fn save(
    conn: &impl ConnectionTrait,
    tenant_id: &TenantId,
    row: &BrakeRow,
) -> Result<(), StoreError> {
    let settings = row
        .settings
        .as_ref()
        .map(serde_json::to_string)
        .transpose()
        .map_err(|e| StoreError::Corrupt(format!("brake settings: {e}")))?;
    let tripped = (!row.tripped.is_empty())
        .then(|| serde_json::to_string(&row.tripped))
        .transpose()
        .map_err(|e| StoreError::Corrupt(format!("brake trip: {e}")))?;
    let w = &row.window;
    conn.execute_raw(super::statement(
        conn,
        "INSERT INTO tenant_brakes (tenant_id, settings, window_start, users_cur, users_prev, \
         members_cur, members_prev, groups_cur, groups_prev, base_users, base_members, \
         base_groups, base_at, held_from, held_at, tripped) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16) \
         ON CONFLICT (tenant_id) DO UPDATE SET settings = excluded.settings, \
         window_start = excluded.window_start, users_cur = excluded.users_cur, \
         users_prev = excluded.users_prev, members_cur = excluded.members_cur, \
         members_prev = excluded.members_prev, groups_cur = excluded.groups_cur, \
         groups_prev = excluded.groups_prev, base_users = excluded.base_users, \
         base_members = excluded.base_members, base_groups = excluded.base_groups, \
         base_at = excluded.base_at, held_from = excluded.held_from, \
         held_at = excluded.held_at, tripped = excluded.tripped",
        vec![
            tenant_id.into(),
            settings.into(),
            w.start.into(),
            w.current[0].into(),
            w.previous[0].into(),
            w.current[1].into(),
            w.previous[1].into(),
            w.current[2].into(),
            w.previous[2].into(),
            row.bases[0].into(),
            row.bases[1].into(),
            row.bases[2].into(),
            row.base_at.into(),
            row.held_from.into(),
            row.held_at.clone().into(),
            tripped.into(),
        ],
    ))
    .await?;
    Ok(())
}

/// The tenant's held sequence, if its lane holds (one primary-key probe).
pub async fn held_from(
    conn: &impl ConnectionTrait,
    tenant_id: &TenantId,
) -> Result<Option<i64>, StoreError> {
    let row = conn
        .query_one_raw(super::statement(
            conn,
            "SELECT held_from FROM tenant_brakes WHERE tenant_id = $1",
            vec![tenant_id.into()],
        ))
        .await?;
    Ok(match row {
        Some(row) => row.try_get("", "held_from")?,
        None => None,
    })
}

/// Active users, memberships and groups of the tenant: the shares' denominators. Reads
/// the tenant (index-only where it can), so it runs at most once per window, and only
/// while deprovisioning events are counted.
async fn count_bases(
    conn: &impl ConnectionTrait,
    tenant_id: &TenantId,
) -> Result<[i64; 3], StoreError> {
    let row = conn
        .query_one_raw(super::statement(
            conn,
            "SELECT (SELECT COUNT(*) FROM users WHERE tenant_id = $1 AND active) AS users, \
             (SELECT COUNT(*) FROM group_members WHERE tenant_id = $1) AS members, \
             (SELECT COUNT(*) FROM groups WHERE tenant_id = $1) AS groups",
            vec![tenant_id.into()],
        ))
        .await?
        .ok_or(StoreError::NotFound)?;
    Ok([
        row.try_get("", "users")?,
        row.try_get("", "members")?,
        row.try_get("", "groups")?,
    ])
}

/// What tripping the brake did.
#[derive(Debug, Clone)]
pub struct Trip {
    pub held_from: i64,
    pub why: Vec<String>,
}

/// Counts the deprovisioning events among `events` (just numbered, in sequence order) in
/// the numbering's transaction; the first one over a threshold holds the tenant's lane from
/// its sequence on. Events that count for nothing cost nothing (no read, no write).
pub async fn observe(
    conn: &impl ConnectionTrait,
    tenant_id: &TenantId,
    events: &[Numbered],
    now: DateTime<Utc>,
) -> Result<Option<Trip>, StoreError> {
    let counted: Vec<(i64, brake::Measure, i64)> = events
        .iter()
        .filter_map(|e| {
            let t = EventType::from_name(&e.event_type)?;
            brake::measure(t, e.members).map(|(m, n)| (e.sequence, m, n))
        })
        .collect();
    if counted.is_empty() {
        return Ok(None);
    }
    let mut row = load(conn, tenant_id).await?;
    let settings = row.effective();
    if !settings.enabled {
        return Ok(None);
    }
    let at = now.timestamp();
    if row.base_at + settings.window_seconds <= at {
        row.bases = count_bases(conn, tenant_id).await?;
        row.base_at = at;
    }
    let mut trip = None;
    for (sequence, measure, n) in counted {
        row.window.advance(at, settings.window_seconds);
        row.window.add(measure, n);
        if row.held_from.is_none() {
            let why = brake::tripped(&settings, &row.window, at, row.bases);
            if !why.is_empty() {
                row.held_from = Some(sequence);
                row.held_at = Some(Timestamp::at(now));
                row.tripped = why.clone();
                trip = Some(Trip {
                    held_from: sequence,
                    why,
                });
            }
        }
    }
    save(conn, tenant_id, &row).await?;
    if let Some(trip) = &trip {
        let slug = conn
            .query_one_raw(super::statement(
                conn,
                "SELECT slug FROM tenants WHERE id = $1",
                vec![tenant_id.into()],
            ))
            .await?
            .map(|r| r.try_get::<String>("", "slug"))
            .transpose()?;
        tracing::warn!(
            tenant = slug.as_deref().unwrap_or(tenant_id.as_str()),
            held_from = trip.held_from,
            why = ?trip.why,
            "mass-deprovisioning brake tripped: the tenant's events are held until an operator releases or discards them"
        );
        audit::insert(
            conn,
            AuditEntry {
                id: uuid::Uuid::now_v7().to_string(),
                at: Timestamp::at(now),
                actor: "system".to_owned(),
                action: "brake.trip".to_owned(),
                tenant: slug,
                target: None,
                detail: json!({"heldFrom": trip.held_from, "tripped": trip.why}),
            },
        )
        .await?;
    }
    Ok(trip)
}

/// Ends the hold and starts a fresh window (the held burst would trip it again at once).
pub async fn clear_hold(
    conn: &impl ConnectionTrait,
    tenant_id: &TenantId,
) -> Result<(), StoreError> {
    let mut row = load(conn, tenant_id).await?;
    row.held_from = None;
    row.held_at = None;
    row.tripped = Vec::new();
    row.window = Window::default();
    save(conn, tenant_id, &row).await
}

/// A held event, as an operator and a discard see it.
#[derive(Debug, Clone)]
pub struct HeldEvent {
    pub sequence: i64,
    pub event_type: String,
    pub subject: String,
    pub created_at: Timestamp,
    pub payload: serde_json::Value,
}

/// The tenant's events from `from` on that are not discarded, in sequence order.
pub async fn held_events(
    conn: &impl ConnectionTrait,
    tenant_id: &TenantId,
    from: i64,
) -> Result<Vec<HeldEvent>, StoreError> {
    let rows = conn
        .query_all_raw(super::statement(
            conn,
            "SELECT sequence, event_type, subject, created_at, payload FROM outbox \
             WHERE tenant_id = $1 AND sequence >= $2 AND discarded_at IS NULL \
             ORDER BY sequence",
            vec![tenant_id.into(), from.into()],
        ))
        .await?;
    rows.into_iter()
        .map(|row| {
            let payload = super::json_column(&row, "payload")?;
            Ok(HeldEvent {
                sequence: row.try_get("", "sequence")?,
                event_type: row.try_get("", "event_type")?,
                subject: row.try_get("", "subject")?,
                created_at: row.try_get("", "created_at")?,
                payload,
            })
        })
        .collect()
}

/// Marks events discarded: never published (parked), never served.
pub async fn discard(
    conn: &impl ConnectionTrait,
    tenant_id: &TenantId,
    sequences: &[i64],
    now: &Timestamp,
) -> Result<u64, StoreError> {
    let mut total = 0;
    for chunk in sequences.chunks(500) {
        let list = chunk
            .iter()
            .map(i64::to_string)
            .collect::<Vec<_>>()
            .join(",");
        let result = conn
            .execute_raw(super::statement(
                conn,
                &format!(
                    "UPDATE outbox SET discarded_at = $2, failed_at = COALESCE(failed_at, $2), \
                     last_error = 'discarded by an operator (brake)' \
                     WHERE tenant_id = $1 AND sequence IN ({list})"
                ),
                vec![tenant_id.into(), now.into()],
            ))
            .await?;
        total += result.rows_affected();
    }
    Ok(total)
}

/// Per tenant slug, how many events its brake holds (for `/metrics`).
pub async fn held_counts(conn: &impl ConnectionTrait) -> Result<Vec<(String, i64)>, StoreError> {
    let rows = conn
        .query_all_raw(super::statement(
            conn,
            "SELECT t.slug AS slug, CAST(t.event_seq - b.held_from + 1 AS BIGINT) AS n \
             FROM tenant_brakes b JOIN tenants t ON t.id = b.tenant_id \
             WHERE b.held_from IS NOT NULL",
            vec![],
        ))
        .await?;
    rows.into_iter()
        .map(|row| Ok((row.try_get("", "slug")?, row.try_get("", "n")?)))
        .collect()
}

/// Tenants whose hold began before `before` (for a configured auto-release).
pub async fn holds(conn: &impl ConnectionTrait) -> Result<Vec<(TenantId, String)>, StoreError> {
    let rows = conn
        .query_all_raw(super::statement(
            conn,
            "SELECT tenant_id, held_at FROM tenant_brakes WHERE held_from IS NOT NULL",
            vec![],
        ))
        .await?;
    rows.into_iter()
        .map(|row| Ok((row.try_get("", "tenant_id")?, row.try_get("", "held_at")?)))
        .collect()
}

/// Serialises with the tenant's numbering (PostgreSQL: the tenant row, as the sequencer
/// takes it), so a release or discard and a numbering that counts do not interleave.
/// SQLite writes are one at a time already.
pub async fn lock(conn: &impl ConnectionTrait, tenant_id: &TenantId) -> Result<(), StoreError> {
    if conn.get_database_backend() == sea_orm::DbBackend::Postgres {
        conn.execute_raw(super::statement(
            conn,
            "SELECT 1 FROM tenants WHERE id = $1 FOR NO KEY UPDATE",
            vec![tenant_id.into()],
        ))
        .await?;
    }
    Ok(())
}

/// How many of `ids` are members of the group now: one statement per 500 ids, each a
/// primary-key probe.
pub async fn present_members(
    conn: &impl ConnectionTrait,
    tenant_id: &TenantId,
    group_id: &ResourceId,
    ids: &[ResourceId],
) -> Result<usize, StoreError> {
    let mut present = 0;
    for chunk in ids.chunks(500) {
        let mut values: Vec<sea_orm::Value> = vec![tenant_id.into(), group_id.into()];
        let list: Vec<String> = (3..3 + chunk.len()).map(|n| format!("${n}")).collect();
        values.extend(chunk.iter().map(|id| sea_orm::Value::from(id.clone())));
        let row = conn
            .query_one_raw(super::statement(
                conn,
                &format!(
                    "SELECT CAST(COUNT(*) AS BIGINT) AS n FROM group_members \
                     WHERE tenant_id = $1 AND group_id = $2 AND member_id IN ({})",
                    list.join(", ")
                ),
                values,
            ))
            .await?
            .ok_or(StoreError::NotFound)?;
        present += usize::try_from(row.try_get::<i64>("", "n")?).unwrap_or(0);
    }
    Ok(present)
}
