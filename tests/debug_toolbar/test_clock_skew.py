"""A worker whose clock is behind: the trace says so and draws its spans where they ran."""

from __future__ import annotations

import time
import typing as t
import uuid

import pytest
from litestar.testing import TestClient
from opentelemetry import trace
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import NonRecordingSpan, SpanContext, SpanKind, TraceFlags
from saq.queue.redis import RedisQueue

from opentelemetry.instrumentation.saq.debug_toolbar.pages import trace_page, trace_view
from tests.debug_toolbar.apps import litestar_app
from tests.debug_toolbar.otlp_payloads import PROTOBUF, RECEIVER, protobuf
from tests.debug_toolbar.toolbar_api import panel, request_id

API = "/_debug_toolbar/saq/api/traces"
BEHIND_NS = 120 * 1_000_000_000
MS = 1_000_000


def provider(service: str) -> tuple[TracerProvider, InMemorySpanExporter]:
    exporter = InMemorySpanExporter()
    sdk = TracerProvider(resource=Resource.create({"service.name": service}))
    sdk.add_span_processor(SimpleSpanProcessor(exporter))
    return sdk, exporter


def worker_attempt(
    trace_id: int, send_id: int, key: str, started_ns: int, service: str = "remote-worker"
) -> list[ReadableSpan]:
    """An attempt of 20 ms and a 5 ms span in it, timed by the worker's clock from
    ``started_ns``, with the queue wait SAQ gives when the worker's clock is behind (0)."""
    sdk, exporter = provider(service)
    tracer = sdk.get_tracer("tests.worker")
    parent = trace.set_span_in_context(
        NonRecordingSpan(SpanContext(trace_id, send_id, True, TraceFlags(1)))
    )
    attributes = {
        "messaging.system": "saq",
        "saq.job.key": key,
        "saq.job.function": "send_email",
        "saq.job.attempt": 1,
        "saq.job.status": "complete",
        "saq.job.queue_wait_ms": 0,
    }
    process = tracer.start_span(
        "process default", parent, SpanKind.CONSUMER, attributes, start_time=started_ns
    )
    child = tracer.start_span(
        "render email", trace.set_span_in_context(process), start_time=started_ns + 5 * MS
    )
    child.end(end_time=started_ns + 10 * MS)
    process.end(end_time=started_ns + 20 * MS)
    return list(exporter.get_finished_spans())


def request_with_send() -> tuple[list[ReadableSpan], int, int, str]:
    """The app's request span and its send span, timed by this process's clock."""
    sdk, exporter = provider("the-app")
    tracer = sdk.get_tracer("tests.app")
    key = uuid.uuid4().hex
    with tracer.start_as_current_span("GET /signup", kind=SpanKind.SERVER) as request:
        attributes = {"messaging.system": "saq", "saq.job.key": key}
        with tracer.start_as_current_span("send default", kind=SpanKind.PRODUCER) as send:
            send.set_attributes(attributes)
        time.sleep(0.002)
    context = send.get_span_context()
    return (
        list(exporter.get_finished_spans()),
        request.get_span_context().trace_id,
        context.span_id,
        key,
    )


def rows_by_name(view: dict[str, t.Any]) -> dict[str, dict[str, t.Any]]:
    return {row["name"]: row for row in view["rows"] if row["kind"] != "wait"}


def test_a_worker_120_s_behind_is_named_and_drawn_after_the_send() -> None:
    app_spans, trace_id, send_id, key = request_with_send()
    send = next(span for span in app_spans if span.kind is SpanKind.PRODUCER)
    worker = worker_attempt(trace_id, send_id, key, t.cast(int, send.start_time) - BEHIND_NS)

    view = trace_view.trace_rows(trace_id, [*app_spans, *worker])

    (skew,) = view["clock_skew"]
    assert skew["service"] == "remote-worker" and skew["parent_service"] == "the-app"
    assert (skew["span"], skew["parent"]) == ("process default", "send default")
    assert skew["behind_ms"] == pytest.approx(120_000, abs=1)
    assert view["duration_ms"] < 1_000  # not stretched to 120 s
    rows = rows_by_name(view)
    assert rows["process default"]["start_ms"] >= rows["send default"]["start_ms"]
    assert rows["render email"]["start_ms"] == pytest.approx(
        rows["process default"]["start_ms"] + 5, abs=0.01
    )
    for name in ("process default", "render email"):
        assert rows[name]["clock_shift_ms"] == skew["behind_ms"]
    assert (
        "clock_shift_ms" not in rows["GET /signup"] and "clock_shift_ms" not in rows["send default"]
    )
    drawn = {row["name"]: row for row in trace_page.trace_model(view)["rows"]}
    assert drawn["process default"]["left"] >= drawn["send default"]["left"]
    assert drawn["process default"]["width"] > 1  # percent of the track, not a sliver
    html = trace_page.render_trace(view)
    assert "Clock skew: the clock of remote-worker is at least 120.00 s behind" in html
    assert html.count('<small class="skew">clock +120.00 s</small>') == 2


