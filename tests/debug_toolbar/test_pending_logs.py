"""Log lines that come before the spans of their trace: a trace no request of the app
started (a remote worker's cron tick, a job a script enqueued) exists here only once its
SAQ spans arrive, and a worker's SDK sends lines every second but spans every five.

The lines are sent by the SDK's own OTLPLogExporter (protobuf over HTTP) to a real
Litestar app served on a port; the spans, in the SDK exporter's wire format, after them.
"""

from __future__ import annotations

import typing as t
import uuid
from pathlib import Path

import httpx
import pytest
from litestar.testing import TestClient
from opentelemetry.exporter.otlp.proto.http._log_exporter import OTLPLogExporter
from saq.queue.redis import RedisQueue

from opentelemetry.instrumentation.saq.debug_toolbar.panel import job_logs
from opentelemetry.instrumentation.saq.debug_toolbar.panel.job_logs import LogStore
from opentelemetry.instrumentation.saq.debug_toolbar.receivers import receiver
from opentelemetry.instrumentation.saq.debug_toolbar.receivers.pending_logs import (
    DEFAULT_MAX_AGE_S,
    pending_lines,
)
from opentelemetry.instrumentation.saq.disk_store import DiskStore
from tests.browser import serving
from tests.debug_toolbar.apps import litestar_app
from tests.debug_toolbar.otlp_payloads import PROTOBUF, RECEIVER, protobuf, worker_attempt
from tests.debug_toolbar.test_otlp_logs import LOGS, attempt_logs, write_logs
from tests.debug_toolbar.test_receiver import API
from tests.debug_toolbar.test_receiver_memory import (
    BOUND,
    SLACK,
    MiB,
    app_traces,
    held_bytes,
    hostile_logs,
    hostile_spans,
)

pytestmark = pytest.mark.usefixtures("instrument")
SENT = [("INFO", "rendered 3 rows"), ("ERROR", "lookup <b>failed</b>")]
"""What ``write_logs`` writes under the attempt and the receiver keeps (SAQ's own line
is left out; the line written outside any span goes to the workers page)."""


