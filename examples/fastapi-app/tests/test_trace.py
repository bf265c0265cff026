"""End to end, one trace from a SCIM request to the app's handler: a real scimbus (PostgreSQL,
pull API only, no broker; the binary in SCIMBUS_BIN) exports its spans over OTLP/HTTP to a
receiver in this test; a SCIM `POST /Users` carries a fresh W3C `traceparent`; the consumer
library reads the resulting event from the pull API and its span goes to the same receiver.
The server span is a child of the span the request named, the event's `traceparent` names
that server span, and the consumer's `process scimbus.user.created` span is its child.

scripts/python-test builds the binary and sets SCIMBUS_BIN; SCIMBUS_TEST_DATABASE_URL names
an administrative PostgreSQL database to create the test database from."""

from __future__ import annotations

import asyncio
import gzip
import secrets
import threading
import time
import uuid
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx
import pytest
from opentelemetry import trace
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)
from opentelemetry.proto.trace.v1.trace_pb2 import Span
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor

from harness import BIN, USER, Scimbus, provision_tenant
from scimbus_consumer import Consumer, PullClient

pytestmark = pytest.mark.skipif(not BIN, reason="SCIMBUS_BIN is not set (scripts/python-test sets it)")

SPAN_WAIT = 15.0
"""How long the spans may take to reach the receiver (scimbus's batch processor exports
every OTEL_BSP_SCHEDULE_DELAY = 200 ms)."""
CONSUMER_SERVICE = "fastapi-app"


@dataclass(frozen=True)
class ReceivedSpan:
    service: str
    trace_id: str
    span_id: str
    parent_span_id: str
    """Empty for a root span."""
    name: str
    kind: int
    attributes: dict[str, Any]


def _value(any_value: Any) -> Any:
    which = any_value.WhichOneof("value")
    return None if which is None else getattr(any_value, which)


class OtlpReceiver:
    """An OTLP/HTTP trace receiver (protobuf) on 127.0.0.1, in a thread: keeps every span of
    every `POST /v1/traces` with its resource's `service.name`, answers 200 with an empty
    `ExportTraceServiceResponse`."""

    def __init__(self) -> None:
        self._spans: list[ReceivedSpan] = []
        self.requests: list[tuple[str, str, int]] = []
        """`(path, content type, answer status)` of every POST, for failure messages."""
        self._lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 - http.server's naming
                body = self._body()
                if self.path.split("?", 1)[0] != "/v1/traces":
                    self._refuse(404, "not found")
                    return
                request = ExportTraceServiceRequest()
                try:
                    request.ParseFromString(body)
                except Exception:  # noqa: BLE001 - answered as a collector would
                    self._refuse(400, "not an ExportTraceServiceRequest")
                    return
                receiver._add(request)
                receiver._note(self.path, self.headers.get("Content-Type", ""), 200)
                answer = ExportTraceServiceResponse().SerializeToString()
                self.send_response(200)
                self.send_header("Content-Type", "application/x-protobuf")
                self.send_header("Content-Length", str(len(answer)))
                self.end_headers()
                self.wfile.write(answer)

            def _refuse(self, status: int, why: str) -> None:
                receiver._note(self.path, self.headers.get("Content-Type", ""), status)
                self.send_error(status, why)

            def _body(self) -> bytes:
                if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
                    body = b""
                    while True:
                        size = int(self.rfile.readline().split(b";", 1)[0].strip(), 16)
                        if size == 0:
                            self.rfile.readline()
                            break
                        body += self.rfile.read(size)
                        self.rfile.readline()
                else:
                    body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                encoding = self.headers.get("Content-Encoding", "").lower()
                if encoding == "gzip":
                    return gzip.decompress(body)
                if encoding == "deflate":
                    return zlib.decompress(body)
                return body

            def log_message(self, *args: Any) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"
        self._thread = threading.Thread(target=self._server.serve_forever, name="otlp-receiver", daemon=True)

    def _add(self, request: ExportTraceServiceRequest) -> None:
        received = []
        for resource_spans in request.resource_spans:
            attributes = {a.key: _value(a.value) for a in resource_spans.resource.attributes}
            service = str(attributes.get("service.name", ""))
            for scope_spans in resource_spans.scope_spans:
                for span in scope_spans.spans:
                    received.append(
                        ReceivedSpan(
                            service=service,
                            trace_id=span.trace_id.hex(),
                            span_id=span.span_id.hex(),
                            parent_span_id=span.parent_span_id.hex(),
                            name=span.name,
                            kind=span.kind,
                            attributes={a.key: _value(a.value) for a in span.attributes},
                        )
                    )
        with self._lock:
            self._spans.extend(received)

    def _note(self, path: str, content_type: str, status: int) -> None:
        with self._lock:
            self.requests.append((path, content_type, status))

    def spans(self) -> list[ReceivedSpan]:
        with self._lock:
            return list(self._spans)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(10)


