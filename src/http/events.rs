//! `/events/v1/{tenant}`: the pull API (committed events in `sequence` order, long-polling
//! with `wait`) and snapshots for resync, for consumers holding an `events:read` token of
//! the tenant or an application credential that covers it (DESIGN 13, 21); `/events/v1`
//! lists the tenants a credential may read.

use std::time::Duration;

use actix_web::get;
use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use serde::Deserialize;
use utoipa_actix_web::service_config::ServiceConfig;
use validator::Validate;

use super::context::RequestTimeout;
use super::error::ApiError;
use super::openapi::{SCIM, ScimErrorBody, TenantPath};
use crate::domain::{ResourceId, ResourceKind};
use crate::scim::error::ScimError;
use crate::service::Context;
use crate::service::events::{self, DEFAULT_PAGE};
use crate::tenancy::auth::{AuthenticatedTenant, Reader};

pub fn configure(cfg: &mut ServiceConfig) {
    cfg.service(pull)
        .service(snapshot_page)
        .service(snapshot_one);
    super::other_methods(cfg, &["", "/snapshot/{kind}", "/snapshot/{kind}/{id}"]);
}

/// `GET /events/v1`: the tenants the credential may read.
pub fn configure_listing(cfg: &mut ServiceConfig) {
    cfg.service(list_tenants);
    super::other_methods(cfg, &[""]);
}

/// The query of `GET /events/v1`, typed and checked as it is read (unknown parameters
/// are ignored; a bad value is 400 `invalidValue`).
#[derive(Debug, Deserialize, Validate, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
struct ListingParams {
    /// Return tenants with a larger slug (the previous page's `next`).
    after: Option<String>,
    /// 1 to 1000 (default 100).
    #[validate(range(min = 1, max = 1000, message = "`limit` must be between 1 and 1000"))]
    #[param(minimum = 1, maximum = 1000)]
    limit: Option<i64>,
}

/// The tenants the credential may read, in slug order: an application credential's (a
/// set, or every tenant), or a tenant token's own tenant. Deleted tenants stay listed, and
/// readable by an application credential, until retention removes them.
#[utoipa::path(
    operation_id = "listReadableTenants",
    tag = "Events",
    params(ListingParams),
    responses(
        (status = 200, description = "A page of tenants", body = super::openapi::TenantPage),
        (status = "default", description = "A SCIM error (400, 401, 403 insufficient_scope)", content_type = SCIM, body = ScimErrorBody),
    )
)]
#[get("")]
async fn list_tenants(
    ctx: web::Data<Context>,
    reader: Reader,
    query: web::Query<ListingParams>,
) -> Result<HttpResponse, ApiError> {
    let query = checked(query.into_inner())?;
    let limit = limit(query.limit);
    let after = query.after.as_deref().unwrap_or_default();
    let page = crate::service::apps::readable_tenants(&ctx, &reader, after, limit).await?;
    Ok(json(StatusCode::OK, &page))
}

/// The resources a snapshot reads.
#[derive(Debug, utoipa::ToSchema)]
#[allow(dead_code)]
enum SnapshotKindDoc {
    Users,
    Groups,
}

/// The query of the pull API, typed and checked as it is read.
#[derive(Debug, Deserialize, Validate, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
struct PullParams {
    /// Return events with a larger sequence (default 0).
    #[param(minimum = 0)]
    after: Option<i64>,
    /// 1 to 1000 (default 100).
    #[validate(range(min = 1, max = 1000, message = "`limit` must be between 1 and 1000"))]
    #[param(minimum = 1, maximum = 1000)]
    limit: Option<i64>,
    /// Comma-separated CloudEvents types to return.
    types: Option<String>,
    /// Seconds, 0 to 30 (default 0): when no event follows `after`, wait up to this long
    /// and answer as soon as one commits (long-polling); an empty page at the deadline.
    #[validate(range(min = 0, max = 30, message = "`wait` must be between 0 and 30 seconds"))]
    #[param(minimum = 0, maximum = 30)]
    wait: Option<i64>,
}

/// The query of a snapshot page, typed and checked as it is read.
#[derive(Debug, Deserialize, Validate, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
struct SnapshotParams {
    /// Return resources with a larger id (the previous page's `next`).
    after: Option<String>,
    /// 1 to 1000 (default 100).
    #[validate(range(min = 1, max = 1000, message = "`limit` must be between 1 and 1000"))]
    #[param(minimum = 1, maximum = 1000)]
    limit: Option<i64>,
}

/// `query`, or 400 `invalidValue` naming what is out of range.
fn checked<T: Validate>(query: T) -> Result<T, ApiError> {
    query.validate().map_err(|errors| {
        let detail = errors
            .field_errors()
            .values()
            .flat_map(|errors| errors.iter())
            .filter_map(|e| e.message.as_deref().map(str::to_owned))
            .collect::<std::collections::BTreeSet<_>>()
            .into_iter()
            .collect::<Vec<_>>()
            .join("; ");
        ApiError::Scim(ScimError::invalid_value(detail))
    })?;
    Ok(query)
}

/// A page's size: `limit` as checked, or the default.
fn limit(value: Option<i64>) -> u64 {
    value.map_or(DEFAULT_PAGE, i64::unsigned_abs)
}

fn json(status: StatusCode, body: &impl serde::Serialize) -> HttpResponse {
    HttpResponse::build(status)
        .content_type("application/json")
        .json(body)
}

/// `types` as a pattern: event type names, separated by commas, each with optional white
/// space around it; empty items are skipped.
pub(super) fn types_pattern() -> String {
    let names: Vec<String> = crate::service::events::type_names()
        .iter()
        .map(|name| name.replace('.', "\\."))
        .collect();
    let item = format!("\\s*({})?\\s*", names.join("|"));
    format!("^{item}(,{item})*$")
}

