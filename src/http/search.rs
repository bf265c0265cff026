//! `POST …/.search` (RFC 7644 §3.4.3) on `/Users`, `/Groups` and the tenant root: the
//! query travels in a SearchRequest body instead of the URL, with the same meaning.

use actix_web::http::StatusCode;
use actix_web::post;
use actix_web::{HttpResponse, web};
use serde_json::Value;

use super::body::JsonBody;
use super::error::ApiError;
use super::integer;
use super::precondition::ReadParams;
use super::response;
use crate::scim::error::ScimError;
use crate::scim::projection;
use crate::scim::resource::{ListResponse, Page};
use crate::service::cursor::CursorScope;
use crate::service::{Context, groups, users};
use crate::tenancy::auth::AuthenticatedTenant;

/// Mounts `POST /.search` (the per-type searches are mounted with their resources).
pub fn configure(cfg: &mut utoipa_actix_web::service_config::ServiceConfig) {
    cfg.service(search_root);
    super::other_methods(cfg, &["/.search"]);
}

pub const SEARCH_REQUEST_URN: &str = "urn:ietf:params:scim:api:messages:2.0:SearchRequest";

/// The SearchRequest body as the same parameters a GET takes (names case-insensitive).
pub fn params(body: Value) -> Result<ReadParams, ApiError> {
    let Value::Object(fields) = body else {
        return Err(ScimError::invalid_syntax("a SearchRequest must be a JSON object").into());
    };
    let get = |name: &str| {
        fields
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v)
    };
    if let Some(schemas) = get("schemas") {
        let named = schemas.as_array().is_some_and(|s| {
            s.iter().any(|u| {
                u.as_str()
                    .is_some_and(|u| u.eq_ignore_ascii_case(SEARCH_REQUEST_URN))
            })
        });
        if !named {
            return Err(ScimError::invalid_syntax(format!(
                "`schemas` must contain {SEARCH_REQUEST_URN}"
            ))
            .into());
        }
    }
    // RFC 7644 §3.4.3 types each parameter; null is absent. `attributes` may also be one
    // comma-separated string, as in a query.
    let string = |name: &str| -> Result<Option<String>, ApiError> {
        match get(name) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(s)) => Ok(Some(s.clone())),
            Some(_) => Err(ScimError::invalid_value(format!("`{name}` must be a string")).into()),
        }
    };
    let integer = |name: &str| -> Result<Option<String>, ApiError> {
        match get(name) {
            None | Some(Value::Null) => Ok(None),
            Some(v) => crate::scim::validate::whole_number(v)
                .map(|n| Some(n.to_string()))
                .ok_or_else(|| {
                    ScimError::invalid_value(format!("`{name}` must be an integer")).into()
                }),
        }
    };
    let names = |name: &str| -> Result<Option<String>, ApiError> {
        let list = match get(name) {
            None | Some(Value::Null) => return Ok(None),
            Some(Value::String(s)) => s.clone(),
            Some(Value::Array(items)) => items
                .iter()
                .map(|v| v.as_str())
                .collect::<Option<Vec<_>>>()
                .ok_or_else(|| {
                    ScimError::invalid_value(format!("`{name}` must be a list of strings"))
                })?
                .join(","),
            Some(_) => {
                return Err(ScimError::invalid_value(format!(
                    "`{name}` must be a list of strings"
                ))
                .into());
            }
        };
        projection::check_names(name, &list)?;
        Ok(Some(list))
    };
    Ok(ReadParams {
        filter: string("filter")?,
        start_index: integer("startIndex")?,
        count: integer("count")?,
        attributes: names("attributes")?,
        excluded_attributes: names("excludedAttributes")?,
        sort_by: string("sortBy")?,
        sort_order: string("sortOrder")?,
        cursor: string("cursor")?,
    })
}

/// RFC 9865: beside a cursor, a negative `count` is an error (`invalidCount`), where index
/// paging reads it as 0.
fn cursor_count(count: Option<i64>) -> Result<(), ApiError> {
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

fn page(params: &ReadParams) -> Result<Page, ApiError> {
    Ok(Page::new(
        integer("startIndex", params.start_index.as_deref())?,
        integer("count", params.count.as_deref())?,
    ))
}

/// Which resources a list reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Users,
    Groups,
}

/// A listed resource: a user as a JSON value, or a group's body, whose members are written
/// from their rows.
#[derive(Debug)]
pub enum Listed {
    Value(Value),
    Group(groups::GroupBody),
}

impl serde::Serialize for Listed {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self {
            Self::Value(value) => value.serialize(serializer),
            Self::Group(body) => body.serialize(serializer),
        }
    }
}

