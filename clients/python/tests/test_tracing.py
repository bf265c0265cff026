"""OpenTelemetry tracing of event processing: each attempt at an event runs in a CONSUMER span
`process <type>` continuing the event's `traceparent`/`tracestate` (or a root span without
one), on the queue and on the pull API; handler failures are recorded on the span and raised
as before; without OpenTelemetry installed the consumer works as it did. Spans go to an
in-memory exporter on a provider of the test's own (never the global one)."""

from __future__ import annotations

import asyncio
import secrets
import subprocess
import sys
import textwrap

import pytest
from opentelemetry import trace
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, StatusCode

from scimbus_consumer import HandlerFailed, Outcome
from scimbus_consumer.models import parse_event

WAIT = 15.0


class Spans:
    """A tracer provider of the test's own whose finished spans are kept in memory."""

    def __init__(self) -> None:
        self.exporter = InMemorySpanExporter()
        self.provider = TracerProvider(resource=Resource.create({"service.name": "scimbus-consumer-test"}))
        self.provider.add_span_processor(SimpleSpanProcessor(self.exporter))

    def finished(self, name: str | None = None) -> list[ReadableSpan]:
        return [s for s in self.exporter.get_finished_spans() if name is None or s.name == name]

    async def wait_for(self, name: str, count: int = 1) -> list[ReadableSpan]:
        deadline = asyncio.get_running_loop().time() + WAIT
        while len(self.finished(name)) < count:
            assert asyncio.get_running_loop().time() < deadline, f"{count} spans {name!r}: {self.finished()}"
            await asyncio.sleep(0.02)
        return self.finished(name)


@pytest.fixture
def spans():
    recorded = Spans()
    yield recorded
    recorded.provider.shutdown()


def traced(raw: dict, *, state: str | None = None) -> tuple[dict, str, str]:
    """The envelope with a fresh `traceparent` (sampled) as scimbus sets it; returns it with
    the trace id and the span id it names."""
    trace_id, span_id = secrets.token_hex(16), secrets.token_hex(8)
    raw["traceparent"] = f"00-{trace_id}-{span_id}-01"
    if state is not None:
        raw["tracestate"] = state
    return raw, trace_id, span_id


def ids(span: ReadableSpan) -> tuple[str, str, str | None]:
    """Trace id, span id and parent span id (None for a root span) in hex."""
    parent = None if span.parent is None else format(span.parent.span_id, "016x")
    return format(span.context.trace_id, "032x"), format(span.context.span_id, "016x"), parent


def pull_only(make_consumer, spans: Spans, **kwargs):
    options = dict(
        amqp_url=None, queue=None, poll_wait=30, backoff_initial=0.05, backoff_max=0.2, tracer_provider=spans.provider
    )
    options.update(kwargs)
    return make_consumer(**options)


async def test_tracing_the_handler_runs_in_a_consumer_span_whose_parent_is_the_events_traceparent(
    make_consumer, factory, spans
):
    consumer = make_consumer(tracer_provider=spans.provider)
    seen = []

    @consumer.on("scimbus.user.created")
    async def created(event, ctx):
        seen.append((event.traceparent, trace.get_current_span().get_span_context()))

    raw, trace_id, parent_id = traced(factory.user_created("u1"), state="vendor=opaque")
    assert await consumer.handle(raw, origin="pull") is Outcome.APPLIED

    [span] = spans.finished()
    assert span.name == "process scimbus.user.created"
    assert span.kind is SpanKind.CONSUMER
    assert ids(span)[0] == trace_id and ids(span)[2] == parent_id
    assert span.parent is not None and span.parent.is_remote
    assert span.context.trace_state.to_header() == "vendor=opaque"
    assert span.status.status_code is StatusCode.UNSET
    assert span.resource.attributes["service.name"] == "scimbus-consumer-test"
    attributes = dict(span.attributes or {})
    assert attributes == {
        "messaging.operation.type": "process",
        "messaging.operation.name": "process",
        "messaging.message.id": raw["id"],
        "messaging.system": "scimbus",
        "messaging.destination.name": "/events/v1/acme",
        "cloudevents.event_type": "scimbus.user.created",
        "cloudevents.event_subject": "Users/u1",
        "scimbus.tenant": "acme",
        "scimbus.sequence": int(raw["sequence"]),
        "scimbus.origin": "pull",
        "scimbus.attempt": 1,
        "scimbus.outcome": "applied",
    }
    # The handler ran with the span current: work it traces becomes the span's children.
    [(traceparent, current)] = seen
    assert traceparent == raw["traceparent"]
    assert (current.trace_id, current.span_id) == (span.context.trace_id, span.context.span_id)


