"""Quiet workers: with the Redis and psycopg instrumentations on, SAQ's own machinery
exports nothing, and a job exports exactly one trace.

The issue's figure is "0 spans in 60 s". The window here is shorter, with SAQ's timers
set short, and lasts until the queue has counted at least what 60 s of an idle worker on
the default timers does (60 schedule runs, 6 stats writes, 1 sweep; dequeues polled with
a short timeout, each a round trip): the same machinery, run as many times or more.
"""

from __future__ import annotations

import collections
import typing as t
import uuid
from collections.abc import AsyncIterator, Iterator

import pytest
import redis.asyncio
from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.instrumentation.psycopg import PsycopgInstrumentor
from opentelemetry.instrumentation.redis import RedisInstrumentor
from opentelemetry.instrumentation.utils import is_instrumentation_enabled, suppress_instrumentation
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from saq import CronJob
from saq.queue.base import Queue
from saq.queue.postgres import PostgresQueue
from saq.queue.redis import RedisQueue

from opentelemetry.instrumentation.saq import SAQInstrumentor
from tests.workers import running_worker, spans_named, wait_for_spans, wait_until

Ctx = dict[str, t.Any]
# At least what 60 s of an idle worker on SAQ's default timers does.
MINUTE = {"schedule": 60, "write_worker_info": 6, "sweep": 1, "dequeue": 60}
# Enough for what a job left behind to have been exported: each chore ran again since.
SETTLED = {"schedule": 3, "write_worker_info": 1, "dequeue": 3}
SHORT_TIMERS = {"schedule": 0.02, "worker_info": 1, "sweep": 1, "abort": 0.02}


class CountsMachinery(Queue):
    """Counts the runs of SAQ's machinery; the real methods do the work."""

    runs: collections.Counter[str]

    async def dequeue(self, *args: t.Any, **kwargs: t.Any) -> t.Any:
        self.runs["dequeue"] += 1
        return await super().dequeue(*args, **kwargs)

    async def schedule(self, lock: float = 1) -> t.Any:
        self.runs["schedule"] += 1
        # SAQ passes its schedule timer as the lock's lifetime, which Redis wants whole.
        return await super().schedule(max(1, round(lock)))

    async def sweep(self, *args: t.Any, **kwargs: t.Any) -> t.Any:
        self.runs["sweep"] += 1
        return await super().sweep(*args, **kwargs)

    async def write_worker_info(self, *args: t.Any, **kwargs: t.Any) -> t.Any:
        self.runs["write_worker_info"] += 1
        return await super().write_worker_info(*args, **kwargs)

    async def jobs(self, *args: t.Any, **kwargs: t.Any) -> t.Any:  # the abort polling
        self.runs["jobs"] += 1
        return await super().jobs(*args, **kwargs)


class CountingRedisQueue(CountsMachinery, RedisQueue):
    pass


class CountingPostgresQueue(CountsMachinery, PostgresQueue):
    pass


@pytest.fixture
def traced_clients(tracer_provider: TracerProvider) -> Iterator[None]:
    """The Redis and psycopg instrumentations, as a user's `opentelemetry-instrument` has."""
    RedisInstrumentor().instrument(tracer_provider=tracer_provider)
    PsycopgInstrumentor().instrument(tracer_provider=tracer_provider)
    yield
    RedisInstrumentor().uninstrument()
    PsycopgInstrumentor().uninstrument()


@pytest.fixture
async def counting_queue(redis_url: str, traced_clients: None) -> AsyncIterator[RedisQueue]:
    queue = CountingRedisQueue.from_url(redis_url, name=f"quiet-{uuid.uuid4().hex[:8]}")
    queue.runs = collections.Counter()
    await queue.connect()
    yield queue
    await queue.disconnect()


@pytest.fixture
async def client(redis_url: str, traced_clients: None) -> AsyncIterator[redis.asyncio.Redis]:
    client = redis.asyncio.Redis.from_url(redis_url)
    yield client
    await client.aclose()


