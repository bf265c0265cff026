//! Group use cases. Members live in `group_members`; every membership change is a set
//! operation in SQL over the ids the request names, bumps the group's version and emits
//! `members_added`/`members_removed` in chunks (DESIGN 7, 11).

use sea_orm::{ConnectionTrait, DatabaseTransaction};
use serde_json::value::RawValue;
use serde_json::{Map, Value, json};

use super::ListQuery;
use super::changes::diff;
use super::emit::emit;
use super::resource::{ResourceView, Written};
use super::{Context, ServiceError};
use crate::domain::{
    GroupHot, NewGroup, ResourceId, ResourceKind, StoredGroup, Tenant, Timestamp, check_name_length,
};
use crate::events::catalog::membership_events;
use crate::events::{EventType, PendingEvent};
use crate::scim::patch::{self, MemberRef, MembersPatch};
use crate::scim::projection::returnable;
use crate::scim::query::search_document;
use crate::scim::resource::{ListResponse, Page, etag};
use crate::scim::schema::Registry;
use crate::scim::validate::{check_item, validate_resource};
use crate::store::resources::Lock;
use crate::store::{groups, members, query, resources};
use crate::telemetry::Correlation;

/// Whether a response carries the member list (`excludedAttributes=members` or an
/// `attributes` list without it leaves it out, and then it is never read).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Members {
    Include,
    Exclude,
}

fn hot(document: &Map<String, Value>) -> Result<GroupHot, ServiceError> {
    let display_name = document
        .get("displayName")
        .and_then(Value::as_str)
        .filter(|d| !d.trim().is_empty())
        .ok_or_else(|| ServiceError::invalid_value("`displayName` must be a non-empty string"))?
        .to_owned();
    check_name_length("displayName", &display_name).map_err(ServiceError::invalid_value)?;
    let external_id = super::resource::external_id(document)?;
    Ok(GroupHot {
        display_name,
        external_id,
    })
}

fn new_group(registry: &Registry, document: Map<String, Value>) -> Result<NewGroup, ServiceError> {
    Ok(NewGroup {
        hot: hot(&document)?,
        search: search_document(registry, registry.group(), &document),
        document,
    })
}

/// A Group body's `members` as raw JSON elements (see `http::body::GroupJson`): each is
/// parsed, checked and reduced to a [`MemberRef`] on its own, so a 100 000-member list is
/// never a tree of maps.
#[derive(Debug, Default)]
pub struct RawMembers(Vec<Box<RawValue>>);

impl RawMembers {
    /// From the raw value of `members`: an array's elements, or the value itself (a single
    /// member object, or null).
    pub fn parse(raw: &RawValue) -> Result<Self, serde_json::Error> {
        if raw.get().trim_start().starts_with('[') {
            Ok(Self(serde_json::from_str(raw.get())?))
        } else {
            Ok(Self(vec![raw.to_owned()]))
        }
    }
}

/// Reads one member element (validated like any element of `members`) into `refs`,
/// skipping ids already named.
fn member_ref(
    item: &Value,
    seen: &mut std::collections::HashSet<String>,
    refs: &mut Vec<MemberRef>,
) -> Result<(), ServiceError> {
    let value = item
        .get("value")
        .and_then(Value::as_str)
        .ok_or_else(|| ServiceError::invalid_value("each member needs a string `value`"))?;
    let member_type = match item.get("type").and_then(Value::as_str) {
        None => None,
        Some(t) if t.eq_ignore_ascii_case("user") => Some("User".to_owned()),
        Some(t) if t.eq_ignore_ascii_case("group") => Some("Group".to_owned()),
        Some(t) => {
            return Err(ServiceError::invalid_value(format!(
                "member type `{t}` is neither User nor Group"
            )));
        }
    };
    if seen.insert(value.to_owned()) {
        refs.push(MemberRef {
            value: value.to_owned(),
            member_type,
        });
    }
    Ok(())
}