/// How long the request may wait: `wait` seconds, kept under the request timeout (which
/// would otherwise answer 503 first).
fn wait(seconds: Option<i64>, timeout: Option<&RequestTimeout>) -> Duration {
    let wanted = Duration::from_secs(seconds.map_or(0, i64::unsigned_abs)).min(events::MAX_WAIT);
    match timeout {
        Some(t) => wanted.min(t.0.saturating_sub(WAIT_MARGIN)),
        None => wanted,
    }
}

/// How much earlier than the request timeout a long-poll answers.
const WAIT_MARGIN: Duration = Duration::from_secs(2);

/// Committed events after `after`, in `sequence` order, whatever their publish state;
/// with `wait`, a long-poll that answers as soon as one commits.
#[utoipa::path(
    operation_id = "pullEvents",
    tag = "Events",
    params(TenantPath, PullParams),
    responses(
        (status = 200, description = "A page of events", body = super::openapi::EventPage),
        (status = 410, description = "`after` is before the retention mark: resync from snapshots", content_type = SCIM, body = ScimErrorBody),
        (status = "default", description = "A SCIM error (400, 401, 403 insufficient_scope)", content_type = SCIM, body = ScimErrorBody),
    )
)]
#[get("")]
async fn pull(
    ctx: web::Data<Context>,
    auth: AuthenticatedTenant,
    query: web::Query<PullParams>,
    timeout: Option<web::Data<RequestTimeout>>,
) -> Result<HttpResponse, ApiError> {
    let query = checked(query.into_inner())?;
    let after = query.after.unwrap_or(0);
    let limit = limit(query.limit);
    let wait = wait(query.wait, timeout.as_ref().map(|t| t.get_ref()));
    let types: Vec<String> = query
        .types
        .as_deref()
        .unwrap_or_default()
        .split(',')
        .map(str::trim)
        .filter(|t| !t.is_empty())
        .map(str::to_owned)
        .collect();
    let page = events::pull_waiting(&ctx, &auth.tenant, after, limit, &types, wait).await?;
    Ok(json(StatusCode::OK, &page))
}

/// Snapshots are of live tenants: a deleted one (readable by an application credential
/// until retention removes it) is being purged, and its events end with `tenant.deleted`.
fn live(auth: &AuthenticatedTenant) -> Result<(), ApiError> {
    match auth.tenant.deleted_at {
        Some(_) => Err(ApiError::not_found(format!(
            "tenant {} was deleted: no snapshot (its events end with scimbus.tenant.deleted)",
            auth.tenant.slug
        ))),
        None => Ok(()),
    }
}

fn kind(value: &str) -> Result<ResourceKind, ApiError> {
    ResourceKind::from_endpoint(value)
        .ok_or_else(|| ApiError::not_found(format!("no snapshot of `{value}`: Users or Groups")))
}

/// Current users or groups as snapshot events, in id order, for bootstrap and resync.
#[utoipa::path(
    operation_id = "listSnapshots",
    tag = "Events",
    params(TenantPath, ("kind" = inline(SnapshotKindDoc), Path, description = "`Users` or `Groups`."), SnapshotParams),
    responses(
        (status = 200, description = "A page of snapshots", body = super::openapi::SnapshotPage),
        (status = "default", description = "A SCIM error (400, 401, 403, 404 unknown kind)", content_type = SCIM, body = ScimErrorBody),
    )
)]
#[get("/snapshot/{kind}")]
async fn snapshot_page(
    ctx: web::Data<Context>,
    auth: AuthenticatedTenant,
    path: web::Path<(String, String)>,
    req: HttpRequest,
) -> Result<HttpResponse, ApiError> {
    live(&auth)?;
    let kind = kind(&path.1)?;
    // Read after the tenant and the kind: a deleted tenant or an unknown kind is a 404
    // whatever the query says.
    let query = web::Query::<SnapshotParams>::from_query(req.query_string())
        .map_err(|e| ApiError::Scim(ScimError::invalid_value(e.to_string())))?;
    let query = checked(query.into_inner())?;
    let limit = limit(query.limit);
    let after = query
        .after
        .as_deref()
        .filter(|a| !a.is_empty())
        .map(ResourceId::from);
    let page = events::snapshot_page(&ctx, &auth.tenant, kind, after.as_ref(), limit).await?;
    Ok(json(StatusCode::OK, &page))
}

/// One resource's snapshot, to repair a gap; 404 once it is gone.
#[utoipa::path(
    operation_id = "getSnapshot",
    tag = "Events",
    params(TenantPath, ("kind" = inline(SnapshotKindDoc), Path, description = "`Users` or `Groups`."), ("id" = String, Path, description = "The resource id.")),
    responses(
        (status = 200, description = "The snapshot event", body = super::openapi::Event),
        (status = "default", description = "A SCIM error (401, 403, 404)", content_type = SCIM, body = ScimErrorBody),
    )
)]
#[get("/snapshot/{kind}/{id}")]
async fn snapshot_one(
    ctx: web::Data<Context>,
    auth: AuthenticatedTenant,
    path: web::Path<(String, String, String)>,
) -> Result<HttpResponse, ApiError> {
    live(&auth)?;
    let (_, kind_name, id) = path.into_inner();
    let id = ResourceId::from(id);
    let kind = kind(&kind_name)?;
    let event = events::snapshot_one(&ctx, &auth.tenant, kind, &id).await?;
    Ok(json(StatusCode::OK, &event))
}
