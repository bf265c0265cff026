//! `/Users` (RFC 7644 §3.3–3.6): thin handlers over `service::users`.

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, web};
use actix_web::{delete, get, patch, post, put};
use utoipa_actix_web::service_config::ServiceConfig;

use super::body::{BoundedBody, USER_BODY_VALUES, USER_PATCH_VALUES};
use super::error::ApiError;
use super::openapi::{ProjectionQuery, ReadQuery, SCIM, TenantPath};
use super::precondition::ReadParams;
use super::response;
use super::target::Target;
use crate::domain::ResourceKind;
use crate::service::{Context, users};
use crate::telemetry::Correlation;
use crate::tenancy::auth::AuthenticatedTenant;

pub fn configure(cfg: &mut ServiceConfig) {
    // `/Users/.search` before `/Users/{id}`, which would take it as an id.
    cfg.service(super::search::search_users);
    super::other_methods(cfg, &["/Users/.search"]);
    cfg.service(list)
        .service(create)
        .service(get)
        .service(replace)
        .service(patch)
        .service(delete);
    super::other_methods(cfg, &["/Users", "/Users/{id}"]);
}

/// Lists users: filter, sort, index or cursor paging, projection (RFC 7644 §3.4.2).
#[utoipa::path(
    operation_id = "listUsers",
    tag = "SCIM Users",
    params(TenantPath, ReadQuery),
    responses(
        (status = 200, description = "The page", content_type = SCIM, body = super::openapi::ListResponse),
        (status = "default", description = "A SCIM error (400 invalidFilter, invalidValue, invalidCursor…)", content_type = SCIM, body = super::openapi::ScimErrorBody),
    )
)]
#[get("/Users")]
async fn list(
    ctx: web::Data<Context>,
    auth: AuthenticatedTenant,
    params: web::Query<ReadParams>,
) -> Result<HttpResponse, ApiError> {
    super::search::list(&ctx, &auth, &params, ResourceKind::User).await
}

/// Creates a user (RFC 7644 §3.3); readOnly attributes in the body are ignored.
#[utoipa::path(
    operation_id = "createUser",
    tag = "SCIM Users",
    params(TenantPath, ProjectionQuery),
    request_body(content = super::openapi::UserRequest, content_type = SCIM),
    responses(
        (status = 201, description = "Created; `Location` and `ETag` set", content_type = SCIM, body = super::openapi::User, headers(("ETag" = String, description = "W/\"<version>\""), ("Location" = String, description = "The resource URL"))),
        (status = "default", description = "A SCIM error (400 invalidValue/invalidSyntax, 409 uniqueness, 413, 415)", content_type = SCIM, body = super::openapi::ScimErrorBody),
    )
)]
#[post("/Users")]
async fn create(
    ctx: web::Data<Context>,
    auth: AuthenticatedTenant,
    correlation: Option<Correlation>,
    params: web::Query<ReadParams>,
    body: BoundedBody<USER_BODY_VALUES>,
) -> Result<HttpResponse, ApiError> {
    let user = users::create(&ctx, &auth.tenant, correlation.as_ref(), body.0).await?;
    Ok(response::view(StatusCode::CREATED, user, &auth, &params))
}

/// Reads a user (RFC 7644 §3.4.1); `If-None-Match` answers 304.
#[utoipa::path(
    operation_id = "getUser",
    tag = "SCIM Users",
    params(TenantPath, ("id" = String, Path, description = "Server-issued resource id."), ProjectionQuery),
    responses(
        (status = 200, description = "The user; `ETag` set", content_type = SCIM, body = super::openapi::User, headers(("ETag" = String, description = "W/\"<version>\""))),
        (status = 304, description = "`If-None-Match` names the current version"),
        (status = "default", description = "A SCIM error (404)", content_type = SCIM, body = super::openapi::ScimErrorBody),
    )
)]
#[get("/Users/{id}")]
async fn get(target: Target, params: web::Query<ReadParams>) -> Result<HttpResponse, ApiError> {
    let user = users::get(&target.ctx, &target.auth.tenant, &target.id).await?;
    Ok(target.read(user, &params))
}

/// Replaces a user (RFC 7644 §3.5.1); a PUT that changes nothing bumps nothing.
#[utoipa::path(
    operation_id = "replaceUser",
    tag = "SCIM Users",
    params(TenantPath, ("id" = String, Path, description = "Server-issued resource id."), ProjectionQuery),
    request_body(content = super::openapi::UserRequest, content_type = SCIM),
    responses(
        (status = 200, description = "The user after the replace", content_type = SCIM, body = super::openapi::User, headers(("ETag" = String, description = "W/\"<version>\""))),
        (status = "default", description = "A SCIM error (400, 404, 409 uniqueness, 412)", content_type = SCIM, body = super::openapi::ScimErrorBody),
    )
)]
#[put("/Users/{id}")]
async fn replace(
    target: Target,
    params: web::Query<ReadParams>,
    body: BoundedBody<USER_BODY_VALUES>,
) -> Result<HttpResponse, ApiError> {
    let (ctx, tenant) = (&target.ctx, &target.auth.tenant);
    let written = users::replace(
        ctx,
        tenant,
        target.correlation(),
        &target.id,
        body.0,
        target.if_match(),
    )
    .await?;
    Ok(target.written(written.view, &params))
}

/// Modifies a user (RFC 7644 §3.5.2), atomically.
#[utoipa::path(
    operation_id = "patchUser",
    tag = "SCIM Users",
    params(TenantPath, ("id" = String, Path, description = "Server-issued resource id."), ProjectionQuery),
    request_body(content = super::openapi::PatchOp, content_type = SCIM),
    responses(
        (status = 200, description = "The user after the patch", content_type = SCIM, body = super::openapi::User, headers(("ETag" = String, description = "W/\"<version>\""))),
        (status = "default", description = "A SCIM error (400 invalidPath/noTarget/mutability/invalidValue, 404, 409, 412)", content_type = SCIM, body = super::openapi::ScimErrorBody),
    )
)]
#[patch("/Users/{id}")]
async fn patch(
    target: Target,
    params: web::Query<ReadParams>,
    body: BoundedBody<USER_PATCH_VALUES>,
) -> Result<HttpResponse, ApiError> {
    let (ctx, tenant) = (&target.ctx, &target.auth.tenant);
    let written = users::patch(
        ctx,
        tenant,
        target.correlation(),
        &target.id,
        body.0,
        target.if_match(),
    )
    .await?;
    Ok(target.written(written.view, &params))
}

/// Deletes a user (RFC 7644 §3.6); it leaves its groups first.
#[utoipa::path(
    operation_id = "deleteUser",
    tag = "SCIM Users",
    params(TenantPath, ("id" = String, Path, description = "Server-issued resource id.")),
    responses(
        (status = 204, description = "Deleted"),
        (status = "default", description = "A SCIM error (404, 412)", content_type = SCIM, body = super::openapi::ScimErrorBody),
    )
)]
#[delete("/Users/{id}")]
async fn delete(target: Target) -> Result<HttpResponse, ApiError> {
    users::delete(
        &target.ctx,
        &target.auth.tenant,
        target.correlation(),
        &target.id,
        target.if_match(),
    )
    .await?;
    Ok(HttpResponse::NoContent().finish())
}