/// Splits a validated Group body into its document and its member references; `raw`
/// holds the members when the body came without them.
fn parse_group(
    registry: &Registry,
    body: Value,
    raw: Option<RawMembers>,
) -> Result<(NewGroup, Vec<MemberRef>), ServiceError> {
    let mut document = validate_resource(registry, registry.group(), body)?;
    let mut refs = Vec::new();
    // A set, not a scan of `refs`: a full-list PUT names 100 000 members.
    let mut seen = std::collections::HashSet::new();
    if let Some(Value::Array(items)) = document.remove("members") {
        for item in items {
            member_ref(&item, &mut seen, &mut refs)?;
        }
    }
    if let Some(RawMembers(items)) = raw {
        let attr = registry
            .schema(&registry.group().schema)
            .and_then(|core| core.attribute("members"))
            .ok_or_else(|| ServiceError::invalid_value("the Group schema has no `members`"))?;
        for raw_item in items {
            let item: Value = serde_json::from_str(raw_item.get())
                .map_err(|e| ServiceError::invalid_value(format!("malformed member: {e}")))?;
            // An element sits two levels down in the body (body, `members`, element).
            crate::scim::validate::storable(&item, 2)?;
            if let Some(item) = check_item(attr, item, "members")? {
                member_ref(&item, &mut seen, &mut refs)?;
            }
        }
    }
    Ok((new_group(registry, document)?, refs))
}

/// The SCIM representation; `members` are read from the table when asked for.
async fn represent(
    ctx: &Context,
    conn: &impl ConnectionTrait,
    tenant: &Tenant,
    group: &StoredGroup,
    members_wanted: Members,
) -> Result<ResourceView, ServiceError> {
    let base = ctx.scim_base(&tenant.slug);
    let body = snapshot(tenant, &base, group);
    let members = match members_wanted {
        Members::Include => members::list(conn, &tenant.id, &group.id).await?,
        Members::Exclude => Vec::new(),
    };
    Ok(
        ResourceView::new(ResourceKind::Group, group.id.clone(), group.version, body)
            .with_members(members, base),
    )
}

/// The representation without members: what events carry.
pub(crate) fn snapshot(tenant: &Tenant, base: &str, group: &StoredGroup) -> Value {
    super::resource::represent(
        tenant,
        base,
        ResourceKind::Group,
        &group.id,
        &group.document,
        group.version,
        [&group.created_at, &group.updated_at],
    )
}

fn resource_event(
    event_type: EventType,
    body: Value,
    id: &ResourceId,
    version: i64,
    changed: Vec<String>,
    previous: Map<String, Value>,
) -> PendingEvent {
    PendingEvent {
        event_type,
        subject: format!("Groups/{id}"),
        data: json!({
            "resource": body,
            "version": version,
            "changed": changed,
            "previous": previous,
        }),
    }
}

/// Checks that every referenced member exists in the tenant (and is of the stated type),
/// and that no group would end up inside itself.
async fn resolve_members(
    conn: &DatabaseTransaction,
    tenant: &Tenant,
    group_id: &ResourceId,
    refs: &[MemberRef],
) -> Result<Vec<(ResourceId, ResourceKind)>, ServiceError> {
    let ids: Vec<ResourceId> = refs
        .iter()
        .map(|r| ResourceId::from(r.value.as_str()))
        .collect();
    let stated_types: std::collections::HashMap<&str, &str> = refs
        .iter()
        .filter_map(|r| r.member_type.as_deref().map(|t| (r.value.as_str(), t)))
        .collect();
    let found = members::resolve(conn, &tenant.id, &ids).await?;
    let mut resolved = Vec::with_capacity(found.len());
    for (id, kind) in found {
        let Some(kind) = kind else {
            return Err(ServiceError::invalid_value(format!(
                "member {id} is neither a user nor a group of this tenant"
            )));
        };
        let stated = stated_types.get(id.as_str()).copied();
        if stated.is_some_and(|s| s != kind.as_str()) {
            return Err(ServiceError::invalid_value(format!(
                "member {id} is a {}, not a {}",
                kind.as_str(),
                stated.unwrap_or_default()
            )));
        }
        resolved.push((id, kind));
    }
    let nested: Vec<ResourceId> = resolved
        .iter()
        .filter(|(_, k)| *k == ResourceKind::Group)
        .map(|(id, _)| id.clone())
        .collect();
    if !nested.is_empty() {
        members::lock_nesting(conn, &tenant.id).await?;
    }
    match members::would_cycle(conn, &tenant.id, group_id, &nested).await? {
        members::Nesting::Fine => Ok(resolved),
        members::Nesting::Cycle => Err(ServiceError::invalid_value(
            "a group cannot contain itself, directly or through nested groups",
        )),
        members::Nesting::TooDeep => Err(ServiceError::invalid_value(format!(
            "groups may nest at most {} levels deep",
            members::MAX_NESTING
        ))),
    }
}

