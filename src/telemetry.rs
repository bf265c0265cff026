//! Tracing set-up: one subscriber. Log lines to stderr, filtered by `SCIMBUS_LOG`,
//! human-readable by default and JSON lines with `SCIMBUS_LOG_FORMAT=json`; every line of a
//! request carries its request id (the root span's field). Tokens are never logged; the
//! query string (which carries filter values such as user names) only at debug. With
//! `SCIMBUS_OTLP_ENDPOINT`, spans go to an OpenTelemetry collector too: each request is a
//! server span whose parent is the caller's W3C `traceparent`, and its trace context (in
//! the request's [`Correlation`], passed to the writes) is written into the events it makes.

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

/// What [`init`] started and [`Telemetry::shutdown`] ends: the span exporter, if any.
#[must_use = "call shutdown() at exit, or the last spans are lost"]
pub struct Telemetry {
    traces: Option<opentelemetry_sdk::trace::SdkTracerProvider>,
}

impl Telemetry {
    /// Exports the spans still buffered, then stops the exporter. Called outside the
    /// async runtime (the exporter's HTTP client blocks).
    pub fn shutdown(self) {
        if let Some(provider) = self.traces
            && let Err(e) = provider.shutdown()
        {
            eprintln!("scimbus: the last spans were not exported: {e}");
        }
    }
}

/// Installs the global subscriber (once per process; later calls install nothing): log
/// lines to stderr and, with `otlp` set, spans exported to that OpenTelemetry collector.
/// Call it outside the async runtime (the exporter's HTTP client has its own).
pub fn init(filter: &str, format: LogFormat, otlp: Option<&url::Url>) -> anyhow::Result<Telemetry> {
    use tracing_subscriber::Layer as _;
    use tracing_subscriber::layer::SubscriberExt as _;
    use tracing_subscriber::util::SubscriberInitExt as _;
    let filter = EnvFilter::try_new(filter).unwrap_or_else(|_| EnvFilter::new("info"));
    // Colour only on a terminal, and never with `NO_COLOR` set (no-color.org): a log
    // redirected to a file or collected by a platform stays plain text.
    let colour = std::io::IsTerminal::is_terminal(&std::io::stderr())
        && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty());
    let lines = tracing_subscriber::fmt::layer()
        .with_ansi(colour)
        .with_writer(std::io::stderr);
    let lines = match format {
        LogFormat::Text => lines.boxed(),
        LogFormat::Json => lines
            .json()
            .with_current_span(true)
            .with_span_list(false)
            .boxed(),
    };
    let traces = otlp.map(tracer_provider).transpose()?;
    // Spans are exported at info whatever `SCIMBUS_LOG` says of log lines: a quiet log
    // (`warn`) must not cut traces.
    let spans = traces.as_ref().map(|provider| {
        use opentelemetry::trace::TracerProvider as _;
        tracing_opentelemetry::layer()
            .with_tracer(provider.tracer("scimbus"))
            .with_filter(tracing_subscriber::filter::LevelFilter::INFO)
    });
    let _ = tracing_subscriber::registry()
        .with(spans)
        .with(lines.with_filter(filter))
        .try_init();
    Ok(Telemetry { traces })
}

/// Makes ring the process's rustls provider (the broker's TLS uses ring too), so the
/// span exporter's HTTP client, and any other rustls client in the process, can be built.
/// Idempotent.
pub fn install_tls_provider() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}

