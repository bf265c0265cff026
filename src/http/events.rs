//! `/events/v1/{tenant}`: the pull API (committed events in `sequence` order) and
//! snapshots for resync, for consumers holding an `events:read` token (DESIGN 13).

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, web};
use serde::Deserialize;

use super::error::ApiError;
use super::{integer, method_not_allowed};
use crate::scim::error::ScimError;
use crate::service::Context;
use crate::service::events::{self, DEFAULT_PAGE, SnapshotKind};
use crate::tenancy::auth::AuthenticatedTenant;

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(
        web::resource("")
            .route(web::get().to(pull))
            .default_service(web::to(method_not_allowed)),
    )
    .service(
        web::resource("/snapshot/{kind}")
            .route(web::get().to(snapshot_page))
            .default_service(web::to(method_not_allowed)),
    )
    .service(
        web::resource("/snapshot/{kind}/{id}")
            .route(web::get().to(snapshot_one))
            .default_service(web::to(method_not_allowed)),
    );
}

fn json(status: StatusCode, body: &impl serde::Serialize) -> HttpResponse {
    HttpResponse::build(status)
        .content_type("application/json")
        .json(body)
}

/// Query parameters are read as text: unknown ones are ignored, bad numbers are a 400.
#[derive(Debug, Deserialize)]
struct PullQuery {
    after: Option<String>,
    limit: Option<String>,
    types: Option<String>,
}

fn limit(value: Option<&str>) -> Result<u64, ApiError> {
    match integer("limit", value)? {
        None => Ok(DEFAULT_PAGE),
        Some(n) if (1..=i64::try_from(events::MAX_PAGE).unwrap_or(i64::MAX)).contains(&n) => {
            Ok(n.unsigned_abs())
        }
        Some(_) => Err(ApiError::Scim(ScimError::invalid_value(format!(
            "`limit` must be between 1 and {}",
            events::MAX_PAGE
        )))),
    }
}

/// `GET /events/v1/{tenant}?after=&limit=&types=`.
async fn pull(
    ctx: web::Data<Context>,
    auth: AuthenticatedTenant,
    query: web::Query<PullQuery>,
) -> Result<HttpResponse, ApiError> {
    let after = integer("after", query.after.as_deref())?.unwrap_or(0);
    let limit = limit(query.limit.as_deref())?;
    let types: Vec<String> = query
        .types
        .as_deref()
        .unwrap_or_default()
        .split(',')
        .map(str::trim)
        .filter(|t| !t.is_empty())
        .map(str::to_owned)
        .collect();
    let page = events::pull(&ctx, &auth.tenant, after, limit, &types).await?;
    Ok(json(StatusCode::OK, &page))
}

fn kind(value: &str) -> Result<SnapshotKind, ApiError> {
    SnapshotKind::parse(value)
        .ok_or_else(|| ApiError::NotFound(format!("no snapshot of `{value}`: Users or Groups")))
}

#[derive(Debug, Deserialize)]
struct SnapshotQuery {
    after: Option<String>,
    limit: Option<String>,
}

/// `GET /events/v1/{tenant}/snapshot/{Users|Groups}?after=&limit=`.
async fn snapshot_page(
    ctx: web::Data<Context>,
    auth: AuthenticatedTenant,
    path: web::Path<(String, String)>,
    query: web::Query<SnapshotQuery>,
) -> Result<HttpResponse, ApiError> {
    let kind = kind(&path.1)?;
    let limit = limit(query.limit.as_deref())?;
    let page = events::snapshot_page(
        &ctx,
        &auth.tenant,
        kind,
        query.after.as_deref().filter(|a| !a.is_empty()),
        limit,
    )
    .await?;
    Ok(json(StatusCode::OK, &page))
}

/// `GET /events/v1/{tenant}/snapshot/{Users|Groups}/{id}`.
async fn snapshot_one(
    ctx: web::Data<Context>,
    auth: AuthenticatedTenant,
    path: web::Path<(String, String, String)>,
) -> Result<HttpResponse, ApiError> {
    let (_, kind_name, id) = path.into_inner();
    let event = events::snapshot_one(&ctx, &auth.tenant, kind(&kind_name)?, &id).await?;
    Ok(json(StatusCode::OK, &event))
}
