//! `/Groups` (RFC 7644 §3.3–3.6): thin handlers over `service::groups`. A group PATCH
//! answers 204 with the ETag unless `attributes` asks for a body (RFC 7644 §3.5.2).

use actix_web::http::{StatusCode, header};
use actix_web::{HttpResponse, web};
use actix_web::{delete, get, patch, post, put};
use utoipa_actix_web::service_config::ServiceConfig;

use super::body::GroupJson;
use super::error::ApiError;
use super::openapi::{ProjectionQuery, ReadQuery, SCIM, TenantPath};
use super::precondition::ReadParams;
use super::response;
use super::shaped::GroupPatchJson;
use super::target::Target;
use crate::domain::ResourceKind;
use crate::service::Context;
use crate::service::groups::{self, Members};
use crate::telemetry::Correlation;
use crate::tenancy::auth::AuthenticatedTenant;

pub fn configure(cfg: &mut ServiceConfig) {
    // `/Groups/.search` before `/Groups/{id}`, which would take it as an id.
    cfg.service(super::search::search_groups);
    super::other_methods(cfg, &["/Groups/.search"]);
    cfg.service(list)
        .service(create)
        .service(get)
        .service(replace)
        .service(patch)
        .service(delete);
    super::other_methods(cfg, &["/Groups", "/Groups/{id}"]);
}

/// Lists groups (RFC 7644 §3.4.2); `excludedAttributes=members` never reads members.
#[utoipa::path(
    operation_id = "listGroups",
    tag = "SCIM Groups",
    params(TenantPath, ReadQuery),
    responses(
        (status = 200, description = "The page", content_type = SCIM, body = super::openapi::ListResponse),
        (status = "default", description = "A SCIM error (400 invalidFilter, invalidValue…)", content_type = SCIM, body = super::openapi::ScimErrorBody),
    )
)]
#[get("/Groups")]
async fn list(
    ctx: web::Data<Context>,
    auth: AuthenticatedTenant,
    params: web::Query<ReadParams>,
) -> Result<HttpResponse, ApiError> {
    super::search::list(&ctx, &auth, &params, ResourceKind::Group).await
}

/// Creates a group, with members that must exist in the tenant (RFC 7644 §3.3).
#[utoipa::path(
    operation_id = "createGroup",
    tag = "SCIM Groups",
    params(TenantPath, ProjectionQuery),
    request_body(content = super::openapi::GroupRequest, content_type = SCIM),
    responses(
        (status = 201, description = "Created; `Location` and `ETag` set", content_type = SCIM, body = super::openapi::Group, headers(("ETag" = String, description = "W/\"<version>\""), ("Location" = String, description = "The resource URL"))),
        (status = "default", description = "A SCIM error (400 invalidValue, 409 uniqueness, 413, 415)", content_type = SCIM, body = super::openapi::ScimErrorBody),
    )
)]
#[post("/Groups")]
async fn create(
    ctx: web::Data<Context>,
    auth: AuthenticatedTenant,
    correlation: Option<Correlation>,
    params: web::Query<ReadParams>,
    body: GroupJson,
) -> Result<HttpResponse, ApiError> {
    let correlation = correlation.as_ref();
    let group = groups::create(&ctx, &auth.tenant, correlation, body.body, body.members).await?;
    Ok(response::view(StatusCode::CREATED, group, &auth, &params))
}

/// Reads a group (RFC 7644 §3.4.1); `If-None-Match` answers 304.
#[utoipa::path(
    operation_id = "getGroup",
    tag = "SCIM Groups",
    params(TenantPath, ("id" = String, Path, description = "Server-issued resource id."), ProjectionQuery),
    responses(
        (status = 200, description = "The group; `ETag` set", content_type = SCIM, body = super::openapi::Group, headers(("ETag" = String, description = "W/\"<version>\""))),
        (status = 304, description = "`If-None-Match` names the current version"),
        (status = "default", description = "A SCIM error (404)", content_type = SCIM, body = super::openapi::ScimErrorBody),
    )
)]
#[get("/Groups/{id}")]
async fn get(target: Target, params: web::Query<ReadParams>) -> Result<HttpResponse, ApiError> {
    let (ctx, tenant) = (&target.ctx, &target.auth.tenant);
    let group = groups::get(ctx, tenant, &target.id, params.members()).await?;
    Ok(target.read(group, &params))
}

