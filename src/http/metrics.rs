//! `/metrics` in the Prometheus text format (behind `SCIMBUS_METRICS_TOKEN`, or open on the
//! separate admin listener only),
//! and the middleware that counts and times every request by its route template.

use std::time::Instant;

use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::get;
use actix_web::http::header;
use actix_web::middleware::Next;
use actix_web::{HttpMessage, HttpRequest, HttpResponse, web};
use secrecy::{ExposeSecret, SecretString};
use sha2::{Digest, Sha256};

use super::error::ApiError;
use crate::metrics::{LatencyLabels, RouteLabels, TenantLabels};
use crate::service::Context;
use crate::tenancy::auth::{AuthenticatedTenant, bearer};

/// The token `/metrics` requires, if any.
#[derive(Clone)]
pub struct MetricsToken(pub Option<SecretString>);

/// The method as a label: the standard methods by name, anything else (any token is a
/// valid HTTP method, so a client could make up one per request) as `other`, so the label
/// set stays bounded.
fn method_label(method: &actix_web::http::Method) -> &'static str {
    match method.as_str() {
        "GET" => "GET",
        "HEAD" => "HEAD",
        "POST" => "POST",
        "PUT" => "PUT",
        "PATCH" => "PATCH",
        "DELETE" => "DELETE",
        "OPTIONS" => "OPTIONS",
        "TRACE" => "TRACE",
        "CONNECT" => "CONNECT",
        _ => "other",
    }
}

/// Counts and times every request. The route is the matched template, so ids never
/// become labels; the tenant label comes only from an authenticated request.
pub async fn record(
    req: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    let ctx = req.app_data::<web::Data<Context>>().cloned();
    let started = Instant::now();
    let method = method_label(req.method()).to_owned();
    let response = next.call(req).await?;
    if let Some(ctx) = ctx {
        let request = response.request();
        let route = request
            .match_pattern()
            .unwrap_or_else(|| "unmatched".to_owned());
        let status = response.status().as_u16();
        let m = &ctx.metrics;
        m.requests
            .get_or_create(&RouteLabels {
                route: route.clone(),
                method: method.clone(),
                status,
            })
            .inc();
        m.latency
            .get_or_create(&LatencyLabels { route, method })
            .observe(started.elapsed().as_secs_f64());
        if let Some(auth) = request.extensions().get::<AuthenticatedTenant>() {
            m.tenant_requests
                .get_or_create(&TenantLabels {
                    tenant: auth.tenant.slug.to_string(),
                    class: format!("{}xx", status / 100),
                })
                .inc();
        }
    }
    Ok(response)
}

/// With `SCIMBUS_METRICS_TOKEN` set, the request must carry it; without, `/metrics` is
/// served only on the separate admin listener (it names every tenant).
fn authorised(req: &HttpRequest, token: &MetricsToken) -> Result<(), ApiError> {
    let Some(expected) = &token.0 else {
        let on_admin = req
            .app_data::<web::Data<super::context::Listeners>>()
            .is_some_and(|l| l.on_admin(req));
        return if on_admin {
            Ok(())
        } else {
            Err(ApiError::not_found(
                "/metrics is served here only with SCIMBUS_METRICS_TOKEN set (or on \
                 SCIMBUS_ADMIN_LISTEN)"
                    .to_owned(),
            ))
        };
    };
    let given = req
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok());
    // Compare digests: equal length, so the comparison time says nothing of the token.
    let matches = bearer(given).is_some_and(|given| {
        Sha256::digest(given.as_bytes()) == Sha256::digest(expected.expose_secret().as_bytes())
    });
    if matches {
        Ok(())
    } else {
        Err(ApiError::Unauthenticated)
    }
}

/// Prometheus metrics in the text exposition format.
#[utoipa::path(
    operation_id = "metrics",
    tag = "Operations",
    security((), ("bearer" = [])),
    responses(
        (status = 200, description = "Prometheus text format", content_type = "text/plain", body = String),
        (status = 401, description = "`SCIMBUS_METRICS_TOKEN` is set and the request lacks it", content_type = "application/scim+json", body = super::openapi::ScimErrorBody),
        (status = 404, description = "No `SCIMBUS_METRICS_TOKEN` is set: `/metrics` is served only on `SCIMBUS_ADMIN_LISTEN`", content_type = "application/scim+json", body = super::openapi::ScimErrorBody),
    )
)]
#[get("/metrics")]
pub async fn metrics(
    req: HttpRequest,
    ctx: web::Data<Context>,
    token: web::Data<MetricsToken>,
) -> Result<HttpResponse, ApiError> {
    authorised(&req, &token)?;
    let body = crate::service::scrape::render(&ctx).await?;
    Ok(HttpResponse::Ok()
        .content_type("text/plain; version=0.0.4; charset=utf-8")
        .body(body))
}
