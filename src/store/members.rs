//! Group membership rows. Every change is a set operation in SQL over the ids the request
//! names (passed as one JSON array parameter), so adding one member to a group of 100 000
//! touches one row and no function loads a member list it does not return.

use sea_orm::{ConnectionTrait, DbBackend, Value as SqlValue};
use serde_json::json;

use super::{StoreError, statement};
use crate::domain::{Member, MemberType, Membership};

/// A JSON array of text as a set of rows with one column `id`.
fn ids_table(conn: &impl ConnectionTrait, param: usize) -> String {
    match conn.get_database_backend() {
        DbBackend::Sqlite => format!("(SELECT DISTINCT value AS id FROM json_each(${param}))"),
        _ => format!("(SELECT DISTINCT jsonb_array_elements_text(${param}::jsonb) AS id)"),
    }
}

fn ids_json(ids: &[String]) -> SqlValue {
    SqlValue::from(json!(ids).to_string())
}

/// For each id, whether it is a user or a group of the tenant (`None`: neither).
pub async fn resolve(
    conn: &impl ConnectionTrait,
    tenant_id: &str,
    ids: &[String],
) -> Result<Vec<(String, Option<MemberType>)>, StoreError> {
    if ids.is_empty() {
        return Ok(Vec::new());
    }
    let sql = format!(
        "SELECT v.id AS id, CASE WHEN u.id IS NOT NULL THEN 'User' \
         WHEN g.id IS NOT NULL THEN 'Group' END AS member_type \
         FROM {} v \
         LEFT JOIN users u ON u.tenant_id = $2 AND u.id = v.id \
         LEFT JOIN groups g ON g.tenant_id = $2 AND g.id = v.id",
        ids_table(conn, 1)
    );
    let rows = conn
        .query_all_raw(statement(conn, &sql, vec![ids_json(ids), tenant_id.into()]))
        .await?;
    rows.into_iter()
        .map(|row| {
            let id: String = row.try_get("", "id")?;
            let kind: Option<String> = row.try_get("", "member_type")?;
            Ok((id, kind.as_deref().and_then(MemberType::parse)))
        })
        .collect()
}

/// Inserts the members not yet in the group; returns the ids actually added.
pub async fn add(
    conn: &impl ConnectionTrait,
    tenant_id: &str,
    group_id: &str,
    members: &[(String, MemberType)],
    now: &str,
) -> Result<Vec<String>, StoreError> {
    if members.is_empty() {
        return Ok(Vec::new());
    }
    let rows_json: Vec<_> = members
        .iter()
        .map(|(id, kind)| json!({"id": id, "type": kind.as_str()}))
        .collect();
    let source = match conn.get_database_backend() {
        DbBackend::Sqlite => "SELECT json_extract(value, '$.id') AS id, \
                              json_extract(value, '$.type') AS type FROM json_each($4)"
            .to_owned(),
        _ => "SELECT j.id, j.type FROM jsonb_to_recordset($4::jsonb) AS j(id text, type text)"
            .to_owned(),
    };
    let sql = format!(
        "INSERT INTO group_members (tenant_id, group_id, member_id, member_type, created_at) \
         SELECT $1, $2, s.id, s.type, $3 FROM ({source}) s WHERE true \
         ON CONFLICT (tenant_id, group_id, member_id) DO NOTHING RETURNING member_id"
    );
    let stmt = statement(
        conn,
        &sql,
        vec![
            tenant_id.into(),
            group_id.into(),
            now.into(),
            SqlValue::from(json!(rows_json).to_string()),
        ],
    );
    let rows = conn.query_all_raw(stmt).await?;
    rows.into_iter()
        .map(|row| Ok(row.try_get::<String>("", "member_id")?))
        .collect()
}

/// Removes the named members; returns the ids actually removed.
pub async fn remove(
    conn: &impl ConnectionTrait,
    tenant_id: &str,
    group_id: &str,
    ids: &[String],
) -> Result<Vec<String>, StoreError> {
    if ids.is_empty() {
        return Ok(Vec::new());
    }
    let sql = format!(
        "DELETE FROM group_members WHERE tenant_id = $1 AND group_id = $2 \
         AND member_id IN (SELECT r.id FROM {} r) RETURNING member_id",
        ids_table(conn, 3)
    );
    let rows = conn
        .query_all_raw(statement(
            conn,
            &sql,
            vec![tenant_id.into(), group_id.into(), ids_json(ids)],
        ))
        .await?;
    rows.into_iter()
        .map(|row| Ok(row.try_get::<String>("", "member_id")?))
        .collect()
}

/// Removes every member not in `keep` (all of them when `keep` is empty); returns the ids
/// removed. The difference is computed in SQL.
pub async fn remove_except(
    conn: &impl ConnectionTrait,
    tenant_id: &str,
    group_id: &str,
    keep: &[String],
) -> Result<Vec<String>, StoreError> {
    let sql = format!(
        // A set difference (EXCEPT), materialised once: PostgreSQL hashes it, SQLite sorts it
        // into a temporary index. NOT IN / NOT EXISTS against the request's list are
        // evaluated per member row by SQLite (quadratic for 100 000 members).
        "DELETE FROM group_members WHERE tenant_id = $1 AND group_id = $2 \
         AND member_id IN (SELECT gm.member_id FROM group_members gm \
           WHERE gm.tenant_id = $1 AND gm.group_id = $2 \
           EXCEPT SELECT k.id FROM {} k) \
         RETURNING member_id",
        ids_table(conn, 3)
    );
    let rows = conn
        .query_all_raw(statement(
            conn,
            &sql,
            vec![tenant_id.into(), group_id.into(), ids_json(keep)],
        ))
        .await?;
    rows.into_iter()
        .map(|row| Ok(row.try_get::<String>("", "member_id")?))
        .collect()
}

