"""A log line received from another process says which service sent it, and is marked when
that is not the service whose span it names (anyone who can reach the receiver can send
a line under a span id they have seen)."""

from __future__ import annotations

import logging
import uuid

import httpx
import pytest
from opentelemetry import trace
from opentelemetry.exporter.otlp.proto.http._log_exporter import OTLPLogExporter
from opentelemetry.sdk._logs import LoggerProvider, LoggingHandler
from opentelemetry.sdk._logs.export import SimpleLogRecordProcessor
from opentelemetry.sdk.resources import Resource
from opentelemetry.trace import NonRecordingSpan, SpanContext, TraceFlags
from saq.queue.redis import RedisQueue

from tests.browser import browser_page, serving
from tests.debug_toolbar.apps import litestar_app
from tests.debug_toolbar.test_otlp_logs import LOGS, attempt_id
from tests.debug_toolbar.test_receiver import API, request_trace

pytestmark = [pytest.mark.usefixtures("instrument"), pytest.mark.slow]


def send_line(base: str, service: str, trace_id: str, span_id: str, message: str) -> None:
    """One WARNING line written under the given span by a process named ``service``,
    through the SDK's LoggingHandler and OTLPLogExporter."""
    provider = LoggerProvider(resource=Resource.create({"service.name": service}))
    provider.add_log_record_processor(SimpleLogRecordProcessor(OTLPLogExporter(f"{base}{LOGS}")))
    handler = LoggingHandler(logger_provider=provider)
    name = "tests.senders"
    span = SpanContext(int(trace_id, 16), int(span_id, 16), True, TraceFlags(1))
    try:
        with trace.use_span(NonRecordingSpan(span)):
            # Straight to the SDK's handler, not through logging's dispatch, where this
            # process's own capture (the app's part) would keep the line too.
            record = logging.getLogger(name).makeRecord(
                name, logging.WARNING, __file__, 1, message, (), None
            )
            handler.handle(record)
    finally:
        provider.shutdown()


def test_a_line_from_another_service_than_its_spans_is_marked(redis_url: str) -> None:
    queue = RedisQueue.from_url(redis_url, name=f"senders-{uuid.uuid4().hex[:8]}")
    with (
        serving(litestar_app(queue, worker=False)) as base,
        httpx.Client(base_url=base) as client,
    ):
        trace_id, send_id, key = request_trace(client)
        span_id = attempt_id(client, trace_id, send_id, key)  # run by "remote-worker"
        send_line(base, "remote-worker", trace_id, span_id, "report rendered")
        send_line(base, "<i>mallory</i>", trace_id, span_id, "payment sent to mallory")
        view = client.get(f"{API}/{trace_id}").json()
        with browser_page() as page:
            page.goto(f"{base}/_debug_toolbar/saq/{trace_id}")
            attempt = page.locator('li.row[data-kind="process"]')
            attempt.locator(".label").click()
            lines = attempt.locator(".detail .log")
            genuine, forged = lines.nth(0), lines.nth(1)
            said = (genuine.locator(".sender").inner_text(), forged.locator(".sender").inner_text())
            marked = (
                genuine.locator(".sender.other").count(),
                forged.locator(".sender.other").count(),
            )
            injected = page.locator(".detail i").count()

    (row,) = [row for row in view["rows"] if row["kind"] == "process"]
    assert [(line["message"], line["service"]) for line in row["logs"]] == [
        ("report rendered", "remote-worker"),
        ("payment sent to mallory", "<i>mallory</i>"),
    ]
    assert said[0] == "from remote-worker"
    assert said[1] == "from <i>mallory</i> · another process than its span's (remote-worker)"
    assert marked == (0, 1)
    assert injected == 0  # the service name is shown as text
