//! Captures each authenticated SCIM request for the request journal (`service::journal`):
//! method, path and query, status, duration, request id, the token's name, and both bodies
//! as they were (the answer's buffer shared, the request's the copy the body extractor
//! kept). Recording only queues the capture: parsing
//! and redacting the bodies (and reading `scimType` and the subject from them) and the
//! database write happen in the journal's writer, off the request path.

use std::time::Instant;

use actix_web::body::{BodySize, BoxBody, MessageBody};
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::middleware::Next;
use actix_web::{HttpMessage, web};

use crate::domain::JournalEntry;
use crate::service::Context;
use crate::service::journal::{Captured, CapturedBody, CapturedKind};
use crate::tenancy::auth::AuthenticatedTenant;

/// The request body as the body extractor read it: its size, and a copy when it is within
/// the journal's limit.
#[derive(Debug, Clone)]
pub struct RawBody {
    pub len: usize,
    pub kept: Option<web::Bytes>,
}

/// Middleware of `/scim/v2/{tenant}`, outside authentication: a refused request has no
/// authenticated tenant and is not journaled.
pub async fn capture(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<BoxBody>, actix_web::Error> {
    let started = Instant::now();
    let ctx = req.app_data::<web::Data<Context>>().cloned();
    let method = req.method().to_string();
    let target = req
        .uri()
        .path_and_query()
        .map_or_else(|| req.path().to_owned(), |pq| pq.as_str().to_owned());
    let bearer = req
        .headers()
        .get(actix_web::http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split_once(' ').map(|(_, t)| t.trim().to_owned()))
        .map(zeroize::Zeroizing::new);
    let request_id = req
        .extensions()
        .get::<crate::telemetry::Correlation>()
        .map(|c| c.id.clone())
        .unwrap_or_default();
    let response = next.call(req).await?.map_into_boxed_body();
    let Some(ctx) = ctx else {
        return Ok(response);
    };
    let auth = response
        .request()
        .extensions()
        .get::<AuthenticatedTenant>()
        .cloned();
    let Some(auth) = auth.filter(|a| ctx.journal.enabled_for(a.tenant.slug.as_str())) else {
        return Ok(response);
    };
    let raw = response.request().extensions().get::<RawBody>().cloned();
    let (request, response) = response.into_parts();
    let (response, body) = response.into_parts();
    let limit = ctx.journal.settings.body_bytes;
    let (kept, body) = match body.size() {
        BodySize::Sized(n) if usize::try_from(n).is_ok_and(|n| n <= limit) => {
            match actix_web::body::to_bytes(body).await {
                Ok(bytes) => (CapturedBody::Kept(bytes.clone()), BoxBody::new(bytes)),
                Err(_) => (CapturedBody::Empty, BoxBody::new(web::Bytes::new())),
            }
        }
        BodySize::Sized(n) => (CapturedBody::Over(n), body),
        _ => (CapturedBody::Empty, body),
    };
    let response = response.set_body(body);
    let kind = if target.contains("/Groups") {
        Some(CapturedKind::Group)
    } else if target.contains("/Users") || target.contains("/Me") {
        Some(CapturedKind::User)
    } else {
        None
    };
    let request_body = match raw {
        None => CapturedBody::Empty,
        Some(RawBody {
            kept: Some(bytes), ..
        }) => CapturedBody::Kept(bytes),
        Some(RawBody { len, kept: None }) => CapturedBody::Over(len as u64),
    };
    ctx.journal.record(Captured {
        entry: JournalEntry {
            id: uuid::Uuid::now_v7().to_string(),
            tenant_id: auth.tenant.id.clone(),
            at: ctx.now(),
            method,
            target,
            status: i32::from(response.status().as_u16()),
            scim_type: None,
            duration_ms: i64::try_from(started.elapsed().as_millis()).unwrap_or(i64::MAX),
            request_id,
            token_name: auth.token_name.clone(),
            subject: None,
            request_body: None,
            response_body: None,
        },
        registry: auth.tenant.registry.clone(),
        kind,
        bearer,
        request: request_body,
        response: kept,
    });
    Ok(ServiceResponse::new(request, response))
}
