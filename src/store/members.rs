//! Group membership rows. Every change is a set operation in SQL over the ids the request
//! names (passed as one JSON array parameter), so adding one member to a group of 100 000
//! touches one row and no function loads a member list it does not return.

use sea_orm::{ConnectionTrait, DbBackend, Value as SqlValue};

use super::{StoreError, backend_statement, statement};
use crate::domain::{Member, Membership, ResourceId, ResourceKind, TenantId, Timestamp};

/// A JSON array of text as a set of rows with one column `id`.
fn ids_table(backend: DbBackend, param: usize) -> String {
    match backend {
        DbBackend::Sqlite => format!("(SELECT DISTINCT value AS id FROM json_each(${param}))"),
        _ => format!("(SELECT DISTINCT jsonb_array_elements_text(${param}::jsonb) AS id)"),
    }
}

/// The ids as one JSON array parameter, written straight from the strings (a `Value` of
/// 100 000 ids would be a second copy of them).
fn ids_json(ids: &[ResourceId]) -> SqlValue {
    SqlValue::from(serde_json::to_string(ids).unwrap_or_else(|_| "[]".to_owned()))
}

/// One membership row to insert, as `add`'s JSON parameter carries it.
#[derive(serde::Serialize)]
struct NewMember<'a> {
    id: &'a str,
    #[serde(rename = "type")]
    kind: &'a str,
}

/// The statement of [`resolve`]: at most two primary-key probes per id, as scalar
/// subqueries — a join, or an `EXISTS` (which PostgreSQL may hash), read the tenant's
/// whole users table when the statistics were stale.
pub fn resolve_statement(
    backend: DbBackend,
    tenant_id: &TenantId,
    ids: &[ResourceId],
) -> sea_orm::Statement {
    // On PostgreSQL each member found is locked `FOR KEY SHARE` until commit: deleting it
    // waits for this write, and this write, if the deletion went first, finds it gone. No
    // other write waits: updates take `FOR NO KEY UPDATE`.
    let lock = match backend {
        DbBackend::Postgres => " FOR KEY SHARE",
        _ => "",
    };
    let sql = format!(
        "SELECT v.id AS id, COALESCE( \
         (SELECT 'User' FROM users u WHERE u.tenant_id = $2 AND u.id = v.id{lock}), \
         (SELECT 'Group' FROM groups g WHERE g.tenant_id = $2 AND g.id = v.id{lock}) \
         ) AS member_type FROM {} v",
        ids_table(backend, 1)
    );
    backend_statement(backend, &sql, vec![ids_json(ids), tenant_id.into()])
}

/// How many members each of `group_ids` has (groups without members are absent): one
/// index range per group, read from the primary key alone.
pub async fn counts(
    conn: &impl ConnectionTrait,
    tenant_id: &TenantId,
    group_ids: &[ResourceId],
) -> Result<std::collections::HashMap<ResourceId, u64>, StoreError> {
    if group_ids.is_empty() {
        return Ok(std::collections::HashMap::new());
    }
    let backend = conn.get_database_backend();
    let sql = format!(
        "SELECT m.group_id AS group_id, COUNT(*) AS n FROM group_members m \
         WHERE m.tenant_id = $2 AND m.group_id IN {} GROUP BY m.group_id",
        ids_table(backend, 1)
    );
    let rows = conn
        .query_all_raw(backend_statement(
            backend,
            &sql,
            vec![ids_json(group_ids), tenant_id.into()],
        ))
        .await?;
    rows.into_iter()
        .map(|row| {
            let n: i64 = row.try_get("", "n")?;
            Ok((row.try_get("", "group_id")?, u64::try_from(n).unwrap_or(0)))
        })
        .collect()
}

/// For each id, whether it is a user or a group of the tenant (`None`: neither).
pub async fn resolve(
    conn: &impl ConnectionTrait,
    tenant_id: &TenantId,
    ids: &[ResourceId],
) -> Result<Vec<(ResourceId, Option<ResourceKind>)>, StoreError> {
    if ids.is_empty() {
        return Ok(Vec::new());
    }
    let stmt = resolve_statement(conn.get_database_backend(), tenant_id, ids);
    let rows = conn.query_all_raw(stmt).await?;
    rows.into_iter()
        .map(|row| {
            let id: ResourceId = row.try_get("", "id")?;
            let kind: Option<String> = row.try_get("", "member_type")?;
            Ok((id, kind.as_deref().and_then(ResourceKind::parse)))
        })
        .collect()
}

