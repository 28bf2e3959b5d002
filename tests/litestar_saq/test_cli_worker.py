"""litestar-saq's worker as a process of its own, started through its CLI.

``litestar --app tests.litestar_saq.cli_app:app workers run``: the worker process exports
OTLP/HTTP to a receiver here; the app runs in the test with ``separate_process=True``, so
it starts no worker. The request's spans (here) and the attempts' spans (there) form one
trace, and the panel reads the jobs' outcome from their queue.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from litestar.testing import TestClient
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from tests.debug_toolbar.toolbar_api import request_id, statuses, wait_for_panel
from tests.litestar_saq.app import hold_sweep_lock, make_app
from tests.litestar_saq.traces import assert_one_trace_per_request, from_otlp, from_sdk
from tests.otlp_receiver import ReceivedSpan, Receiver, otlp_receiver

pytestmark = [pytest.mark.usefixtures("instrument"), pytest.mark.slow]
ROOT = Path(__file__).resolve().parents[2]
FINAL = [("send_welcome", "complete"), ("sync_crm", "complete")]
SERVICE = "litestar-saq-worker"


@pytest.fixture
def cli_worker(redis_url: str, tmp_path: Path) -> Iterator[tuple[str, Receiver]]:
    """A queue name, and what litestar-saq's CLI worker process for it exports."""
    queue = f"lsaq-cli-{uuid.uuid4().hex[:8]}"
    hold_sweep_lock(redis_url, queue)
    with otlp_receiver() as (endpoint, receiver):
        env = {
            **os.environ,
            "PYTHONPATH": str(ROOT),
            "SAQ_TEST_REDIS_URL": redis_url,
            "SAQ_TEST_QUEUE": queue,
            "OTEL_EXPORTER_OTLP_ENDPOINT": endpoint,
            "OTEL_SERVICE_NAME": SERVICE,
        }
        command = ["--app", "tests.litestar_saq.cli_app:app", "workers", "run"]
        log = tmp_path / "worker.log"
        with log.open("wb") as output:
            proc = subprocess.Popen(
                [sys.executable, "-m", "litestar", *command],
                cwd=ROOT,
                env=env,
                stdout=output,
                stderr=subprocess.STDOUT,
            )
        try:
            yield queue, receiver
            # What it said is the only clue when it died on a busy machine.
            assert proc.poll() is None, log.read_text(errors="replace")[-4000:]
        finally:
            proc.terminate()
            proc.wait(20)


def wait_for_attempts(receiver: Receiver, name: str, count: int) -> list[ReceivedSpan]:
    deadline = time.monotonic() + 30
    while len(spans := [s for s in receiver.snapshot() if s.name == name]) < count:
        assert time.monotonic() < deadline, f"{len(spans)} of {count} attempts arrived"
        time.sleep(0.1)
    return spans


def test_a_request_and_the_cli_worker_process_form_one_trace_and_fill_the_panel(
    redis_url: str,
    tracer_provider: TracerProvider,
    exporter: InMemorySpanExporter,
    cli_worker: tuple[str, Receiver],
) -> None:
    queue, receiver = cli_worker
    app = make_app(redis_url, queue, separate_process=True, tracer_provider=tracer_provider)
    with TestClient(app) as client:
        job_ids = client.get("/signup").json()
        rid = request_id(client, "/signup")
        # The worker process needs a few seconds to start: the jobs wait in Redis.
        stats = wait_for_panel(client, rid, lambda s: sorted(statuses(s)) == FINAL, timeout=60)
    attempts = wait_for_attempts(receiver, f"process {queue}", 3)

    assert {span.service for span in attempts} == {SERVICE}
    here = [from_sdk(span) for span in exporter.get_finished_spans()]
    assert not [span for span in here if span.kind == "consumer"], "no worker runs here"
    assert_one_trace_per_request(here + [from_otlp(span) for span in attempts], queue, job_ids)
    jobs = {job["function"]: job for job in stats["jobs"]}
    assert {function: job["job_id"] for function, job in jobs.items()} == job_ids
    assert jobs["sync_crm"]["attempts"] == 2
