//! The request journal's rows (`http::journal` captures them, `service::journal` writes
//! and reads them): per tenant, newest first by `id` (a UUIDv7), on the primary key
//! `(tenant_id, id)`. An entry's two bodies are kept together in one compressed column,
//! `bodies` ([`pack`]): a third of the bytes to write, which is most of what a journal
//! entry costs the database (docs/decisions.md, Request journal).

use std::io::{Read, Write};

use sea_orm::{ConnectionTrait, Statement};

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
         duration_ms, request_id, token_name, subject, bodies) VALUES ",
    );
    let mut values: Vec<sea_orm::Value> = Vec::with_capacity(entries.len() * 12);
    for (i, e) in entries.iter().enumerate() {
        let bodies = pack(e.request_body.as_deref(), e.response_body.as_deref())?;
        let row: [sea_orm::Value; 12] = [
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
            bodies.into(),
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

/// Rows one prune statement deletes at most (a prune repeats it while it deletes as many).
const PRUNE_BATCH: u64 = 1_000;

/// Keeps the tenant's newest `keep` entries younger than `cutoff`; returns how many went.
/// Entries are deleted oldest first by ranges of the primary key, so a prune reads the
/// `keep` newest keys and what it deletes, never the tenant's or the table's other rows
/// (ids are UUIDv7: newer entries have greater ids).
pub async fn prune(
    conn: &impl ConnectionTrait,
    tenant_id: &TenantId,
    keep: u64,
    cutoff: &Timestamp,
) -> Result<u64, StoreError> {
    let keep = i64::try_from(keep).unwrap_or(i64::MAX);
    let backend = conn.get_database_backend();
    let mut gone = 0;
    for statement in [
        prune_beyond_statement(backend, tenant_id, keep),
        prune_older_statement(backend, tenant_id, cutoff),
    ] {
        loop {
            let done = conn.execute_raw(statement.clone()).await?.rows_affected();
            gone += done;
            if done < PRUNE_BATCH {
                break;
            }
        }
    }
    Ok(gone)
}

/// Deletes (a batch of) the oldest entries whose id is below `bound`, a subquery.
fn prune_below(backend: sea_orm::DbBackend, bound: &str, values: Vec<sea_orm::Value>) -> Statement {
    super::backend_statement(
        backend,
        &format!(
            "DELETE FROM request_journal WHERE tenant_id = $1 AND id IN \
             (SELECT id FROM request_journal WHERE tenant_id = $1 AND id < {bound} \
             ORDER BY id LIMIT {PRUNE_BATCH})"
        ),
        values,
    )
}

/// The entries beyond the newest `keep`.
pub fn prune_beyond_statement(
    backend: sea_orm::DbBackend,
    tenant_id: &TenantId,
    keep: i64,
) -> Statement {
    prune_below(
        backend,
        "COALESCE((SELECT id FROM request_journal WHERE tenant_id = $1 \
         ORDER BY id DESC LIMIT 1 OFFSET $2), '')",
        vec![tenant_id.into(), (keep - 1).max(0).into()],
    )
}

/// The entries older than `cutoff` (all, when none is younger: below the newest id
/// extended by a character, which sorts after it whatever the database's collation).
pub fn prune_older_statement(
    backend: sea_orm::DbBackend,
    tenant_id: &TenantId,
    cutoff: &Timestamp,
) -> Statement {
    prune_below(
        backend,
        "COALESCE((SELECT id FROM request_journal WHERE tenant_id = $1 AND at >= $2 \
         ORDER BY id LIMIT 1), (SELECT MAX(id) FROM request_journal WHERE tenant_id = $1) \
         || '0')",
        vec![tenant_id.into(), cutoff.into()],
    )
}

/// The tenant's entries, newest first.
pub async fn list(
    conn: &impl ConnectionTrait,
    tenant_id: &TenantId,
    q: &JournalQuery<'_>,
) -> Result<Vec<JournalEntry>, StoreError> {
    let mut sql = String::from(
        "SELECT id, tenant_id, at, method, target, status, scim_type, duration_ms, \
         request_id, token_name, subject, bodies \
         FROM request_journal WHERE tenant_id = $1",
    );
    let mut values: Vec<sea_orm::Value> = vec![tenant_id.into()];
    let mut add = |clause: &str, value: sea_orm::Value, sql: &mut String| {
        values.push(value);
        sql.push_str(&clause.replace('?', &format!("${}", values.len())));
    };
    if let Some(id) = q.id {
        add(" AND id = ?", id.into(), &mut sql);
    }
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
            let (request_body, response_body) = unpack(&row.try_get::<Vec<u8>>("", "bodies")?)?;
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
                request_body,
                response_body,
            })
        })
        .collect()
}

