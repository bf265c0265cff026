//! Lists and searches of users and groups (GET on `/Users` and `/Groups`, and `.search`):
//! filtered, sorted, paged by index or by cursor (RFC 9865), projected; and the root
//! search that merges both resource types into one list. HTTP parses the parameters into a
//! [`ListRequest`]; everything after that is here.

use super::cursor::CursorScope;
use super::groups::{self, Members};
use super::resource::ResourceBody;
use super::{Context, ListQuery, ServiceError, users};
use crate::domain::{ResourceKind, Tenant};
use crate::scim::error::ScimError;
use crate::scim::projection::Projection;
use crate::scim::resource::{ListResponse, Page};

/// What a list asks for, parsed.
#[derive(Debug, Clone)]
pub struct ListRequest {
    pub query: ListQuery,
    /// `startIndex` as sent (1-based; below 1 reads as 1).
    pub start_index: Option<i64>,
    /// `count` as sent.
    pub count: Option<i64>,
    /// RFC 9865: present (even empty) asks for cursor paging.
    pub cursor: Option<String>,
    pub projection: Projection,
    /// Whether a group's members are wanted (never read otherwise).
    pub members: Members,
}

/// RFC 9865: beside a cursor, a negative `count` is an error (`invalidCount`), where index
/// paging reads it as 0.
pub fn check_cursor_count(count: Option<i64>) -> Result<(), ServiceError> {
    if count.is_some_and(|c| c < 0) {
        return Err(ScimError::new(
            400,
            Some(scim_v2::models::errors::ScimType::Other(
                "invalidCount".into(),
            )),
            "`count` must not be negative",
        )
        .into());
    }
    Ok(())
}

/// A page of users or groups.
pub async fn list(
    ctx: &Context,
    tenant: &Tenant,
    request: &ListRequest,
    kind: ResourceKind,
) -> Result<ListResponse<ResourceBody>, ServiceError> {
    let query = &request.query;
    let cursor = request.cursor.as_deref().map(str::trim);
    let (page, scope) = match cursor {
        None => (Page::new(request.start_index, request.count), None),
        Some(cursor) => {
            check_cursor_count(request.count)?;
            let size = Page::new(None, request.count).count;
            let scope = CursorScope {
                tenant_id: &tenant.id,
                kind,
                filter: query.filter.as_deref(),
                sort_by: query.sort_by.as_deref(),
                sort_order: query.sort_order.as_deref(),
                count: size,
            };
            let offset = if cursor.is_empty() {
                0
            } else {
                ctx.cursors.open(cursor, &scope, ctx.clock.now())?
            };
            (
                Page {
                    start_index: offset + 1,
                    count: size,
                },
                Some(scope),
            )
        }
    };
    let registry = &tenant.registry;
    let projection = request
        .projection
        .prepare(registry, kind.resource_type(registry));
    let views = match kind {
        ResourceKind::User => users::list(ctx, tenant, query, page).await?,
        ResourceKind::Group => groups::list(ctx, tenant, query, page, request.members).await?,
    };
    let mut list = views.map(|view| view.respond_prepared(&projection));
    if let Some(scope) = scope {
        let offset = page.offset();
        let now = ctx.clock.now();
        list.start_index = None;
        // After what the page holds: a page of groups may stop short of `count` at the
        // member budget.
        let returned = list.resources.len() as u64;
        if offset + returned < list.total_results && page.count > 0 {
            list.next_cursor = Some(ctx.cursors.seal(&scope, offset + returned, now)?);
        }
        if offset > 0 {
            let previous = offset.saturating_sub(page.count.max(1));
            list.previous_cursor = Some(ctx.cursors.seal(&scope, previous, now)?);
        }
    }
    Ok(list)
}

/// `POST /.search`: users, then groups, as one list, paged by index (a cursor is checked
/// as on `/Users`, then unused). A filter that does not fit one of the resource types (an
/// attribute it does not have) searches only the other; one that fits neither is refused.
pub async fn search_all(
    ctx: &Context,
    tenant: &Tenant,
    request: &ListRequest,
) -> Result<ListResponse<ResourceBody>, ServiceError> {
    let requested = Page::new(request.start_index, request.count);
    if request.cursor.is_some() {
        check_cursor_count(request.count)?;
    }
    let query = &request.query;
    let count_only = Page::new(Some(1), Some(0));
    let user_total = users::list(ctx, tenant, query, count_only).await;
    let group_total = groups::list(ctx, tenant, query, count_only, Members::Exclude).await;
    let (user_total, group_total) = match (user_total, group_total) {
        (Err(e), Err(_)) => return Err(e),
        (u, g) => (
            u.map(|l| l.total_results).ok(),
            g.map(|l| l.total_results).ok(),
        ),
    };
    let offset = requested.offset();
    let mut remaining = requested.count;
    let mut resources = Vec::new();
    let users_total = user_total.unwrap_or(0);
    // Each part is read as its own page of that resource type.
    let part = |start: u64, count: u64| ListRequest {
        start_index: Some(i64::try_from(start + 1).unwrap_or(i64::MAX)),
        count: Some(i64::try_from(count).unwrap_or(i64::MAX)),
        ..request.clone()
    };
    if user_total.is_some() && offset < users_total && remaining > 0 {
        let take = remaining.min(users_total - offset);
        let list = list(ctx, tenant, &part(offset, take), ResourceKind::User).await?;
        remaining -= list.resources.len() as u64;
        resources.extend(list.resources);
    }
    if group_total.is_some() && remaining > 0 {
        let start = offset.saturating_sub(users_total);
        let list = list(ctx, tenant, &part(start, remaining), ResourceKind::Group).await?;
        resources.extend(list.resources);
    }
    let total = users_total + group_total.unwrap_or(0);
    Ok(ListResponse::new(total, requested.start_index, resources))
}
