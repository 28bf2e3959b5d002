"""The receiver bounds what it is sent as the SDK bounds its own spans (SpanLimits)."""

from __future__ import annotations

import logging
import typing as t
import uuid

import pytest
from litestar.testing import TestClient
from opentelemetry import trace
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceResponse
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan, SpanLimits, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import Link, NonRecordingSpan, SpanContext, SpanKind, TraceFlags
from saq.queue.redis import RedisQueue

from opentelemetry.instrumentation.saq.debug_toolbar.receivers import otlp_limits
from opentelemetry.instrumentation.saq.debug_toolbar.receivers.otlp_limits import (
    DEFAULT_VALUE_LENGTH,
)
from opentelemetry.instrumentation.saq.debug_toolbar.tracing import trace_store
from tests.debug_toolbar.apps import litestar_app
from tests.debug_toolbar.otlp_payloads import JSON, PROTOBUF, RECEIVER, otlp_json, protobuf
from tests.debug_toolbar.toolbar_api import panel, request_id

pytestmark = pytest.mark.usefixtures("instrument")
API = "/_debug_toolbar/saq/api/traces"
HUGE = "x" * 200_000
LONG = "e" * 10_000  # an event attribute: 200 of them keep the body under the 4 MiB limit
UNLIMITED = SpanLimits(*(SpanLimits.UNSET,) * 8)  # a sender that bounds nothing


def oversized_attempt(trace_id: str, parent_span_id: str) -> list[ReadableSpan]:
    """An attempt with a 200 KB attribute, 300 attributes, 200 events of a 10 KB attribute
    and 200 links, and a 200 KB service name: what a careless (or hostile) sender may
    export."""
    provider = TracerProvider(
        resource=Resource.create({"service.name": "w" * 200_000}), span_limits=UNLIMITED
    )
    exporter = InMemorySpanExporter()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    parent = SpanContext(int(trace_id, 16), int(parent_span_id, 16), True, TraceFlags(1))
    linked = SpanContext(int(trace_id, 16), int(parent_span_id, 16), True, TraceFlags(1))
    attributes: dict[str, t.Any] = {f"extra.{index}": index for index in range(300)}
    attributes |= {"messaging.system": "saq", "saq.job.key": "k", "payload": HUGE}
    span = provider.get_tracer("tests.remote").start_span(
        "process remote",
        context=trace.set_span_in_context(NonRecordingSpan(parent)),
        kind=SpanKind.CONSUMER,
        attributes=attributes,
        links=[Link(linked, {"index": index}) for index in range(200)],
    )
    for index in range(200):
        span.add_event(f"event {index}", {"body": LONG})
    span.end()
    return list(exporter.get_finished_spans())


def request_trace(client: t.Any) -> tuple[str, str]:
    client.get("/page")
    stats = panel(client, request_id(client, "/page"))
    view = client.get(f"{API}/{stats['trace_id']}").json()
    (send,) = [row for row in view["rows"] if row["kind"] == "send"]
    return stats["trace_id"], send["id"]


def received(trace_id: str) -> ReadableSpan:
    (span,) = [s for s in trace_store().get_trace(int(trace_id, 16)) if s.name == "process remote"]
    return span


