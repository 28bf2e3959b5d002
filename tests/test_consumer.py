"""The process span of every attempt a real worker makes, and its outcome."""

from __future__ import annotations

import asyncio
import logging
import threading
import typing as t

import pytest
from opentelemetry import baggage, context, trace
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, StatusCode
from saq import Job
from saq.job import Status
from saq.queue.redis import RedisQueue

from opentelemetry.instrumentation.saq import META_KEY, SAQInstrumentor
from tests.workers import finished, running_worker, spans_named, wait_for_spans

Ctx = dict[str, t.Any]
tracer = trace.get_tracer("job-code")


async def add(ctx: Ctx, *, a: int, b: int) -> int:
    return a + b


async def add_with_child_span(ctx: Ctx, *, a: int, b: int) -> int:
    with tracer.start_as_current_span("compute sum"):
        return a + b


def add_in_thread(ctx: Ctx, *, a: int, b: int) -> int:
    with tracer.start_as_current_span("compute in thread") as span:
        span.set_attribute("thread", threading.current_thread().name)
        return a + b


async def always_fails(ctx: Ctx) -> None:
    raise ValueError("the mail server said no")


_calls: dict[str, int] = {}


async def fails_twice(ctx: Ctx) -> str:
    key = ctx["job"].key
    _calls[key] = _calls.get(key, 0) + 1
    if _calls[key] < 3:
        raise ConnectionError(f"flaky {_calls[key]}")
    return "ok"


# Keys of the jobs whose function has started. SAQ marks a job active before its
# function runs, so a test that stops or aborts "mid-job" waits for this instead.
_running: set[str] = set()


async def sleeps(ctx: Ctx, *, seconds: float = 30) -> None:
    _running.add(ctx["job"].key)
    await asyncio.sleep(seconds)


async def until_running(job: Job) -> None:
    for _ in range(500):
        if job.key in _running:
            return
        await asyncio.sleep(0.01)
    raise AssertionError(f"{job.key} never started")


async def swallows_abort(ctx: Ctx, *, seconds: float = 30) -> str:
    _running.add(ctx["job"].key)
    try:
        await asyncio.sleep(seconds)
    except asyncio.CancelledError:
        return "carried on"  # swallows the cancellation: SAQ still records an abort
    return "slept"


async def read_baggage(ctx: Ctx) -> str | None:
    value = baggage.get_baggage("tenant")
    return str(value) if value is not None else None


FUNCTIONS = [
    add,
    add_with_child_span,
    add_in_thread,
    always_fails,
    fails_twice,
    sleeps,
    swallows_abort,
    read_baggage,
]


pytestmark = pytest.mark.usefixtures("instrument")