/// Every member of a group with its display name, in a stable order.
pub async fn list(
    conn: &impl ConnectionTrait,
    tenant_id: &str,
    group_id: &str,
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
                member_type: MemberType::parse(&kind)
                    .ok_or_else(|| StoreError::Corrupt(format!("member type {kind}")))?,
                display: row.try_get("", "display")?,
            })
        })
        .collect()
}

/// The groups whose members include `member_id` directly.
pub async fn groups_of(
    conn: &impl ConnectionTrait,
    tenant_id: &str,
    member_id: &str,
) -> Result<Vec<String>, StoreError> {
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
        .map(|row| Ok(row.try_get::<String>("", "group_id")?))
        .collect()
}

/// The groups a resource belongs to, directly or through nested groups (nesting is
/// acyclic; the depth bound is a guard).
pub async fn memberships(
    conn: &impl ConnectionTrait,
    tenant_id: &str,
    member_id: &str,
) -> Result<Vec<Membership>, StoreError> {
    let sql = "WITH RECURSIVE up(group_id, depth) AS ( \
                 SELECT group_id, CAST(0 AS BIGINT) FROM group_members WHERE tenant_id = $1 AND member_id = $2 \
                 UNION \
                 SELECT m.group_id, up.depth + 1 FROM group_members m \
                 JOIN up ON m.tenant_id = $1 AND m.member_id = up.group_id WHERE up.depth < 64 \
               ) \
               SELECT g.id AS id, g.display_name AS display, MIN(up.depth) AS depth \
               FROM up JOIN groups g ON g.tenant_id = $1 AND g.id = up.group_id \
               GROUP BY g.id, g.display_name ORDER BY g.display_name, g.id";
    let rows = conn
        .query_all_raw(statement(
            conn,
            sql,
            vec![tenant_id.into(), member_id.into()],
        ))
        .await?;
    rows.into_iter()
        .map(|row| {
            let depth: i64 = row.try_get("", "depth")?;
            Ok(Membership {
                group_id: row.try_get("", "id")?,
                display: row.try_get("", "display")?,
                direct: depth == 0,
            })
        })
        .collect()
}

/// The memberships of several resources at once (one recursive query for a page of
/// users instead of one per user), keyed by member id.
pub async fn memberships_of_many(
    conn: &impl ConnectionTrait,
    tenant_id: &str,
    member_ids: &[String],
) -> Result<std::collections::HashMap<String, Vec<Membership>>, StoreError> {
    let mut out: std::collections::HashMap<String, Vec<Membership>> =
        std::collections::HashMap::new();
    if member_ids.is_empty() {
        return Ok(out);
    }
    let sql = format!(
        "WITH RECURSIVE up(member_id, group_id, depth) AS ( \
           SELECT gm.member_id, gm.group_id, CAST(0 AS BIGINT) FROM group_members gm \
           WHERE gm.tenant_id = $1 AND gm.member_id IN (SELECT s.id FROM {} s) \
           UNION \
           SELECT up.member_id, m.group_id, up.depth + 1 FROM group_members m \
           JOIN up ON m.tenant_id = $1 AND m.member_id = up.group_id WHERE up.depth < 64 \
         ) \
         SELECT up.member_id AS member_id, g.id AS id, g.display_name AS display, MIN(up.depth) AS depth \
         FROM up JOIN groups g ON g.tenant_id = $1 AND g.id = up.group_id \
         GROUP BY up.member_id, g.id, g.display_name ORDER BY g.display_name, g.id",
        ids_table(conn, 2)
    );
    let rows = conn
        .query_all_raw(statement(
            conn,
            &sql,
            vec![tenant_id.into(), ids_json(member_ids)],
        ))
        .await?;
    for row in rows {
        let member: String = row.try_get("", "member_id")?;
        let depth: i64 = row.try_get("", "depth")?;
        out.entry(member).or_default().push(Membership {
            group_id: row.try_get("", "id")?,
            display: row.try_get("", "display")?,
            direct: depth == 0,
        });
    }
    Ok(out)
}

/// Whether making `candidates` (groups) members of `group_id` would close a cycle: true
/// when `group_id` is one of them or nested anywhere inside one of them.
pub async fn would_cycle(
    conn: &impl ConnectionTrait,
    tenant_id: &str,
    group_id: &str,
    candidates: &[String],
) -> Result<bool, StoreError> {
    if candidates.is_empty() {
        return Ok(false);
    }
    let sql = format!(
        "WITH RECURSIVE down(id, depth) AS ( \
           SELECT c.id, CAST(0 AS BIGINT) FROM {} c \
           UNION \
           SELECT m.member_id, down.depth + 1 FROM group_members m \
           JOIN down ON m.tenant_id = $2 AND m.group_id = down.id \
           WHERE m.member_type = 'Group' AND down.depth < 64 \
         ) SELECT COUNT(*) AS hits FROM down WHERE id = $3",
        ids_table(conn, 1)
    );
    let row = conn
        .query_one_raw(statement(
            conn,
            &sql,
            vec![ids_json(candidates), tenant_id.into(), group_id.into()],
        ))
        .await?
        .ok_or(StoreError::NotFound)?;
    Ok(row.try_get::<i64>("", "hits")? > 0)
}