/// The statement of [`add`]: the rows come from one JSON parameter; existing members are
/// left alone by the primary key (`ON CONFLICT DO NOTHING`).
pub fn add_statement(
    backend: DbBackend,
    tenant_id: &TenantId,
    group_id: &ResourceId,
    members: &[(ResourceId, ResourceKind)],
    now: &Timestamp,
) -> sea_orm::Statement {
    let rows: Vec<NewMember<'_>> = members
        .iter()
        .map(|(id, kind)| NewMember {
            id: id.as_str(),
            kind: kind.as_str(),
        })
        .collect();
    let rows_json = serde_json::to_string(&rows).unwrap_or_else(|_| "[]".to_owned());
    let source = match backend {
        DbBackend::Sqlite => {
            "SELECT json_extract(value, '$.id') AS id, \
             json_extract(value, '$.type') AS type FROM json_each($4)"
        }
        _ => "SELECT j.id, j.type FROM jsonb_to_recordset($4::jsonb) AS j(id text, type text)",
    };
    let sql = format!(
        "INSERT INTO group_members (tenant_id, group_id, member_id, member_type, created_at) \
         SELECT $1, $2, s.id, s.type, $3 FROM ({source}) s WHERE true \
         ON CONFLICT (tenant_id, group_id, member_id) DO NOTHING RETURNING member_id"
    );
    backend_statement(
        backend,
        &sql,
        vec![
            tenant_id.into(),
            group_id.into(),
            now.into(),
            SqlValue::from(rows_json),
        ],
    )
}

/// Inserts the members not yet in the group; returns the ids actually added.
pub async fn add(
    conn: &impl ConnectionTrait,
    tenant_id: &TenantId,
    group_id: &ResourceId,
    members: &[(ResourceId, ResourceKind)],
    now: &Timestamp,
) -> Result<Vec<ResourceId>, StoreError> {
    if members.is_empty() {
        return Ok(Vec::new());
    }
    let stmt = add_statement(
        conn.get_database_backend(),
        tenant_id,
        group_id,
        members,
        now,
    );
    let rows = conn.query_all_raw(stmt).await?;
    rows.into_iter()
        .map(|row| Ok(row.try_get::<ResourceId>("", "member_id")?))
        .collect()
}

/// The statement of [`remove`]. One member (what Okta and Entra send) is the whole
/// primary key, one index lookup whatever the size of the group and whatever the
/// statistics say. Several are looked up through `= ANY(…)`, which PostgreSQL can turn
/// into a scan of the group's rows when its statistics are stale.
pub fn remove_statement(
    backend: DbBackend,
    tenant_id: &TenantId,
    group_id: &ResourceId,
    ids: &[ResourceId],
) -> sea_orm::Statement {
    let (condition, value) = match ids {
        [one] => ("member_id = $3".to_owned(), SqlValue::from(one.as_str())),
        _ => (id_in(backend, "member_id", 3), ids_json(ids)),
    };
    let sql = format!(
        "DELETE FROM group_members WHERE tenant_id = $1 AND group_id = $2 AND {condition} \
         RETURNING member_id"
    );
    backend_statement(
        backend,
        &sql,
        vec![tenant_id.into(), group_id.into(), value],
    )
}

/// Removes the named members; returns the ids actually removed.
pub async fn remove(
    conn: &impl ConnectionTrait,
    tenant_id: &TenantId,
    group_id: &ResourceId,
    ids: &[ResourceId],
) -> Result<Vec<ResourceId>, StoreError> {
    if ids.is_empty() {
        return Ok(Vec::new());
    }
    let stmt = remove_statement(conn.get_database_backend(), tenant_id, group_id, ids);
    let rows = conn.query_all_raw(stmt).await?;
    rows.into_iter()
        .map(|row| Ok(row.try_get::<ResourceId>("", "member_id")?))
        .collect()
}

/// Removes every member not in `keep` (all of them when `keep` is empty); returns the ids
/// removed. The difference is computed in SQL.
pub async fn remove_except(
    conn: &impl ConnectionTrait,
    tenant_id: &TenantId,
    group_id: &ResourceId,
    keep: &[ResourceId],
) -> Result<Vec<ResourceId>, StoreError> {
    let sql = format!(
        // A set difference (EXCEPT), materialised once: PostgreSQL hashes it, SQLite sorts it
        // into a temporary index. NOT IN / NOT EXISTS against the request's list are
        // evaluated per member row by SQLite (quadratic for 100 000 members).
        "DELETE FROM group_members WHERE tenant_id = $1 AND group_id = $2 \
         AND member_id IN (SELECT gm.member_id FROM group_members gm \
           WHERE gm.tenant_id = $1 AND gm.group_id = $2 \
           EXCEPT SELECT k.id FROM {} k) \
         RETURNING member_id",
        ids_table(conn.get_database_backend(), 3)
    );
    let rows = conn
        .query_all_raw(statement(
            conn,
            &sql,
            vec![tenant_id.into(), group_id.into(), ids_json(keep)],
        ))
        .await?;
    rows.into_iter()
        .map(|row| Ok(row.try_get::<ResourceId>("", "member_id")?))
        .collect()
}

