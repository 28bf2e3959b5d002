"""A body over the receiver's limit gets a 413 its sender can read, over a real socket.

Clients that send their whole body before reading the answer (the SDK's own
``OTLPSpanExporter``, ``urllib``, ``requests``) saw the connection reset when the
receiver answered 413 without reading the body: they cannot tell "too large" from
"network down", and the SDK's exporter retries. The receiver now reads and throws away a
refused body up to ``receiver.DRAIN_CAP_BYTES`` before it answers.
"""

from __future__ import annotations

import json
import logging
import urllib.error
import urllib.request
import uuid

import pytest
from opentelemetry.exporter.otlp.proto.http import Compression
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor, SpanExportResult
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from saq.queue.redis import RedisQueue

from opentelemetry.instrumentation.saq.debug_toolbar.receivers import receiver
from tests.browser import serving
from tests.debug_toolbar.apps import fastapi_app, litestar_app
from tests.debug_toolbar.otlp_payloads import PROTOBUF, RECEIVER

pytestmark = [pytest.mark.usefixtures("instrument"), pytest.mark.slow]
MIB = 1024 * 1024
SDK_EXPORT_MIB = 6  # about 6 MiB of protobuf


def app(framework: str, redis_url: str) -> object:
    queue = RedisQueue.from_url(redis_url, name=f"limits-{uuid.uuid4().hex[:8]}")
    return litestar_app(queue, worker=False) if framework == "litestar" else fastapi_app(queue)


def test_the_cap_is_sixteen_times_the_limit() -> None:
    assert receiver.DRAIN_CAP_BYTES == 16 * receiver.MAX_BODY_BYTES


@pytest.mark.parametrize("framework", ["litestar", "fastapi"])
@pytest.mark.parametrize("size", [5 * MIB, 40 * MIB])
def test_urllib_reads_the_413_of_a_body_under_the_cap(
    framework: str, size: int, redis_url: str
) -> None:
    assert size > receiver.MAX_BODY_BYTES  # and under the cap: see the test above
    with serving(app(framework, redis_url)) as base:
        request = urllib.request.Request(
            base + RECEIVER, data=b"\0" * size, headers=PROTOBUF, method="POST"
        )
        with pytest.raises(urllib.error.HTTPError) as refused:
            urllib.request.urlopen(request, timeout=60)
        answer = refused.value

    assert answer.code == 413
    assert answer.headers["content-type"].startswith("application/json")
    assert "over" in json.loads(answer.read())["message"]


@pytest.mark.parametrize("framework", ["litestar", "fastapi"])
def test_the_sdk_exporter_sees_413_and_does_not_retry(framework: str, redis_url: str) -> None:
    spans = big_spans(count=SDK_EXPORT_MIB, attribute_bytes=MIB)
    before = receiver.counts.refused_requests
    said = Said()
    # On the exporter's logger itself: the app's logging set-up may replace the root's.
    logging.getLogger("opentelemetry.exporter").addHandler(said)
    try:
        with serving(app(framework, redis_url)) as base:
            exporter = OTLPSpanExporter(
                endpoint=base + RECEIVER, timeout=30, compression=Compression.NoCompression
            )
            result = exporter.export(spans)
            exporter.shutdown()
    finally:
        logging.getLogger("opentelemetry.exporter").removeHandler(said)
    said = said.lines
    assert result is SpanExportResult.FAILURE
    assert any("code: 413" in line for line in said), said
    assert not any("retrying" in line or "Transient" in line for line in said), said
    assert receiver.counts.refused_requests - before == 1  # one request: no retry


class Said(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(record.getMessage())


def big_spans(count: int, attribute_bytes: int) -> list[object]:
    provider = TracerProvider()
    finished = InMemorySpanExporter()
    provider.add_span_processor(SimpleSpanProcessor(finished))
    tracer = provider.get_tracer("tests.big")
    for index in range(count):
        with tracer.start_as_current_span(f"big {index}") as span:
            span.set_attribute("blob", "x" * attribute_bytes)
    return list(finished.get_finished_spans())
