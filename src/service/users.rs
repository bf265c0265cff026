//! User use cases: create, read, replace, delete and list, each write with its events.

use serde_json::{Map, Value, json};

use scim_v2::models::errors::ScimType;

use super::ListQuery;
use super::changes::diff;
use super::emit::emit;
use super::resource::{ResourceView, Written};
use super::{Context, ServiceError};
use crate::domain::{
    Membership, NewUser, ResourceId, ResourceKind, StoredUser, Tenant, UserHot, UserName,
    check_name_length,
};
use crate::events::{EventType, PendingEvent};
use crate::scim::error::ScimError;
use crate::scim::patch;
use crate::scim::projection::returnable;
use crate::scim::query::search_document;
use crate::scim::resource::{ListResponse, Page};
use crate::scim::schema::Registry;
use crate::scim::validate::validate_resource;
use crate::store::resources::Lock;
use crate::store::users::AnnouncedWrite;
use crate::store::{Backend, query, resources, users};
use crate::telemetry::Correlation;

/// Validates a full User body (POST or PUT) and derives its hot columns.
fn parse_user(registry: &Registry, body: Value) -> Result<NewUser, ServiceError> {
    let document = validate_resource(registry, registry.user(), body)?;
    let user_name = document
        .get("userName")
        .and_then(Value::as_str)
        .ok_or_else(|| ServiceError::invalid_value("`userName` must be a string"))?;
    let user_name = UserName::parse(user_name).map_err(ServiceError::invalid_value)?;
    let external_id = super::resource::external_id(&document)?;
    let active = document
        .get("active")
        .and_then(Value::as_bool)
        .unwrap_or(true);
    let display_name = document
        .get("displayName")
        .and_then(Value::as_str)
        .map(|d| check_name_length("displayName", d).map(|()| d.to_owned()))
        .transpose()
        .map_err(ServiceError::invalid_value)?;
    let search = search_document(registry, registry.user(), &document);
    Ok(NewUser {
        hot: UserHot {
            user_name,
            external_id,
            active,
            display_name,
        },
        document,
        search,
    })
}

/// The SCIM representation: the stored document, `id` and `meta` (RFC 7643 §3.1).
pub fn represent(ctx: &Context, tenant: &Tenant, user: &StoredUser) -> Value {
    super::resource::represent(
        tenant,
        &ctx.scim_base(&tenant.slug),
        ResourceKind::User,
        &user.id,
        &user.document,
        user.version,
        [&user.created_at, &user.updated_at],
    )
}

fn view(ctx: &Context, tenant: &Tenant, user: &StoredUser) -> ResourceView {
    ResourceView::new(
        ResourceKind::User,
        user.id.clone(),
        user.version,
        represent(ctx, tenant, user),
    )
}

