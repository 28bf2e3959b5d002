"""One attempt's facts never reach another: aborts, sweeps and attempts of one key.

Job keys are reused all the time (cron keys, users' dedup keys) and SAQ 0.26.4 can run two
attempts of one key at once (a sweep re-queues a job whose first attempt is still alive):
whatever the worker side keeps about an attempt belongs to that attempt alone.
"""

from __future__ import annotations

import asyncio
import time
import typing as t
from collections.abc import Iterator

import pytest
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import StatusCode
from saq.job import TERMINAL_STATUSES, Job, Status
from saq.queue import Queue

from opentelemetry.instrumentation.saq import SAQInstrumentor
from tests.test_metrics import points
from tests.workers import finished, running_worker, spans_named, wait_for_spans, wait_until

Ctx = dict[str, t.Any]

# Keys of the jobs whose function has started, by attempt.
_running: set[tuple[str, int]] = set()
# Attempts a test lets finish, by (key, attempt).
_released: set[tuple[str, int]] = set()


async def swallows_abort(ctx: Ctx) -> str:
    job = ctx["job"]
    _running.add((job.key, job.attempts))
    try:
        await asyncio.sleep(30)
    except asyncio.CancelledError:
        return "carried on"  # swallows the cancellation: SAQ still records an abort
    return "slept"


async def add(ctx: Ctx, *, a: int, b: int) -> int:
    return a + b


async def sleeps(ctx: Ctx) -> None:
    job = ctx["job"]
    _running.add((job.key, job.attempts))
    await asyncio.sleep(30)


async def outlives_its_sweep(ctx: Ctx) -> str:
    """The first attempt ignores its cancellation until released; later ones heartbeat."""
    job = ctx["job"]
    attempt = (job.key, job.attempts)
    _running.add(attempt)
    if job.attempts == 1:
        while attempt not in _released:
            try:
                await asyncio.sleep(0.02)
            except asyncio.CancelledError:
                continue  # stuck on something that will not be interrupted
        raise asyncio.CancelledError  # then honours the abort
    while attempt not in _released:
        await job.update()  # the heartbeat SAQ asks of long jobs
        await asyncio.sleep(0.2)
    return "second attempt"


FUNCTIONS = [swallows_abort, add, sleeps, outlives_its_sweep]


@pytest.fixture
def reader() -> InMemoryMetricReader:
    return InMemoryMetricReader()


@pytest.fixture
def instrumented(
    reader: InMemoryMetricReader, tracer_provider: TracerProvider
) -> Iterator[SAQInstrumentor]:
    instrumentor = SAQInstrumentor()
    instrumentor.instrument(
        tracer_provider=tracer_provider, meter_provider=MeterProvider(metric_readers=[reader])
    )
    yield instrumentor
    instrumentor.uninstrument()


@pytest.fixture(params=["redis", "postgres"])
def any_queue(request: pytest.FixtureRequest) -> Queue:
    name = "queue" if request.param == "redis" else "pg_queue"
    return t.cast(Queue, request.getfixturevalue(name))


def outcomes(reader: InMemoryMetricReader) -> list[tuple[str, str | None, int]]:
    """(saq.job.status, error.type, count) of every messaging.process.duration point."""
    return sorted(
        (
            str(point.attributes["saq.job.status"]),
            t.cast("str | None", point.attributes.get("error.type")),
            point.count,
        )
        for point in points(reader).get("messaging.process.duration", [])
    )


async def until_running(key: str, attempt: int = 1) -> None:
    await wait_until(lambda: (key, attempt) in _running, timeout=20)


async def until_final(queue: Queue, key: str) -> Job:
    deadline = time.monotonic() + 20
    while (job := await queue.job(key)) is None or job.status not in TERMINAL_STATUSES:
        assert time.monotonic() < deadline, f"{key} never ended: {job!r}"
        await asyncio.sleep(0.02)
    return job


@pytest.mark.usefixtures("instrumented")
async def test_a_swallowed_abort_does_not_taint_the_next_job_with_the_same_key(
    any_queue: Queue, exporter: InMemorySpanExporter, reader: InMemoryMetricReader
) -> None:
    key = f"report:{time.monotonic_ns()}"
    first = await any_queue.enqueue("swallows_abort", key=key, timeout=60)
    assert first is not None
    async with running_worker(any_queue, FUNCTIONS, poll_interval=0.05):
        await until_running(key)
        await first.abort("user pressed cancel")
        # SAQ 0.26 records the abort; 0.20 may keep "complete" on Postgres (its own race).
        await until_final(any_queue, key)
        await wait_for_spans(exporter, f"process {any_queue.name}", 1)
        # The same key again, once SAQ lets it in (Postgres wants a later scheduled time).
        second = await any_queue.enqueue("add", key=key, a=1, b=2, scheduled=int(time.time()) + 1)
        assert second is not None
        _, completed = await wait_for_spans(exporter, f"process {any_queue.name}", 2, timeout=20)
        await finished(second, 10)

    assert second.status == Status.COMPLETE and second.result == 3  # what SAQ decided...
    attributes = completed.attributes or {}
    assert attributes["saq.job.status"] == "complete"  # ...is what the attempt says
    assert "error.type" not in attributes
    assert completed.status.status_code is StatusCode.UNSET
    assert ("complete", None, 1) in outcomes(reader)  # the second job's only point
    assert sum(count for *_, count in outcomes(reader)) == 2


