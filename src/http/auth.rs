//! Authentication middleware for the tenant and admin scopes, and the extractors handlers
//! use to get the authenticated tenant or admin.

use std::future::{Ready, ready};

use actix_web::body::{EitherBody, MessageBody};
use actix_web::dev::{Payload, ServiceRequest, ServiceResponse};
use actix_web::http::header;
use actix_web::middleware::Next;
use actix_web::{FromRequest, HttpMessage, HttpRequest, web};

use super::error::ApiError;
use super::ratelimit::RateLimits;
use crate::domain::Scope;
use crate::service::Context;
use crate::tenancy::auth::{
    AdminActor, AuthError, AuthenticatedTenant, Reader, authenticate_admin, authenticate_reader,
    authenticate_tenant, bearer,
};

fn context(req: &ServiceRequest) -> Result<web::Data<Context>, ApiError> {
    req.app_data::<web::Data<Context>>()
        .cloned()
        .ok_or_else(|| ApiError::internal(anyhow::anyhow!("no service context")))
}

fn token(req: &ServiceRequest) -> Option<String> {
    let value = req.headers().get(header::AUTHORIZATION)?.to_str().ok();
    bearer(value).map(str::to_owned)
}

/// Authenticates `/scim/v2/{tenant}/…` with a `scim`-scoped token of that tenant.
pub async fn require_scim_token<B: MessageBody>(
    req: ServiceRequest,
    next: Next<B>,
) -> Result<ServiceResponse<EitherBody<B>>, actix_web::Error> {
    match authenticate(&req, Scope::Scim).await {
        Ok(()) => Ok(next.call(req).await?.map_into_left_body()),
        Err(e) => Ok(refuse(req, e)),
    }
}

/// The refusal as a response here, not an error travelling outwards: the outer
/// middlewares (metrics, security headers, request id) then see it like any answer.
fn refuse<B>(req: ServiceRequest, error: ApiError) -> ServiceResponse<EitherBody<B>> {
    req.error_response(error).map_into_right_body()
}

/// Authenticates `/events/v1/{tenant}/…` with an `events:read`-scoped token of that tenant.
pub async fn require_events_token<B: MessageBody>(
    req: ServiceRequest,
    next: Next<B>,
) -> Result<ServiceResponse<EitherBody<B>>, actix_web::Error> {
    match authenticate(&req, Scope::EventsRead).await {
        Ok(()) => Ok(next.call(req).await?.map_into_left_body()),
        Err(e) => Ok(refuse(req, e)),
    }
}

async fn authenticate(req: &ServiceRequest, scope: Scope) -> Result<(), ApiError> {
    let ctx = context(req)?;
    let slug = req
        .match_info()
        .get("tenant")
        .unwrap_or_default()
        .to_owned();
    let token = token(req);
    let mut authenticated = authenticate_tenant(
        &ctx.store,
        ctx.clock.as_ref(),
        &slug,
        token.as_deref(),
        scope,
    )
    .await?;
    tracing::Span::current().record("tenant", slug.as_str());
    if let Some(limits) = req.app_data::<web::Data<RateLimits>>()
        && let Err(wait) = limits.check(&slug, &authenticated.token_id)
    {
        ctx.metrics
            .rate_limited
            .get_or_create(&crate::metrics::TenantOnly {
                tenant: slug.clone(),
            })
            .inc();
        return Err(ApiError::TooManyRequests {
            retry_after_secs: wait.as_secs_f64().ceil().max(1.0) as u64,
        });
    }
    // The tenant's own registry (its registered extensions), cached by schema version.
    authenticated.tenant =
        crate::service::schemas::with_registry(&ctx, authenticated.tenant).await?;
    req.extensions_mut().insert(authenticated);
    Ok(())
}

/// Authenticates `/events/v1` (the tenant listing) with an application credential or an
/// `events:read` token.
pub async fn require_reader<B: MessageBody>(
    req: ServiceRequest,
    next: Next<B>,
) -> Result<ServiceResponse<EitherBody<B>>, actix_web::Error> {
    authenticate_with(req, next, |ctx, token| async move {
        authenticate_reader(&ctx.store, ctx.clock.as_ref(), token.as_deref()).await
    })
    .await
}

/// Authenticates `/admin/v1/…` with a named admin token.
pub async fn require_admin_token<B: MessageBody>(
    req: ServiceRequest,
    next: Next<B>,
) -> Result<ServiceResponse<EitherBody<B>>, actix_web::Error> {
    authenticate_with(req, next, |ctx, token| async move {
        authenticate_admin(&ctx.store, ctx.clock.as_ref(), token.as_deref()).await
    })
    .await
}

/// Runs `authenticate` on the bearer token; on success the request goes on with what it
/// returned in its extensions, otherwise it is refused.
async fn authenticate_with<B, T, F, Fut>(
    req: ServiceRequest,
    next: Next<B>,
    authenticate: F,
) -> Result<ServiceResponse<EitherBody<B>>, actix_web::Error>
where
    B: MessageBody,
    T: Clone + 'static,
    F: FnOnce(web::Data<Context>, Option<String>) -> Fut,
    Fut: std::future::Future<Output = Result<T, AuthError>>,
{
    let ctx = match context(&req) {
        Ok(ctx) => ctx,
        Err(e) => return Ok(refuse(req, e)),
    };
    let token = token(&req);
    match authenticate(ctx, token).await {
        Ok(who) => {
            req.extensions_mut().insert(who);
            Ok(next.call(req).await?.map_into_left_body())
        }
        Err(e) => Ok(refuse(req, e.into())),
    }
}

impl FromRequest for AuthenticatedTenant {
    type Error = ApiError;
    type Future = Ready<Result<Self, ApiError>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        ready(
            req.extensions()
                .get::<AuthenticatedTenant>()
                .cloned()
                .ok_or(ApiError::Unauthenticated),
        )
    }
}

impl FromRequest for Reader {
    type Error = ApiError;
    type Future = Ready<Result<Self, ApiError>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        ready(
            req.extensions()
                .get::<Reader>()
                .cloned()
                .ok_or(ApiError::Unauthenticated),
        )
    }
}

impl FromRequest for AdminActor {
    type Error = ApiError;
    type Future = Ready<Result<Self, ApiError>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        ready(
            req.extensions()
                .get::<AdminActor>()
                .cloned()
                .ok_or(ApiError::Unauthenticated),
        )
    }
}