def test_workers_on_time_are_drawn_as_recorded() -> None:
    app_spans, trace_id, send_id, key = request_with_send()
    send = next(span for span in app_spans if span.kind is SpanKind.PRODUCER)
    worker = worker_attempt(trace_id, send_id, key, t.cast(int, send.end_time) + 3 * MS)

    view = trace_view.trace_rows(trace_id, [*app_spans, *worker])

    assert view["clock_skew"] == []
    rows = rows_by_name(view)
    assert not any("clock_shift_ms" in row for row in rows.values())
    start = min(t.cast(int, span.start_time) for span in app_spans)
    assert rows["process default"]["start_ms"] == pytest.approx(
        (t.cast(int, send.end_time) + 3 * MS - start) / MS, abs=0.01
    )
    assert "Clock skew" not in trace_page.render_trace(view)


def test_a_skewed_worker_behind_a_skewed_worker_is_shifted_by_both() -> None:
    """A job's span calls a service on a third machine, 5 s behind the worker, which is
    itself 120 s behind the app: the third is 125 s behind the app."""
    app_spans, trace_id, send_id, key = request_with_send()
    send = next(span for span in app_spans if span.kind is SpanKind.PRODUCER)
    worker_start = t.cast(int, send.start_time) - BEHIND_NS
    worker = worker_attempt(trace_id, send_id, key, worker_start)
    child = next(span for span in worker if span.name == "render email")
    assert child.context is not None
    sdk, exporter = provider("templates-service")
    remote_parent = trace.set_span_in_context(NonRecordingSpan(child.context))
    third_start = worker_start + 5 * MS - 5_000 * MS
    sdk.get_tracer("t").start_span("render", remote_parent, start_time=third_start).end(
        end_time=third_start + 2 * MS
    )

    view = trace_view.trace_rows(trace_id, [*app_spans, *worker, *exporter.get_finished_spans()])

    behind = {skew["service"]: skew["behind_ms"] for skew in view["clock_skew"]}
    assert behind["remote-worker"] == pytest.approx(120_000, abs=1)
    assert behind["templates-service"] == pytest.approx(125_000, abs=1)
    assert view["duration_ms"] < 1_000


@pytest.mark.usefixtures("instrument")
def test_the_trace_page_says_when_a_received_workers_clock_is_behind(redis_url: str) -> None:
    queue = RedisQueue.from_url(redis_url, name=f"skew-{uuid.uuid4().hex[:8]}")
    with TestClient(litestar_app(queue, worker=False)) as client:
        client.get("/page")
        trace_id = panel(client, request_id(client, "/page"))["trace_id"]
        before = client.get(f"{API}/{trace_id}").json()
        (send,) = [row for row in before["rows"] if row["kind"] == "send"]
        sent_ns = int(before["started_at"] * 1e9 + send["start_ms"] * MS)
        body = protobuf(
            worker_attempt(
                int(trace_id, 16), int(send["id"], 16), send["job_key"], sent_ns - BEHIND_NS
            )
        )
        assert client.post(RECEIVER, content=body, headers=PROTOBUF).status_code == 200
        view = client.get(f"{API}/{trace_id}").json()
        page = client.get(f"/_debug_toolbar/saq/{trace_id}").text

    (skew,) = view["clock_skew"]
    assert skew["service"] == "remote-worker"
    assert skew["behind_ms"] == pytest.approx(120_000, abs=50)
    assert view["duration_ms"] < 10_000
    assert (
        f'<p class="skew" data-service="remote-worker" data-behind-ms="{skew["behind_ms"]}">'
        in page
    )
    assert "its spans are drawn" in page
    (process,) = [row for row in view["rows"] if row["kind"] == "process"]
    assert process["clock_shift_ms"] == skew["behind_ms"]
    assert process["start_ms"] >= send["start_ms"]
