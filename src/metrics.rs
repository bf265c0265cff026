//! Prometheus metrics (`/metrics`): HTTP requests and latencies by route template, method
//! and status; requests per tenant (the tenant label is on counters only, never on
//! histograms); outbox, relay and token gauges read when scraped.

use std::sync::atomic::AtomicU64;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RouteLabels {
    /// The route template (`/scim/v2/{tenant}/Users/{id}`), `unmatched` for unknown paths.
    pub route: String,
    pub method: String,
    pub status: u16,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct LatencyLabels {
    pub route: String,
    pub method: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct TenantLabels {
    pub tenant: String,
    /// `2xx`, `4xx`, `5xx`.
    pub class: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct TenantOnly {
    pub tenant: String,
}

/// Every metric of the process, registered once in `Application::build`.
pub struct Metrics {
    registry: Registry,
    pub requests: Family<RouteLabels, Counter>,
    pub latency: Family<LatencyLabels, Histogram>,
    pub tenant_requests: Family<TenantLabels, Counter>,
    pub request_timeouts: Counter,
    pub rate_limited: Family<TenantOnly, Counter>,
    pub outbox_backlog: Gauge,
    pub outbox_oldest_age: Gauge<f64, AtomicU64>,
    pub relay_published: Gauge,
    pub relay_publish_failures: Gauge,
    pub relay_returned: Gauge,
    pub relay_unpublishable: Gauge,
    pub tokens_expiring_soon: Family<TenantOnly, Gauge>,
    pub brake_held_events: Family<TenantOnly, Gauge>,
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Metrics").finish_non_exhaustive()
    }
}

/// Latency buckets in seconds: 1 ms to 30 s.
const BUCKETS: [f64; 14] = [
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
];

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    pub fn new() -> Self {
        let mut registry = Registry::with_prefix("scimbus");
        let requests = Family::<RouteLabels, Counter>::default();
        registry.register(
            "http_requests",
            "HTTP requests by route template, method and status",
            requests.clone(),
        );
        let latency =
            Family::<LatencyLabels, Histogram>::new_with_constructor(|| Histogram::new(BUCKETS));
        registry.register(
            "http_request_duration_seconds",
            "HTTP request latency by route template and method",
            latency.clone(),
        );
        let tenant_requests = Family::<TenantLabels, Counter>::default();
        registry.register(
            "tenant_requests",
            "Authenticated requests per tenant and status class",
            tenant_requests.clone(),
        );
        let request_timeouts = Counter::default();
        registry.register(
            "http_request_timeouts",
            "Requests answered 503 after SCIMBUS_REQUEST_TIMEOUT_SECS",
            request_timeouts.clone(),
        );
        let rate_limited = Family::<TenantOnly, Counter>::default();
        registry.register(
            "rate_limited_requests",
            "Requests answered 429 by the per-token rate limit, per tenant",
            rate_limited.clone(),
        );
        let outbox_backlog = Gauge::default();
        registry.register(
            "outbox_backlog",
            "Events committed and not yet published (nor parked)",
            outbox_backlog.clone(),
        );
        let outbox_oldest_age = Gauge::<f64, AtomicU64>::default();
        registry.register(
            "outbox_oldest_unpublished_age_seconds",
            "Age of the oldest unpublished event (0 when none)",
            outbox_oldest_age.clone(),
        );
        let gauge = |registry: &mut Registry, name: &str, help: &str| {
            let g = Gauge::default();
            registry.register(name, help, g.clone());
            g
        };
        let relay_published = gauge(
            &mut registry,
            "relay_published_events",
            "Events this process's relay published and marked (since start)",
        );
        let relay_publish_failures = gauge(
            &mut registry,
            "relay_publish_failures",
            "Publish attempts nacked or failed (since start)",
        );
        let relay_returned = gauge(
            &mut registry,
            "relay_returned_messages",
            "Messages the broker returned as unroutable (since start)",
        );
        let relay_unpublishable = gauge(
            &mut registry,
            "relay_unpublishable_events",
            "Events parked as unpublishable (since start)",
        );
        let tokens_expiring_soon = Family::<TenantOnly, Gauge>::default();
        registry.register(
            "tokens_expiring_soon",
            "Live tenant tokens expiring within 7 days, per tenant",
            tokens_expiring_soon.clone(),
        );
        let brake_held_events = Family::<TenantOnly, Gauge>::default();
        registry.register(
            "brake_held_events",
            "Events the mass-deprovisioning brake holds, per tenant (absent: nothing held)",
            brake_held_events.clone(),
        );
        Self {
            registry,
            requests,
            latency,
            tenant_requests,
            request_timeouts,
            rate_limited,
            outbox_backlog,
            outbox_oldest_age,
            relay_published,
            relay_publish_failures,
            relay_returned,
            relay_unpublishable,
            tokens_expiring_soon,
            brake_held_events,
        }
    }

    /// The text exposition format.
    pub fn encode(&self) -> Result<String, std::fmt::Error> {
        let mut out = String::new();
        prometheus_client::encoding::text::encode(&mut out, &self.registry)?;
        Ok(out)
    }
}