/// Entries an erasure reads per statement.
const ERASE_PAGE: i64 = 500;

/// Erasure: removes the tenant's entries about `id` (their subject, or any mention of it in
/// the target or a body); returns how many went. The bodies are compressed, so the
/// tenant's entries (at most `SCIMBUS_JOURNAL_ENTRIES`) are read and searched here, a page
/// at a time.
pub async fn erase(
    conn: &impl ConnectionTrait,
    tenant_id: &TenantId,
    id: &str,
) -> Result<u64, StoreError> {
    let mut doomed: Vec<String> = Vec::new();
    let mut after = String::new();
    loop {
        let rows = conn
            .query_all_raw(statement(
                conn,
                "SELECT id, subject, target, bodies FROM request_journal \
                 WHERE tenant_id = $1 AND id > $2 ORDER BY id LIMIT $3",
                vec![tenant_id.into(), after.clone().into(), ERASE_PAGE.into()],
            ))
            .await?;
        let full = rows.len() == usize::try_from(ERASE_PAGE).unwrap_or(usize::MAX);
        for row in rows {
            let entry: String = row.try_get("", "id")?;
            let subject: Option<String> = row.try_get("", "subject")?;
            let target: String = row.try_get("", "target")?;
            let (request, response) = unpack(&row.try_get::<Vec<u8>>("", "bodies")?)?;
            let mentions = names(subject.as_deref(), &target, [&request, &response], id);
            if mentions {
                doomed.push(entry.clone());
            }
            after = entry;
        }
        if !full {
            break;
        }
    }
    let mut gone = 0;
    for chunk in doomed.chunks(ERASE_PAGE as usize) {
        let placeholders: Vec<String> = (2..chunk.len() + 2).map(|n| format!("${n}")).collect();
        let sql = format!(
            "DELETE FROM request_journal WHERE tenant_id = $1 AND id IN ({})",
            placeholders.join(", ")
        );
        let mut values: Vec<sea_orm::Value> = vec![tenant_id.into()];
        values.extend(chunk.iter().map(|id| sea_orm::Value::from(id.clone())));
        gone += conn
            .execute_raw(statement(conn, &sql, values))
            .await?
            .rows_affected();
    }
    Ok(gone)
}

