//! User use cases: create, read, replace, delete and list, each write with its events.

use serde_json::{Map, Value, json};

use super::emit::emit;
use super::{Context, ServiceError};
use crate::domain::{ExternalId, NewUser, StoredUser, Tenant, UserHot, UserName};
use crate::events::{EventType, PendingEvent};
use crate::scim::filter::{HotAttribute, parse_eq_filter};
use crate::scim::resource::{ListResponse, Page, etag};
use crate::scim::schema::USER_URN;
use crate::scim::validate::validate_resource;
use crate::store::{StoreError, users};

/// Attributes of a user that a filter can reach for now, with their column.
const FILTERABLE: &[(&str, HotAttribute)] = &[
    ("id", HotAttribute::Id),
    ("userName", HotAttribute::UserName),
    ("externalId", HotAttribute::ExternalId),
    ("displayName", HotAttribute::DisplayName),
];

/// A user as the API returns it, with its version for the `ETag` header.
#[derive(Debug, Clone)]
pub struct UserView {
    pub id: String,
    pub version: i64,
    pub body: Value,
}

impl UserView {
    pub fn etag(&self) -> String {
        etag(self.version)
    }

    /// `meta.location`, also the `Location` header (RFC 7644 §3.3, §3.4.1).
    pub fn location(&self) -> Option<&str> {
        self.body["meta"]["location"].as_str()
    }
}

/// The outcome of a replace: whether anything changed.
#[derive(Debug)]
pub struct Replaced {
    pub user: UserView,
    pub changed: bool,
}

fn not_found(id: &str) -> ServiceError {
    ServiceError::NotFound(format!("User {id} not found"))
}

fn taken(err: StoreError) -> ServiceError {
    match err {
        StoreError::Unique("users_tenant_id_user_name_ci_key") => {
            ServiceError::uniqueness("userName is already taken in this tenant")
        }
        other => other.into(),
    }
}

/// Validates a full User body (POST or PUT) and derives its hot columns.
fn parse_user(ctx: &Context, body: Value) -> Result<NewUser, ServiceError> {
    let document = validate_resource(ctx.registry, ctx.registry.user(), body)?;
    let user_name = document
        .get("userName")
        .and_then(Value::as_str)
        .ok_or_else(|| ServiceError::invalid_value("`userName` must be a string"))?;
    let user_name = UserName::parse(user_name).map_err(ServiceError::invalid_value)?;
    let external_id = document
        .get("externalId")
        .and_then(Value::as_str)
        .map(ExternalId::parse)
        .transpose()
        .map_err(ServiceError::invalid_value)?;
    let active = document
        .get("active")
        .and_then(Value::as_bool)
        .unwrap_or(true);
    let display_name = document
        .get("displayName")
        .and_then(Value::as_str)
        .map(str::to_owned);
    Ok(NewUser {
        hot: UserHot {
            user_name,
            external_id,
            active,
            display_name,
        },
        document,
    })
}

/// The SCIM representation: the stored document, `id` and `meta` (RFC 7643 §3.1).
pub fn represent(ctx: &Context, tenant: &Tenant, user: &StoredUser) -> Value {
    let mut body = user.document.clone();
    body.insert("id".to_owned(), Value::String(user.id.clone()));
    body.insert(
        "meta".to_owned(),
        json!({
            "resourceType": "User",
            "created": user.created_at,
            "lastModified": user.updated_at,
            "location": format!("{}/Users/{}", ctx.scim_base(&tenant.slug), user.id),
            "version": etag(user.version),
        }),
    );
    Value::Object(body)
}

fn view(ctx: &Context, tenant: &Tenant, user: &StoredUser) -> UserView {
    UserView {
        id: user.id.clone(),
        version: user.version,
        body: represent(ctx, tenant, user),
    }
}

/// Names of the attributes that differ between two documents (extension attributes as
/// `urn:…:name`), and their previous values (null where absent).
fn diff(old: &Map<String, Value>, new: &Map<String, Value>) -> (Vec<String>, Map<String, Value>) {
    let mut changed = Vec::new();
    let mut previous = Map::new();
    let mut keys: Vec<&String> = old.keys().chain(new.keys()).collect();
    keys.sort();
    keys.dedup();
    for key in keys {
        let (a, b) = (old.get(key), new.get(key));
        if a == b {
            continue;
        }
        if key.starts_with("urn:")
            && let (Some(Value::Object(a)), Some(Value::Object(b))) = (a, b)
        {
            let (sub_changed, sub_previous) = diff(a, b);
            for name in sub_changed {
                let qualified = format!("{key}:{name}");
                previous.insert(
                    qualified.clone(),
                    sub_previous.get(&name).cloned().unwrap_or(Value::Null),
                );
                changed.push(qualified);
            }
            continue;
        }
        changed.push(key.clone());
        previous.insert(key.clone(), a.cloned().unwrap_or(Value::Null));
    }
    (changed, previous)
}

fn event(
    event_type: EventType,
    view: &UserView,
    changed: Vec<String>,
    previous: Map<String, Value>,
) -> PendingEvent {
    PendingEvent {
        event_type,
        subject: format!("Users/{}", view.id),
        data: json!({
            "resource": view.body,
            "version": view.version,
            "changed": changed,
            "previous": previous,
        }),
    }
}