/// Every member of a group with its display name, in a stable order.
pub async fn list(
    conn: &impl ConnectionTrait,
    tenant_id: &TenantId,
    group_id: &ResourceId,
) -> Result<Vec<Member>, StoreError> {
    let sql = "SELECT m.member_id AS id, m.member_type AS member_type, \
               COALESCE(u.display_name, u.user_name, g.display_name) AS display \
               FROM group_members m \
               LEFT JOIN users u ON m.member_type = 'User' AND u.tenant_id = m.tenant_id AND u.id = m.member_id \
               LEFT JOIN groups g ON m.member_type = 'Group' AND g.tenant_id = m.tenant_id AND g.id = m.member_id \
               WHERE m.tenant_id = $1 AND m.group_id = $2 \
               ORDER BY m.created_at, m.member_id";
    let rows = conn
        .query_all_raw(statement(
            conn,
            sql,
            vec![tenant_id.into(), group_id.into()],
        ))
        .await?;
    rows.into_iter()
        .map(|row| {
            let kind: String = row.try_get("", "member_type")?;
            Ok(Member {
                id: row.try_get("", "id")?,
                member_type: ResourceKind::parse(&kind)
                    .ok_or_else(|| StoreError::Corrupt(format!("member type {kind}")))?,
                display: row.try_get("", "display")?,
            })
        })
        .collect()
}

/// The groups whose members include `member_id` directly.
pub async fn groups_of(
    conn: &impl ConnectionTrait,
    tenant_id: &TenantId,
    member_id: &ResourceId,
) -> Result<Vec<ResourceId>, StoreError> {
    let sql = "SELECT group_id FROM group_members WHERE tenant_id = $1 AND member_id = $2 \
               ORDER BY group_id";
    let rows = conn
        .query_all_raw(statement(
            conn,
            sql,
            vec![tenant_id.into(), member_id.into()],
        ))
        .await?;
    rows.into_iter()
        .map(|row| Ok(row.try_get::<ResourceId>("", "group_id")?))
        .collect()
}

/// `column` is one of the ids in the JSON array bound at `param`, written so that the
/// planner looks each id up in an index: `= ANY(ARRAY(…))` is an index condition on
/// PostgreSQL whatever the statistics say; SQLite probes the index per value of `IN`.
fn id_in(backend: DbBackend, column: &str, param: usize) -> String {
    match backend {
        DbBackend::Sqlite => format!("{column} IN (SELECT value FROM json_each(${param}))"),
        _ => format!("{column} = ANY(ARRAY(SELECT jsonb_array_elements_text(${param}::jsonb)))"),
    }
}

/// One step of a walk through nested groups: from each row of `walk` (its column `from`),
/// the membership rows whose `key` column equals it (group-typed only if `groups_only`),
/// as `m`. Each
/// step is an index lookup per row of the walk, never a join over the tenant's membership
/// table: on PostgreSQL a LATERAL subquery the planner cannot flatten (`OFFSET 0`) — a
/// plain join let it hash every membership row of the tenant when it misjudged the work
/// table; on SQLite `CROSS JOIN` fixes the walk as the outer loop.
fn nested_step(
    backend: DbBackend,
    walk: &str,
    from: &str,
    key: &str,
    groups_only: bool,
    take: &str,
) -> String {
    let only = |alias: &str| {
        if groups_only {
            format!(" AND {alias}.member_type = 'Group'")
        } else {
            String::new()
        }
    };
    match backend {
        DbBackend::Sqlite => format!(
            "{walk} CROSS JOIN group_members m ON m.tenant_id = $1 AND m.{key} = {walk}.{from}{}",
            only("m")
        ),
        _ => format!(
            "{walk} CROSS JOIN LATERAL (SELECT m0.{take} FROM group_members m0 \
             WHERE m0.tenant_id = $1 AND m0.{key} = {walk}.{from}{} OFFSET 0) m",
            only("m0")
        ),
    }
}