/// Whether an entry names the resource `id`: as its subject (`Users/{id}`), as a segment
/// of its target's path, quoted in its target's query (a filter's `"{id}"`), or in a body
/// as a JSON string value (`"{id}"`, not a member's name) or the last segment of one (a
/// `$ref`'s `…/{id}"`). Not a mere substring: erasing `Users/1` must not take every entry with a "1" in it.
fn names(subject: Option<&str>, target: &str, bodies: [&Option<String>; 2], id: &str) -> bool {
    if id.is_empty() {
        return false;
    }
    if subject
        .and_then(|s| s.split_once('/'))
        .is_some_and(|(_, s)| s == id)
    {
        return true;
    }
    let (path, query) = target.split_once('?').unwrap_or((target, ""));
    if path.split('/').any(|segment| segment == id) {
        return true;
    }
    let quoted = format!("\"{id}\"");
    let referenced = format!("/{id}\"");
    // A JSON string that is a value, not a member's name (`"{id}":`).
    let value = |text: &str| {
        text.match_indices(&quoted)
            .any(|(at, _)| !text[at + quoted.len()..].trim_start().starts_with(':'))
    };
    let query_names = url::form_urlencoded::parse(query.as_bytes())
        .any(|(key, v)| key.contains(&quoted) || v.contains(&quoted));
    query_names
        || bodies
            .into_iter()
            .flatten()
            .any(|body| value(body) || body.contains(&referenced))
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

/// What [`pack`] writes first: the layout of what follows (a deflate stream of the JSON
/// array `[request, response]`).
const PACKED_V1: u8 = 1;

/// Both bodies of an entry as one compressed value.
pub fn pack(request: Option<&str>, response: Option<&str>) -> Result<Vec<u8>, StoreError> {
    let json = serde_json::to_vec(&(request, response))
        .map_err(|e| StoreError::Corrupt(format!("journal bodies: {e}")))?;
    let mut encoder = flate2::write::DeflateEncoder::new(
        Vec::with_capacity(json.len() / 3 + 16),
        flate2::Compression::fast(),
    );
    let packed = encoder
        .write_all(&[PACKED_V1])
        .and_then(|()| encoder.write_all(&json))
        .and_then(|()| encoder.finish());
    packed.map_err(|e| StoreError::Corrupt(format!("journal bodies: {e}")))
}

/// The request and response bodies [`pack`] kept.
pub fn unpack(packed: &[u8]) -> Result<(Option<String>, Option<String>), StoreError> {
    let corrupt = |e: String| StoreError::Corrupt(format!("journal bodies: {e}"));
    let mut json = Vec::with_capacity(packed.len() * 4);
    flate2::read::DeflateDecoder::new(packed)
        .read_to_end(&mut json)
        .map_err(|e| corrupt(e.to_string()))?;
    match json.split_first() {
        Some((&PACKED_V1, rest)) => {
            serde_json::from_slice(rest).map_err(|e| corrupt(e.to_string()))
        }
        _ => Err(corrupt("unknown layout".to_owned())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bodies_come_back_as_packed_and_smaller() {
        let user = serde_json::json!({
            "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"],
            "userName": "bjensen@example.com",
            "name": {"givenName": "Barbara", "familyName": "Jensen"},
            "emails": [{"value": "bjensen@example.com", "type": "work", "primary": true}],
            "active": true,
        })
        .to_string();
        for (request, response) in [
            (Some(user.as_str()), Some(user.as_str())),
            (None, Some("{}")),
            (Some("[\"quoted\" \u{e9}]"), None),
            (None, None),
        ] {
            let packed = pack(request, response).unwrap_or_default();
            let (back_request, back_response) = unpack(&packed).unwrap_or_default();
            assert_eq!(back_request.as_deref(), request);
            assert_eq!(back_response.as_deref(), response);
        }
        let packed = pack(Some(&user), Some(&user)).unwrap_or_default();
        // Two copies of a body take less room than one would unpacked.
        assert!(packed.len() < user.len(), "{} bytes", packed.len());
        assert!(unpack(b"not deflate").is_err());
    }

    #[test]
    fn an_entry_names_an_id_as_its_subject_a_path_segment_or_a_quoted_value_only() {
        let id = "0193c1f2-7f3a-7b4c-9d2e-3f4a5b6c7d8e";
        let none: Option<String> = None;
        let members = Some(format!(r#"{{"members":[{{"value":"{id}"}}]}}"#));
        let reference = Some(format!(r#"{{"$ref":"https://x/Users/{id}"}}"#));
        let filter = format!("/Groups?filter=members.value%20eq%20%22{id}%22");
        let named = [
            names(Some(&format!("Users/{id}")), "/Users", [&none, &none], id),
            names(None, &format!("/Users/{id}"), [&none, &none], id),
            names(None, &filter, [&none, &none], id),
            names(None, "/Groups", [&members, &none], id),
            names(None, "/Groups", [&none, &reference], id),
        ];
        assert!(named.iter().all(|n| *n), "{named:?}");
        let ordinary = Some(format!(
            r#"{{"id":"{id}","userName":"user1","meta":{{"version":"W/\"1\""}},"totalResults":1,"a":"alice"}}"#
        ));
        let subject = format!("Users/{id}");
        let target = format!("/Users/{id}?x=1");
        for short in ["1", "a", "0193c1f2", "user", "x"] {
            assert!(
                !names(Some(&subject), &target, [&ordinary, &none], short),
                "{short}"
            );
        }
        assert!(!names(None, "/Users", [&ordinary, &none], ""));
    }
}
