"""The demo app and two worker processes on a real Redis, exporting real OTLP/HTTP.

What a newcomer sees in Jaeger after `docker compose up`, checked without Docker: one
trace per request, from the app's server span through the send spans to the attempts
made in the worker processes.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
import typing as t
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.otlp_receiver import ReceivedSpan, Receiver, otlp_receiver
from tests.servers import RedisServer, free_port

pytestmark = pytest.mark.slow
ROOT = Path(__file__).resolve().parents[2]
SERVER, PRODUCER, CONSUMER = 2, 4, 5  # OTLP's SpanKind numbers
ERROR = 2


@pytest.fixture
def stack() -> Iterator[tuple[str, Receiver]]:
    """Redis, an OTLP receiver, the demo app and two `saq` worker processes."""
    redis = RedisServer()
    redis.start()
    procs: list[subprocess.Popen[bytes]] = []
    with otlp_receiver() as (endpoint, receiver):
        env = {
            **os.environ,
            "REDIS_URL": redis.url,
            "OTEL_EXPORTER_OTLP_ENDPOINT": endpoint,
            "OTEL_BSP_SCHEDULE_DELAY": "100",
        }
        port = free_port()
        try:
            for _ in range(2):
                procs.append(
                    subprocess.Popen(
                        [sys.executable, "-m", "saq", "examples.demo.worker.settings"],
                        cwd=ROOT,
                        env={**env, "OTEL_SERVICE_NAME": "saq-demo-worker"},
                        stderr=subprocess.DEVNULL,
                    )
                )
            procs.append(
                subprocess.Popen(
                    [sys.executable, "-m", "examples.demo"],
                    cwd=ROOT,
                    env={**env, "PORT": str(port), "OTEL_SERVICE_NAME": "saq-demo-app"},
                    stderr=subprocess.DEVNULL,
                )
            )
            base = f"http://127.0.0.1:{port}"
            _wait_until_serving(base, procs)
            time.sleep(1)  # let both workers finish their startup sweep (see SAQ's sweep race)
            yield base, receiver
        finally:
            for proc in procs:
                proc.terminate()
            for proc in procs:
                proc.wait(20)
            redis.stop()


def _wait_until_serving(base: str, procs: list[subprocess.Popen[bytes]]) -> None:
    deadline = time.monotonic() + 90
    while True:
        assert all(p.poll() is None for p in procs), "a demo process exited"
        try:
            httpx.get(base + "/", timeout=1)
            return
        except httpx.TransportError:
            assert time.monotonic() < deadline, "the demo app did not start"
            time.sleep(0.1)


def _wait_for(
    receiver: Receiver, done: t.Callable[[list[ReceivedSpan]], bool]
) -> list[ReceivedSpan]:
    deadline = time.monotonic() + 30
    while not done(spans := receiver.snapshot()):
        assert time.monotonic() < deadline, f"spans never arrived: {[s.name for s in spans]}"
        time.sleep(0.2)
    return spans


def test_one_trace_runs_from_the_request_through_redis_to_the_worker_processes(
    stack: tuple[str, Receiver],
) -> None:
    base, receiver = stack
    assert httpx.get(f"{base}/signup", timeout=10).status_code == 200

    def complete(spans: list[ReceivedSpan]) -> bool:
        crm = [
            s
            for s in spans
            if s.kind == CONSUMER and s.attributes.get("saq.job.function") == "sync_crm"
        ]
        email = [
            s
            for s in spans
            if s.kind == CONSUMER and s.attributes.get("saq.job.function") == "send_welcome_email"
        ]
        servers = [s for s in spans if s.kind == SERVER and "/signup" in s.name]
        return len(crm) == 2 and len(email) == 1 and bool(servers)

    spans = _wait_for(receiver, complete)
    (server,) = [s for s in spans if s.kind == SERVER and "/signup" in s.name]
    trace = [s for s in spans if s.trace_id == server.trace_id]
    by_id = {s.span_id: s for s in trace}

    sends = [s for s in trace if s.kind == PRODUCER]
    assert sorted(s.attributes["saq.job.function"] for s in sends) == [
        "send_welcome_email",
        "sync_crm",
    ]
    for send in sends:
        # The send span sits under the app's server span (directly or via its children).
        ancestor = send
        while ancestor.parent_span_id and ancestor.span_id != server.span_id:
            ancestor = by_id[ancestor.parent_span_id]
        assert ancestor.span_id == server.span_id
        assert send.service == "saq-demo-app"
        assert send.name == "send demo"
        assert send.attributes["messaging.system"] == "saq"
        assert send.attributes["messaging.operation.type"] == "send"
        assert send.attributes["messaging.destination.name"] == "demo"

    processes = sorted(
        (s for s in trace if s.kind == CONSUMER),
        key=lambda s: (s.attributes["saq.job.function"], s.attributes["saq.job.attempt"]),
    )
    send_of = {s.attributes["saq.job.key"]: s for s in sends}
    for process in processes:
        send = send_of[process.attributes["saq.job.key"]]
        assert process.service == "saq-demo-worker"  # made in a worker process
        assert process.name == "process demo"
        assert process.parent_span_id == send.span_id
        assert process.links == [send.span_id]
        assert process.attributes["messaging.message.id"] == send.attributes["messaging.message.id"]
        assert isinstance(process.attributes["saq.job.queue_wait_ms"], int)
        assert process.attributes["messaging.client.id"]

    (crm_1, crm_2), (email,) = processes[1:], processes[:1]
    assert (crm_1.attributes["saq.job.attempt"], crm_1.status_code) == (1, ERROR)
    assert crm_1.attributes["error.type"] == "ConnectionError"
    assert crm_1.attributes["saq.job.will_retry"] is True
    assert (crm_2.attributes["saq.job.attempt"], crm_2.attributes["saq.job.status"]) == (
        2,
        "complete",
    )
    assert email.attributes["saq.job.status"] == "complete"
    # Spans the job function starts are children of its attempt, in the worker process.
    (smtp,) = [s for s in trace if s.name == "smtp send"]
    assert smtp.parent_span_id == email.span_id and smtp.service == "saq-demo-worker"


def test_a_fan_out_with_map_is_one_trace_across_the_workers(stack: tuple[str, Receiver]) -> None:
    base, receiver = stack
    response = httpx.get(f"{base}/gallery", timeout=30)
    assert "Gallery resized" in response.text

    def complete(spans: list[ReceivedSpan]) -> bool:
        return (
            len(
                [
                    s
                    for s in spans
                    if s.kind == CONSUMER and s.attributes.get("saq.job.function") == "resize_image"
                ]
            )
            == 5
        )

    spans = _wait_for(receiver, complete)
    processes = [s for s in spans if s.kind == CONSUMER]
    sends = {s.span_id: s for s in spans if s.kind == PRODUCER}
    assert len({s.trace_id for s in processes}) == 1
    assert all(p.parent_span_id in sends for p in processes)
    assert all(p.attributes["saq.job.status"] == "complete" for p in processes)