def instrument(tracer_provider: TracerProvider, **options: t.Any) -> None:
    SAQInstrumentor().instrument(tracer_provider=tracer_provider, **options)


async def idle_minute(queue: CountsMachinery, runs: t.Mapping[str, int] = MINUTE) -> None:
    """Wait until the worker's machinery ran at least as often as in a minute of idling
    (or as ``runs`` says)."""
    start = collections.Counter(queue.runs)
    await wait_until(
        lambda: all(queue.runs[name] - start[name] >= n for name, n in runs.items()),
        timeout=60,
    )


def traces(exporter: InMemorySpanExporter) -> set[int]:
    return {span.context.trace_id for span in exporter.get_finished_spans() if span.context}


def children(exporter: InMemorySpanExporter, parent: ReadableSpan) -> list[str]:
    assert parent.context is not None
    return sorted(
        span.name
        for span in exporter.get_finished_spans()
        if span.parent is not None and span.parent.span_id == parent.context.span_id
    )


async def test_an_idle_redis_worker_exports_no_spans(
    counting_queue: CountingRedisQueue,
    exporter: InMemorySpanExporter,
    tracer_provider: TracerProvider,
) -> None:
    instrument(tracer_provider)
    options = {"timers": SHORT_TIMERS, "dequeue_timeout": 0.02}
    async with running_worker(counting_queue, [noop], **options):
        exporter.clear()  # the test's own SET of the sweep lock
        await idle_minute(counting_queue)
        assert exporter.get_finished_spans() == ()


async def test_an_idle_postgres_worker_exports_no_spans(
    postgres_url: str,
    traced_clients: None,
    exporter: InMemorySpanExporter,
    tracer_provider: TracerProvider,
) -> None:
    instrument(tracer_provider)
    queue = CountingPostgresQueue.from_url(
        postgres_url, name=f"quiet-{uuid.uuid4().hex[:8]}", min_size=2, max_size=8
    )
    queue.runs = collections.Counter()
    await queue.connect()  # SAQ's migrations check: quiet as well
    try:
        assert exporter.get_finished_spans() == ()
        options = {"timers": SHORT_TIMERS, "dequeue_timeout": 0.02, "poll_interval": 0.02}
        async with running_worker(queue, [noop], **options):
            exporter.clear()  # the test's own sweep lock
            await idle_minute(queue)
            assert exporter.get_finished_spans() == ()
    finally:
        await queue.disconnect()


async def noop(ctx: Ctx) -> None:
    pass


def traced_job(client: redis.asyncio.Redis, queue: CountsMachinery) -> t.Any:
    async def count_visit(ctx: Ctx) -> int:
        # Running long enough for the abort polling to look at it, twice.
        polled = queue.runs["jobs"]
        await wait_until(lambda: queue.runs["jobs"] >= polled + 2)
        # The job's own Redis calls, with commands SAQ never sends.
        await client.hgetall(f"{queue.name}:visits")
        return t.cast(int, await client.incr(f"{queue.name}:visits:count"))

    return count_visit


def hooks(client: redis.asyncio.Redis) -> dict[str, t.Any]:
    async def before_process(ctx: Ctx) -> None:
        await client.exists("user:before")

    async def after_process(ctx: Ctx) -> None:
        await client.ttl("user:after")

    return {"before_process": before_process, "after_process": after_process}


