"""Consumer metrics. `Metrics` is what the consumer reports to (nothing by default);
`PrometheusMetrics` reports through prometheus-client (`pip install
scimbus-consumer[prometheus]`):

| metric | type | labels |
|---|---|---|
| `scimbus_consumer_events_total` | counter | `type`, `outcome` (applied, duplicate, stale, resynced) |
| `scimbus_consumer_event_lag_seconds` | histogram | `type`; from the event's `time` to its outcome (applied events only) |
| `scimbus_consumer_retries_total` | counter | `type` |
| `scimbus_consumer_dead_lettered_total` | counter | `type` (`unreadable` for a message that does not parse) |
| `scimbus_consumer_access_changes_total` | counter | `granted` (true/false), `reason` |
| `scimbus_consumer_effects_total` | counter | `kind`, `result` (done, failed, dead) |
| `scimbus_consumer_divergences_total` | counter | `why` (behind, missing, extra, verify) |

Labels are bounded: event types, outcomes, reasons and effect kinds are fixed sets (effect
kinds are the app's own); tenants are not labels.
"""

from __future__ import annotations

from typing import Any

LAG_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0)


class Metrics:
    """No-op base: override what you want to record."""

    def event(self, event_type: str, outcome: str, lag_seconds: float | None) -> None: ...

    def retry(self, event_type: str) -> None: ...

    def dead_lettered(self, event_type: str) -> None: ...

    def access_change(self, granted: bool, reason: str) -> None: ...

    def effect(self, kind: str, result: str) -> None: ...

    def divergence(self, why: str) -> None: ...


class PrometheusMetrics(Metrics):
    """Registers the metrics above in `registry` (default: prometheus-client's global one)."""

    def __init__(self, registry: Any = None) -> None:
        from prometheus_client import REGISTRY, Counter, Histogram

        registry = REGISTRY if registry is None else registry
        self._events = Counter(
            "scimbus_consumer_events", "Events settled by the consumer", ["type", "outcome"], registry=registry
        )
        self._lag = Histogram(
            "scimbus_consumer_event_lag_seconds",
            "Seconds from an event's time to its being applied",
            ["type"],
            buckets=LAG_BUCKETS,
            registry=registry,
        )
        self._retries = Counter("scimbus_consumer_retries", "Handler attempts that failed and were retried", ["type"], registry=registry)
        self._dead = Counter("scimbus_consumer_dead_lettered", "Deliveries sent to the dead-letter queue", ["type"], registry=registry)
        self._access = Counter(
            "scimbus_consumer_access_changes", "Access granted or revoked", ["granted", "reason"], registry=registry
        )
        self._effects = Counter("scimbus_consumer_effects", "Deferred effect attempts", ["kind", "result"], registry=registry)
        self._divergences = Counter(
            "scimbus_consumer_divergences", "Divergences found by reconciliation", ["why"], registry=registry
        )

    def event(self, event_type: str, outcome: str, lag_seconds: float | None) -> None:
        self._events.labels(event_type, outcome).inc()
        if lag_seconds is not None:
            self._lag.labels(event_type).observe(max(lag_seconds, 0.0))

    def retry(self, event_type: str) -> None:
        self._retries.labels(event_type).inc()

    def dead_lettered(self, event_type: str) -> None:
        self._dead.labels(event_type).inc()

    def access_change(self, granted: bool, reason: str) -> None:
        self._access.labels(str(granted).lower(), reason).inc()

    def effect(self, kind: str, result: str) -> None:
        self._effects.labels(kind, result).inc()

    def divergence(self, why: str) -> None:
        self._divergences.labels(why).inc()