async def test_tracing_a_failing_handler_records_an_error_span_per_attempt_and_raises_as_before(
    make_consumer, factory, spans
):
    consumer = make_consumer(tracer_provider=spans.provider, max_attempts=3)

    @consumer.on("scimbus.user.created")
    async def broken(event, ctx):
        raise RuntimeError("the app's database is down")

    raw, trace_id, parent_id = traced(factory.user_created("u1"))
    with pytest.raises(HandlerFailed) as failed:
        await consumer.handle(raw)
    assert isinstance(failed.value.cause, RuntimeError) and str(failed.value.cause) == "the app's database is down"

    attempts = spans.finished("process scimbus.user.created")
    assert [s.attributes["scimbus.attempt"] for s in attempts] == [1, 2, 3]
    for span in attempts:
        assert ids(span)[0] == trace_id and ids(span)[2] == parent_id
        assert span.status.status_code is StatusCode.ERROR
        assert "RuntimeError" in (span.status.description or "")
        [exception] = [e for e in span.events if e.name == "exception"]
        assert exception.attributes["exception.type"] == "RuntimeError"
        assert exception.attributes["exception.message"] == "the app's database is down"
        assert "scimbus.outcome" not in span.attributes
        assert span.attributes["messaging.system"] == "rabbitmq"


async def test_tracing_an_attempt_that_fails_then_succeeds_leaves_one_error_span_then_an_ok_one(
    make_consumer, factory, spans
):
    consumer = make_consumer(tracer_provider=spans.provider, max_attempts=3)
    calls = []

    @consumer.on("scimbus.user.created")
    async def flaky(event, ctx):
        calls.append(ctx.attempt)
        if ctx.attempt == 1:
            raise ConnectionError("blip")

    raw, trace_id, _ = traced(factory.user_created("u1"))
    assert await consumer.handle(raw) is Outcome.APPLIED
    assert calls == [1, 2]
    first, second = spans.finished()
    assert first.status.status_code is StatusCode.ERROR and second.status.status_code is StatusCode.UNSET
    assert second.attributes["scimbus.outcome"] == "applied"
    assert ids(first)[0] == ids(second)[0] == trace_id


async def test_tracing_an_event_without_traceparent_gets_a_root_span_even_inside_the_apps_span(
    make_consumer, factory, spans
):
    consumer = make_consumer(tracer_provider=spans.provider)
    consumer.on_any(_nothing)
    bad, _, _ = traced(factory.user_created("u2"))
    bad["traceparent"] = "00-" + "0" * 32 + "-" + "1" * 16 + "-01"  # an invalid (all-zero) trace id

    with spans.provider.get_tracer("the-app").start_as_current_span("the app's startup") as ambient:
        await consumer.handle(factory.user_created("u1"))
        await consumer.handle(bad)

    plain, invalid = spans.finished("process scimbus.user.created")
    for span in (plain, invalid):
        assert span.parent is None
        assert span.context.trace_id != ambient.get_span_context().trace_id
    assert plain.context.trace_id != invalid.context.trace_id


async def test_tracing_a_duplicate_and_a_resync_snapshot_are_traced_with_their_outcome(
    make_consumer, factory, fake, spans
):
    consumer = make_consumer(tracer_provider=spans.provider)
    consumer.on_any(_nothing)
    created, trace_id, _ = traced(factory.user_created("u1"))
    await consumer.handle(created)
    assert await consumer.handle(created) is Outcome.DUPLICATE
    fake.tenant("acme").users["u1"] = factory.user_snapshot("u1", 4)
    gap, gap_trace, gap_parent = traced(factory.user_updated("u1", 3))
    assert await consumer.handle(gap) is Outcome.RESYNCED

    applied, duplicate = spans.finished("process scimbus.user.created")
    assert (applied.attributes["scimbus.outcome"], duplicate.attributes["scimbus.outcome"]) == ("applied", "duplicate")
    assert ids(duplicate)[0] == trace_id
    [delta] = spans.finished("process scimbus.user.updated")
    assert (ids(delta)[0], ids(delta)[2], delta.attributes["scimbus.outcome"]) == (gap_trace, gap_parent, "resynced")
    # The snapshot carries no traceparent: its own root span, origin `resync`.
    [snapshot] = spans.finished("process scimbus.user.snapshot")
    assert snapshot.parent is None and snapshot.attributes["scimbus.origin"] == "resync"
    assert snapshot.attributes["messaging.system"] == "scimbus"


async def test_tracing_pull_only_events_from_long_polls_continue_their_traces(
    make_consumer, factory, fake, spans, recorder
):
    fake.tenant("acme").snapshot_sequence = 0
    consumer = pull_only(make_consumer, spans)

    @consumer.on_any
    async def anything(event, ctx):
        await recorder.add(event.type, trace.get_current_span().get_span_context().trace_id)

    await consumer.start()
    try:
        await asyncio.wait_for(consumer.consuming.wait(), WAIT)
        await fake.long_polled("acme")
        raw, trace_id, parent_id = traced(factory.user_created("u1"))
        await fake.append_event("acme", raw)
        await recorder.wait_for(lambda: len(recorder.calls) == 1)
        [span] = await spans.wait_for("process scimbus.user.created")
    finally:
        await consumer.stop()
    assert ids(span)[0] == trace_id and ids(span)[2] == parent_id
    assert span.attributes["scimbus.origin"] == "pull" and span.attributes["messaging.system"] == "scimbus"
    assert recorder.calls == [("scimbus.user.created", int(trace_id, 16))]