/// A list of users or groups for GET and `.search`: filtered, sorted, paged by index or
/// by cursor (RFC 9865), projected.
pub async fn list(
    ctx: &Context,
    auth: &AuthenticatedTenant,
    params: &ReadParams,
    kind: Kind,
) -> Result<ListResponse<Listed>, ApiError> {
    let count = integer("count", params.count.as_deref())?;
    // Checked in cursor paging too, where it is not used.
    integer("startIndex", params.start_index.as_deref())?;
    let query = params.query();
    let (resource, members) = match kind {
        Kind::Users => ("User", groups::Members::Exclude),
        Kind::Groups => ("Group", params.members()),
    };
    let cursor = params.cursor.as_deref().map(str::trim);
    let (page, scope) = match cursor {
        None => (page(params)?, None),
        Some(cursor) => {
            cursor_count(count)?;
            let size = Page::new(None, count).count;
            let scope = CursorScope {
                tenant_id: &auth.tenant.id,
                resource,
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
    let registry = &auth.tenant.registry;
    let mut list = match kind {
        Kind::Users => {
            let projection = params.projection().prepare(registry, registry.user());
            users::list(ctx, &auth.tenant, &query, page)
                .await?
                .map(|mut user| {
                    projection.apply(&mut user);
                    Listed::Value(user)
                })
        }
        Kind::Groups => {
            let projection = params.projection().prepare(registry, registry.group());
            groups::list(ctx, &auth.tenant, &query, page, members)
                .await?
                .map(|group| Listed::Group(group.respond_prepared(&projection)))
        }
    };
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

/// Searches users with a SearchRequest body (RFC 7644 §3.4.3).
#[utoipa::path(
    operation_id = "searchUsers",
    tag = "SCIM Users",
    params(super::openapi::TenantPath),
    request_body(content = super::openapi::SearchRequest, content_type = super::openapi::SCIM),
    responses(
        (status = 200, description = "The page", content_type = super::openapi::SCIM, body = super::openapi::ListResponse),
        (status = "default", description = "A SCIM error (400 invalidFilter, invalidSyntax, invalidValue…)", content_type = super::openapi::SCIM, body = super::openapi::ScimErrorBody),
    )
)]
#[post("/Users/.search")]
pub async fn search_users(
    ctx: web::Data<Context>,
    auth: AuthenticatedTenant,
    body: JsonBody,
) -> Result<HttpResponse, ApiError> {
    let params = params(body.0)?;
    let list = list(&ctx, &auth, &params, Kind::Users).await?;
    Ok(response::scim(StatusCode::OK, &list))
}

/// Searches groups with a SearchRequest body (RFC 7644 §3.4.3).
#[utoipa::path(
    operation_id = "searchGroups",
    tag = "SCIM Groups",
    params(super::openapi::TenantPath),
    request_body(content = super::openapi::SearchRequest, content_type = super::openapi::SCIM),
    responses(
        (status = 200, description = "The page", content_type = super::openapi::SCIM, body = super::openapi::ListResponse),
        (status = "default", description = "A SCIM error (400 invalidFilter, invalidSyntax, invalidValue…)", content_type = super::openapi::SCIM, body = super::openapi::ScimErrorBody),
    )
)]
#[post("/Groups/.search")]
pub async fn search_groups(
    ctx: web::Data<Context>,
    auth: AuthenticatedTenant,
    body: JsonBody,
) -> Result<HttpResponse, ApiError> {
    let params = params(body.0)?;
    let list = list(&ctx, &auth, &params, Kind::Groups).await?;
    Ok(response::scim(StatusCode::OK, &list))
}

/// `POST /.search`: users, then groups, as one list. A filter that does not fit one of the
/// resource types (an attribute it does not have) searches only the other; one that fits
/// neither is refused.
#[utoipa::path(
    operation_id = "searchAll",
    tag = "SCIM discovery",
    params(super::openapi::TenantPath),
    request_body(content = super::openapi::SearchRequest, content_type = super::openapi::SCIM),
    responses(
        (status = 200, description = "The page", content_type = super::openapi::SCIM, body = super::openapi::ListResponse),
        (status = "default", description = "A SCIM error (400 invalidFilter, invalidSyntax, invalidValue…)", content_type = super::openapi::SCIM, body = super::openapi::ScimErrorBody),
    )
)]
#[post("/.search")]
pub async fn search_root(
    ctx: web::Data<Context>,
    auth: AuthenticatedTenant,
    body: JsonBody,
) -> Result<HttpResponse, ApiError> {
    let params = params(body.0)?;
    let requested = page(&params)?;
    // The merged list pages by index only; a cursor is checked as on /Users, then unused.
    if params.cursor.is_some() {
        cursor_count(integer("count", params.count.as_deref())?)?;
    }
    let query = params.query();
    let count_only = Page::new(Some(1), Some(0));
    let user_total = users::list(&ctx, &auth.tenant, &query, count_only).await;
    let group_total = groups::list(
        &ctx,
        &auth.tenant,
        &query,
        count_only,
        groups::Members::Exclude,
    )
    .await;
    let (user_total, group_total) = match (user_total, group_total) {
        (Err(e), Err(_)) => return Err(e.into()),
        (u, g) => (
            u.map(|l| l.total_results).ok(),
            g.map(|l| l.total_results).ok(),
        ),
    };
    let offset = requested.offset();
    let mut remaining = requested.count;
    let mut resources = Vec::new();
    let users_total = user_total.unwrap_or(0);
    if user_total.is_some() && offset < users_total && remaining > 0 {
        let take = remaining.min(users_total - offset);
        let mut p = params.clone();
        p.start_index = Some((offset + 1).to_string());
        p.count = Some(take.to_string());
        let list = list(&ctx, &auth, &p, Kind::Users).await?;
        remaining -= list.resources.len() as u64;
        resources.extend(list.resources);
    }
    if group_total.is_some() && remaining > 0 {
        let start = offset.saturating_sub(users_total);
        let mut p = params.clone();
        p.start_index = Some((start + 1).to_string());
        p.count = Some(remaining.to_string());
        let list = list(&ctx, &auth, &p, Kind::Groups).await?;
        resources.extend(list.resources);
    }
    let total = users_total + group_total.unwrap_or(0);
    Ok(response::scim(
        StatusCode::OK,
        &ListResponse::new(total, requested.start_index, resources),
    ))
}