/// Applies a membership change; returns the ids added and removed.
async fn change_members(
    txn: &DatabaseTransaction,
    tenant: &Tenant,
    group_id: &ResourceId,
    change: &MembersPatch,
    now: &Timestamp,
) -> Result<(Vec<ResourceId>, Vec<ResourceId>), ServiceError> {
    if change.is_empty() {
        return Ok((Vec::new(), Vec::new()));
    }
    let resolved = resolve_members(txn, tenant, group_id, &change.add).await?;
    crate::failpoints::point("group.members.resolved", group_id).await;
    let removed = if change.clear {
        let keep: Vec<ResourceId> = resolved.iter().map(|(id, _)| id.clone()).collect();
        members::remove_except(txn, &tenant.id, group_id, &keep).await?
    } else {
        let remove: Vec<ResourceId> = change
            .remove
            .iter()
            .map(|id| ResourceId::from(id.as_str()))
            .collect();
        members::remove(txn, &tenant.id, group_id, &remove).await?
    };
    let added = members::add(txn, &tenant.id, group_id, &resolved, now).await?;
    Ok((added, removed))
}

fn member_events(
    group_id: &ResourceId,
    version: i64,
    added: &[ResourceId],
    removed: &[ResourceId],
) -> Vec<PendingEvent> {
    let mut events = membership_events(EventType::GroupMembersRemoved, group_id, version, removed);
    events.extend(membership_events(
        EventType::GroupMembersAdded,
        group_id,
        version,
        added,
    ));
    events
}

#[tracing::instrument(skip_all, fields(tenant = %tenant.slug), err(level = "debug"))]
pub async fn create(
    ctx: &Context,
    tenant: &Tenant,
    correlation: Option<&Correlation>,
    body: Value,
    members: Option<RawMembers>,
) -> Result<ResourceView, ServiceError> {
    let (new, refs) = parse_group(&tenant.registry, body, members)?;
    let id = ResourceId::generate();
    let txn = ctx.store.begin_write().await?;
    let now = ctx.now();
    let stored = groups::insert(&txn, &tenant.id, &id, new, &now).await?;
    let change = MembersPatch {
        clear: false,
        remove: Vec::new(),
        add: refs,
    };
    let (added, _) = change_members(&txn, tenant, &id, &change, &now).await?;
    let mut changed: Vec<String> = stored.document.keys().cloned().collect();
    changed.sort();
    let base = ctx.scim_base(&tenant.slug);
    let mut events = vec![resource_event(
        EventType::GroupCreated,
        snapshot(tenant, &base, &stored),
        &id,
        1,
        changed,
        Map::new(),
    )];
    events.extend(member_events(&id, 1, &added, &[]));
    // Reads first: `emit` ends the transaction (on SQLite it locks the tenant's counter).
    let view = represent(ctx, &txn, tenant, &stored, Members::Include).await?;
    emit(&txn, tenant, &now, correlation, events).await?;
    txn.commit().await?;
    ctx.signal_events(&tenant.id);
    Ok(view)
}

#[tracing::instrument(skip_all, fields(tenant = %tenant.slug, id), err(level = "debug"))]
pub async fn get(
    ctx: &Context,
    tenant: &Tenant,
    id: &ResourceId,
    members_wanted: Members,
) -> Result<ResourceView, ServiceError> {
    let conn = ctx.store.conn();
    let group = groups::find(conn, &tenant.id, id, Lock::None)
        .await?
        .ok_or_else(|| ServiceError::not_found(ResourceKind::Group, id))?;
    represent(ctx, conn, tenant, &group, members_wanted).await
}

/// Compares the precondition of `If-Match` with the current version (RFC 7644 §3.14).
pub fn check_if_match(if_match: Option<&str>, version: i64) -> Result<(), ServiceError> {
    match if_match {
        Some(header) if !super::etag_matches(header, version) => {
            Err(ServiceError::PreconditionFailed(format!(
                "the resource is at version {}",
                etag(version)
            )))
        }
        _ => Ok(()),
    }
}

