//! `/ServiceProviderConfig`, `/ResourceTypes`, `/Schemas` (RFC 7644 §4) per tenant, from the
//! registry; `/Me` answers 501 (tokens are not bound to a user).

use actix_web::get;
use actix_web::http::StatusCode;
use actix_web::{HttpResponse, web};
use utoipa_actix_web::service_config::ServiceConfig;

use super::error::ApiError;
use super::openapi::{DiscoveryDocument, ListResponse as ListDoc, SCIM, ScimErrorBody, TenantPath};
use super::response;
use crate::scim::discovery::{self, Limits};
use crate::scim::error::ScimError;
use crate::scim::resource::ListResponse;
use crate::service::Context;
use crate::tenancy::auth::AuthenticatedTenant;

pub fn configure(cfg: &mut ServiceConfig) {
    cfg.service(service_provider_config)
        .service(resource_types)
        .service(resource_type)
        .service(list_schemas)
        .service(get_schema)
        .service(me);
    super::other_methods(
        cfg,
        &[
            "/ServiceProviderConfig",
            "/ResourceTypes",
            "/ResourceTypes/{name}",
            "/Schemas",
            "/Schemas/{urn}",
            "/Me",
        ],
    );
}

fn base(ctx: &Context, auth: &AuthenticatedTenant) -> String {
    ctx.scim_base(&auth.tenant.slug)
}

/// The service provider's configuration (RFC 7644 §4).
#[utoipa::path(
    operation_id = "getServiceProviderConfig",
    tag = "SCIM discovery",
    params(TenantPath),
    responses(
        (status = 200, description = "The service provider's configuration (RFC 7644 §4).", content_type = SCIM, body = DiscoveryDocument),
        (status = "default", description = "A SCIM error (404)", content_type = SCIM, body = ScimErrorBody),
    )
)]
#[get("/ServiceProviderConfig")]
async fn service_provider_config(
    ctx: web::Data<Context>,
    auth: AuthenticatedTenant,
    limit: Option<web::Data<super::body::BodyLimit>>,
) -> HttpResponse {
    let limits = Limits {
        cursor_timeout_secs: ctx.cursors.timeout_secs,
        bulk_max_operations: crate::service::bulk::MAX_OPERATIONS,
        max_payload_bytes: limit.map_or(crate::config::MIN_BODY_BYTES, |l| l.0),
        security_events: ctx
            .sets
            .enabled()
            .then_some(&crate::service::sets::EVENT_URIS[..]),
    };
    response::scim(
        StatusCode::OK,
        &discovery::service_provider_config(&base(&ctx, &auth), limits),
    )
}

/// The resource types (RFC 7644 §4).
#[utoipa::path(
    operation_id = "listResourceTypes",
    tag = "SCIM discovery",
    params(TenantPath),
    responses(
        (status = 200, description = "The resource types (RFC 7644 §4).", content_type = SCIM, body = ListDoc),
        (status = "default", description = "A SCIM error (404)", content_type = SCIM, body = ScimErrorBody),
    )
)]
#[get("/ResourceTypes")]
async fn resource_types(ctx: web::Data<Context>, auth: AuthenticatedTenant) -> HttpResponse {
    let all = discovery::resource_types(&base(&ctx, &auth), &auth.tenant.registry);
    response::scim(StatusCode::OK, &ListResponse::new(all.len() as u64, 1, all))
}

/// One resource type.
#[utoipa::path(
    operation_id = "getResourceType",
    tag = "SCIM discovery",
    params(TenantPath, ("name" = String, Path, description = "`User` or `Group`.", example = "User")),
    responses(
        (status = 200, description = "One resource type.", content_type = SCIM, body = DiscoveryDocument),
        (status = "default", description = "A SCIM error (404)", content_type = SCIM, body = ScimErrorBody),
    )
)]
#[get("/ResourceTypes/{name}")]
async fn resource_type(
    ctx: web::Data<Context>,
    auth: AuthenticatedTenant,
    path: web::Path<(String, String)>,
) -> Result<HttpResponse, ApiError> {
    let rt = auth
        .tenant
        .registry
        .resource_types
        .iter()
        .find(|rt| rt.id == path.1)
        .ok_or_else(|| ApiError::not_found(format!("no resource type {}", path.1)))?;
    Ok(response::scim(
        StatusCode::OK,
        &discovery::resource_type(&base(&ctx, &auth), rt),
    ))
}

/// The schemas (RFC 7644 §4).
#[utoipa::path(
    operation_id = "listSchemas",
    tag = "SCIM discovery",
    params(TenantPath),
    responses(
        (status = 200, description = "The schemas (RFC 7644 §4).", content_type = SCIM, body = ListDoc),
        (status = "default", description = "A SCIM error (404)", content_type = SCIM, body = ScimErrorBody),
    )
)]
#[get("/Schemas")]
async fn list_schemas(ctx: web::Data<Context>, auth: AuthenticatedTenant) -> HttpResponse {
    let all = discovery::schemas(&base(&ctx, &auth), &auth.tenant.registry);
    response::scim(StatusCode::OK, &ListResponse::new(all.len() as u64, 1, all))
}

/// One schema.
#[utoipa::path(
    operation_id = "getSchema",
    tag = "SCIM discovery",
    params(TenantPath, ("urn" = String, Path, description = "A schema URN, e.g. `urn:ietf:params:scim:schemas:core:2.0:User`.")),
    responses(
        (status = 200, description = "One schema.", content_type = SCIM, body = DiscoveryDocument),
        (status = "default", description = "A SCIM error (404)", content_type = SCIM, body = ScimErrorBody),
    )
)]
#[get("/Schemas/{urn}")]
async fn get_schema(
    ctx: web::Data<Context>,
    auth: AuthenticatedTenant,
    path: web::Path<(String, String)>,
) -> Result<HttpResponse, ApiError> {
    let s = auth
        .tenant
        .registry
        .schema(&path.1)
        .ok_or_else(|| ApiError::not_found(format!("no schema {}", path.1)))?;
    Ok(response::scim(
        StatusCode::OK,
        &discovery::schema(&base(&ctx, &auth), s),
    ))
}

/// `/Me` (RFC 7644 §3.11) is not supported: tokens belong to a tenant, not a user.
#[utoipa::path(
    operation_id = "me",
    tag = "SCIM discovery",
    params(TenantPath),
    responses(
        (status = 501, description = "Not implemented", content_type = SCIM, body = ScimErrorBody),
        (status = "default", description = "A SCIM error (401, 403)", content_type = SCIM, body = ScimErrorBody),
    )
)]
#[get("/Me")]
async fn me() -> Result<HttpResponse, ApiError> {
    Err(ApiError::Scim(ScimError::new(
        501,
        None,
        "/Me is not supported: scimbus tokens belong to a tenant, not to a user",
    )))
}
