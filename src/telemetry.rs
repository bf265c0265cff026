//! Tracing set-up: one subscriber, filtered by `SCIMBUS_LOG`, human-readable by default and
//! JSON lines with `SCIMBUS_LOG_FORMAT=json`. Every line of a request carries its request
//! id (the root span's field). Tokens are never logged; the query string (which carries
//! filter values such as user names) only at debug.

use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::{Error, HttpMessage};
use tracing::Span;
use tracing_actix_web::{RequestId, RootSpanBuilder};
use tracing_subscriber::EnvFilter;

/// How log lines are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    /// Human-readable lines (the default).
    Text,
    /// One JSON object per line, with the request span's fields.
    Json,
}

/// Installs the global subscriber (once per process; later calls are ignored).
pub fn init(filter: &str, format: LogFormat) {
    let filter = EnvFilter::try_new(filter).unwrap_or_else(|_| EnvFilter::new("info"));
    // Colour only on a terminal, and never with `NO_COLOR` set (no-color.org): a log
    // redirected to a file or collected by a platform stays plain text.
    let colour = std::io::IsTerminal::is_terminal(&std::io::stderr())
        && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty());
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(colour)
        .with_writer(std::io::stderr);
    let _ = match format {
        LogFormat::Text => builder.try_init(),
        LogFormat::Json => builder
            .json()
            .with_current_span(true)
            .with_span_list(false)
            .try_init(),
    };
}

/// The root span of every request: method, path (ids, never query values at info), the
/// request id, the matched route and the status. The tenant is recorded by the
/// authentication middleware.
pub struct RequestSpan;

impl RootSpanBuilder for RequestSpan {
    fn on_request_start(request: &ServiceRequest) -> Span {
        let request_id = request
            .extensions()
            .get::<RequestId>()
            .map(ToString::to_string)
            .unwrap_or_default();
        let query = if tracing::enabled!(tracing::Level::DEBUG) {
            request.query_string().to_owned()
        } else {
            String::new()
        };
        let client = request
            .connection_info()
            .realip_remote_addr()
            .unwrap_or_default()
            .to_owned();
        tracing::info_span!(
            "request",
            request_id = %request_id,
            client = %client,
            method = %request.method(),
            path = %request.path(),
            query = %query,
            tenant = tracing::field::Empty,
            route = tracing::field::Empty,
            status = tracing::field::Empty,
        )
    }

    fn on_request_end<B: MessageBody>(span: Span, outcome: &Result<ServiceResponse<B>, Error>) {
        if let Ok(response) = outcome {
            if let Some(route) = response.request().match_pattern() {
                span.record("route", route.as_str());
            }
            span.record("status", response.status().as_u16());
            let _entered = span.enter();
            tracing::info!(status = response.status().as_u16(), "request handled");
        }
    }
}

tokio::task_local! {
    /// The id of the request this task serves: the `X-Request-Id` header, the
    /// `correlationid` of the events it writes and the reference of a 5xx.
    static REQUEST_ID: String;
}

/// The request id of the current task, if it serves a request.
pub fn current_request_id() -> Option<String> {
    REQUEST_ID.try_with(Clone::clone).ok()
}

/// Runs `future` with `id` as the task's request id.
pub async fn with_request_id<F: std::future::Future>(id: String, future: F) -> F::Output {
    REQUEST_ID.scope(id, future).await
}