async fn write(
    ctx: &Context,
    tenant: &Tenant,
    correlation: Option<&Correlation>,
    id: &ResourceId,
    if_match: Option<&str>,
    members_wanted: Members,
    change: impl FnOnce(&StoredGroup) -> Result<(NewGroup, MembersPatch), ServiceError>,
) -> Result<Written, ServiceError> {
    let txn = ctx.store.begin_write().await?;
    let old = groups::find(&txn, &tenant.id, id, Lock::NoKeyUpdate)
        .await?
        .ok_or_else(|| ServiceError::not_found(ResourceKind::Group, id))?;
    check_if_match(if_match, old.version)?;
    let (new, member_change) = change(&old)?;
    let now = ctx.now();
    let (added, removed) = change_members(&txn, tenant, id, &member_change, &now).await?;
    let document_changed = new.document != old.document;
    if !document_changed && added.is_empty() && removed.is_empty() {
        let view = represent(ctx, &txn, tenant, &old, members_wanted).await?;
        txn.rollback().await?;
        return Ok(Written {
            view,
            changed: false,
        });
    }
    let version = old.version + 1;
    let registry = &tenant.registry;
    let (changed, previous) = diff(
        &returnable(registry, registry.group(), &old.document),
        &returnable(registry, registry.group(), &new.document),
    );
    let stored = groups::update(&txn, &tenant.id, id, new, version, &now).await?;
    let base = ctx.scim_base(&tenant.slug);
    let mut events = Vec::new();
    if document_changed {
        events.push(resource_event(
            EventType::GroupUpdated,
            snapshot(tenant, &base, &stored),
            id,
            version,
            changed,
            previous,
        ));
    }
    events.extend(member_events(id, version, &added, &removed));
    // Reads first: `emit` ends the transaction (on SQLite it locks the tenant's counter).
    let view = represent(ctx, &txn, tenant, &stored, members_wanted).await?;
    emit(&txn, tenant, &now, correlation, events).await?;
    txn.commit().await?;
    ctx.signal_events(&tenant.id);
    Ok(Written {
        view,
        changed: true,
    })
}

/// PUT: replaces the document and the member list (Okta AIW sends the full list); the
/// membership difference is computed in SQL.
#[tracing::instrument(skip_all, fields(tenant = %tenant.slug, id), err(level = "debug"))]
pub async fn replace(
    ctx: &Context,
    tenant: &Tenant,
    correlation: Option<&Correlation>,
    id: &ResourceId,
    body: Value,
    members: Option<RawMembers>,
    if_match: Option<&str>,
) -> Result<Written, ServiceError> {
    let (new, refs) = parse_group(&tenant.registry, body, members)?;
    let change = MembersPatch {
        clear: true,
        remove: Vec::new(),
        add: refs,
    };
    write(
        ctx,
        tenant,
        correlation,
        id,
        if_match,
        Members::Include,
        |_| Ok((new, change)),
    )
    .await
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
    members_wanted: Members,
) -> Result<Written, ServiceError> {
    let operations = patch::parse_patch(body)?;
    write(
        ctx,
        tenant,
        correlation,
        id,
        if_match,
        members_wanted,
        |old| {
            let outcome = patch::apply(
                &tenant.registry,
                tenant.registry.group(),
                &old.document,
                id.as_str(),
                &operations,
            )?;
            Ok((
                new_group(&tenant.registry, outcome.document)?,
                outcome.members,
            ))
        },
    )
    .await
}

/// Removes `member_id` from every group holding it directly, each group's version bumped
/// and a `members_removed` event emitted: the first step of deleting a user or a group.
/// Locks (`FOR NO KEY UPDATE`) the groups `member_id` belongs to, in id order, before a
/// deletion locks the member itself: see [`delete`].
pub(crate) async fn lock_parents(
    txn: &DatabaseTransaction,
    tenant: &Tenant,
    member_id: &ResourceId,
) -> Result<(), ServiceError> {
    let mut parents = members::groups_of(txn, &tenant.id, member_id).await?;
    parents.sort();
    for group_id in parents {
        groups::find(txn, &tenant.id, &group_id, Lock::NoKeyUpdate).await?;
    }
    Ok(())
}

pub(crate) async fn leave_all_groups(
    txn: &DatabaseTransaction,
    tenant: &Tenant,
    member_id: &ResourceId,
    now: &Timestamp,
) -> Result<Vec<PendingEvent>, ServiceError> {
    let mut events = Vec::new();
    for group_id in members::groups_of(txn, &tenant.id, member_id).await? {
        let Some(group) = groups::find(txn, &tenant.id, &group_id, Lock::NoKeyUpdate).await? else {
            continue;
        };
        let removed =
            members::remove(txn, &tenant.id, &group_id, std::slice::from_ref(member_id)).await?;
        if removed.is_empty() {
            continue;
        }
        let version = group.version + 1;
        groups::touch(txn, &tenant.id, &group_id, version, now).await?;
        events.extend(membership_events(
            EventType::GroupMembersRemoved,
            &group_id,
            version,
            &removed,
        ));
    }
    Ok(events)
}

