"""OpenTelemetry tracing of event processing, when the OpenTelemetry API is installed
(`pip install scimbus-consumer[otel]`); without it nothing is traced and nothing else changes.

Each attempt at an event runs in a span of kind CONSUMER named `process <event type>`
(`process scimbus.user.created`). Its parent is the span named by the event's `traceparent`
and `tracestate` (the CloudEvents distributed-tracing extension: scimbus sets them on the
events a request wrote, naming that request's server span), read with the W3C Trace Context
propagator whatever propagator the app configured globally, so one trace runs from the SCIM
request through scimbus to the app's handlers. An event without a valid `traceparent`
(snapshots, changes no request made) gets a root span: the context current when the
consumer runs (the app's startup, a task it was created in) is never its parent.

The span is current while the handlers run (work they trace becomes its children); an
exception leaving the attempt is recorded on it and its status set to ERROR, then raised on
unchanged (retries, dead-lettering and acks do not depend on tracing).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from importlib import metadata
from types import SimpleNamespace
from typing import Any

from .models import Envelope, routing_key

TRACER_NAME = "scimbus_consumer"
BROKER_ORIGINS = ("broker", "replay")
"""Origins whose events came from RabbitMQ (the app's queue, or its dead-letter queue for a
replay); the others came from scimbus's pull API."""
PULL_SYSTEM = "scimbus"
"""`messaging.system` of events read from the pull API (RabbitMQ's is `rabbitmq`)."""


def _load() -> SimpleNamespace | None:
    """The parts of the OpenTelemetry API used here, or None when it is not installed.
    Imported when a consumer is made, never at package import."""
    try:
        from opentelemetry import trace
        from opentelemetry.context import Context
        from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator
    except ImportError:
        return None
    return SimpleNamespace(trace=trace, Context=Context, propagator=TraceContextTextMapPropagator())


def _version() -> str | None:
    try:
        return metadata.version("scimbus-consumer")
    except metadata.PackageNotFoundError:
        return None


def span_attributes(
    event: Envelope, origin: str, attempt: int, *, exchange: str | None = None, queue: str | None = None
) -> dict[str, Any]:
    """The attributes of an event's span: OpenTelemetry messaging conventions where they
    apply, then scimbus's own."""
    attributes: dict[str, Any] = {
        "messaging.operation.type": "process",
        "messaging.operation.name": "process",
        "messaging.message.id": event.id,
    }
    if origin in BROKER_ORIGINS:
        attributes["messaging.system"] = "rabbitmq"
        if exchange is not None:
            attributes["messaging.destination.name"] = exchange
        attributes["messaging.rabbitmq.destination.routing_key"] = routing_key(event)
        if queue is not None:
            attributes["messaging.destination.subscription.name"] = f"{queue}.dlq" if origin == "replay" else queue
    else:
        attributes["messaging.system"] = PULL_SYSTEM
        if origin == "pull":
            attributes["messaging.destination.name"] = f"/events/v1/{event.tenant}"
    attributes |= {
        "cloudevents.event_type": event.type,
        "cloudevents.event_subject": event.subject,
        "scimbus.tenant": event.tenant,
        "scimbus.sequence": event.sequence_number,
        "scimbus.origin": origin,
        "scimbus.attempt": attempt,
    }
    if event.correlationid is not None:
        attributes["scimbus.correlation_id"] = event.correlationid
    return attributes


class Tracing:
    """The consumer's spans: one per attempt at an event (see the module's docstring).
    `tracer_provider`: an OpenTelemetry `TracerProvider`; default the global one (one set
    after the consumer was made is used as well)."""

    def __init__(self, tracer_provider: Any = None, *, exchange: str | None = None, queue: str | None = None) -> None:
        self._otel = _load()
        self.exchange = exchange
        self.queue = queue
        self._tracer: Any = None
        if self._otel is not None:
            self._tracer = self._otel.trace.get_tracer(TRACER_NAME, _version(), tracer_provider=tracer_provider)

    @property
    def enabled(self) -> bool:
        """The OpenTelemetry API is installed (spans go to its provider; the API's default
        provider drops them)."""
        return self._tracer is not None

    def parent(self, event: Envelope) -> Any:
        """The context the event's `traceparent`/`tracestate` name (W3C Trace Context), or
        an empty context (a root span) without a valid `traceparent`."""
        assert self._otel is not None
        carrier = {"traceparent": event.traceparent} if event.traceparent else {}
        if carrier and event.tracestate:
            carrier["tracestate"] = event.tracestate
        # From an empty context: the current one (the app's) is never the parent.
        return self._otel.propagator.extract(carrier, context=self._otel.Context())

    @contextmanager
    def process(self, event: Envelope, origin: str, attempt: int) -> Iterator[Any]:
        """Runs the body in the event's span, current meanwhile; yields the span (None when
        OpenTelemetry is not installed). An exception is recorded, the status set to ERROR,
        and the exception raised on as it was."""
        if self._tracer is None:
            yield None
            return
        attributes = span_attributes(event, origin, attempt, exchange=self.exchange, queue=self.queue)
        with self._tracer.start_as_current_span(
            f"process {event.type}",
            context=self.parent(event),
            kind=self._otel.trace.SpanKind.CONSUMER,  # type: ignore[union-attr]
            attributes=attributes,
            record_exception=True,
            set_status_on_exception=True,
        ) as span:
            yield span

    @staticmethod
    def outcome(span: Any, outcome: str) -> None:
        """Notes what the attempt did (`applied`, `duplicate`, `stale`, `resynced`)."""
        if span is not None:
            span.set_attribute("scimbus.outcome", outcome)