@pytest.fixture
def receiver() -> Iterator[OtlpReceiver]:
    server = OtlpReceiver()
    server.start()
    yield server
    server.stop()


@pytest.fixture
def consumer_tracing(receiver: OtlpReceiver) -> Iterator[TracerProvider]:
    """The consumer side's tracer provider (not the global one): each span exported to the
    receiver as it ends."""
    provider = TracerProvider(resource=Resource.create({"service.name": CONSUMER_SERVICE}))
    provider.add_span_processor(SimpleSpanProcessor(OTLPSpanExporter(endpoint=f"{receiver.url}/v1/traces", timeout=10)))
    yield provider
    provider.shutdown()


def _parse_traceparent(value: str | None) -> tuple[str, str, str, str]:
    assert value is not None, "the event carries no traceparent"
    parts = value.split("-")
    assert len(parts) == 4 and [len(p) for p in parts] == [2, 32, 16, 2], value
    assert all(c in "0123456789abcdef" for c in value.replace("-", "")), value
    return parts[0], parts[1], parts[2], parts[3]


async def test_tracing_one_trace_runs_from_the_scim_request_through_scimbus_to_the_handler(
    receiver: OtlpReceiver, consumer_tracing: TracerProvider
):
    run = uuid.uuid4().hex[:12]
    scimbus = Scimbus(
        run, broker=False, env={"SCIMBUS_OTLP_ENDPOINT": receiver.url, "OTEL_BSP_SCHEDULE_DELAY": "200"}
    )
    scimbus.start()
    trace_id, sent_span_id = secrets.token_hex(16), secrets.token_hex(8)
    handled: list[tuple[Any, trace.SpanContext]] = []
    try:
        async with httpx.AsyncClient(timeout=30) as client:
            tenant = f"trace-{run[:8]}"
            scim, events_token = await provision_tenant(client, scimbus, tenant)
            response = await client.post(
                f"{scim.base}/Users",
                json={"schemas": [USER], "userName": "ada@example.com", "active": True},
                headers={
                    "Authorization": f"Bearer {scim.token}",
                    "Content-Type": "application/scim+json",
                    "traceparent": f"00-{trace_id}-{sent_span_id}-01",
                    "tracestate": "e2e=1",
                },
            )
            assert response.status_code == 201, response.text
            user_id = response.json()["id"]

            # The consumer library reads the tenant's events from the pull API, as pull-only
            # mode does (same lanes, same `handle`), until the handler saw the user.
            consumer = Consumer(
                amqp_url=None,
                pull=PullClient(scimbus.url, {tenant: events_token}),
                tenants=[tenant],
                tracer_provider=consumer_tracing,
            )

            @consumer.on("scimbus.user.created")
            async def created(event, ctx):
                handled.append((event, trace.get_current_span().get_span_context()))

            try:
                deadline = time.monotonic() + SPAN_WAIT
                while not handled:
                    assert time.monotonic() < deadline, "the user.created event never reached the handler"
                    await consumer.catch_up_tenant(tenant, from_start=True)
                    if not handled:
                        await asyncio.sleep(0.1)
            finally:
                await consumer.stop()

        [(event, current)] = handled
        assert event.resource_id == user_id
        version, event_trace_id, event_span_id, flags = _parse_traceparent(event.traceparent)
        assert (version, event_trace_id, flags) == ("00", trace_id, "01"), event.traceparent
        assert event.tracestate == "e2e=1"
        assert format(current.trace_id, "032x") == trace_id, "the handler did not run in the request's trace"

        # Spans reach the receiver within a bounded wait; then the chain is checked.
        deadline = time.monotonic() + SPAN_WAIT
        while True:
            spans = receiver.spans()
            ours = [s for s in spans if s.trace_id == trace_id]
            server = [s for s in ours if s.service == "scimbus" and s.kind == Span.SPAN_KIND_SERVER]
            consumer_spans = [s for s in ours if s.service == CONSUMER_SERVICE and s.name == "process scimbus.user.created"]
            known = {s.span_id for s in ours} | {sent_span_id}
            unbroken = all(s.parent_span_id in known for s in ours)
            if server and consumer_spans and unbroken:
                break
            if time.monotonic() > deadline:
                raise AssertionError(
                    f"within {SPAN_WAIT}s, for the request's traceparent 00-{trace_id}-{sent_span_id}-01 "
                    f"(the event's: {event.traceparent}): server spans {server}, consumer spans {consumer_spans}, "
                    f"spans of the trace {ours}; all spans received: {[(s.service, s.name, s.trace_id) for s in spans]}; "
                    f"POSTs received: {receiver.requests}"
                )
            await asyncio.sleep(0.1)
    finally:
        scimbus.stop()

    # scimbus's server span of the request is the child of the span the request named.
    [server_span] = server
    assert server_span.parent_span_id == sent_span_id
    assert server_span.name.startswith("POST ") and server_span.name.endswith("/Users"), server_span.name
    # The event names that server span; the consumer's span is its child: one trace.
    assert event_span_id == server_span.span_id, (event.traceparent, server_span)
    [consumer_span] = consumer_spans
    assert consumer_span.kind == Span.SPAN_KIND_CONSUMER
    assert consumer_span.parent_span_id == server_span.span_id
    assert consumer_span.attributes.get("messaging.message.id") == event.id
    assert format(current.span_id, "016x") == consumer_span.span_id
    # Unbroken: only the server span hangs from the caller's span, every other span of the
    # trace from one of the trace's own; nothing of this request went to another trace.
    assert [s.span_id for s in ours if s.parent_span_id == sent_span_id] == [server_span.span_id]
    elsewhere = [
        s
        for s in receiver.spans()
        if s.trace_id != trace_id
        and (
            s.attributes.get("messaging.message.id") == event.id
            or (s.service == "scimbus" and s.kind == Span.SPAN_KIND_SERVER and s.name == server_span.name)
        )
    ]
    assert elsewhere == [], elsewhere


