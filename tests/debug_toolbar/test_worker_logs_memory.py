"""Lines workers send with no trace stay within their ring's bound in bytes: measured by
``tracemalloc`` (bytes allocated and still held), not by the ring's own figure.

Hostile logs exports in the real OTLP wire format, posted to the logs receiver of a real
Litestar app: records written outside any span, with 16 KiB bodies, 32 KiB stack traces,
10,000-character scope names and 160 KiB resources, far more than the ring may hold.
"""

from __future__ import annotations

import gc
import time
import tracemalloc
import uuid

import pytest
from litestar.testing import TestClient
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest
from opentelemetry.semconv.attributes.exception_attributes import EXCEPTION_STACKTRACE
from saq.queue.redis import RedisQueue

from opentelemetry.instrumentation.saq.debug_toolbar.panel import job_logs
from opentelemetry.instrumentation.saq.debug_toolbar.panel.worker_logs import worker_log_store
from opentelemetry.instrumentation.saq.debug_toolbar.receivers.otlp_limits import (
    DEFAULT_VALUE_LENGTH,
)
from tests.debug_toolbar.apps import litestar_app
from tests.debug_toolbar.otlp_payloads import PROTOBUF
from tests.debug_toolbar.test_receiver_memory import WIDE, resource

pytestmark = pytest.mark.usefixtures("instrument")
LOGS = "/_debug_toolbar/saq/v1/logs"
MiB = 2**20
BOUND = 2 * MiB
SLACK = 1 * MiB
"""What else the app may hold after the exports (the receiver's counts, Litestar's caches)."""


def untraced_logs(sender: str, export: int, records: int) -> bytes:
    """One export of ``records`` records written outside any span (no trace id)."""
    request = ExportLogsServiceRequest()
    resource_logs = request.resource_logs.add(resource=resource(sender, 20))
    scope_logs = resource_logs.scope_logs.add()
    scope_logs.scope.name = "l" * 10_000
    for index in range(records):
        record = scope_logs.log_records.add(time_unix_nano=export * 1000 + index + 1)
        record.severity_number = 17
        record.body.string_value = f"export {export} line {index} " + WIDE * 4_000
        record.attributes.add(
            key=EXCEPTION_STACKTRACE, value={"string_value": WIDE * DEFAULT_VALUE_LENGTH}
        )
    return request.SerializeToString()


def test_lines_sent_with_no_trace_stay_within_the_rings_bound_in_bytes(
    redis_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    ring = worker_log_store()
    ring.clear()
    monkeypatch.setattr(ring, "max_bytes", BOUND)
    queue = RedisQueue.from_url(redis_url, name=f"ring-{uuid.uuid4().hex[:8]}")
    exports = 12
    with TestClient(litestar_app(queue, worker=False)) as client:
        gc.collect()
        tracemalloc.start()
        try:
            before = tracemalloc.get_traced_memory()[0]
            answers = [
                client.post(
                    LOGS, content=untraced_logs(f"w{index}", index, 20), headers=PROTOBUF
                ).status_code
                for index in range(exports)
            ]
            deadline = time.monotonic() + 5
            while True:  # a thread of the app's may still be letting go of the last body
                gc.collect()
                held = tracemalloc.get_traced_memory()[0] - before
                if held <= BOUND + SLACK or time.monotonic() > deadline:
                    break
                time.sleep(0.1)
        finally:
            tracemalloc.stop()
        view = client.get("/_debug_toolbar/saq/api/workers").json()

    print(f"held {held / MiB:.2f} MiB, the ring says {ring.held_bytes / MiB:.2f} MiB")
    assert answers == [200] * exports
    assert held <= BOUND + SLACK
    assert view["lines_store"]["held_bytes"] <= BOUND
    # The newest lines are kept, the oldest went first; each is clipped as job lines are.
    newest = view["lines"][0]
    assert newest["message"].startswith(f"export {exports - 1} line 19 ")
    assert newest["source"] == "w11"
    assert len(newest["message"]) == job_logs.MAX_MESSAGE_CHARS
    assert not any(line["message"].startswith("export 0 ") for line in view["lines"])
