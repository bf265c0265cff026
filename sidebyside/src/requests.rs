//! The requests and bodies of the scenarios, and the ids of the seeded data.

use super::*;

pub(crate) fn tenant_slug(k: usize) -> String {
    if k == 0 {
        TENANT.to_owned()
    } else {
        format!("{TENANT}-{}", k + 1)
    }
}

pub(crate) fn user_body(user_name: &str, external_id: &str, active: bool) -> Value {
    json!({
        "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"],
        "userName": user_name,
        "externalId": external_id,
        "name": {"givenName": "Ada", "familyName": "Lovelace", "formatted": "Ada Lovelace"},
        "displayName": "Ada Lovelace",
        "title": "Engineer",
        "locale": "en-US",
        "emails": [{"value": format!("{user_name}@example.com"), "type": "work", "primary": true}],
        "active": active
    })
}

pub(crate) fn patch_body(ops: Value) -> Value {
    json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"], "Operations": ops})
}

pub(crate) fn seeded_id(g: u64) -> String {
    (USER_BASE + g).to_string()
}

pub(crate) fn new_name() -> String {
    format!("u{}", uuid::Uuid::new_v4().simple())
}

pub(crate) fn create_req() -> Req {
    create_req_in(BASE)
}

pub(crate) fn create_req_in(base: &str) -> Req {
    let name = new_name();
    Req::with_body(
        "POST /Users",
        "POST",
        format!("{base}/Users"),
        &user_body(&name, &format!("x{}", uuid::Uuid::new_v4().simple()), true),
        201,
    )
}

pub(crate) fn random_user(users: u64) -> String {
    seeded_id(rand::rng().random_range(1..=users))
}

pub(crate) fn get_req(id: &str) -> Req {
    Req::get("GET /Users/{id}", format!("{BASE}/Users/{id}"))
}

pub(crate) fn filter_req(id: &str) -> Req {
    Req::get(
        "GET /Users?filter",
        format!("{BASE}/Users?filter=userName%20eq%20%22{id}%22"),
    )
}

pub(crate) fn patch_put_unit(id: &str) -> Vec<Req> {
    vec![
        Req::with_body(
            "PATCH active=false",
            "PATCH",
            format!("{BASE}/Users/{id}"),
            &patch_body(json!([{"op": "replace", "value": {"active": false}}])),
            200,
        ),
        Req::with_body(
            "PUT /Users/{id}",
            "PUT",
            format!("{BASE}/Users/{id}"),
            &user_body(id, &format!("ext-{id}"), true),
            200,
        ),
    ]
}

pub(crate) fn group_id(size: u64) -> String {
    (3_000_000 + size).to_string()
}

pub(crate) fn spare(worker: u64, users: u64) -> String {
    seeded_id(users + EXTRA + 1 + worker)
}

pub(crate) fn add_remove_unit(gid: &str, member: &str) -> Vec<Req> {
    vec![
        Req::with_body(
            "PATCH add member",
            "PATCH",
            format!("{BASE}/Groups/{gid}"),
            &patch_body(json!([{"op": "add", "path": "members", "value": [{"value": member}]}])),
            204,
        ),
        Req::with_body(
            "PATCH remove member",
            "PATCH",
            format!("{BASE}/Groups/{gid}"),
            &patch_body(
                json!([{"op": "remove", "path": format!("members[value eq \"{member}\"]")}]),
            ),
            204,
        ),
    ]
}

/// SQL for the last sequence a tenant (`id_sql`, an SQL expression) has used: its event
/// counter or its highest outbox row, whichever is higher, so that copied events follow
/// whatever numbering scimbus uses.
pub(crate) fn last_sequence(id_sql: &str) -> String {
    format!(
        "SELECT greatest(t.event_seq, coalesce((SELECT max(o.sequence) FROM outbox o \
         WHERE o.tenant_id = t.id), 0)) FROM tenants t WHERE t.id = {id_sql}"
    )
}
