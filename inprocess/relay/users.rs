//! Realistic users, and the backlog of their `scimbus.user.created` events.

use super::*;

pub(crate) const GIVEN: [&str; 8] = [
    "Barbara", "Ahmed", "Mei", "Olusegun", "Ingrid", "Carlos", "Priya", "Jonas",
];
pub(crate) const FAMILY: [&str; 8] = [
    "Jensen", "Haddad", "Zhang", "Adeyemi", "Larsen", "Mendoza", "Raman", "Becker",
];

/// A User as an IdP (Okta-like) pushes it.
pub(crate) fn user_document(i: u64, unique: &str) -> Value {
    let given = GIVEN[(i % 8) as usize];
    let family = FAMILY[((i / 8) % 8) as usize];
    let email = format!(
        "{}.{}.{unique}@example.com",
        given.to_lowercase(),
        family.to_lowercase()
    );
    json!({
        "schemas": [USER_URN],
        "externalId": format!("00u{:017x}", i.wrapping_mul(7919) + 0x5eed),
        "userName": email,
        "name": {"givenName": given, "familyName": family},
        "displayName": format!("{given} {family}"),
        "title": "Software Engineer",
        "active": true,
        "emails": [{"value": email, "type": "work", "primary": true}],
    })
}

/// The `data` of `scimbus.user.created`, as `service::users::create` builds it.
pub(crate) fn created_data(i: u64, id: &str, now: &str) -> Value {
    let mut resource = user_document(i, &format!("{i}"));
    let mut changed: Vec<String> = resource
        .as_object()
        .map(|o| o.keys().cloned().collect())
        .unwrap_or_default();
    changed.sort();
    resource["id"] = json!(id);
    resource["meta"] = json!({
        "resourceType": "User",
        "created": now,
        "lastModified": now,
        "location": format!("https://scim.example.com/scim/v2/{TENANT}/Users/{id}"),
        "version": "W/\"1\"",
    });
    json!({"resource": resource, "version": 1, "changed": changed, "previous": {}})
}

/// Writes `n` created events in transactions of `FILL_TRANSACTION` rows, as `emit` does.
pub(crate) async fn fill(ctx: &Context, tenant: &Tenant, n: u64) -> anyhow::Result<()> {
    let slug = tenant.slug.as_str();
    let mut written = 0;
    while written < n {
        let k = FILL_TRANSACTION.min(n - written);
        let txn = ctx.store.begin_write().await?;
        let now = ctx.now();
        let last = tenant_store::advance_sequence(&txn, &tenant.id, k as i64, true, None).await?;
        let first = last - k as i64 + 1;
        let mut rows = Vec::with_capacity(k as usize);
        for j in 0..k {
            let i = written + j;
            let id = uuid::Uuid::new_v4().to_string();
            let event = PendingEvent {
                event_type: EventType::UserCreated,
                subject: format!("Users/{id}"),
                data: created_data(i, &id, &now),
            };
            let sequence = first + j as i64;
            let envelope = Envelope::new(slug, sequence, &now, None, event);
            rows.push(OutboxRow {
                sequence,
                id: envelope.id.clone(),
                event_type: envelope.event_type.clone(),
                routing_key: EventType::UserCreated.routing_key(slug),
                subject: envelope.subject.clone(),
                payload: serde_json::to_value(&envelope)?,
                created_at: now.clone(),
            });
        }
        outbox::insert(&txn, &tenant.id, rows).await?;
        txn.commit().await?;
        written += k;
    }
    Ok(())
}

/// The backlog as the relay will see it: same order, the same body bytes (the stored text).
pub(crate) async fn load_messages(
    store: &Store,
    _tenant_id: &TenantId,
) -> anyhow::Result<Vec<Message>> {
    Ok(outbox::fetch_unpublished(store.conn(), u64::MAX)
        .await?
        .into_iter()
        .map(|e| Message {
            body: e.body.into_bytes(),
            id: e.id,
            routing_key: e.routing_key,
        })
        .collect())
}

/// Makes every event unpublished again, and tidies up after the mass update (untimed).
pub(crate) async fn reset(store: &Store) -> anyhow::Result<()> {
    let conn = store.conn();
    conn.execute_unprepared("UPDATE outbox SET published_at = NULL")
        .await?;
    settle(store).await
}

/// PostgreSQL: `VACUUM ANALYZE` (what autovacuum does in a steady state). SQLite: a WAL
/// checkpoint.
pub(crate) async fn settle(store: &Store) -> anyhow::Result<()> {
    let sql = match store.backend() {
        Backend::Postgres => "VACUUM ANALYZE outbox",
        Backend::Sqlite => "PRAGMA wal_checkpoint(TRUNCATE)",
    };
    store.conn().execute_unprepared(sql).await?;
    Ok(())
}
