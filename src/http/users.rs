//! `/Users` (RFC 7644 §3.3–3.6): thin handlers over `service::users`.

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, web};
use actix_web::{delete, get, patch, post, put};
use utoipa_actix_web::service_config::ServiceConfig;

use super::body::{BoundedBody, USER_BODY_VALUES, USER_PATCH_VALUES};
use super::error::ApiError;
use super::openapi::{ProjectionQuery, ReadQuery, SCIM, TenantPath};
use super::precondition::{Preconditions, ReadParams};
use super::response;
use crate::domain::Tenant;
use crate::service::{Context, users};
use crate::tenancy::auth::AuthenticatedTenant;

/// Applies `attributes`/`excludedAttributes` to a user representation.
pub(super) fn project(tenant: &Tenant, params: &ReadParams, body: &mut serde_json::Value) {
    let registry = &tenant.registry;
    params.projection().apply(registry, registry.user(), body);
}

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
    let request = super::search::request(&params)?;
    let list = crate::service::listing::list(
        &ctx,
        &auth.tenant,
        &request,
        crate::service::listing::Kind::Users,
    )
    .await?;
    Ok(response::scim(StatusCode::OK, &list))
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
    params: web::Query<ReadParams>,
    body: BoundedBody<USER_BODY_VALUES>,
) -> Result<HttpResponse, ApiError> {
    let mut user = users::create(&ctx, &auth.tenant, body.0).await?;
    project(&auth.tenant, &params, &mut user.body);
    Ok(response::resource(
        StatusCode::CREATED,
        &user.body,
        &user.etag(),
        user.location(),
    ))
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
async fn get(
    ctx: web::Data<Context>,
    auth: AuthenticatedTenant,
    id: web::Path<(String, String)>,
    params: web::Query<ReadParams>,
    conditions: Preconditions,
) -> Result<HttpResponse, ApiError> {
    let mut user = users::get(&ctx, &auth.tenant, &id.1).await?;
    if let Some(not_modified) = conditions.not_modified(user.version, &user.etag()) {
        return Ok(not_modified);
    }
    project(&auth.tenant, &params, &mut user.body);
    Ok(response::resource(
        StatusCode::OK,
        &user.body,
        &user.etag(),
        user.location(),
    ))
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
    ctx: web::Data<Context>,
    auth: AuthenticatedTenant,
    id: web::Path<(String, String)>,
    params: web::Query<ReadParams>,
    conditions: Preconditions,
    body: BoundedBody<USER_BODY_VALUES>,
) -> Result<HttpResponse, ApiError> {
    let written = users::replace(
        &ctx,
        &auth.tenant,
        &id.1,
        body.0,
        conditions.if_match.as_deref(),
    )
    .await?;
    let mut user = written.user;
    project(&auth.tenant, &params, &mut user.body);
    Ok(response::resource(
        StatusCode::OK,
        &user.body,
        &user.etag(),
        user.location(),
    ))
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
    ctx: web::Data<Context>,
    auth: AuthenticatedTenant,
    id: web::Path<(String, String)>,
    params: web::Query<ReadParams>,
    conditions: Preconditions,
    body: BoundedBody<USER_PATCH_VALUES>,
) -> Result<HttpResponse, ApiError> {
    let written = users::patch(
        &ctx,
        &auth.tenant,
        &id.1,
        body.0,
        conditions.if_match.as_deref(),
    )
    .await?;
    let mut user = written.user;
    project(&auth.tenant, &params, &mut user.body);
    Ok(response::resource(
        StatusCode::OK,
        &user.body,
        &user.etag(),
        user.location(),
    ))
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
async fn delete(
    ctx: web::Data<Context>,
    auth: AuthenticatedTenant,
    id: web::Path<(String, String)>,
    conditions: Preconditions,
) -> Result<HttpResponse, ApiError> {
    users::delete(&ctx, &auth.tenant, &id.1, conditions.if_match.as_deref()).await?;
    Ok(HttpResponse::NoContent().finish())
}
