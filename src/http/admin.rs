//! `/admin/v1`: tenants and their tokens, for operators with a named admin token.
//! A token's secret appears once, in the response that creates it.

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, web};
use secrecy::ExposeSecret;
use serde::Deserialize;
use serde_json::json;
use validator::Validate;

use super::body::JsonBody;
use super::error::ApiError;
use super::{method_not_allowed, response};
use crate::domain::Scope;
use crate::scim::error::ScimError;
use crate::scim::time;
use crate::service::audit::{self, Actor};
use crate::service::{Context, events, tenants};
use crate::tenancy::auth::AdminActor;

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(
        web::resource("/tenants")
            .route(web::get().to(list_tenants))
            .route(web::post().to(create_tenant))
            .default_service(web::to(method_not_allowed)),
    )
    .service(
        web::resource("/tenants/{slug}")
            .route(web::get().to(get_tenant))
            .route(web::delete().to(delete_tenant))
            .default_service(web::to(method_not_allowed)),
    )
    .service(
        web::resource("/tenants/{slug}/tokens")
            .route(web::get().to(list_tokens))
            .route(web::post().to(issue_token))
            .default_service(web::to(method_not_allowed)),
    )
    .service(
        web::resource("/tenants/{slug}/tokens/{id}")
            .route(web::delete().to(revoke_token))
            .default_service(web::to(method_not_allowed)),
    )
    .service(
        web::resource("/tenants/{slug}/events/purge")
            .route(web::post().to(purge_events))
            .default_service(web::to(method_not_allowed)),
    )
    .service(
        web::resource("/audit")
            .route(web::get().to(list_audit))
            .default_service(web::to(method_not_allowed)),
    );
}

#[derive(Debug, Deserialize, Validate)]
#[serde(deny_unknown_fields)]
struct PurgeEvents {
    /// `Users/{id}` or `Groups/{id}`.
    #[validate(length(min = 3, max = 300))]
    subject: String,
}

/// Erasure: redacts the payloads of a subject's retained events (GDPR requests).
async fn purge_events(
    ctx: web::Data<Context>,
    actor: AdminActor,
    slug: web::Path<String>,
    body: JsonBody,
) -> Result<HttpResponse, ApiError> {
    let input: PurgeEvents = parse(body)?;
    let redacted =
        events::purge_subject(&ctx, &Actor::admin(&actor.name), &slug, &input.subject).await?;
    tracing::info!(actor = %actor.name, tenant = %slug, redacted, "events purged");
    Ok(response::scim(
        StatusCode::OK,
        &json!({ "subject": input.subject, "redacted": redacted }),
    ))
}

#[derive(Debug, Deserialize, Validate)]
struct AuditQuery {
    #[validate(length(min = 1, max = 63))]
    tenant: Option<String>,
    #[validate(length(min = 1, max = 36))]
    after: Option<String>,
    #[validate(range(min = 1, max = 1000))]
    limit: Option<u64>,
}

/// The audit log, oldest first; `after` (the last entry id seen) pages it.
async fn list_audit(
    ctx: web::Data<Context>,
    _: AdminActor,
    query: web::Query<AuditQuery>,
) -> Result<HttpResponse, ApiError> {
    query
        .validate()
        .map_err(|e| ApiError::Scim(ScimError::invalid_value(e.to_string())))?;
    let limit = query.limit.unwrap_or(100);
    let entries = audit::list(&ctx, query.tenant.as_deref(), query.after.as_deref(), limit).await?;
    let next = (entries.len() as u64 == limit)
        .then(|| entries.last().map(|e| e.id.clone()))
        .flatten();
    Ok(response::scim(
        StatusCode::OK,
        &json!({ "entries": entries, "next": next }),
    ))
}

#[derive(Debug, Deserialize, Validate)]
#[serde(deny_unknown_fields)]
struct CreateTenant {
    #[validate(length(min = 1, max = 63))]
    slug: String,
}