fn event(
    event_type: EventType,
    view: &ResourceView,
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

#[tracing::instrument(skip_all, fields(tenant = %tenant.slug), err(level = "debug"))]
pub async fn create(
    ctx: &Context,
    tenant: &Tenant,
    correlation: Option<&Correlation>,
    body: Value,
) -> Result<ResourceView, ServiceError> {
    let new = parse_user(&tenant.registry, body)?;
    crate::failpoints::point("user.create", &tenant.id).await;
    let id = ResourceId::generate();
    if ctx.store.backend() == Backend::Postgres {
        return create_in_one_statement(ctx, tenant, correlation, id, new).await;
    }
    let txn = ctx.store.begin_write().await?;
    let now = ctx.now();
    let stored = users::insert(&txn, &tenant.id, &id, new, &now).await?;
    let (created, events) = creation(ctx, tenant, &stored);
    emit(&txn, tenant, &now, correlation, events).await?;
    txn.commit().await?;
    ctx.signal_events(&tenant.id);
    Ok(created)
}

/// A create on PostgreSQL: the user and its event in one statement, no transaction around
/// it (`store::users::write_announced`). The event is built from what will be stored,
/// which is exactly what an insert returns: id, version 1, the document, `now`.
async fn create_in_one_statement(
    ctx: &Context,
    tenant: &Tenant,
    correlation: Option<&Correlation>,
    id: ResourceId,
    new: NewUser,
) -> Result<ResourceView, ServiceError> {
    let now = ctx.now();
    let stored = StoredUser {
        id,
        active: new.hot.active,
        document: new.document,
        version: 1,
        created_at: now.clone(),
        updated_at: now.clone(),
    };
    let (created, events) = creation(ctx, tenant, &stored);
    crate::failpoints::point("emit", &tenant.id).await;
    let rows = super::emit::unnumbered(tenant, &now, correlation, events)?;
    users::write_announced(
        ctx.store.conn(),
        &tenant.id,
        tenant.schema_version,
        AnnouncedWrite::Insert,
        &stored,
        &new.hot,
        &new.search,
        rows,
    )
    .await?;
    ctx.signal_events(&tenant.id);
    Ok(created)
}

/// The answer to a create of `stored` and its `user.created` (every attribute changed).
fn creation(
    ctx: &Context,
    tenant: &Tenant,
    stored: &StoredUser,
) -> (ResourceView, Vec<PendingEvent>) {
    let created = view(ctx, tenant, stored);
    let mut changed: Vec<String> = stored.document.keys().cloned().collect();
    changed.sort();
    let events = vec![event(EventType::UserCreated, &created, changed, Map::new())];
    (created, events)
}

#[tracing::instrument(skip_all, fields(tenant = %tenant.slug, id), err(level = "debug"))]
pub async fn get(
    ctx: &Context,
    tenant: &Tenant,
    id: &ResourceId,
) -> Result<ResourceView, ServiceError> {
    let (user, groups) = users::find_with_groups(ctx.store.conn(), &tenant.id, id)
        .await?
        .ok_or_else(|| ServiceError::not_found(ResourceKind::User, id))?;
    let mut user = view(ctx, tenant, &user);
    set_groups(ctx, tenant, &mut user.body, groups);
    Ok(user)
}

/// Adds the computed, readOnly `groups` (direct and through nested groups) to a response.
/// It is outside the ETag, which covers the stored document (DESIGN 9).
fn set_groups(ctx: &Context, tenant: &Tenant, body: &mut Value, memberships: Vec<Membership>) {
    if memberships.is_empty() {
        return;
    }
    let base = ctx.scim_base(&tenant.slug);
    let groups: Vec<Value> = memberships
        .into_iter()
        .map(|m| {
            json!({
                "value": m.group_id,
                "$ref": format!("{base}/Groups/{}", m.group_id),
                "display": m.display,
                "type": if m.direct { "direct" } else { "indirect" },
            })
        })
        .collect();
    body["groups"] = Value::Array(groups);
}

/// PUT: replaces the whole document (RFC 7644 §3.5.1).
#[tracing::instrument(skip_all, fields(tenant = %tenant.slug, id), err(level = "debug"))]
pub async fn replace(
    ctx: &Context,
    tenant: &Tenant,
    correlation: Option<&Correlation>,
    id: &ResourceId,
    body: Value,
    if_match: Option<&str>,
) -> Result<Written, ServiceError> {
    let new = parse_user(&tenant.registry, body)?;
    write(ctx, tenant, correlation, id, if_match, |_| Ok(new.clone())).await
}

/// PATCH (RFC 7644 §3.5.2), atomic.
#[tracing::instrument(skip_all, fields(tenant = %tenant.slug, id), err(level = "debug"))]
pub async fn patch(
    ctx: &Context,
    tenant: &Tenant,
    correlation: Option<&Correlation>,
    id: &ResourceId,
    body: Value,
    if_match: Option<&str>,
) -> Result<Written, ServiceError> {
    let operations = patch::parse_patch(body)?;
    write(ctx, tenant, correlation, id, if_match, |old| {
        let outcome = patch::apply(
            &tenant.registry,
            tenant.registry.user(),
            &old.document,
            id.as_str(),
            &operations,
        )?;
        if !outcome.members.is_empty() {
            return Err(ServiceError::Invalid(ScimError::new(
                400,
                Some(ScimType::InvalidPath),
                "users have no `members`",
            )));
        }
        parse_user(&tenant.registry, Value::Object(outcome.document))
    })
    .await
}

/// A write of a user's whole new state: checks `If-Match`, changes nothing when the new
/// document equals the stored one (DESIGN 9), and announces the change in the same commit.
/// On PostgreSQL it first tries without a transaction: read (no lock), then one statement
/// that writes the row only if its version is still the one read, with its event. When a
/// concurrent write came in between, it runs again under the row lock, which always ends.
async fn write(
    ctx: &Context,
    tenant: &Tenant,
    correlation: Option<&Correlation>,
    id: &ResourceId,
    if_match: Option<&str>,
    change: impl Fn(&StoredUser) -> Result<NewUser, ServiceError>,
) -> Result<Written, ServiceError> {
    crate::failpoints::point("user.write", &tenant.id).await;
    if ctx.store.backend() == Backend::Postgres
        && let Some(done) = write_unlocked(ctx, tenant, correlation, id, if_match, &change).await?
    {
        return Ok(done);
    }
    let txn = ctx.store.begin_write().await?;
    // The groups the answer carries, read with the row: a user's write never changes them.
    let (old, groups) = users::find_for_update_with_groups(&txn, &tenant.id, id)
        .await?
        .ok_or_else(|| ServiceError::not_found(ResourceKind::User, id))?;
    super::groups::check_if_match(if_match, old.version)?;
    let new = change(&old)?;
    if old.document == new.document {
        txn.rollback().await?;
        return Ok(unchanged(ctx, tenant, &old, groups));
    }
    let now = ctx.now();
    let stored = users::update(&txn, &tenant.id, id, new, old.version + 1, &now).await?;
    let (mut user, pending) = announce(ctx, tenant, &old, &stored);
    set_groups(ctx, tenant, &mut user.body, groups);
    emit(&txn, tenant, &now, correlation, vec![pending]).await?;
    txn.commit().await?;
    ctx.signal_events(&tenant.id);
    Ok(Written {
        view: user,
        changed: true,
    })
}

/// [`write`] without a transaction (PostgreSQL): `None` when a concurrent write changed or
/// removed the user between the read and the write, which then wrote nothing.
async fn write_unlocked(
    ctx: &Context,
    tenant: &Tenant,
    correlation: Option<&Correlation>,
    id: &ResourceId,
    if_match: Option<&str>,
    change: &impl Fn(&StoredUser) -> Result<NewUser, ServiceError>,
) -> Result<Option<Written>, ServiceError> {
    let conn = ctx.store.conn();
    let (old, groups) = users::find_with_groups(conn, &tenant.id, id)
        .await?
        .ok_or_else(|| ServiceError::not_found(ResourceKind::User, id))?;
    super::groups::check_if_match(if_match, old.version)?;
    let new = change(&old)?;
    if old.document == new.document {
        return Ok(Some(unchanged(ctx, tenant, &old, groups)));
    }
    let now = ctx.now();
    let NewUser {
        hot,
        document,
        search,
    } = new;
    let stored = StoredUser {
        id: old.id.clone(),
        active: hot.active,
        document,
        version: old.version + 1,
        created_at: old.created_at.clone(),
        updated_at: now.clone(),
    };
    let (mut user, pending) = announce(ctx, tenant, &old, &stored);
    crate::failpoints::point("emit", &tenant.id).await;
    let rows = super::emit::unnumbered(tenant, &now, correlation, vec![pending])?;
    let written = users::write_announced(
        conn,
        &tenant.id,
        tenant.schema_version,
        AnnouncedWrite::UpdateFrom(old.version),
        &stored,
        &hot,
        &search,
        rows,
    )
    .await?;
    if !written {
        return Ok(None);
    }
    set_groups(ctx, tenant, &mut user.body, groups);
    ctx.signal_events(&tenant.id);
    Ok(Some(Written {
        view: user,
        changed: true,
    }))
}

/// The answer to a write that changes nothing: the user as it is, nothing bumped.
fn unchanged(ctx: &Context, tenant: &Tenant, old: &StoredUser, groups: Vec<Membership>) -> Written {
    let mut user = view(ctx, tenant, old);
    set_groups(ctx, tenant, &mut user.body, groups);
    Written {
        view: user,
        changed: false,
    }
}

/// The answer's view of a user written from `old` to `stored`, and the event announcing
/// it: one event per version; a write that flips `active` is the deactivation or the
/// reactivation, and its `changed` lists whatever else changed with it. Events show what
/// answers show: nothing `writeOnly` or `returned: never`.
fn announce(
    ctx: &Context,
    tenant: &Tenant,
    old: &StoredUser,
    stored: &StoredUser,
) -> (ResourceView, PendingEvent) {
    let registry = &tenant.registry;
    let (changed, previous) = diff(
        &returnable(registry, registry.user(), &old.document),
        &returnable(registry, registry.user(), &stored.document),
    );
    let updated = view(ctx, tenant, stored);
    let event_type = match (old.active, stored.active) {
        (true, false) => EventType::UserDeactivated,
        (false, true) => EventType::UserReactivated,
        _ => EventType::UserUpdated,
    };
    let pending = event(event_type, &updated, changed, previous);
    (updated, pending)
}

/// DELETE: the user first leaves each of its groups (`members_removed` per group, each
/// group's version bumped), then `user.deleted` (DESIGN 11).
#[tracing::instrument(skip_all, fields(tenant = %tenant.slug, id), err(level = "debug"))]
pub async fn delete(
    ctx: &Context,
    tenant: &Tenant,
    correlation: Option<&Correlation>,
    id: &ResourceId,
    if_match: Option<&str>,
) -> Result<(), ServiceError> {
    let txn = ctx.store.begin_write().await?;
    // Its groups first, then the user: the order a write adding it to a group takes.
    super::groups::lock_parents(&txn, tenant, id).await?;
    let old = users::find(&txn, &tenant.id, id, Lock::Update)
        .await?
        .ok_or_else(|| ServiceError::not_found(ResourceKind::User, id))?;
    super::groups::check_if_match(if_match, old.version)?;
    let now = ctx.now();
    let mut events = super::groups::leave_all_groups(&txn, tenant, id, &now).await?;
    resources::delete(&txn, ResourceKind::User, &tenant.id, id).await?;
    let mut last = view(ctx, tenant, &old);
    // The deletion is a change of its own: it takes the next version.
    last.version += 1;
    events.push(event(EventType::UserDeleted, &last, Vec::new(), Map::new()));
    emit(&txn, tenant, &now, correlation, events).await?;
    txn.commit().await?;
    ctx.signal_events(&tenant.id);
    Ok(())
}

/// GET /Users (and POST /Users/.search): `filter`, `sortBy`/`sortOrder`, paging.
#[tracing::instrument(skip_all, fields(tenant = %tenant.slug), err(level = "debug"))]
pub async fn list(
    ctx: &Context,
    tenant: &Tenant,
    query: &ListQuery,
    page: Page,
) -> Result<ListResponse<ResourceView>, ServiceError> {
    let rt = tenant.registry.user();
    let (filter, sort) = query.typed(&tenant.registry, rt)?;
    let conn = ctx.store.conn();
    // The page and its users' groups in one statement.
    let (total, rows) = query::search_users(
        conn,
        &tenant.id,
        filter.as_ref(),
        sort.as_ref(),
        page.offset(),
        page.count,
    )
    .await?;
    let mut resources = Vec::with_capacity(rows.len());
    for (user, groups) in rows {
        let mut user = view(ctx, tenant, &user);
        set_groups(ctx, tenant, &mut user.body, groups);
        resources.push(user);
    }
    Ok(ListResponse::new(total, page.start_index, resources))
}
