//! `/Groups` (RFC 7644 §3.3–3.6): thin handlers over `service::groups`. A group PATCH
//! answers 204 with the ETag unless `attributes` asks for a body (RFC 7644 §3.5.2).

use actix_web::http::{StatusCode, header};
use actix_web::{HttpResponse, web};

use super::body::JsonBody;
use super::error::ApiError;
use super::precondition::{Preconditions, ReadParams};
use super::{method_not_allowed, response};
use crate::service::Context;
use crate::service::groups::{self, Members};
use crate::tenancy::auth::AuthenticatedTenant;

/// Applies `attributes`/`excludedAttributes` to a group representation.
pub(super) fn project(ctx: &Context, params: &ReadParams, body: &mut serde_json::Value) {
    params
        .projection()
        .apply(ctx.registry, ctx.registry.group(), body);
}

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(
        web::resource("/Groups/.search")
            .route(web::post().to(super::search::groups))
            .default_service(web::to(method_not_allowed)),
    )
    .service(
        web::resource("/Groups")
            .route(web::get().to(list))
            .route(web::post().to(create))
            .default_service(web::to(method_not_allowed)),
    )
    .service(
        web::resource("/Groups/{id}")
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
    let list = super::search::list(&ctx, &auth, &params, super::search::Kind::Groups).await?;
    Ok(response::scim(StatusCode::OK, &list))
}

async fn create(
    ctx: web::Data<Context>,
    auth: AuthenticatedTenant,
    params: web::Query<ReadParams>,
    body: JsonBody,
) -> Result<HttpResponse, ApiError> {
    let mut group = groups::create(&ctx, &auth.tenant, body.0).await?;
    project(&ctx, &params, &mut group.body);
    Ok(response::resource(
        StatusCode::CREATED,
        &group.body,
        &group.etag(),
        group.location(),
    ))
}

async fn get(
    ctx: web::Data<Context>,
    auth: AuthenticatedTenant,
    id: web::Path<(String, String)>,
    params: web::Query<ReadParams>,
    conditions: Preconditions,
) -> Result<HttpResponse, ApiError> {
    let mut group = groups::get(&ctx, &auth.tenant, &id.1, params.members()).await?;
    if let Some(not_modified) = conditions.not_modified(group.version, &group.etag()) {
        return Ok(not_modified);
    }
    project(&ctx, &params, &mut group.body);
    Ok(response::resource(
        StatusCode::OK,
        &group.body,
        &group.etag(),
        group.location(),
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
    let written = groups::replace(
        &ctx,
        &auth.tenant,
        &id.1,
        body.0,
        conditions.if_match.as_deref(),
    )
    .await?;
    let mut group = written.group;
    project(&ctx, &params, &mut group.body);
    Ok(response::resource(
        StatusCode::OK,
        &group.body,
        &group.etag(),
        group.location(),
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
    let with_body = params.attributes.is_some();
    let members = if with_body {
        params.members()
    } else {
        Members::Exclude
    };
    let written = groups::patch(
        &ctx,
        &auth.tenant,
        &id.1,
        body.0,
        conditions.if_match.as_deref(),
        members,
    )
    .await?;
    let mut group = written.group;
    if with_body {
        project(&ctx, &params, &mut group.body);
        return Ok(response::resource(
            StatusCode::OK,
            &group.body,
            &group.etag(),
            group.location(),
        ));
    }
    Ok(HttpResponse::NoContent()
        .insert_header((header::ETAG, group.etag()))
        .finish())
}

async fn delete(
    ctx: web::Data<Context>,
    auth: AuthenticatedTenant,
    id: web::Path<(String, String)>,
    conditions: Preconditions,
) -> Result<HttpResponse, ApiError> {
    groups::delete(&ctx, &auth.tenant, &id.1, conditions.if_match.as_deref()).await?;
    Ok(HttpResponse::NoContent().finish())
}