async def test_tracing_spans_still_buffered_are_exported_when_scimbus_stops(receiver: OtlpReceiver):
    """With an export delay far longer than the test, the request's span is buffered when
    SIGTERM arrives: scimbus exports it before exiting."""
    run = uuid.uuid4().hex[:12]
    scimbus = Scimbus(
        run, broker=False, env={"SCIMBUS_OTLP_ENDPOINT": receiver.url, "OTEL_BSP_SCHEDULE_DELAY": "600000"}
    )
    scimbus.start()
    trace_id, sent_span_id = secrets.token_hex(16), secrets.token_hex(8)
    try:
        async with httpx.AsyncClient(timeout=30) as client:
            scim, _ = await provision_tenant(client, scimbus, f"flush-{run[:8]}")
            response = await client.get(
                f"{scim.base}/Users",
                headers={"Authorization": f"Bearer {scim.token}", "traceparent": f"00-{trace_id}-{sent_span_id}-01"},
            )
            assert response.status_code == 200, response.text
        assert not [s for s in receiver.spans() if s.trace_id == trace_id], "exported before the stop"
    finally:
        scimbus.stop()
    server = [
        s
        for s in receiver.spans()
        if s.trace_id == trace_id and s.service == "scimbus" and s.kind == Span.SPAN_KIND_SERVER
    ]
    assert [(s.name, s.parent_span_id) for s in server] == [("GET /scim/v2/{tenant}/Users", sent_span_id)], server
