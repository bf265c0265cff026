//! `/Users` (RFC 7644 §3.3–3.6): thin handlers over `service::users`.

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, web};

use super::body::JsonBody;
use super::error::ApiError;
use super::precondition::{Preconditions, ReadParams};
use super::{method_not_allowed, response};
use crate::service::{Context, users};
use crate::tenancy::auth::AuthenticatedTenant;

/// Applies `attributes`/`excludedAttributes` to a user representation.
pub(super) fn project(ctx: &Context, params: &ReadParams, body: &mut serde_json::Value) {
    params
        .projection()
        .apply(ctx.registry, ctx.registry.user(), body);
}

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(
        web::resource("/Users/.search")
            .route(web::post().to(super::search::users))
            .default_service(web::to(method_not_allowed)),
    )
    .service(
        web::resource("/Users")
            .route(web::get().to(list))
            .route(web::post().to(create))
            .default_service(web::to(method_not_allowed)),
    )
    .service(
        web::resource("/Users/{id}")
            .route(web::get().to(get))
            .route(web::put().to(replace))
            .route(web::patch().to(patch))
            .route(web::delete().to(delete))
            .default_service(web::to(method_not_allowed)),
    );
}

async fn list(
    ctx: web::Data<Context>,
    auth: AuthenticatedTenant,
    params: web::Query<ReadParams>,
) -> Result<HttpResponse, ApiError> {
    let list = super::search::list(&ctx, &auth, &params, super::search::Kind::Users).await?;
    Ok(response::scim(StatusCode::OK, &list))
}

async fn create(
    ctx: web::Data<Context>,
    auth: AuthenticatedTenant,
    params: web::Query<ReadParams>,
    body: JsonBody,
) -> Result<HttpResponse, ApiError> {
    let mut user = users::create(&ctx, &auth.tenant, body.0).await?;
    project(&ctx, &params, &mut user.body);
    Ok(response::resource(
        StatusCode::CREATED,
        &user.body,
        &user.etag(),
        user.location(),
    ))
}

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
    project(&ctx, &params, &mut user.body);
    Ok(response::resource(
        StatusCode::OK,
        &user.body,
        &user.etag(),
        user.location(),
    ))
}

async fn replace(
    ctx: web::Data<Context>,
    auth: AuthenticatedTenant,
    id: web::Path<(String, String)>,
    params: web::Query<ReadParams>,
    conditions: Preconditions,
    body: JsonBody,
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
    project(&ctx, &params, &mut user.body);
    Ok(response::resource(
        StatusCode::OK,
        &user.body,
        &user.etag(),
        user.location(),
    ))
}

async fn patch(
    ctx: web::Data<Context>,
    auth: AuthenticatedTenant,
    id: web::Path<(String, String)>,
    params: web::Query<ReadParams>,
    conditions: Preconditions,
    body: JsonBody,
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
    project(&ctx, &params, &mut user.body);
    Ok(response::resource(
        StatusCode::OK,
        &user.body,
        &user.etag(),
        user.location(),
    ))
}

async fn delete(
    ctx: web::Data<Context>,
    auth: AuthenticatedTenant,
    id: web::Path<(String, String)>,
    conditions: Preconditions,
) -> Result<HttpResponse, ApiError> {
    users::delete(&ctx, &auth.tenant, &id.1, conditions.if_match.as_deref()).await?;
    Ok(HttpResponse::NoContent().finish())
}