#[tracing::instrument(skip_all, fields(tenant = %tenant.slug), err)]
pub async fn create(ctx: &Context, tenant: &Tenant, body: Value) -> Result<UserView, ServiceError> {
    let new = parse_user(ctx, body)?;
    let id = uuid::Uuid::new_v4().to_string();
    let txn = ctx.store.begin_write().await.map_err(ServiceError::from)?;
    let now = ctx.now();
    let stored = users::insert(&txn, &tenant.id, &id, new, &now)
        .await
        .map_err(taken)?;
    let created = view(ctx, tenant, &stored);
    let mut changed: Vec<String> = stored.document.keys().cloned().collect();
    changed.sort();
    let events = vec![event(EventType::UserCreated, &created, changed, Map::new())];
    emit(&txn, tenant, &now, events).await?;
    txn.commit().await?;
    ctx.signal_events();
    Ok(created)
}

#[tracing::instrument(skip_all, fields(tenant = %tenant.slug, id), err)]
pub async fn get(ctx: &Context, tenant: &Tenant, id: &str) -> Result<UserView, ServiceError> {
    let user = users::find(ctx.store.conn(), &tenant.id, id)
        .await?
        .ok_or_else(|| not_found(id))?;
    Ok(view(ctx, tenant, &user))
}

/// PUT: replaces the whole document (RFC 7644 §3.5.1). A body equal to what is stored
/// changes nothing: no version bump, no event (DESIGN 9).
#[tracing::instrument(skip_all, fields(tenant = %tenant.slug, id), err)]
pub async fn replace(
    ctx: &Context,
    tenant: &Tenant,
    id: &str,
    body: Value,
) -> Result<Replaced, ServiceError> {
    let new = parse_user(ctx, body)?;
    let txn = ctx.store.begin_write().await.map_err(ServiceError::from)?;
    let old = users::find_for_update(&txn, &tenant.id, id)
        .await?
        .ok_or_else(|| not_found(id))?;
    if old.document == new.document {
        txn.rollback().await?;
        return Ok(Replaced {
            user: view(ctx, tenant, &old),
            changed: false,
        });
    }
    let (changed, previous) = diff(&old.document, &new.document);
    let now = ctx.now();
    let active = new.hot.active;
    let stored = users::update(&txn, &tenant.id, id, new, old.version + 1, &now)
        .await
        .map_err(taken)?;
    let updated = view(ctx, tenant, &stored);
    // One event per version: a write that flips `active` is the deactivation or the
    // reactivation, and its `changed` lists whatever else changed with it.
    let event_type = match (old.active, active) {
        (true, false) => EventType::UserDeactivated,
        (false, true) => EventType::UserReactivated,
        _ => EventType::UserUpdated,
    };
    emit(
        &txn,
        tenant,
        &now,
        vec![event(event_type, &updated, changed, previous)],
    )
    .await?;
    txn.commit().await?;
    ctx.signal_events();
    Ok(Replaced {
        user: updated,
        changed: true,
    })
}

#[tracing::instrument(skip_all, fields(tenant = %tenant.slug, id), err)]
pub async fn delete(ctx: &Context, tenant: &Tenant, id: &str) -> Result<(), ServiceError> {
    let txn = ctx.store.begin_write().await.map_err(ServiceError::from)?;
    let old = users::find_for_update(&txn, &tenant.id, id)
        .await?
        .ok_or_else(|| not_found(id))?;
    users::delete(&txn, &tenant.id, id).await?;
    let now = ctx.now();
    let mut last = view(ctx, tenant, &old);
    // The deletion is a change of its own: it takes the next version.
    last.version += 1;
    let events = vec![event(EventType::UserDeleted, &last, Vec::new(), Map::new())];
    emit(&txn, tenant, &now, events).await?;
    txn.commit().await?;
    ctx.signal_events();
    Ok(())
}

/// GET /Users with `filter`, `startIndex` and `count`.
#[tracing::instrument(skip_all, fields(tenant = %tenant.slug), err)]
pub async fn list(
    ctx: &Context,
    tenant: &Tenant,
    filter: Option<&str>,
    page: Page,
) -> Result<ListResponse, ServiceError> {
    let filter = filter
        .map(|raw| parse_eq_filter(raw, USER_URN, FILTERABLE))
        .transpose()?;
    let (total, rows) = users::list(
        ctx.store.conn(),
        &tenant.id,
        filter.as_ref(),
        page.offset(),
        page.count,
    )
    .await?;
    let resources = rows.iter().map(|u| represent(ctx, tenant, u)).collect();
    Ok(ListResponse::new(total, page.start_index, resources))
}

#[cfg(test)]
mod tests {
    use super::diff;
    use serde_json::json;

    #[test]
    fn diff_names_changed_attributes_and_their_previous_values() {
        let old = json!({"userName": "a", "title": "x", "urn:e:User": {"d": 1, "k": 2}});
        let new = json!({"userName": "a", "nickName": "n", "urn:e:User": {"d": 2, "k": 2}});
        let (changed, previous) = diff(old.as_object().unwrap(), new.as_object().unwrap());
        assert_eq!(changed, vec!["nickName", "title", "urn:e:User:d"]);
        assert_eq!(previous["title"], "x");
        assert_eq!(previous["nickName"], serde_json::Value::Null);
        assert_eq!(previous["urn:e:User:d"], 1);
    }
}