/// Replaces a group and its member list (RFC 7644 §3.5.1); only the difference is written.
#[utoipa::path(
    operation_id = "replaceGroup",
    tag = "SCIM Groups",
    params(TenantPath, ("id" = String, Path, description = "Server-issued resource id."), ProjectionQuery),
    request_body(content = super::openapi::GroupRequest, content_type = SCIM),
    responses(
        (status = 200, description = "The group after the replace", content_type = SCIM, body = super::openapi::Group, headers(("ETag" = String, description = "W/\"<version>\""))),
        (status = "default", description = "A SCIM error (400, 404, 409, 412)", content_type = SCIM, body = super::openapi::ScimErrorBody),
    )
)]
#[put("/Groups/{id}")]
async fn replace(
    target: Target,
    params: web::Query<ReadParams>,
    body: GroupJson,
) -> Result<HttpResponse, ApiError> {
    let (ctx, tenant) = (&target.ctx, &target.auth.tenant);
    let (document, members) = (body.body, body.members);
    let written = groups::replace(
        ctx,
        tenant,
        target.correlation(),
        &target.id,
        document,
        members,
        target.if_match(),
    )
    .await?;
    Ok(target.written(written.view, &params))
}

/// Modifies a group (RFC 7644 §3.5.2): 204 with the `ETag`, or 200 with the body when
/// `attributes` asks for one.
#[utoipa::path(
    operation_id = "patchGroup",
    tag = "SCIM Groups",
    params(TenantPath, ("id" = String, Path, description = "Server-issued resource id."), ProjectionQuery),
    request_body(content = super::openapi::PatchOp, content_type = SCIM),
    responses(
        (status = 200, description = "The group, when `attributes` is given", content_type = SCIM, body = super::openapi::Group, headers(("ETag" = String, description = "W/\"<version>\""))),
        (status = 204, description = "Applied; `ETag` set"),
        (status = "default", description = "A SCIM error (400, 404, 409, 412)", content_type = SCIM, body = super::openapi::ScimErrorBody),
    )
)]
#[patch("/Groups/{id}")]
async fn patch(
    target: Target,
    params: web::Query<ReadParams>,
    body: GroupPatchJson,
) -> Result<HttpResponse, ApiError> {
    let with_body = params.attributes.is_some();
    let members = if with_body {
        params.members()
    } else {
        Members::Exclude
    };
    let (ctx, tenant) = (&target.ctx, &target.auth.tenant);
    let written = groups::patch(
        ctx,
        tenant,
        target.correlation(),
        &target.id,
        body.0,
        target.if_match(),
        members,
    )
    .await?;
    if with_body {
        return Ok(target.written(written.view, &params));
    }
    Ok(HttpResponse::NoContent()
        .insert_header((header::ETAG, written.view.etag()))
        .finish())
}

/// Deletes a group (RFC 7644 §3.6).
#[utoipa::path(
    operation_id = "deleteGroup",
    tag = "SCIM Groups",
    params(TenantPath, ("id" = String, Path, description = "Server-issued resource id.")),
    responses(
        (status = 204, description = "Deleted"),
        (status = "default", description = "A SCIM error (404, 412)", content_type = SCIM, body = super::openapi::ScimErrorBody),
    )
)]
#[delete("/Groups/{id}")]
async fn delete(target: Target) -> Result<HttpResponse, ApiError> {
    groups::delete(
        &target.ctx,
        &target.auth.tenant,
        target.correlation(),
        &target.id,
        target.if_match(),
    )
    .await?;
    Ok(HttpResponse::NoContent().finish())
}