async def run_one_job(
    queue: CountsMachinery, client: redis.asyncio.Redis, exporter: InMemorySpanExporter
) -> tuple[ReadableSpan, ReadableSpan]:
    async def before_enqueue(job: t.Any) -> None:
        await client.strlen("user:before_enqueue")

    queue.register_before_enqueue(before_enqueue)
    function = traced_job(client, queue)
    options = {"timers": SHORT_TIMERS, "dequeue_timeout": 0.02, **hooks(client)}
    async with running_worker(queue, [("count_visit", function)], **options):
        exporter.clear()  # the test's own SET of the sweep lock
        job = await queue.enqueue("count_visit")
        assert job is not None
        (process,) = await wait_for_spans(exporter, f"process {queue.name}", 1)
        await idle_minute(queue, SETTLED)  # anything the job left behind is exported by now
    (send,) = spans_named(exporter, f"send {queue.name}")
    return send, process


async def test_a_job_exports_one_trace_with_saqs_calls_inside_its_spans(
    counting_queue: CountingRedisQueue,
    client: redis.asyncio.Redis,
    exporter: InMemorySpanExporter,
    tracer_provider: TracerProvider,
) -> None:
    instrument(tracer_provider)
    send, process = await run_one_job(counting_queue, client, exporter)

    assert traces(exporter) == {send.context.trace_id}
    assert process.parent is not None and process.parent.span_id == send.context.span_id
    # The user's code, traced: the job, its hooks and before-enqueue callback.
    user = {"HGETALL", "INCRBY", "EXISTS", "TTL"}
    assert user <= set(children(exporter, process))
    assert "STRLEN" in children(exporter, send)
    # SAQ's own calls inside the spans: the enqueue script, the status writes.
    assert "EVALSHA" in children(exporter, send)
    assert set(children(exporter, process)) - user  # SAQ's writes as the job finished
    assert not spans_named(exporter, "BLMOVE")  # the dequeue: outside any job's span


async def test_internal_instrumentation_in_jobs_off_leaves_only_the_users_calls(
    counting_queue: CountingRedisQueue,
    client: redis.asyncio.Redis,
    exporter: InMemorySpanExporter,
    tracer_provider: TracerProvider,
) -> None:
    instrument(tracer_provider, internal_instrumentation_in_jobs=False)
    send, process = await run_one_job(counting_queue, client, exporter)

    assert traces(exporter) == {send.context.trace_id}
    assert children(exporter, process) == ["EXISTS", "HGETALL", "INCRBY", "TTL"]
    assert children(exporter, send) == ["STRLEN", process.name]
    assert len(exporter.get_finished_spans()) == 2 + 5


async def test_enable_internal_instrumentation_traces_every_command_as_before(
    counting_queue: CountingRedisQueue,
    client: redis.asyncio.Redis,
    exporter: InMemorySpanExporter,
    tracer_provider: TracerProvider,
) -> None:
    instrument(tracer_provider, enable_internal_instrumentation=True)
    send, _ = await run_one_job(counting_queue, client, exporter)

    roots = {span.name for span in exporter.get_finished_spans() if span.parent is None}
    assert {"BLMOVE", "EVALSHA", "MGET"} <= roots  # dequeue, schedule, abort polling
    assert len(traces(exporter)) > 1 + MINUTE["schedule"]
    assert "EVALSHA" in children(exporter, send)


async def test_a_postgres_job_exports_one_trace(
    postgres_url: str,
    traced_clients: None,
    exporter: InMemorySpanExporter,
    tracer_provider: TracerProvider,
) -> None:
    instrument(tracer_provider)
    queue = CountingPostgresQueue.from_url(
        postgres_url, name=f"quiet-{uuid.uuid4().hex[:8]}", min_size=2, max_size=8
    )
    queue.runs = collections.Counter()
    await queue.connect()
    options = {"timers": SHORT_TIMERS, "dequeue_timeout": 0.02, "poll_interval": 0.02}
    try:
        async with running_worker(queue, [noop], **options):
            exporter.clear()  # the test's own sweep lock
            job = await queue.enqueue("noop")
            assert job is not None
            (process,) = await wait_for_spans(exporter, f"process {queue.name}", 1)
            await idle_minute(queue, SETTLED)
    finally:
        await queue.disconnect()
    (send,) = spans_named(exporter, f"send {queue.name}")

    assert traces(exporter) == {send.context.trace_id}
    assert children(exporter, send)  # the enqueue's SQL, inside the send span
    assert children(exporter, process)  # the finish's SQL, inside the process span