#[derive(Debug, Deserialize, Validate)]
#[serde(deny_unknown_fields)]
struct IssueToken {
    #[validate(length(min = 1, max = 100))]
    name: String,
    #[serde(default)]
    scopes: Vec<String>,
    /// RFC 3339 instant.
    expires_at: Option<String>,
}

fn parse<T: serde::de::DeserializeOwned + Validate>(body: JsonBody) -> Result<T, ApiError> {
    let value: T = serde_json::from_value(body.0)
        .map_err(|e| ApiError::Scim(ScimError::invalid_syntax(e.to_string())))?;
    value
        .validate()
        .map_err(|e| ApiError::Scim(ScimError::invalid_value(e.to_string())))?;
    Ok(value)
}

async fn create_tenant(
    ctx: web::Data<Context>,
    actor: AdminActor,
    body: JsonBody,
) -> Result<HttpResponse, ApiError> {
    let input: CreateTenant = parse(body)?;
    let tenant = tenants::create_tenant(&ctx, &Actor::admin(&actor.name), &input.slug).await?;
    tracing::info!(actor = %actor.name, tenant = %tenant.slug, "tenant created");
    Ok(response::scim(StatusCode::CREATED, &tenant))
}

async fn list_tenants(ctx: web::Data<Context>, _: AdminActor) -> Result<HttpResponse, ApiError> {
    let tenants = tenants::list_tenants(&ctx).await?;
    Ok(response::scim(
        StatusCode::OK,
        &json!({ "tenants": tenants }),
    ))
}

async fn get_tenant(
    ctx: web::Data<Context>,
    _: AdminActor,
    slug: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let tenant = tenants::get_tenant(&ctx, &slug).await?;
    Ok(response::scim(StatusCode::OK, &tenant))
}

async fn delete_tenant(
    ctx: web::Data<Context>,
    actor: AdminActor,
    slug: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    tenants::delete_tenant(&ctx, &Actor::admin(&actor.name), &slug).await?;
    tracing::info!(actor = %actor.name, tenant = %slug, "tenant deleted");
    Ok(HttpResponse::NoContent().finish())
}

async fn issue_token(
    ctx: web::Data<Context>,
    actor: AdminActor,
    slug: web::Path<String>,
    body: JsonBody,
) -> Result<HttpResponse, ApiError> {
    let input: IssueToken = parse(body)?;
    let scopes = input
        .scopes
        .iter()
        .map(|s| Scope::parse(s))
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| ApiError::Scim(ScimError::invalid_value(e)))?;
    let expires_at = input
        .expires_at
        .as_deref()
        .map(|e| {
            time::parse(e).ok_or_else(|| {
                ApiError::Scim(ScimError::invalid_value("`expires_at` must be RFC 3339"))
            })
        })
        .transpose()?;
    let request = tenants::TokenRequest {
        name: input.name,
        scopes,
        expires_at,
    };
    let (info, secret) =
        tenants::issue_token(&ctx, &Actor::admin(&actor.name), &slug, request).await?;
    tracing::info!(actor = %actor.name, tenant = %slug, token = %info.id, "token issued");
    let mut body =
        serde_json::to_value(&info).map_err(|e| ApiError::Internal(anyhow::Error::new(e)))?;
    body["token"] = json!(secret.expose_secret());
    Ok(response::scim(StatusCode::CREATED, &body))
}

async fn list_tokens(
    ctx: web::Data<Context>,
    _: AdminActor,
    slug: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let tokens = tenants::list_tokens(&ctx, &slug).await?;
    Ok(response::scim(StatusCode::OK, &json!({ "tokens": tokens })))
}

async fn revoke_token(
    ctx: web::Data<Context>,
    actor: AdminActor,
    path: web::Path<(String, String)>,
) -> Result<HttpResponse, ApiError> {
    let (slug, id) = path.into_inner();
    tenants::revoke_token(&ctx, &Actor::admin(&actor.name), &slug, &id).await?;
    tracing::info!(actor = %actor.name, tenant = %slug, token = %id, "token revoked");
    Ok(HttpResponse::NoContent().finish())
}