/// The groups of the members that `seed` (a condition on `gm.member_id`) picks, as the
/// recursive CTE `up(…) AS (…)` and a `SELECT member_id, id, display, depth` of what it
/// found (one row per member and group; `depth` 0 is a direct membership). `$1` is the
/// tenant.
/// It reads the members' own membership rows, then one index lookup per group found,
/// up the nesting (acyclic; the depth bound is a guard), then each group's name by key:
/// rows bounded by the memberships, never by the tenant (tests/api/plans.rs).
pub(crate) fn memberships_walk(backend: DbBackend, seed: &str) -> (String, String) {
    let with = format!(
        "up(member_id, group_id, depth) AS ( \
           SELECT gm.member_id, gm.group_id, CAST(0 AS BIGINT) FROM group_members gm \
           WHERE gm.tenant_id = $1 AND {seed} \
           UNION \
           SELECT up.member_id, m.group_id, up.depth + 1 FROM {step} WHERE up.depth < 64 \
         ) ",
        // Only group-typed rows can continue the walk; the type test lets both planners
        // use the small partial index `group_members_nested_up_idx` and, above all, keeps
        // PostgreSQL's estimate of the recursion small: it sizes (and zeroes, on every
        // call) the recursive `UNION`'s and the `GROUP BY`'s hash tables by that estimate,
        // which on a tenant of a million memberships was 5-8 ms of `memset` for 0.1 ms of
        // work (`perf record -a` under GET load: half of PostgreSQL's CPU).
        step = nested_step(backend, "up", "group_id", "member_id", true, "group_id"),
    );
    let found = "SELECT member_id, id, display, depth FROM ( \
           SELECT up.member_id AS member_id, up.group_id AS id, \
             (SELECT g.display_name FROM groups g WHERE g.tenant_id = $1 AND g.id = up.group_id) AS display, \
             MIN(up.depth) AS depth \
           FROM up GROUP BY up.member_id, up.group_id \
         ) found WHERE display IS NOT NULL"
        .to_owned();
    (with, found)
}

/// The statement of [`memberships_of_many`]: `$1` tenant, `$2` the member ids (JSON).
pub fn memberships_statement(
    backend: DbBackend,
    tenant_id: &TenantId,
    member_ids: &[ResourceId],
) -> sea_orm::Statement {
    let (with, found) = memberships_walk(backend, &id_in(backend, "gm.member_id", 2));
    let sql = format!("WITH RECURSIVE {with}{found} ORDER BY display, id");
    backend_statement(backend, &sql, vec![tenant_id.into(), ids_json(member_ids)])
}

/// `SELECT {columns}` of the row of `table` with id `$2` in tenant `$1`, plus its groups
/// (direct and nested) as a JSON array of `[group id, display name, depth]` in the column
/// `memberships`: a resource and its groups in one statement and one round trip.
pub fn with_memberships_statement(
    backend: DbBackend,
    table: &str,
    columns: &str,
    tenant_id: &TenantId,
    id: &ResourceId,
) -> sea_orm::Statement {
    let (with, found) = memberships_walk(backend, "gm.member_id = $2");
    let sql = format!(
        "WITH RECURSIVE {with}SELECT {columns}, (SELECT {groups} FROM ({found}) f) AS memberships \
         FROM {table} r WHERE r.tenant_id = $1 AND r.id = $2",
        groups = groups_aggregate(backend),
    );
    backend_statement(backend, &sql, vec![tenant_id.into(), id.into()])
}

/// The rows `f` of a [`memberships_walk`] as one JSON array of `[group id, display name,
/// depth]`, ordered by display name, then id (`[]` when there are none).
pub(crate) fn groups_aggregate(backend: DbBackend) -> &'static str {
    match backend {
        DbBackend::Sqlite => {
            "json_group_array(json_array(f.id, f.display, f.depth) ORDER BY f.display, f.id)"
        }
        _ => {
            "COALESCE(jsonb_agg(jsonb_build_array(f.id, f.display, f.depth) \
             ORDER BY f.display, f.id), '[]'::jsonb)"
        }
    }
}

/// The `memberships` column of a [`with_memberships_statement`] row, in the order
/// [`memberships_of_many`] gives (by display name, then id).
pub fn memberships_column(row: &sea_orm::QueryResult) -> Result<Vec<Membership>, StoreError> {
    use serde_json::Value;
    let corrupt = || StoreError::Corrupt("memberships is not a list of memberships".to_owned());
    let Value::Array(found) = super::json_column(row, "memberships")? else {
        return Err(corrupt());
    };
    found
        .into_iter()
        .map(|entry| {
            let Value::Array(fields) = entry else {
                return Err(corrupt());
            };
            match <[Value; 3]>::try_from(fields) {
                Ok([Value::String(group_id), Value::String(display), depth]) => Ok(Membership {
                    group_id: ResourceId::from(group_id),
                    display,
                    direct: depth.as_i64().ok_or_else(corrupt)? == 0,
                }),
                _ => Err(corrupt()),
            }
        })
        .collect()
}