/// Spans batched and posted as OTLP/HTTP protobuf to `<base>/v1/traces`.
fn tracer_provider(base: &url::Url) -> anyhow::Result<opentelemetry_sdk::trace::SdkTracerProvider> {
    use opentelemetry_otlp::WithExportConfig as _;
    // The exporter builds its blocking reqwest client itself (with the timeout of
    // `OTEL_EXPORTER_OTLP_TIMEOUT`, 10 s by default); its rustls needs the provider.
    install_tls_provider();
    let endpoint = format!("{}/v1/traces", base.as_str().trim_end_matches('/'));
    let exporter = opentelemetry_otlp::SpanExporter::builder()
        .with_http()
        .with_protocol(opentelemetry_otlp::Protocol::HttpBinary)
        .with_endpoint(endpoint)
        .build()?;
    Ok(opentelemetry_sdk::trace::SdkTracerProvider::builder()
        .with_batch_exporter(exporter)
        .with_resource(
            opentelemetry_sdk::Resource::builder()
                .with_service_name("scimbus")
                .build(),
        )
        .build())
}

/// The W3C trace context a request carries on to the events it writes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TraceContext {
    pub traceparent: String,
    pub tracestate: Option<String>,
}

/// Reads W3C trace headers from actix's header map.
struct Headers<'a>(&'a actix_web::http::header::HeaderMap);

impl opentelemetry::propagation::Extractor for Headers<'_> {
    fn get(&self, key: &str) -> Option<&str> {
        self.0.get(key).and_then(|v| v.to_str().ok())
    }

    fn keys(&self) -> Vec<&str> {
        self.0
            .keys()
            .map(actix_web::http::header::HeaderName::as_str)
            .collect()
    }
}

/// The request's `traceparent`/`tracestate` as parsed by the W3C propagator (an invalid
/// header is no context).
fn incoming(headers: &actix_web::http::header::HeaderMap) -> opentelemetry::Context {
    use opentelemetry::propagation::TextMapPropagator as _;
    opentelemetry_sdk::propagation::TraceContextPropagator::new().extract(&Headers(headers))
}

/// The trace context of the current request: its span when spans are exported, else the
/// valid `traceparent` it came with; `None` when neither.
pub fn request_trace(headers: &actix_web::http::header::HeaderMap) -> Option<TraceContext> {
    use opentelemetry::propagation::TextMapPropagator as _;
    use opentelemetry::trace::TraceContextExt as _;
    use tracing_opentelemetry::OpenTelemetrySpanExt as _;
    let current = Span::current().context();
    let cx = if current.span().span_context().is_valid() {
        current
    } else {
        incoming(headers)
    };
    if !cx.span().span_context().is_valid() {
        return None;
    }
    let mut carrier = std::collections::HashMap::new();
    opentelemetry_sdk::propagation::TraceContextPropagator::new().inject_context(&cx, &mut carrier);
    Some(TraceContext {
        traceparent: carrier.remove("traceparent")?,
        tracestate: carrier.remove("tracestate").filter(|s| !s.is_empty()),
    })
}

/// The path a request's span shows: a setup link's path holds its secret, so its route
/// template stands in for it.
fn logged_path<'a>(request: &'a ServiceRequest, route: &'a str) -> &'a str {
    if request.path().starts_with("/setup/") {
        route
    } else {
        request.path()
    }
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
        // The route template (`/scim/v2/{tenant}/Users`), never ids: the span's name.
        let route = request
            .match_pattern()
            .unwrap_or_else(|| "unmatched".to_owned());
        let span = tracing::info_span!(
            "request",
            otel.name = %format_args!("{} {route}", request.method()),
            otel.kind = "server",
            request_id = %request_id,
            client = %client,
            method = %request.method(),
            path = %logged_path(request, &route),
            query = %query,
            tenant = tracing::field::Empty,
            route = tracing::field::Empty,
            status = tracing::field::Empty,
        );
        // The caller's span (W3C `traceparent`) is this one's parent; without an exporter
        // this does nothing.
        let _ = tracing_opentelemetry::OpenTelemetrySpanExt::set_parent(
            &span,
            incoming(request.headers()),
        );
        span
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

/// The request a change comes from, passed with it to the events it writes: its id (the
/// `X-Request-Id` header, the events' `correlationid`, the reference of a 5xx) and its
/// trace context (the events' `traceparent`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Correlation {
    pub id: String,
    pub trace: Option<TraceContext>,
}
