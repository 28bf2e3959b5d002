"""The toolbar's OTLP/HTTP logs receiver: what the SDK's own OTLPLogExporter sends, in."""

from __future__ import annotations

import gzip
import json
import logging
import sys
import typing as t
import uuid

import httpx
import pytest
from google.protobuf import json_format
from litestar.testing import TestClient
from opentelemetry import trace
from opentelemetry.exporter.otlp.proto.common._log_encoder import encode_logs
from opentelemetry.exporter.otlp.proto.http._log_exporter import OTLPLogExporter
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceResponse
from opentelemetry.sdk._logs import LoggerProvider, LoggingHandler
from opentelemetry.sdk._logs.export import InMemoryLogRecordExporter, SimpleLogRecordProcessor
from opentelemetry.sdk.resources import Resource
from opentelemetry.trace import NonRecordingSpan, SpanContext, TraceFlags
from saq.queue.redis import RedisQueue

from opentelemetry.instrumentation.saq.debug_toolbar.receivers import receiver
from tests.browser import serving
from tests.debug_toolbar.apps import litestar_app
from tests.debug_toolbar.otlp_payloads import (
    JSON,
    PROTOBUF,
    RECEIVER,
    _ids_to_hex,
    protobuf,
    worker_attempt,
)
from tests.debug_toolbar.test_receiver import API, request_trace

pytestmark = pytest.mark.usefixtures("instrument")
LOGS = "/_debug_toolbar/saq/v1/logs"


def new_queue(redis_url: str) -> RedisQueue:
    return RedisQueue.from_url(redis_url, name=f"logs-recv-{uuid.uuid4().hex[:8]}")


def write_logs(exporter: t.Any, trace_id: str, span_id: str) -> None:
    """A worker's job writing lines while its attempt span is current, through the SDK's
    LoggingHandler (what OTEL_PYTHON_LOGGING_AUTO_INSTRUMENTATION_ENABLED installs)."""
    provider = LoggerProvider(resource=Resource.create({"service.name": "remote-worker"}))
    provider.add_log_record_processor(SimpleLogRecordProcessor(exporter))
    handler = LoggingHandler(logger_provider=provider)

    # Straight to the SDK's handler, not through logging's dispatch, where the app's own
    # capture would keep them too: this test's process plays the worker's part as well as
    # the app's.
    def log(name: str, level: int, message: str, *args: t.Any, exc_info: t.Any = None) -> None:
        logger = logging.getLogger(name)
        handler.handle(logger.makeRecord(name, level, __file__, 1, message, args, exc_info))

    attempt = SpanContext(int(trace_id, 16), int(span_id, 16), True, TraceFlags(1))
    try:
        with trace.use_span(NonRecordingSpan(attempt)):
            log("tests.remote.job", logging.INFO, "rendered %d rows", 3)
            log(
                "saq",
                logging.ERROR,
                "Error processing job Job<kwargs: {'api_token': 'tok-remote-secret'}>",
            )
            try:
                {}["row"]
            except KeyError:
                log(
                    "tests.remote.job",
                    logging.ERROR,
                    "lookup <b>failed</b>",
                    exc_info=sys.exc_info(),
                )
        log("tests.remote.job", logging.WARNING, "written outside any span")
        provider.force_flush()
    finally:
        provider.shutdown()


def attempt_id(client: t.Any, trace_id: str, send_id: str, key: str) -> str:
    client.post(
        RECEIVER, content=protobuf(worker_attempt(trace_id, send_id, key)), headers=PROTOBUF
    )
    view = client.get(f"{API}/{trace_id}").json()
    (attempt,) = [row for row in view["rows"] if row["kind"] == "process"]
    return str(attempt["id"])


def attempt_logs(client: t.Any, trace_id: str) -> list[tuple[str, str, str, str | None]]:
    view = client.get(f"{API}/{trace_id}").json()
    (attempt,) = [row for row in view["rows"] if row["kind"] == "process"]
    return [
        (line["level"], line["logger"], line["message"], line["exception"])
        for line in attempt["logs"]
    ]


def test_the_sdks_log_exporter_puts_a_remote_attempts_lines_under_it(redis_url: str) -> None:
    before = receiver.log_counts.received_spans
    with (
        serving(litestar_app(new_queue(redis_url), worker=False)) as base,
        httpx.Client(base_url=base) as client,
    ):
        trace_id, send_id, key = request_trace(client)
        span_id = attempt_id(client, trace_id, send_id, key)
        write_logs(OTLPLogExporter(endpoint=f"{base}{LOGS}"), trace_id, span_id)
        # And lines of a trace this app never saw: not kept (they wait for its spans).
        write_logs(OTLPLogExporter(endpoint=f"{base}{LOGS}"), uuid.uuid4().hex, "5" * 16)
        lines = attempt_logs(client, trace_id)
        page = client.get(f"/_debug_toolbar/saq/{trace_id}").text

    (info, error) = lines
    assert info == ("INFO", "tests.remote.job", "rendered 3 rows", None)
    assert error[:3] == ("ERROR", "tests.remote.job", "lookup <b>failed</b>")
    assert error[3] is not None and "KeyError: 'row'" in error[3] and "Traceback" in error[3]
    # SAQ's own lines print job arguments: never kept, from any process.
    assert "tok-remote-secret" not in page and "tok-remote-secret" not in str(lines)
    assert "lookup &lt;b&gt;failed&lt;/b&gt;" in page and "lookup <b>failed" not in page
    # The two lines and, for the workers page, each export's line written outside a span.
    assert receiver.log_counts.received_spans == before + 4


