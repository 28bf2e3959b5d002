"""litestar-saq's own worker in the app's event loop, as its config starts it.

``QueueConfig(separate_process=False)``: SAQPlugin starts the worker on app startup. The
request enqueues through the queue litestar-saq injects; one trace runs from the server
span through each send to every attempt, and the panel lists the request's jobs.
"""

from __future__ import annotations

import time
import uuid

import pytest
from litestar.testing import TestClient
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from tests.debug_toolbar.toolbar_api import request_id, statuses, wait_for_panel
from tests.litestar_saq.app import hold_sweep_lock, make_app
from tests.litestar_saq.traces import assert_one_trace_per_request, from_sdk

pytestmark = pytest.mark.usefixtures("instrument")
FINAL = [("send_welcome", "complete"), ("sync_crm", "complete")]


def wait_for_attempts(exporter: InMemorySpanExporter, name: str, count: int) -> None:
    deadline = time.monotonic() + 15
    while sum(span.name == name for span in exporter.get_finished_spans()) < count:
        assert time.monotonic() < deadline, "the attempts' spans did not end"
        time.sleep(0.05)


def test_a_request_and_the_in_process_worker_form_one_trace_and_fill_the_panel(
    redis_url: str, tracer_provider: TracerProvider, exporter: InMemorySpanExporter
) -> None:
    queue = f"lsaq-{uuid.uuid4().hex[:8]}"
    hold_sweep_lock(redis_url, queue)
    app = make_app(redis_url, queue, separate_process=False, tracer_provider=tracer_provider)
    with TestClient(app) as client:
        job_ids = client.get("/signup").json()
        rid = request_id(client, "/signup")
        stats = wait_for_panel(client, rid, lambda s: sorted(statuses(s)) == FINAL)
        wait_for_attempts(exporter, f"process {queue}", 3)

    assert_one_trace_per_request(
        [from_sdk(s) for s in exporter.get_finished_spans()], queue, job_ids
    )
    jobs = {job["function"]: job for job in stats["jobs"]}
    assert {function: job["job_id"] for function, job in jobs.items()} == job_ids
    assert jobs["sync_crm"]["attempts"] == 2
    assert jobs["send_welcome"]["queue"] == queue