async def test_tracing_queue_deliveries_continue_their_traces_with_rabbitmq_attributes(factory, spans, recorder):
    from test_broker import Broker

    broker = Broker()
    await broker.start()
    consumer = broker.consumer(tracer_provider=spans.provider)

    @consumer.on_any
    async def anything(event, ctx):
        await recorder.add(event.type, ctx.origin)

    try:
        await consumer.start()
        await asyncio.wait_for(consumer.consuming.wait(), WAIT)
        raw, trace_id, parent_id = traced(factory.user_created("u1"), state="a=1,b=2")
        await broker.publish(raw)
        await recorder.wait_for(lambda: len(recorder.calls) == 1)
        [span] = await spans.wait_for("process scimbus.user.created")
    finally:
        await consumer.stop()
        await broker.stop()
    assert ids(span)[0] == trace_id and ids(span)[2] == parent_id
    assert span.kind is SpanKind.CONSUMER
    assert span.context.trace_state.to_header() == "a=1,b=2"
    attributes = dict(span.attributes or {})
    assert attributes["messaging.system"] == "rabbitmq"
    assert attributes["messaging.destination.name"] == broker.name
    assert attributes["messaging.rabbitmq.destination.routing_key"] == "acme.user.created"
    assert attributes["messaging.destination.subscription.name"] == f"{broker.name}.app"
    assert attributes["messaging.message.id"] == raw["id"]
    assert attributes["scimbus.origin"] == "broker"


def test_tracing_the_envelope_keeps_traceparent_and_tracestate(factory):
    raw, trace_id, span_id = traced(factory.user_created("u1"), state="k=v")
    event = parse_event(raw)
    assert (event.traceparent, event.tracestate) == (f"00-{trace_id}-{span_id}-01", "k=v")
    assert event.model_dump(by_alias=True)["traceparent"] == raw["traceparent"]
    untraced = parse_event(factory.user_created("u2"))
    assert (untraced.traceparent, untraced.tracestate) == (None, None)


async def test_tracing_without_opentelemetry_installed_the_consumer_works_untraced(
    make_consumer, factory, recorder, spans, monkeypatch
):
    for name in [m for m in sys.modules if m == "opentelemetry" or m.startswith("opentelemetry.")]:
        monkeypatch.setitem(sys.modules, name, None)  # `import opentelemetry…` raises ImportError
    consumer = make_consumer(tracer_provider=spans.provider, max_attempts=2)
    assert not consumer.tracing.enabled

    @consumer.on("scimbus.user.created")
    async def created(event, ctx):
        await recorder.add("created", event.traceparent)

    raw, _, _ = traced(factory.user_created("u1"))
    assert await consumer.handle(raw) is Outcome.APPLIED
    assert recorder.of("created") == [raw["traceparent"]]

    @consumer.on("scimbus.user.updated")
    async def broken(event, ctx):
        raise ValueError("no")

    with pytest.raises(HandlerFailed):
        await consumer.handle(traced(factory.user_updated("u1", 2))[0])
    assert spans.finished() == []


def test_tracing_the_package_imports_and_processes_events_where_opentelemetry_cannot_be_imported():
    """In a fresh interpreter where `opentelemetry` cannot be imported at all."""
    script = textwrap.dedent(
        """
        import asyncio, sys
        sys.modules["opentelemetry"] = None
        from scimbus_consumer import Consumer, Outcome, PullClient
        from scimbus_consumer.testing import EventFactory

        async def main():
            consumer = Consumer(amqp_url=None, pull=PullClient("http://127.0.0.1:9", {"acme": "t"}), tenants=["acme"])
            seen = []
            consumer.on_any(lambda event, ctx: _record(seen, event))
            raw = EventFactory("acme").user_created("u1")
            raw["traceparent"] = "00-" + "ab" * 16 + "-" + "cd" * 8 + "-01"
            assert await consumer.handle(raw, origin="pull") is Outcome.APPLIED
            assert not consumer.tracing.enabled and seen == ["scimbus.user.created"]
            await consumer.pull.aclose()

        async def _record(seen, event):
            seen.append(event.type)

        asyncio.run(main())
        assert not any(m.startswith("opentelemetry.") for m in sys.modules), sorted(sys.modules)
        print("ok")
        """
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0 and done.stdout.strip() == "ok", done.stderr


async def _nothing(event, ctx) -> None:
    return None