def test_a_gzipped_json_export_is_read_and_saqs_own_lines_are_rejected(
    redis_url: str,
) -> None:
    with TestClient(litestar_app(new_queue(redis_url), worker=False)) as client:
        trace_id, send_id, key = request_trace(client)
        span_id = attempt_id(client, trace_id, send_id, key)
        ours, others = InMemoryLogRecordExporter(), InMemoryLogRecordExporter()
        write_logs(ours, trace_id, span_id)
        write_logs(others, uuid.uuid4().hex, "5" * 16)
        records = [*ours.get_finished_logs(), *others.get_finished_logs()]
        document = json_format.MessageToDict(encode_logs(records), use_integers_for_enums=True)
        _ids_to_hex(document)
        body = gzip.compress(json.dumps(document).encode())
        response = client.post(LOGS, content=body, headers={**JSON, "content-encoding": "gzip"})
        lines = attempt_logs(client, trace_id)

    assert response.status_code == 200
    # Rejected: SAQ's line of each trace; the other trace's 2 lines wait for its spans
    # (pending_logs), and the 2 written outside a span are kept for the workers page.
    assert json.loads(response.content)["partialSuccess"]["rejectedLogRecords"] == "2"
    assert [(level, message) for level, _, message, _ in lines] == [
        ("INFO", "rendered 3 rows"),
        ("ERROR", "lookup <b>failed</b>"),
    ]


def test_the_protobuf_answer_is_the_logs_services_own(redis_url: str) -> None:
    with TestClient(litestar_app(new_queue(redis_url), worker=False)) as client:
        memory = InMemoryLogRecordExporter()
        write_logs(memory, uuid.uuid4().hex, "5" * 16)
        body = bytes(encode_logs(memory.get_finished_logs()).SerializeToString())
        response = client.post(LOGS, content=body, headers=PROTOBUF)
    answer = ExportLogsServiceResponse.FromString(response.content)
    # The line written outside a span is kept for the workers page, the trace's two wait
    # for its spans, and SAQ's own is rejected.
    assert response.status_code == 200 and answer.partial_success.rejected_log_records == 1


BAD_INPUTS = {
    "not OTLP content": (415, {"content-type": "text/plain"}, b"hello"),
    "not protobuf": (400, PROTOBUF, b"\xff\xff\xff\xff"),
    "a JSON array": (400, JSON, b"[]"),
    "a bad hex id": (
        400,
        JSON,
        b'{"resourceLogs":[{"scopeLogs":[{"logRecords":[{"traceId":"zz"}]}]}]}',
    ),
    "gzip bomb": (
        413,
        {**PROTOBUF, "content-encoding": "gzip"},
        gzip.compress(b"\0" * (receiver.MAX_BODY_BYTES + 1)),
    ),
}


@pytest.mark.parametrize("case", BAD_INPUTS)
def test_bad_logs_get_the_status_the_trace_receiver_gives(redis_url: str, case: str) -> None:
    status, headers, body = BAD_INPUTS[case]
    before = receiver.log_counts.refused_requests
    with TestClient(litestar_app(new_queue(redis_url), worker=False)) as client:
        response = client.post(LOGS, content=body, headers=headers)
    assert response.status_code == status, response.text
    assert receiver.log_counts.refused_requests == before + 1
    assert response.headers["content-type"] == "application/json"
    if status == 400:
        assert response.json()["message"].startswith("not an OTLP logs export")


def test_the_logs_receiver_answers_only_where_the_toolbar_would_show(redis_url: str) -> None:
    app = litestar_app(new_queue(redis_url), worker=False, allowed_hosts=["toolbar.test"])
    with TestClient(app) as client:
        refused = client.post(LOGS, content=b"", headers={**PROTOBUF, "host": "elsewhere.test"})
        served = client.post(LOGS, content=b"", headers={**PROTOBUF, "host": "toolbar.test"})
    assert (refused.status_code, served.status_code) == (404, 200)


def test_fastapi_serves_the_logs_receiver_after_the_one_call(redis_url: str) -> None:
    from starlette.testclient import TestClient as StarletteClient

    from tests.debug_toolbar.apps import fastapi_app

    with StarletteClient(fastapi_app(new_queue(redis_url))) as client:
        served = client.post(LOGS, content=b"", headers=PROTOBUF)
        refused = client.post(LOGS, content=b"x", headers={"content-type": "text/plain"})
    assert (served.status_code, refused.status_code) == (200, 415)