@pytest.mark.parametrize(("encode", "headers"), [(protobuf, PROTOBUF), (otlp_json, JSON)])
def test_a_received_span_is_bounded_by_the_sdks_span_limits(
    redis_url: str, encode: t.Callable[[list[ReadableSpan]], bytes], headers: dict[str, str]
) -> None:
    queue = RedisQueue.from_url(redis_url, name=f"limits-{uuid.uuid4().hex[:8]}")
    with TestClient(litestar_app(queue, worker=False)) as client:
        trace_id, send_id = request_trace(client)
        response = client.post(
            RECEIVER, content=encode(oversized_attempt(trace_id, send_id)), headers=headers
        )
        view = client.get(f"{API}/{trace_id}").json()
        page = client.get(f"/_debug_toolbar/saq/{trace_id}").text

    assert response.status_code == 200
    span = received(trace_id)
    # The SDK's defaults: 128 attributes (the last ones), 128 events, 128 links, ...
    attributes = span.attributes or {}
    assert len(attributes) == 128 and "extra.0" not in attributes
    assert attributes["payload"] == HUGE[:DEFAULT_VALUE_LENGTH]
    assert (span.dropped_attributes, span.dropped_events, span.dropped_links) == (175, 72, 72)
    assert span.events[0].name == "event 72"
    assert all(len(str((e.attributes or {})["body"])) == DEFAULT_VALUE_LENGTH for e in span.events)
    assert len(span.links) == 128
    assert len(str(span.resource.attributes["service.name"])) == DEFAULT_VALUE_LENGTH
    # ... and the page and the API no longer carry the 200 KB values.
    (row,) = [row for row in view["rows"] if row["name"] == "process remote"]
    assert len(row["attributes"]["payload"]) == DEFAULT_VALUE_LENGTH
    assert HUGE[: DEFAULT_VALUE_LENGTH + 1] not in page
    # The detail pane shows the span's events: the page is bounded by what the limits keep
    # (128 events of at most 8192 characters), not by what was sent (2.4 MB).
    assert len(page) < 128 * DEFAULT_VALUE_LENGTH


def test_the_otel_limit_variables_are_honoured_as_the_sdk_reads_them(
    redis_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OTEL_SPAN_ATTRIBUTE_VALUE_LENGTH_LIMIT", "100")
    monkeypatch.setenv("OTEL_ATTRIBUTE_COUNT_LIMIT", "10")
    monkeypatch.setenv("OTEL_SPAN_EVENT_COUNT_LIMIT", "3")
    queue = RedisQueue.from_url(redis_url, name=f"limits-{uuid.uuid4().hex[:8]}")
    with TestClient(litestar_app(queue, worker=False)) as client:
        trace_id, send_id = request_trace(client)
        body = protobuf(oversized_attempt(trace_id, send_id))
        response = client.post(RECEIVER, content=body, headers=PROTOBUF)

    assert (
        ExportTraceServiceResponse.FromString(response.content).partial_success.rejected_spans == 0
    )
    span = received(trace_id)
    assert len(span.attributes or {}) == 10
    assert (span.attributes or {})["payload"] == HUGE[:100]  # the span's own length limit
    assert len(span.events) == 3
    assert len(span.links) == 128  # the attribute count limit is not the link count limit
    # OTEL_ATTRIBUTE_VALUE_LENGTH_LIMIT is not set: what the span's own length does not
    # bound (event attributes, the resource) is cut at the receiver's default length, never
    # left unbounded because a span-specific variable is set.
    assert all(len(str((e.attributes or {})["body"])) == DEFAULT_VALUE_LENGTH for e in span.events)
    assert len(str(span.resource.attributes["service.name"])) == DEFAULT_VALUE_LENGTH


def test_a_malformed_limit_variable_is_logged_and_the_export_still_kept(
    redis_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OTEL_SPAN_EVENT_COUNT_LIMIT", "lots")
    records: list[logging.LogRecord] = []  # Litestar's logging set-up replaces caplog's handler
    handler = logging.Handler()
    handler.emit = records.append  # type: ignore[method-assign]
    logger = logging.getLogger(otlp_limits.__name__)
    logger.addHandler(handler)
    queue = RedisQueue.from_url(redis_url, name=f"limits-{uuid.uuid4().hex[:8]}")
    try:
        with TestClient(litestar_app(queue, worker=False)) as client:
            trace_id, send_id = request_trace(client)
            body = protobuf(oversized_attempt(trace_id, send_id))
            response = client.post(RECEIVER, content=body, headers=PROTOBUF)
    finally:
        logger.removeHandler(handler)

    assert response.status_code == 200  # the SDK's TracerProvider would raise instead
    span = received(trace_id)
    assert len(span.events) == 128 and len(span.attributes or {}) == 128
    assert any("OTEL_SPAN_EVENT_COUNT_LIMIT" in record.getMessage() for record in records)
