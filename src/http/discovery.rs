//! `/ServiceProviderConfig`, `/ResourceTypes`, `/Schemas` (RFC 7644 §4) per tenant, from the
//! registry; `/Me` answers 501 (tokens are not bound to a user).

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, web};

use super::error::ApiError;
use super::{method_not_allowed, response};
use crate::scim::discovery::{self, Limits};
use crate::scim::error::ScimError;
use crate::scim::resource::ListResponse;
use crate::service::Context;
use crate::tenancy::auth::AuthenticatedTenant;

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(
        web::resource("/ServiceProviderConfig")
            .route(web::get().to(service_provider_config))
            .default_service(web::to(method_not_allowed)),
    )
    .service(
        web::resource("/ResourceTypes")
            .route(web::get().to(resource_types))
            .default_service(web::to(method_not_allowed)),
    )
    .service(
        web::resource("/ResourceTypes/{name}")
            .route(web::get().to(resource_type))
            .default_service(web::to(method_not_allowed)),
    )
    .service(
        web::resource("/Schemas")
            .route(web::get().to(schemas))
            .default_service(web::to(method_not_allowed)),
    )
    .service(
        web::resource("/Schemas/{urn}")
            .route(web::get().to(schema))
            .default_service(web::to(method_not_allowed)),
    )
    .service(web::resource("/Me").default_service(web::to(me)));
}

fn base(ctx: &Context, auth: &AuthenticatedTenant) -> String {
    ctx.scim_base(&auth.tenant.slug)
}

async fn service_provider_config(
    ctx: web::Data<Context>,
    auth: AuthenticatedTenant,
) -> HttpResponse {
    let limits = Limits {
        cursor_timeout_secs: ctx.cursors.timeout_secs,
    };
    response::scim(
        StatusCode::OK,
        &discovery::service_provider_config(&base(&ctx, &auth), limits),
    )
}

async fn resource_types(ctx: web::Data<Context>, auth: AuthenticatedTenant) -> HttpResponse {
    let all = discovery::resource_types(&base(&ctx, &auth), ctx.registry);
    response::scim(StatusCode::OK, &ListResponse::new(all.len() as u64, 1, all))
}

async fn resource_type(
    ctx: web::Data<Context>,
    auth: AuthenticatedTenant,
    path: web::Path<(String, String)>,
) -> Result<HttpResponse, ApiError> {
    let rt = ctx
        .registry
        .resource_types
        .iter()
        .find(|rt| rt.id == path.1)
        .ok_or_else(|| ApiError::NotFound(format!("no resource type {}", path.1)))?;
    Ok(response::scim(
        StatusCode::OK,
        &discovery::resource_type(&base(&ctx, &auth), rt),
    ))
}

async fn schemas(ctx: web::Data<Context>, auth: AuthenticatedTenant) -> HttpResponse {
    let all = discovery::schemas(&base(&ctx, &auth), ctx.registry);
    response::scim(StatusCode::OK, &ListResponse::new(all.len() as u64, 1, all))
}

async fn schema(
    ctx: web::Data<Context>,
    auth: AuthenticatedTenant,
    path: web::Path<(String, String)>,
) -> Result<HttpResponse, ApiError> {
    let s = ctx
        .registry
        .schema(&path.1)
        .ok_or_else(|| ApiError::NotFound(format!("no schema {}", path.1)))?;
    Ok(response::scim(
        StatusCode::OK,
        &discovery::schema(&base(&ctx, &auth), s),
    ))
}

async fn me() -> Result<HttpResponse, ApiError> {
    Err(ApiError::Scim(ScimError::new(
        501,
        None,
        "/Me is not supported: scimbus tokens belong to a tenant, not to a user",
    )))
}