@pytest.fixture(autouse=True)
def _job_code_uses_the_test_provider(
    tracer_provider: TracerProvider, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Job code uses the global API's proxy tracer; route it to this test's provider.
    monkeypatch.setattr(trace, "_TRACER_PROVIDER", tracer_provider)


async def test_request_send_and_process_form_one_trace(
    queue: RedisQueue, exporter: InMemorySpanExporter, tracer_provider: TracerProvider
) -> None:
    with tracer_provider.get_tracer("app").start_as_current_span("POST /sum") as request:
        job = await queue.enqueue("add", a=1, b=2)
    assert job is not None
    async with running_worker(queue, FUNCTIONS, id="worker-1"):
        (process,) = await wait_for_spans(exporter, f"process {queue.name}", 1)

    (send,) = spans_named(exporter, f"send {queue.name}")
    trace_id = request.get_span_context().trace_id
    assert send.context.trace_id == process.context.trace_id == trace_id
    assert process.parent is not None and process.parent.span_id == send.context.span_id
    assert [link.context.span_id for link in process.links] == [send.context.span_id]
    assert process.kind is SpanKind.CONSUMER
    assert process.status.status_code is StatusCode.UNSET
    attributes = dict(process.attributes or {})
    wait_ms = attributes.pop("saq.job.queue_wait_ms")
    assert isinstance(wait_ms, int) and wait_ms >= 0
    assert attributes == {
        "messaging.system": "saq",
        "messaging.operation.type": "process",
        "messaging.operation.name": "process",
        "messaging.destination.name": queue.name,
        "messaging.message.id": job.id,
        "saq.job.key": job.key,
        "saq.job.function": "add",
        "saq.job.retries": 1,
        "saq.job.timeout": 10,
        "saq.job.attempt": 1,
        "saq.job.status": "complete",
        "messaging.client.id": "worker-1",
        "server.address": "127.0.0.1",
        "server.port": queue.redis.connection_pool.connection_kwargs["port"],
    }


async def test_a_span_started_in_the_job_is_a_child_of_the_attempt(
    queue: RedisQueue, exporter: InMemorySpanExporter
) -> None:
    await queue.enqueue("add_with_child_span", a=1, b=2)
    await queue.enqueue("add_in_thread", a=1, b=2)
    async with running_worker(queue, FUNCTIONS):
        processes = await wait_for_spans(exporter, f"process {queue.name}", 2)

    by_function = {(p.attributes or {})["saq.job.function"]: p for p in processes}
    for function, child_name in [
        ("add_with_child_span", "compute sum"),
        ("add_in_thread", "compute in thread"),
    ]:
        (child,) = spans_named(exporter, child_name)
        assert child.parent is not None
        assert child.parent.span_id == by_function[function].context.span_id
    (threaded,) = spans_named(exporter, "compute in thread")
    assert (threaded.attributes or {})["thread"] != threading.current_thread().name


async def test_each_retry_is_its_own_span_and_all_are_children_of_the_one_producer(
    queue: RedisQueue, exporter: InMemorySpanExporter
) -> None:
    job = await queue.enqueue("fails_twice", retries=3)
    assert job is not None
    async with running_worker(queue, FUNCTIONS):
        attempts = await wait_for_spans(exporter, f"process {queue.name}", 3)

    (send,) = spans_named(exporter, f"send {queue.name}")
    assert [(a.attributes or {})["saq.job.attempt"] for a in attempts] == [1, 2, 3]
    assert all(a.parent is not None and a.parent.span_id == send.context.span_id for a in attempts)
    assert all(a.context.trace_id == send.context.trace_id for a in attempts)
    first, second, third = attempts
    for failed in (first, second):
        attributes = failed.attributes or {}
        assert failed.status.status_code is StatusCode.ERROR
        assert attributes["error.type"] == "ConnectionError"
        assert attributes["saq.job.will_retry"] is True
        assert attributes["saq.job.status"] == "queued"
        assert [e.name for e in failed.events] == ["exception"]
        # The wait of a retry is measured from the retry, which we recorded in the job.
        assert isinstance(attributes["saq.job.queue_wait_ms"], int)
    assert third.status.status_code is StatusCode.UNSET
    assert (third.attributes or {})["saq.job.status"] == "complete"
    assert "error.type" not in (third.attributes or {})
    stored = await queue.job(job.key)
    assert stored is not None and stored.result == "ok"


async def test_a_final_failure_is_an_error_with_no_retry(
    queue: RedisQueue, exporter: InMemorySpanExporter
) -> None:
    await queue.enqueue("always_fails")
    async with running_worker(queue, FUNCTIONS):
        (attempt,) = await wait_for_spans(exporter, f"process {queue.name}", 1)

    attributes = attempt.attributes or {}
    assert attempt.status.status_code is StatusCode.ERROR
    # The description is the message; the type is error.type's, not repeated.
    assert attempt.status.description == "the mail server said no"
    assert attributes["error.type"] == "ValueError"
    assert attributes["saq.job.status"] == "failed"
    assert "saq.job.will_retry" not in attributes


async def test_a_timeout_is_recorded_as_a_timeout_error(
    queue: RedisQueue, exporter: InMemorySpanExporter
) -> None:
    await queue.enqueue("sleeps", seconds=5, timeout=1)
    async with running_worker(queue, FUNCTIONS):
        (attempt,) = await wait_for_spans(exporter, f"process {queue.name}", 1)

    assert attempt.status.status_code is StatusCode.ERROR
    assert (attempt.attributes or {})["error.type"] == "TimeoutError"
    assert (attempt.attributes or {})["saq.job.status"] == "failed"


async def test_an_abort_ends_the_attempt_with_the_abort_reason(
    queue: RedisQueue, exporter: InMemorySpanExporter
) -> None:
    job = await queue.enqueue("sleeps", seconds=30, timeout=60)
    assert job is not None
    async with running_worker(queue, FUNCTIONS):
        await until_running(job)
        await job.abort("user pressed cancel")
        (attempt,) = await wait_for_spans(exporter, f"process {queue.name}", 1)

    attributes = attempt.attributes or {}
    assert attempt.status.status_code is StatusCode.ERROR
    assert attributes["error.type"] == "aborted"
    assert attributes["saq.job.status"] == "aborted"
    assert "user pressed cancel" in (attempt.status.description or "")


async def test_an_abort_the_function_swallows_is_still_an_abort(
    queue: RedisQueue, exporter: InMemorySpanExporter
) -> None:
    job = await queue.enqueue("swallows_abort", timeout=60)
    assert job is not None
    async with running_worker(queue, FUNCTIONS):
        await until_running(job)
        await job.abort("user pressed cancel")
        (attempt,) = await wait_for_spans(exporter, f"process {queue.name}", 1)
        await finished(job, 10)

    assert job.status == Status.ABORTED  # what SAQ decided...
    attributes = attempt.attributes or {}
    assert attributes["saq.job.status"] == "aborted"  # ...is what the attempt says
    assert attributes["error.type"] == "aborted"
    assert attempt.status.status_code is StatusCode.ERROR


async def test_a_worker_stopped_mid_job_ends_the_attempt_as_cancelled(
    queue: RedisQueue, exporter: InMemorySpanExporter
) -> None:
    job = await queue.enqueue("sleeps", seconds=30, timeout=60, retries=2)
    assert job is not None
    async with running_worker(queue, FUNCTIONS, shutdown_grace_period_s=0):
        await until_running(job)
    (attempt,) = spans_named(exporter, f"process {queue.name}")
    attributes = attempt.attributes or {}
    assert attempt.status.status_code is StatusCode.ERROR
    assert attributes["error.type"] == "cancelled"
    assert attributes["saq.job.status"] == "queued"


async def test_apply_and_map_trace_every_job(
    queue: RedisQueue, exporter: InMemorySpanExporter
) -> None:
    async with running_worker(queue, FUNCTIONS):
        assert await queue.apply("add", a=1, b=1) == 2
        assert await queue.map("add", [{"a": 1, "b": 2}, {"a": 3, "b": 4}]) == [
            3,
            7,
        ]
        processes = await wait_for_spans(exporter, f"process {queue.name}", 3)

    sends = spans_named(exporter, f"send {queue.name}")
    assert len(sends) == 3
    assert {p.parent.span_id for p in processes if p.parent} == {s.context.span_id for s in sends}


async def test_a_job_with_a_malformed_context_runs_under_a_root_span(
    queue: RedisQueue, exporter: InMemorySpanExporter, caplog: pytest.LogCaptureFixture
) -> None:
    bad_meta: list[t.Any] = [
        {META_KEY: {"traceparent": "00-zzzz-not-a-context-01"}},
        {META_KEY: "a string, not a carrier"},
        {META_KEY: {"traceparent": 42, 7: "x"}},
        {META_KEY: {"traceparent": "00-" + "a" * 100_000}},
    ]
    keys = []
    for meta in bad_meta:
        job = Job("add", kwargs={"a": 1, "b": 1}, meta=meta)
        await queue._enqueue(
            job.__class__(**{**job.__dict__, "queue": queue})
        )  # bypass our producer
        keys.append(job.key)
    with caplog.at_level(logging.DEBUG, logger="opentelemetry.instrumentation.saq"):
        async with running_worker(queue, FUNCTIONS):
            processes = await wait_for_spans(exporter, f"process {queue.name}", len(bad_meta))

    assert all(p.parent is None and not p.links for p in processes)
    assert all(p.status.status_code is StatusCode.UNSET for p in processes)
    for key in keys:
        stored = await queue.job(key)
        assert stored is not None and stored.status == Status.COMPLETE and stored.result == 2
    assert "no usable trace context" in caplog.text


async def test_use_links_starts_a_new_trace_linked_to_the_producer(
    queue: RedisQueue,
    exporter: InMemorySpanExporter,
    tracer_provider: TracerProvider,
    instrument: SAQInstrumentor,
) -> None:
    instrument.uninstrument()
    instrument.instrument(tracer_provider=tracer_provider, use_links=True)
    await queue.enqueue("add", a=1, b=2)
    async with running_worker(queue, FUNCTIONS):
        (process,) = await wait_for_spans(exporter, f"process {queue.name}", 1)

    (send,) = spans_named(exporter, f"send {queue.name}")
    assert process.parent is None
    assert process.context.trace_id != send.context.trace_id
    assert [link.context.span_id for link in process.links] == [send.context.span_id]


async def test_baggage_travels_from_the_producer_to_the_job(queue: RedisQueue) -> None:
    token = context.attach(baggage.set_baggage("tenant", "acme"))
    try:
        job = await queue.enqueue("read_baggage")
    finally:
        context.detach(token)
    assert job is not None
    async with running_worker(queue, FUNCTIONS):
        await finished(job, 10)
    assert job.result == "acme"


async def test_queue_wait_counts_from_the_scheduled_time(
    queue: RedisQueue, exporter: InMemorySpanExporter
) -> None:
    import time

    job = await queue.enqueue("add", a=1, b=2, scheduled=int(time.time()) + 1)
    assert job is not None
    async with running_worker(queue, FUNCTIONS):
        (process,) = await wait_for_spans(exporter, f"process {queue.name}", 1)

    # Enqueued up to a second before it was due: that time is not queue wait.
    stored = await queue.job(job.key)
    assert stored is not None
    assert (process.attributes or {})[
        "saq.job.queue_wait_ms"
    ] == stored.started - stored.scheduled * 1000


async def test_a_worker_stopped_before_the_function_started_is_cancelled_not_aborted(
    queue: RedisQueue, exporter: InMemorySpanExporter
) -> None:
    entered = asyncio.Event()

    async def slow_before_process(ctx: Ctx) -> None:
        entered.set()
        await asyncio.sleep(30)

    job = await queue.enqueue("add", a=1, b=1)
    assert job is not None
    async with running_worker(
        queue, FUNCTIONS, before_process=slow_before_process, shutdown_grace_period_s=0
    ):
        await asyncio.wait_for(entered.wait(), 10)
    (attempt,) = spans_named(exporter, f"process {queue.name}")
    attributes = attempt.attributes or {}
    # Nothing was aborted: the worker shut down (on every Python, 3.10 included). What
    # became of the job is SAQ's to say: 0.26 leaves it active, 0.20 re-queues it.
    stored = await queue.job(job.key)
    assert stored is not None
    assert attributes["error.type"] == "cancelled"
    assert attributes["saq.job.status"] == getattr(stored.status, "value", stored.status)
