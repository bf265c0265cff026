//! The request context middleware: the request id (from `tracing-actix-web`) goes out in
//! `X-Request-Id` and is the task's id for what the request writes (events'
//! `correlationid`, the reference of a 5xx).

use actix_web::{HttpMessage, web};
use std::time::Duration;

use actix_web::body::{BoxBody, MessageBody};
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::header::{HeaderName, HeaderValue};
use actix_web::middleware::Next;
use tracing_actix_web::RequestId;

use super::error::ApiError;
use crate::service::ServiceError;
use crate::telemetry::Correlation;

pub const REQUEST_ID_HEADER: &str = "x-request-id";

/// `SCIMBUS_REQUEST_TIMEOUT_SECS`.
#[derive(Debug, Clone, Copy)]
pub struct RequestTimeout(pub Duration);

/// Sets the request's [`Correlation`] (read by handlers and the journal from the request),
/// answers 503 (with `Retry-After`) for a request still running after the timeout, and
/// reports every failure answered with a 5xx: logged once with the request id, which
/// `X-Request-Id` and the body name (`service::report`).
pub async fn request_context(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<BoxBody>, actix_web::Error> {
    let id = req
        .extensions()
        .get::<RequestId>()
        .map(ToString::to_string)
        .unwrap_or_else(|| uuid::Uuid::new_v4().to_string());
    let timeout = req
        .app_data::<web::Data<RequestTimeout>>()
        .map_or(Duration::from_secs(50), |t| t.0);
    let metrics = req
        .app_data::<web::Data<crate::service::Context>>()
        .map(|ctx| ctx.metrics.clone());
    let trace = crate::telemetry::request_trace(req.headers());
    req.extensions_mut().insert(Correlation {
        id: id.clone(),
        trace,
    });
    // On timeout the handler's future is dropped (its transaction rolls back) and the
    // error travels out as a 503; the request itself is gone by then, so that answer
    // carries no `X-Request-Id` (the log line has it).
    let Ok(outcome) = tokio::time::timeout(timeout, next.call(req)).await else {
        tracing::warn!(timeout_secs = timeout.as_secs(), "request timed out");
        if let Some(metrics) = metrics {
            metrics.request_timeouts.inc();
        }
        return Err(ApiError::Timeout(timeout.as_secs()).into());
    };
    let mut response = match outcome {
        Ok(response) => response.map_into_boxed_body(),
        // A middleware's failure (a handler's is a response by now): reported the same way.
        Err(error) => {
            return Err(match server_failure(&error) {
                Some(e) => ApiError::Scim(crate::service::report(&id, e)).into(),
                None => error,
            });
        }
    };
    // A use case's 5xx: logged here, once, and its body names the request id (actix wrote
    // it before the id was at hand); the headers the layers inside set stay.
    let reported = response
        .response()
        .error()
        .and_then(server_failure)
        .map(|e| serde_json::to_vec(&crate::service::report(&id, e).to_body()));
    if let Some(Ok(body)) = reported {
        response = response.map_body(|_, _| BoxBody::new(body));
    }
    if let Ok(value) = HeaderValue::from_str(&id) {
        response
            .headers_mut()
            .insert(HeaderName::from_static(REQUEST_ID_HEADER), value);
    }
    Ok(response)
}

/// A use case's failure answered with a 5xx, if `error` is one.
fn server_failure(error: &actix_web::Error) -> Option<&ServiceError> {
    match error.as_error::<ApiError>() {
        Some(ApiError::Service(e)) if e.status() >= 500 => Some(e),
        _ => None,
    }
}

/// The request's correlation, as [`request_context`] set it (absent outside it).
impl actix_web::FromRequest for Correlation {
    type Error = ApiError;
    type Future = std::future::Ready<Result<Self, ApiError>>;

    fn from_request(req: &actix_web::HttpRequest, _: &mut actix_web::dev::Payload) -> Self::Future {
        std::future::ready(
            req.extensions()
                .get::<Correlation>()
                .cloned()
                .ok_or_else(|| {
                    ApiError::internal(anyhow::anyhow!("the request context is not mounted"))
                }),
        )
    }
}

#[cfg(test)]
mod tests {
    use actix_web::middleware::from_fn;
    use actix_web::{App, HttpResponse, test, web};

    use super::*;

    #[actix_web::test]
    async fn a_request_running_past_the_timeout_answers_503_with_retry_after() {
        let app = test::init_service(
            App::new()
                .app_data(web::Data::new(RequestTimeout(Duration::from_millis(100))))
                .wrap(from_fn(request_context))
                .route(
                    "/never",
                    web::get().to(std::future::pending::<HttpResponse>),
                )
                .route("/quick", web::get().to(HttpResponse::Ok)),
        )
        .await;
        let error =
            test::try_call_service(&app, test::TestRequest::get().uri("/never").to_request())
                .await
                .expect_err("the request times out");
        let response = error.error_response();
        assert_eq!(response.status().as_u16(), 503);
        assert_eq!(response.headers().get("retry-after").unwrap(), "1");
        let body = actix_web::body::to_bytes(response.into_body())
            .await
            .unwrap();
        let body: serde_json::Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(body["status"], "503");
        let response =
            test::call_service(&app, test::TestRequest::get().uri("/quick").to_request()).await;
        assert_eq!(response.status().as_u16(), 200);
    }

    #[actix_web::test]
    async fn a_5xx_names_the_request_id_that_its_log_line_has() {
        let app = test::init_service(
            App::new()
                .wrap(from_fn(request_context))
                .wrap(from_fn(security_headers))
                .route(
                    "/fail",
                    web::get().to(|| async {
                        Err::<HttpResponse, _>(ApiError::internal(anyhow::anyhow!("disk on fire")))
                    }),
                )
                .route(
                    "/missing",
                    web::get().to(|| async {
                        Err::<HttpResponse, _>(ApiError::not_found("no such thing"))
                    }),
                ),
        )
        .await;
        let response =
            test::call_service(&app, test::TestRequest::get().uri("/fail").to_request()).await;
        assert_eq!(response.status().as_u16(), 500);
        let id = response
            .headers()
            .get(REQUEST_ID_HEADER)
            .unwrap()
            .to_str()
            .unwrap()
            .to_owned();
        // The headers set inside stay with the rewritten body.
        assert!(response.headers().contains_key("x-content-type-options"));
        let body: serde_json::Value = test::read_body_json(response).await;
        assert_eq!(body["detail"], format!("internal error (reference {id})"));
        assert!(!body.to_string().contains("fire"));
        let response =
            test::call_service(&app, test::TestRequest::get().uri("/missing").to_request()).await;
        assert_eq!(response.status().as_u16(), 404);
        let body: serde_json::Value = test::read_body_json(response).await;
        assert_eq!(body["detail"], "no such thing");
    }

    #[actix_web::test]
    async fn forwarding_headers_count_only_from_trusted_proxies() {
        let app = test::init_service(
            App::new()
                .app_data(web::Data::new(TrustedProxies(vec![
                    "10.0.0.0/8".parse().unwrap(),
                ])))
                .wrap(from_fn(forwarding_headers))
                .route(
                    "/ip",
                    web::get().to(|req: actix_web::HttpRequest| async move {
                        req.connection_info()
                            .realip_remote_addr()
                            .unwrap_or_default()
                            .to_owned()
                    }),
                ),
        )
        .await;
        let ask = |peer: &str| {
            test::TestRequest::get()
                .uri("/ip")
                .peer_addr(peer.parse().unwrap())
                .insert_header(("X-Forwarded-For", "203.0.113.7"))
                .to_request()
        };
        let from_proxy = test::call_and_read_body(&app, ask("10.1.2.3:4000")).await;
        assert_eq!(from_proxy, "203.0.113.7");
        let from_anyone = test::call_and_read_body(&app, ask("198.51.100.9:4000")).await;
        assert_eq!(from_anyone, "198.51.100.9");
    }
}

/// Where the admin surface is served: `None` on the main listener with everything else,
/// `Some(address)` on its own listener (`SCIMBUS_ADMIN_LISTEN`), which then serves only
/// the admin API, `/metrics` and the health checks, and the main listener none of the
/// first two.
#[derive(Debug, Clone, Copy, Default)]
pub struct Listeners {
    pub admin: Option<std::net::SocketAddr>,
}

impl Listeners {
    /// Whether the request came in on the separate admin listener.
    pub fn on_admin(&self, req: &actix_web::HttpRequest) -> bool {
        self.admin == Some(req.app_config().local_addr())
    }
}

/// A path of the admin surface (the operator console included; setup links are the
/// customers' and stay on the main listener).
fn admin_path(path: &str) -> bool {
    path == "/metrics"
        || path == "/admin"
        || path.starts_with("/admin/")
        || path == "/console"
        || path.starts_with("/console/")
}

/// Keeps each listener to its surface (see [`Listeners`]): anything else answers 404 as
/// an unknown route would.
pub async fn listener_surface<B: MessageBody>(
    req: ServiceRequest,
    next: Next<B>,
) -> Result<ServiceResponse<actix_web::body::EitherBody<B>>, actix_web::Error> {
    let listeners = req
        .app_data::<web::Data<Listeners>>()
        .map(|l| *l.get_ref())
        .unwrap_or_default();
    if listeners.admin.is_some() {
        // The path routing matches (percent-decoded), not the raw one: `/%61dmin/…` is
        // `/admin/…` to the router.
        let path = req.match_info().as_str();
        let health = path == "/healthz" || path == "/readyz";
        let allowed = if listeners.on_admin(req.request()) {
            admin_path(path) || health
        } else {
            !admin_path(path)
        };
        if !allowed {
            let response = req.error_response(ApiError::not_found("no such endpoint".to_owned()));
            return Ok(response.map_into_right_body());
        }
    }
    Ok(next.call(req).await?.map_into_left_body())
}

/// The reverse proxies whose forwarding headers are believed (`SCIMBUS_TRUSTED_PROXIES`).
#[derive(Debug, Clone, Default)]
pub struct TrustedProxies(pub Vec<ipnet::IpNet>);

/// Headers a client could forge to pass for another address, scheme or host.
const FORWARDING_HEADERS: [&str; 5] = [
    "forwarded",
    "x-forwarded-for",
    "x-forwarded-proto",
    "x-forwarded-host",
    "x-real-ip",
];

/// Drops `Forwarded` / `X-Forwarded-*` / `X-Real-IP` unless the peer is a trusted proxy,
/// before anything (logs, the client address) reads them.
pub async fn forwarding_headers(
    mut req: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    let trusted = match (req.app_data::<web::Data<TrustedProxies>>(), req.peer_addr()) {
        (Some(proxies), Some(peer)) => proxies.0.iter().any(|net| net.contains(&peer.ip())),
        _ => false,
    };
    if !trusted {
        for name in FORWARDING_HEADERS {
            req.headers_mut().remove(name);
        }
    }
    next.call(req).await
}

/// Security headers on every answer: no MIME sniffing, no framing, no referrer, nothing
/// cached (answers carry personal data and, once, token secrets), and a CSP that allows
/// nothing — except under `/docs/`, where Swagger UI (served from the binary) runs its own
/// scripts and styles.
pub async fn security_headers<B: MessageBody>(
    req: ServiceRequest,
    next: Next<B>,
) -> Result<ServiceResponse<actix_web::body::EitherBody<B>>, actix_web::Error> {
    use actix_web::http::header;
    let docs = req.path().starts_with("/docs");
    let setup = req.path().starts_with("/setup/") || req.path().starts_with("/console/");
    // A NUL in the path or query (`%00`) can reach no resource and no database accepts it.
    let nul = req
        .uri()
        .path_and_query()
        .is_some_and(|pq| pq.as_str().as_bytes().windows(3).any(|w| w == b"%00"));
    let mut response = if nul {
        let refused = ApiError::Scim(crate::scim::error::ScimError::invalid_value(
            "NUL characters (%00) are not accepted in the URL",
        ));
        // The console answers its pages' failures as pages.
        if req.path().starts_with("/console/") {
            req.error_response(super::console::Failure(refused))
        } else {
            req.error_response(refused)
        }
        .map_into_right_body()
    } else {
        next.call(req).await?.map_into_left_body()
    };
    let headers = response.headers_mut();
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    // The setup page's own form must carry its origin (browsers send `Origin: null` under
    // `no-referrer`, and the form checks it); its link goes to no other site.
    headers.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static(if setup { "same-origin" } else { "no-referrer" }),
    );
    if !headers.contains_key(header::CACHE_CONTROL) {
        headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    }
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(if docs {
            "default-src 'self'; script-src 'self' 'unsafe-inline'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; frame-ancestors 'none'"
        } else if setup {
            // The setup page: its own script and style only; its form and checks to itself.
            "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; form-action 'self'; base-uri 'none'; frame-ancestors 'none'"
        } else {
            "default-src 'none'; frame-ancestors 'none'"
        }),
    );
    Ok(response)
}
