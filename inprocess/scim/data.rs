//! The bench's data, written straight through the store as the service writes it: users,
//! groups and membership rows.

use super::*;

pub(crate) const GIVEN: [&str; 8] = [
    "Barbara", "Ahmed", "Mei", "Olusegun", "Ingrid", "Carlos", "Priya", "Jonas",
];
pub(crate) const FAMILY: [&str; 8] = [
    "Jensen", "Haddad", "Zhang", "Adeyemi", "Larsen", "Mendoza", "Raman", "Becker",
];

/// A User as an IdP (Okta-like) pushes it. One in a hundred has an address at
/// `xyz.example`, the only domain starting with `x`: `emails co "@x"` matches 1 %.
pub(crate) fn user_body(i: usize) -> Value {
    let given = GIVEN[i % 8];
    let family = FAMILY[(i / 8) % 8];
    let domain = if i.is_multiple_of(100) {
        "xyz.example"
    } else {
        "example.com"
    };
    let email = format!(
        "{}.{}.{i}@{domain}",
        given.to_lowercase(),
        family.to_lowercase()
    );
    json!({
        "schemas": [USER_URN],
        "externalId": format!("00u{:017x}", (i as u64).wrapping_mul(7919) + 0x5eed),
        "userName": email,
        "name": {"givenName": given, "familyName": family, "formatted": format!("{given} {family}")},
        "displayName": format!("{given} {family}"),
        "title": "Software Engineer",
        "active": true,
        "emails": [{"value": email, "type": "work", "primary": true}],
    })
}

/// The row the service would store for `body` (validated, hot columns, `search`).
pub(crate) fn new_user(body: Value) -> anyhow::Result<NewUser> {
    let r = Registry::core();
    let document = validate_resource(r, r.user(), body).map_err(|e| anyhow::anyhow!("{e:?}"))?;
    let text = |k: &str| document.get(k).and_then(Value::as_str).map(str::to_owned);
    let hot = UserHot {
        user_name: UserName::parse(&text("userName").context("userName")?)
            .map_err(anyhow::Error::msg)?,
        external_id: text("externalId")
            .map(|e| ExternalId::parse(&e))
            .transpose()
            .map_err(anyhow::Error::msg)?,
        active: true,
        display_name: text("displayName"),
    };
    let search = search_document(r, r.user(), &document);
    Ok(NewUser {
        hot,
        document,
        search,
    })
}

/// A user as the bench knows it.
#[derive(Debug, Clone)]
pub(crate) struct Known {
    pub(crate) id: String,
    pub(crate) user_name: String,
}

/// Inserts users `from..to` into `tenant`, `FILL_TRANSACTION` a transaction.
pub(crate) async fn fill_users(
    ctx: &Context,
    tenant: &Tenant,
    from: usize,
    to: usize,
) -> anyhow::Result<Vec<Known>> {
    let mut out = Vec::with_capacity(to - from);
    let mut i = from;
    while i < to {
        let end = (i + FILL_TRANSACTION).min(to);
        let txn = ctx.store.begin_write().await?;
        let now = ctx.now();
        for j in i..end {
            let new = new_user(user_body(j))?;
            let user_name = new.hot.user_name.as_str().to_owned();
            let id = ResourceId::generate();
            users::insert(&txn, &tenant.id, &id, new, &now).await?;
            out.push(Known {
                id: id.into_string(),
                user_name,
            });
        }
        txn.commit().await?;
        i = end;
    }
    Ok(out)
}

/// A group with `member_ids` (users) as its members, inserted in one transaction.
pub(crate) async fn make_group(
    ctx: &Context,
    tenant: &Tenant,
    name: &str,
    member_ids: &[String],
) -> anyhow::Result<String> {
    let r = Registry::core();
    let document = validate_resource(
        r,
        r.group(),
        json!({"schemas": [GROUP_URN], "displayName": name}),
    )
    .map_err(|e| anyhow::anyhow!("{e:?}"))?;
    let new = NewGroup {
        hot: GroupHot {
            display_name: name.to_owned(),
            external_id: None,
        },
        search: search_document(r, r.group(), &document),
        document,
    };
    let id = ResourceId::generate();
    let txn = ctx.store.begin_write().await?;
    let now = ctx.now();
    groups::insert(&txn, &tenant.id, &id, new, &now).await?;
    for chunk in member_ids.chunks(MEMBER_CHUNK) {
        let rows: Vec<(ResourceId, ResourceKind)> = chunk
            .iter()
            .map(|m| (ResourceId::from(m.as_str()), ResourceKind::User))
            .collect();
        members::add(&txn, &tenant.id, &id, &rows, &now).await?;
    }
    txn.commit().await?;
    Ok(id.into_string())
}

/// PostgreSQL: `VACUUM ANALYZE` (what autovacuum does in a steady state). SQLite: a WAL
/// checkpoint only (the service never runs `ANALYZE` there).
pub(crate) async fn settle(ctx: &Context) -> anyhow::Result<()> {
    let sql = match ctx.store.backend() {
        Backend::Postgres => "VACUUM ANALYZE",
        Backend::Sqlite => "PRAGMA wal_checkpoint(TRUNCATE)",
    };
    ctx.store.conn().execute_unprepared(sql).await?;
    Ok(())
}