SWEEPING = {"schedule": 1, "worker_info": 10, "sweep": 1, "abort": 0.1}


def assert_swept_and_requeued(span: t.Any) -> None:
    first = span.attributes or {}
    assert (first["saq.job.attempt"], first["saq.job.status"]) == (1, "queued")
    assert first["saq.job.will_retry"] is True
    assert first["error.type"] == "aborted" and span.status.description == "swept"


@pytest.mark.usefixtures("instrumented")
async def test_an_attempt_the_sweep_aborts_says_the_job_will_retry_when_saq_requeues_it(
    any_queue: Queue, exporter: InMemorySpanExporter, reader: InMemoryMetricReader
) -> None:
    # Alive but silent past its heartbeat: SAQ's sweep takes the job for stuck, aborts the
    # attempt, and re-queues the job while it has attempts left; the last one stays aborted.
    async with running_worker(
        any_queue, FUNCTIONS, sweeps=True, timers=SWEEPING, poll_interval=0.05
    ):
        job = await any_queue.enqueue("sleeps", heartbeat=1, timeout=60, retries=2)
        assert job is not None
        if not hasattr(Queue, "swept_error_message"):
            # SAQ 0.20's worker forgets a task by key when an attempt ends: when the first
            # attempt's end comes after the second's start, SAQ never aborts the second.
            # Only the first attempt's outcome is certain there.
            (requeued,) = await wait_for_spans(exporter, f"process {any_queue.name}", 1)
            assert_swept_and_requeued(requeued)
            return
        requeued, last = await wait_for_spans(exporter, f"process {any_queue.name}", 2, timeout=30)
        await finished(job, 15)

    assert (job.status, job.attempts, job.error) == (Status.ABORTED, 2, "swept")
    assert_swept_and_requeued(requeued)
    final = last.attributes or {}
    assert (final["saq.job.attempt"], final["saq.job.status"]) == (2, "aborted")
    assert "saq.job.will_retry" not in final
    assert outcomes(reader) == [("aborted", "aborted", 1), ("queued", "aborted", 1)]


OVERLAPPING = {"schedule": 1, "worker_info": 10, "sweep": 1, "abort": 2}


# SAQ 0.20's worker forgets a job's task by key when either attempt ends, and this
# sequence goes otherwise there; the overlap came with SAQ 0.26.4's worker.
@pytest.mark.skipif(not hasattr(Queue, "swept_error_message"), reason="SAQ 0.26's behaviour")
@pytest.mark.usefixtures("instrumented")
async def test_overlapping_attempts_of_one_key_each_get_their_own_span_outcome_and_point(
    queue: Queue, exporter: InMemorySpanExporter, reader: InMemoryMetricReader
) -> None:
    # The first attempt goes silent and ignores its abort: SAQ's sweep gives up waiting for
    # it (5 s), re-queues the job, and the second attempt runs beside the first (SAQ 0.26).
    async with running_worker(queue, FUNCTIONS, sweeps=True, timers=OVERLAPPING, concurrency=2):
        job = await queue.enqueue("outlives_its_sweep", heartbeat=1, timeout=60, retries=3)
        assert job is not None
        await until_running(job.key, attempt=2)
        _released.add((job.key, 1))  # the first attempt ends while the second runs...
        (first,) = await wait_for_spans(exporter, f"process {queue.name}", 1)
        _released.add((job.key, 2))  # ...which then ends before SAQ's abort loop looks again
        await wait_for_spans(exporter, f"process {queue.name}", 2)
        await finished(job, 10)

    _, second = sorted(spans_named(exporter, f"process {queue.name}"), key=attempt_number)
    assert (job.status, job.result) == (Status.COMPLETE, "second attempt")
    assert first.context.span_id != second.context.span_id
    one, two = first.attributes or {}, second.attributes or {}
    assert (one["saq.job.attempt"], two["saq.job.attempt"]) == (1, 2)
    # The second completed; the first was aborted by the sweep that re-queued the job.
    assert two["saq.job.status"] == "complete" and "error.type" not in two
    assert second.status.status_code is StatusCode.UNSET
    assert (one["saq.job.status"], one["error.type"], one["saq.job.will_retry"]) == (
        "queued",
        "aborted",
        True,
    )
    assert outcomes(reader) == [("complete", None, 1), ("queued", "aborted", 1)]
    assert second.parent is not None and first.parent is not None
    assert second.parent.span_id == first.parent.span_id  # both children of the one send


def attempt_number(span: ReadableSpan) -> int:
    return int(t.cast(int, (span.attributes or {})["saq.job.attempt"]))
