//! Prometheus metrics (`/metrics`), named by Prometheus's conventions: counters end in
//! `_total` (the encoder adds it), units are in names, every label is bounded except
//! `tenant` (DESIGN 17), which is on counters and per-tenant gauges only, never on
//! histograms. HTTP requests and latencies by route template, method and status;
//! requests per tenant; the relay's counters (incremented by the relay itself); outbox,
//! token and brake gauges read when scraped. docs/operations.md lists each one; a test
//! keeps that list equal to what is registered.

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
    pub tokens_expiring_soon: Family<TenantOnly, Gauge>,
    pub brake_held_events: Family<TenantOnly, Gauge>,
    pub set_push_deliveries: Family<OutcomeLabels, Counter>,
    pub set_receivers_failing: Family<TenantOnly, Gauge>,
    pub sets_signed: Counter,
    /// Held by the request journal's queue, which counts what it drops.
    pub journal_dropped: Counter,
}

/// A SET push attempt's outcome: `delivered`, `parked`, `refused` or `retry`.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct OutcomeLabels {
    pub outcome: &'static str,
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Metrics").finish_non_exhaustive()
    }
}

/// Latency buckets in seconds: 1 ms to 30 s (docs/operations.md repeats them).
pub const BUCKETS: [f64; 14] = [
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
];

impl Metrics {
    /// Registers every metric, the relay's counters (which the relay increments) included.
    pub fn new(relay: &crate::events::RelayMetrics) -> Self {
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
            "outbox_backlog_events",
            "Events committed and not yet published (nor parked)",
            outbox_backlog.clone(),
        );
        let outbox_oldest_age = Gauge::<f64, AtomicU64>::default();
        registry.register(
            "outbox_oldest_unpublished_age_seconds",
            "Age of the oldest unpublished event (0 when none)",
            outbox_oldest_age.clone(),
        );
        for (name, help, counter) in [
            (
                "relay_published_events",
                "Events this process's relay published and marked",
                &relay.published,
            ),
            (
                "relay_publish_failures",
                "Publish attempts nacked or failed",
                &relay.publish_failures,
            ),
            (
                "relay_returned_messages",
                "Messages the broker returned as unroutable (a topology mistake)",
                &relay.returned,
            ),
            (
                "relay_unpublishable_events",
                "Events parked as unpublishable (larger than the broker accepts)",
                &relay.unpublishable,
            ),
        ] {
            registry.register(name, help, counter.clone());
        }
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
        let set_push_deliveries = Family::<OutcomeLabels, Counter>::default();
        registry.register(
            "set_push_deliveries",
            "SET push attempts by outcome (delivered, parked, refused, retry)",
            set_push_deliveries.clone(),
        );
        let set_receivers_failing = Family::<TenantOnly, Gauge>::default();
        registry.register(
            "set_receivers_failing",
            "SET push receivers marked failing, per tenant (absent: none)",
            set_receivers_failing.clone(),
        );
        let sets_signed = Counter::default();
        registry.register(
            "sets_signed",
            "SETs signed for push or poll (one JWS each; a SET sent again is signed again)",
            sets_signed.clone(),
        );
        let journal_dropped = Counter::default();
        registry.register(
            "journal_dropped_entries",
            "Request journal entries dropped because the journal's queue was full",
            journal_dropped.clone(),
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
            tokens_expiring_soon,
            brake_held_events,
            set_push_deliveries,
            set_receivers_failing,
            sets_signed,
            journal_dropped,
        }
    }

    /// The text exposition format.
    pub fn encode(&self) -> Result<String, std::fmt::Error> {
        let mut out = String::new();
        prometheus_client::encoding::text::encode(&mut out, &self.registry)?;
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `(name, type)` of every registered metric, as exposed (counters with `_total`).
    fn exposed(metrics: &Metrics) -> Vec<(String, String)> {
        metrics
            .encode()
            .unwrap()
            .lines()
            .filter_map(|l| l.strip_prefix("# TYPE "))
            .map(|l| {
                let (name, kind) = l.split_once(' ').unwrap();
                let name = if kind == "counter" {
                    format!("{name}_total")
                } else {
                    name.to_owned()
                };
                (name, kind.to_owned())
            })
            .collect()
    }

    #[test]
    fn every_metric_is_documented_with_its_type_and_counters_end_in_total() {
        let metrics = Metrics::new(&crate::events::RelayMetrics::default());
        // A family is exposed once it has a series.
        let route = RouteLabels {
            route: "/healthz".to_owned(),
            method: "GET".to_owned(),
            status: 200,
        };
        metrics.requests.get_or_create(&route).inc();
        metrics
            .latency
            .get_or_create(&LatencyLabels {
                route: route.route,
                method: route.method,
            })
            .observe(0.1);
        let tenant = TenantOnly {
            tenant: "acme".to_owned(),
        };
        metrics
            .tenant_requests
            .get_or_create(&TenantLabels {
                tenant: "acme".to_owned(),
                class: "2xx".to_owned(),
            })
            .inc();
        metrics.rate_limited.get_or_create(&tenant).inc();
        metrics.tokens_expiring_soon.get_or_create(&tenant).set(1);
        metrics.brake_held_events.get_or_create(&tenant).set(1);
        metrics.set_receivers_failing.get_or_create(&tenant).set(1);
        metrics
            .set_push_deliveries
            .get_or_create(&OutcomeLabels {
                outcome: "delivered",
            })
            .inc();
        let docs =
            std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/docs/operations.md"))
                .unwrap();
        let documented: Vec<(String, String)> = docs
            .lines()
            .filter_map(|l| l.strip_prefix("| `scimbus_"))
            .map(|l| {
                let mut cells = l.split('|').map(str::trim);
                let name = format!("scimbus_{}", cells.next().unwrap().trim_end_matches('`'));
                (name, cells.next().unwrap().to_owned())
            })
            .collect();
        let mut exposed = exposed(&metrics);
        exposed.sort();
        let mut sorted = documented.clone();
        sorted.sort();
        assert_eq!(
            exposed, sorted,
            "docs/operations.md's metrics table must list every metric with its type"
        );
        for (name, kind) in &exposed {
            assert_eq!(kind == "counter", name.ends_with("_total"), "{name}");
        }
        for bucket in BUCKETS {
            assert!(
                docs.contains(&format!("{bucket}")),
                "bucket {bucket} not documented"
            );
        }
    }
}
