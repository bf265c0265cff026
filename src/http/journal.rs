//! Captures each authenticated SCIM request for the request journal (`service::journal`):
//! method, path and query, status, `scimType`, duration, request id, the token's name, and
//! both bodies, redacted before they leave the request. Recording only queues the entry;
//! the database write happens off the request path.

use std::time::Instant;

use actix_web::body::{BodySize, BoxBody, MessageBody};
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::middleware::Next;
use actix_web::{HttpMessage, web};
use serde_json::Value;

use crate::domain::JournalEntry;
use crate::service::Context;
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
        .and_then(|v| v.split_once(' ').map(|(_, t)| t.trim().to_owned()));
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
                Ok(bytes) => (Ok(bytes.clone()), BoxBody::new(bytes)),
                Err(_) => (Err(0), BoxBody::new(web::Bytes::new())),
            }
        }
        BodySize::Sized(n) => (Err(n), body),
        _ => (Err(0), body),
    };
    let response = response.set_body(body);
    let status = response.status().as_u16();
    let registry = &auth.tenant.registry;
    let resource_type = if target.contains("/Groups") {
        Some(registry.group())
    } else if target.contains("/Users") || target.contains("/Me") {
        Some(registry.user())
    } else {
        None
    };
    let redactor = crate::service::journal::Redactor::new(
        registry,
        resource_type,
        bearer.as_deref(),
        ctx.journal.settings.mask,
    );
    let request_body = raw.and_then(|raw| match raw.kept {
        Some(bytes) => redactor.body(&bytes),
        None => Some(format!(
            "[{} bytes: over the journal's limit, not kept]",
            raw.len
        )),
    });
    // The answer is parsed once: its `scimType` and `id` are read, then it is redacted.
    let answered = kept
        .as_ref()
        .ok()
        .and_then(|bytes| serde_json::from_slice::<Value>(bytes).ok());
    let scim_type = answered
        .as_ref()
        .filter(|_| status >= 400)
        .and_then(|v| v.get("scimType"))
        .and_then(Value::as_str)
        .map(str::to_owned);
    let subject = subject(&target, answered.as_ref());
    let response_body = match (kept, answered) {
        (Ok(_), Some(value)) => Some(redactor.value(value)),
        (Ok(bytes), None) => redactor.body(&bytes),
        (Err(0), _) => None,
        (Err(n), _) => Some(format!("[{n} bytes: over the journal's limit, not kept]")),
    };
    ctx.journal.record(JournalEntry {
        id: uuid::Uuid::now_v7().to_string(),
        tenant_id: auth.tenant.id.clone(),
        at: ctx.now(),
        method,
        target,
        status: i32::from(status),
        scim_type,
        duration_ms: i64::try_from(started.elapsed().as_millis()).unwrap_or(i64::MAX),
        request_id,
        token_name: auth.token_name.clone(),
        subject,
        request_body,
        response_body,
    });
    Ok(ServiceResponse::new(request, response))
}

/// The resource a request was about: the `{id}` of its path, or the `id` a create answered.
fn subject(target: &str, answered: Option<&Value>) -> Option<String> {
    let path = target.split('?').next().unwrap_or(target);
    let mut parts = path.rsplit('/');
    let last = parts.next()?;
    let kind = parts.next()?;
    if matches!(kind, "Users" | "Groups") && !last.starts_with('.') {
        return Some(format!("{kind}/{last}"));
    }
    if matches!(last, "Users" | "Groups") {
        let id = answered?.get("id")?.as_str()?;
        return Some(format!("{last}/{id}"));
    }
    None
}
