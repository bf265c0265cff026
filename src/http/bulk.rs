//! `POST /Bulk` (RFC 7644 §3.7): thin handler over `service::bulk`.

use actix_web::http::StatusCode;
use actix_web::post;
use actix_web::{HttpResponse, web};
use utoipa_actix_web::service_config::ServiceConfig;

use super::error::ApiError;
use super::openapi::{SCIM, ScimErrorBody, TenantPath};
use super::response;
use super::shaped::BulkJson;
use crate::service::{Context, bulk};
use crate::telemetry::Correlation;
use crate::tenancy::auth::AuthenticatedTenant;

pub fn configure(cfg: &mut ServiceConfig) {
    cfg.service(run_bulk);
    super::other_methods(cfg, &["/Bulk"]);
}

/// Runs POST, PUT, PATCH and DELETE operations on Users and Groups in one request, each in
/// its own transaction; `bulkId` references resolve in any order (RFC 7644 §3.7).
#[utoipa::path(
    operation_id = "bulk",
    tag = "SCIM discovery",
    params(TenantPath),
    request_body(content = super::openapi::BulkRequest, content_type = SCIM),
    responses(
        (status = 200, description = "Each processed operation's status", content_type = SCIM, body = super::openapi::BulkResponse),
        (status = "default", description = "A SCIM error (400 invalidSyntax, 413 over maxOperations or maxPayloadSize)", content_type = SCIM, body = ScimErrorBody),
    )
)]
#[post("/Bulk")]
async fn run_bulk(
    ctx: web::Data<Context>,
    auth: AuthenticatedTenant,
    correlation: Option<Correlation>,
    body: BulkJson,
) -> Result<HttpResponse, ApiError> {
    let result = bulk::execute(&ctx, &auth.tenant, correlation.as_ref(), body.0).await?;
    Ok(response::scim(StatusCode::OK, &result))
}