/// The memberships of several resources at once (one query for a page of users instead
/// of one per user), keyed by member id.
pub async fn memberships_of_many(
    conn: &impl ConnectionTrait,
    tenant_id: &TenantId,
    member_ids: &[ResourceId],
) -> Result<std::collections::HashMap<ResourceId, Vec<Membership>>, StoreError> {
    let mut out: std::collections::HashMap<ResourceId, Vec<Membership>> =
        std::collections::HashMap::new();
    if member_ids.is_empty() {
        return Ok(out);
    }
    let stmt = memberships_statement(conn.get_database_backend(), tenant_id, member_ids);
    for row in conn.query_all_raw(stmt).await? {
        let member: ResourceId = row.try_get("", "member_id")?;
        let depth: i64 = row.try_get("", "depth")?;
        out.entry(member).or_default().push(Membership {
            group_id: row.try_get("", "id")?,
            display: row.try_get("", "display")?,
            direct: depth == 0,
        });
    }
    Ok(out)
}

/// The statement of [`would_cycle`]: `$1` tenant, `$2` the candidates (JSON), `$3` the
/// group. It walks down through group-typed members only (the partial index
/// `group_members_nested_idx`), so a candidate with 100 000 user members costs nothing.
pub fn would_cycle_statement(
    backend: DbBackend,
    tenant_id: &TenantId,
    group_id: &ResourceId,
    candidates: &[ResourceId],
) -> sea_orm::Statement {
    let source = match backend {
        DbBackend::Sqlite => "SELECT value AS id FROM json_each($2)",
        _ => "SELECT jsonb_array_elements_text($2::jsonb) AS id",
    };
    let sql = format!(
        "WITH RECURSIVE down(id, depth) AS ( \
           SELECT c.id, CAST(0 AS BIGINT) FROM ({source}) c \
           UNION \
           SELECT m.member_id, down.depth + 1 FROM {step} WHERE down.depth < {MAX_NESTING} \
         ) SELECT COALESCE(SUM(CASE WHEN id = $3 THEN 1 ELSE 0 END), 0) AS hits, \
           COALESCE(SUM(CASE WHEN depth >= {MAX_NESTING} THEN 1 ELSE 0 END), 0) AS cut \
         FROM down",
        step = nested_step(backend, "down", "id", "group_id", true, "member_id"),
    );
    backend_statement(
        backend,
        &sql,
        vec![tenant_id.into(), ids_json(candidates), group_id.into()],
    )
}

/// Deepest nesting the cycle check walks: a walk cut there fails closed.
pub const MAX_NESTING: i64 = 64;

/// What making groups members of a group would do to the nesting.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Nesting {
    Fine,
    /// The group would contain itself.
    Cycle,
    /// Some candidate has groups nested deeper than [`MAX_NESTING`] below it: whether the
    /// group is among them is not known, so it is refused.
    TooDeep,
}

/// Whether making `candidates` (groups) members of `group_id` would close a cycle:
/// `group_id` is one of them or nested anywhere inside one of them.
pub async fn would_cycle(
    conn: &impl ConnectionTrait,
    tenant_id: &TenantId,
    group_id: &ResourceId,
    candidates: &[ResourceId],
) -> Result<Nesting, StoreError> {
    if candidates.is_empty() {
        return Ok(Nesting::Fine);
    }
    let stmt = would_cycle_statement(conn.get_database_backend(), tenant_id, group_id, candidates);
    let row = conn
        .query_one_raw(stmt)
        .await?
        .ok_or(StoreError::NotFound)?;
    if row.try_get::<i64>("", "hits")? > 0 {
        Ok(Nesting::Cycle)
    } else if row.try_get::<i64>("", "cut")? > 0 {
        Ok(Nesting::TooDeep)
    } else {
        Ok(Nesting::Fine)
    }
}

/// Serialises the changes to a tenant's group nesting (PostgreSQL; SQLite writes one at
/// a time anyway) until commit: two writes that each nest a group into the other would
/// otherwise both pass their cycle check on what is committed.
pub async fn lock_nesting(
    conn: &impl ConnectionTrait,
    tenant_id: &TenantId,
) -> Result<(), StoreError> {
    if conn.get_database_backend() != DbBackend::Postgres {
        return Ok(());
    }
    conn.execute_raw(statement(
        conn,
        "SELECT pg_advisory_xact_lock(hashtextextended('scimbus.nesting:' || $1, 0))",
        vec![tenant_id.into()],
    ))
    .await?;
    Ok(())
}