class Clock:
    """The pending area's clock, moved by hand: ageing out is tested without waiting."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> Clock:
    pending = pending_lines()
    pending.clear()
    clock = Clock()
    monkeypatch.setattr(pending, "clock", clock)
    return clock


def remote_attempt(key: str) -> tuple[str, list[t.Any]]:
    """A trace no request of the app started: a worker's attempt under a send span the
    app never saw (a script's enqueue). Its id, and its spans, not yet sent."""
    trace_id = uuid.uuid4().hex
    return trace_id, worker_attempt(trace_id, uuid.uuid4().hex[:16], key)


def attempt_span_id(spans: list[t.Any]) -> str:
    (attempt,) = [span for span in spans if span.name.startswith("process")]
    return f"{attempt.context.span_id:016x}"


def shown(client: t.Any, trace_id: str) -> list[tuple[str, str]]:
    return [(level, message) for level, _, message, _ in attempt_logs(client, trace_id)]


def new_queue(redis_url: str) -> RedisQueue:
    return RedisQueue.from_url(redis_url, name=f"pending-{uuid.uuid4().hex[:8]}")


def test_lines_sent_before_the_spans_of_a_trace_the_app_never_started_appear_with_them(
    redis_url: str, clock: Clock
) -> None:
    before = receiver.log_counts.received_spans
    with (
        serving(litestar_app(new_queue(redis_url), worker=False)) as base,
        httpx.Client(base_url=base) as client,
    ):
        trace_id, spans = remote_attempt("nightly-import")
        write_logs(OTLPLogExporter(endpoint=f"{base}{LOGS}"), trace_id, attempt_span_id(spans))
        unknown = client.get(f"{API}/{trace_id}").status_code
        waiting = len(pending_lines())
        clock.now += 5  # the span exporter's default delay
        answer = client.post(RECEIVER, content=protobuf(spans), headers=PROTOBUF)
        lines = shown(client, trace_id)

    assert lines == SENT
    assert (unknown, waiting, answer.status_code) == (404, 2, 200)
    assert len(pending_lines()) == 0
    # The two lines, and the one written outside a span (the workers page's).
    assert receiver.log_counts.received_spans - before == 3


def test_lines_that_waited_are_written_to_the_store_on_disk_and_outlive_the_process(
    redis_url: str, clock: Clock, tmp_path: Path
) -> None:
    """With the log store on disk (the toolbar's default in development), the lines that
    waited for their trace are written there once it comes, and read back after a restart
    (a new LogStore on the same file)."""
    path = tmp_path / "app.logs.sqlite3"
    disk = DiskStore(path, job_logs.encode_line, max_traces=100, max_bytes=2**24)
    disk.start()
    logs = job_logs.log_store()
    logs.keep_on_disk(disk)
    try:
        with (
            serving(litestar_app(new_queue(redis_url), worker=False)) as base,
            httpx.Client(base_url=base) as client,
        ):
            trace_id, spans = remote_attempt("disk-tick")
            exporter = OTLPLogExporter(endpoint=f"{base}{LOGS}")
            write_logs(exporter, trace_id, attempt_span_id(spans))
            client.post(RECEIVER, content=protobuf(spans), headers=PROTOBUF)
            assert disk.flush()
    finally:
        logs.keep_on_disk(None)
        disk.close()
    again = DiskStore(path, job_logs.encode_line, max_traces=100, max_bytes=2**24)
    again.start()
    restarted = LogStore()
    restarted.keep_on_disk(again)
    try:
        lines = restarted.lines(int(trace_id, 16))
    finally:
        again.close()
    assert [(line.level, line.message) for line in lines] == SENT


def test_lines_of_a_trace_that_never_comes_are_dropped_once_they_aged_and_counted(
    redis_url: str, clock: Clock
) -> None:
    pending = pending_lines()
    expired, dropped = pending.expired_lines, receiver.log_counts.dropped_spans
    with (
        serving(litestar_app(new_queue(redis_url), worker=False)) as base,
        httpx.Client(base_url=base) as client,
    ):
        never_id, never = remote_attempt("never-sent")
        late_id, late = remote_attempt("late-tick")
        write_logs(OTLPLogExporter(endpoint=f"{base}{LOGS}"), never_id, attempt_span_id(never))
        clock.now += DEFAULT_MAX_AGE_S + 1
        # The next export finds the first trace's lines too old: dropped, counted.
        write_logs(OTLPLogExporter(endpoint=f"{base}{LOGS}"), late_id, attempt_span_id(late))
        aged = pending.expired_lines - expired, receiver.log_counts.dropped_spans - dropped
        # Spans that come after all: their lines are gone; those of the newer trace show.
        client.post(RECEIVER, content=protobuf(never + late), headers=PROTOBUF)
        lines = shown(client, never_id), shown(client, late_id)

    # Dropped: the 2 aged lines, and SAQ's own line of each export (rejected at once).
    assert lines == ([], SENT)
    assert aged == (2, 4)


def test_lines_waiting_for_their_trace_stay_within_their_own_bound_in_bytes(
    redis_url: str, clock: Clock, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A sender posting lines of made-up traces fills the pending area only, within its
    bound (tracemalloc); the app's own lines stay, and the newest waiting lines still
    find their trace."""
    pending = pending_lines()
    monkeypatch.setattr(pending, "max_bytes", BOUND)
    logs = job_logs.log_store()
    logs.clear()
    answers: list[int] = []
    posted: list[tuple[str, str]] = []
    with TestClient(litestar_app(new_queue(redis_url), worker=False)) as client:
        own = app_traces(client, 1)
        client.post(LOGS, content=hostile_logs("own", own, records=2), headers=PROTOBUF)
        own_lines = len(logs.lines(int(own[0][0], 16)))

        def post(index: int) -> None:
            new = [(uuid.uuid4().hex, uuid.uuid4().hex[:16]) for _ in range(4)]
            posted.extend(new)
            body = hostile_logs(f"w{index}", new, records=5)
            answers.append(client.post(LOGS, content=body, headers=PROTOBUF).status_code)

        held = held_bytes(post, exports=10)
        pushed_out = pending.dropped_lines
        newest = posted[-1]
        client.post(
            RECEIVER, content=hostile_spans("w9", [newest], spans=1, saq=True), headers=PROTOBUF
        )
        found = len(logs.lines(int(newest[0], 16)))
        oldest = posted[0]
        client.post(
            RECEIVER, content=hostile_spans("w0", [oldest], spans=1, saq=True), headers=PROTOBUF
        )
        lost = len(logs.lines(int(oldest[0], 16)))
        kept_own = len(logs.lines(int(own[0][0], 16)))

    print(f"held {held / MiB:.1f} MiB, the pending area says {pending.held_bytes / MiB:.1f} MiB")
    assert answers == [200] * 10
    assert (found, lost) == (5, 0)  # the newest waited; the oldest went first
    assert held <= BOUND + SLACK
    assert pending.held_bytes <= BOUND and pushed_out > 0  # the bound bit
    assert (own_lines, kept_own) == (2, 2)