#[tracing::instrument(skip_all, fields(tenant = %tenant.slug, id), err(level = "debug"))]
pub async fn delete(
    ctx: &Context,
    tenant: &Tenant,
    correlation: Option<&Correlation>,
    id: &ResourceId,
    if_match: Option<&str>,
) -> Result<(), ServiceError> {
    let txn = ctx.store.begin_write().await?;
    // The groups it is a member of first, then itself: the order a write adding it to one
    // of them takes (that group, then the member), so the two never wait on each other.
    lock_parents(&txn, tenant, id).await?;
    let old = groups::find(&txn, &tenant.id, id, Lock::Update)
        .await?
        .ok_or_else(|| ServiceError::not_found(ResourceKind::Group, id))?;
    check_if_match(if_match, old.version)?;
    let now = ctx.now();
    let mut events = leave_all_groups(&txn, tenant, id, &now).await?;
    resources::delete(&txn, ResourceKind::Group, &tenant.id, id).await?;
    let base = ctx.scim_base(&tenant.slug);
    events.push(resource_event(
        EventType::GroupDeleted,
        snapshot(tenant, &base, &old),
        id,
        old.version + 1,
        Vec::new(),
        Map::new(),
    ));
    emit(&txn, tenant, &now, correlation, events).await?;
    txn.commit().await?;
    ctx.signal_events(&tenant.id);
    Ok(())
}

/// Most group members one page of groups (a list, or snapshots) carries. RFC 7644
/// §3.4.2.4 lets a page hold fewer resources than asked: a page stops before the group
/// that would pass the budget, and paging continues from there; a group larger than the
/// budget comes alone on its page, so every page makes progress.
pub const MEMBER_BUDGET: u64 = 10_000;

/// How many of the groups `ids` (in page order) one page carries under [`MEMBER_BUDGET`]:
/// at least one.
pub(crate) async fn within_member_budget(
    conn: &impl ConnectionTrait,
    tenant: &Tenant,
    ids: &[ResourceId],
) -> Result<usize, ServiceError> {
    if ids.len() <= 1 {
        return Ok(ids.len());
    }
    let counts = members::counts(conn, &tenant.id, ids).await?;
    let mut carried = 0u64;
    for (i, id) in ids.iter().enumerate() {
        let n = counts.get(id).copied().unwrap_or(0);
        if i > 0 && carried + n > MEMBER_BUDGET {
            return Ok(i);
        }
        carried += n;
    }
    Ok(ids.len())
}

/// GET /Groups (and POST /Groups/.search): `filter`, `sortBy`/`sortOrder`, paging; a
/// page with members stops at [`MEMBER_BUDGET`]. The groups come as views, so a response
/// writes their members from the rows ([`ResourceView::respond`]) instead of building them as
/// JSON values: a group larger than the budget, alone on its page, costs its rows.
#[tracing::instrument(skip_all, fields(tenant = %tenant.slug), err(level = "debug"))]
pub async fn list(
    ctx: &Context,
    tenant: &Tenant,
    query: &ListQuery,
    page: Page,
    members_wanted: Members,
) -> Result<ListResponse<ResourceView>, ServiceError> {
    let rt = tenant.registry.group();
    let (filter, sort) = query.typed(&tenant.registry, rt)?;
    let conn = ctx.store.conn();
    let (total, mut rows) = query::search_groups(
        conn,
        &tenant.id,
        filter.as_ref(),
        sort.as_ref(),
        page.offset(),
        page.count,
    )
    .await?;
    if members_wanted == Members::Include {
        let ids: Vec<ResourceId> = rows.iter().map(|g| g.id.clone()).collect();
        rows.truncate(within_member_budget(conn, tenant, &ids).await?);
    }
    let mut resources = Vec::with_capacity(rows.len());
    for group in &rows {
        resources.push(represent(ctx, conn, tenant, group, members_wanted).await?);
    }
    Ok(ListResponse::new(total, page.start_index, resources))
}