async def test_before_enqueue_callbacks_of_a_cron_tick_run_unsuppressed(
    counting_queue: CountingRedisQueue,
    exporter: InMemorySpanExporter,
    tracer_provider: TracerProvider,
) -> None:
    instrument(tracer_provider)
    seen: list[bool] = []

    async def before_enqueue(job: t.Any) -> None:
        seen.append(is_instrumentation_enabled())

    counting_queue.register_before_enqueue(before_enqueue)
    cron = CronJob(noop, cron="* * * * * *")  # every second
    options = {"timers": SHORT_TIMERS, "cron_jobs": [cron]}
    async with running_worker(counting_queue, [noop], **options):
        await wait_until(lambda: len(seen) >= 2)
    assert all(seen)


async def test_a_non_unique_cron_ticks_callbacks_run_under_its_send_span(
    counting_queue: CountingRedisQueue,
    exporter: InMemorySpanExporter,
    tracer_provider: TracerProvider,
) -> None:
    """A tick's send span is a root without SAQ's quiet: the user's before-enqueue callback
    runs under it, and SAQ's enqueue script is its child."""
    instrument(tracer_provider)
    current: list[trace.SpanContext] = []

    async def before_enqueue(job: t.Any) -> None:
        current.append(trace.get_current_span().get_span_context())

    counting_queue.register_before_enqueue(before_enqueue)
    cron = CronJob(noop, cron="* * * * * *", unique=False)
    options = {"timers": SHORT_TIMERS, "cron_jobs": [cron]}
    async with running_worker(counting_queue, [noop], **options):
        await wait_until(lambda: len(current) >= 1)
        sends = await wait_for_spans(exporter, f"send {counting_queue.name}", 1)
    (send,) = [span for span in sends if span.context == current[0]]
    assert send.parent is None
    assert any(
        name.startswith("EVALSHA") or name.startswith("EVAL") for name in children(exporter, send)
    )


async def test_the_machinery_is_quiet_by_both_suppression_keys(
    counting_queue: CountingRedisQueue, tracer_provider: TracerProvider
) -> None:
    """As suppress_instrumentation() sets them: some instrumentations read only the plain
    key."""
    instrument(tracer_provider)
    seen: list[tuple[t.Any, t.Any]] = []
    sweep = counting_queue.sweep

    async def observed_sweep(*args: t.Any, **kwargs: t.Any) -> t.Any:
        seen.append(
            (
                otel_context.get_value(otel_context._SUPPRESS_INSTRUMENTATION_KEY),
                otel_context.get_value("suppress_instrumentation"),
            )
        )
        return await sweep(*args, **kwargs)

    counting_queue.sweep = observed_sweep  # type: ignore[method-assign]
    async with running_worker(counting_queue, [noop], timers=SHORT_TIMERS, sweeps=True):
        await wait_until(lambda: bool(seen))
    assert seen[0] == (True, True)


async def test_the_users_own_suppression_is_kept_inside_the_worker(
    counting_queue: CountingRedisQueue,
    client: redis.asyncio.Redis,
    exporter: InMemorySpanExporter,
    tracer_provider: TracerProvider,
) -> None:
    instrument(tracer_provider)
    seen: list[bool] = []

    async def look(ctx: Ctx) -> None:
        seen.append(is_instrumentation_enabled())

    with suppress_instrumentation():
        async with running_worker(counting_queue, [("look", look)]):
            exporter.clear()
            await counting_queue.enqueue("look")
            await wait_until(lambda: bool(seen))
    # The worker ran suppressed by the user: no process span, and the job saw it.
    assert seen == [False]
    assert not spans_named(exporter, f"process {counting_queue.name}")
