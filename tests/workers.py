"""Real SAQ workers for the tests, run in the test's event loop."""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import time
import typing as t
from collections.abc import AsyncIterator, Callable

import psycopg
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from saq import Worker
from saq.job import TERMINAL_STATUSES
from saq.queue import Queue
from saq.queue.postgres import PostgresQueue
from saq.queue.redis import RedisQueue

_NEWER_SAQ_OPTIONS = {"shutdown_grace_period_s", "poll_interval"}
FAST_TIMERS = {"schedule": 1, "worker_info": 10, "sweep": 60, "abort": 0.1}


@contextlib.asynccontextmanager
async def running_worker(
    queue: Queue,
    functions: list[t.Any],
    *,
    sweeps: bool = False,
    worker_class: type[Worker] = Worker,
    **options: t.Any,
) -> AsyncIterator[Worker]:
    """A worker on ``queue``; ``sweeps``: it sweeps stuck jobs as SAQ's workers do."""
    options.setdefault("timers", FAST_TIMERS)
    options.setdefault("shutdown_grace_period_s", 1)
    accepted = inspect.signature(Worker).parameters
    for option in _NEWER_SAQ_OPTIONS - set(accepted):
        # Older SAQ cancels running jobs at stop (no grace period) and polls Postgres at
        # the queue's own interval: the test means the same thing without the option.
        options.pop(option, None)
    async with contextlib.AsyncExitStack() as stack:
        # SAQ's startup sweep races with the first dequeue and can abort a job the worker
        # has just picked up (SAQ's own race, instrumented or not). Tests not about
        # sweeping hold the sweep lock so that the race cannot make them flaky.
        if isinstance(queue, RedisQueue) and not sweeps:
            await queue.redis.set(f"saq:{queue.name}:sweep", 1, ex=60)
        elif isinstance(queue, PostgresQueue) and not sweeps:
            await stack.enter_async_context(_postgres_sweep_lock(queue))
        worker = worker_class(queue, functions=functions, **options)
        task = asyncio.create_task(worker.start())
        try:
            if sweeps and isinstance(queue, RedisQueue):
                # Past the startup sweep, whose race with a first dequeue is SAQ's own.
                for _ in range(1000):
                    if await queue.redis.exists(f"saq:{queue.name}:sweep"):
                        break
                    await asyncio.sleep(0.01)
            yield worker
        finally:
            await worker.stop()
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task


@contextlib.asynccontextmanager
async def _postgres_sweep_lock(queue: PostgresQueue) -> AsyncIterator[None]:
    """Hold the advisory lock SAQ's Postgres sweep takes, from a connection of our own."""
    async with await psycopg.AsyncConnection.connect(queue.pool.conninfo, autocommit=True) as conn:
        await conn.execute(
            "SELECT pg_advisory_lock(%s, hashtext(%s))", (queue.saq_lock_keyspace, queue.name)
        )
        yield


async def finished(job: t.Any, timeout: float = 10) -> None:
    """Wait until ``job`` is final (complete, failed or aborted), reading it from its queue.

    Not ``job.refresh(until_complete=...)``: SAQ reads the job, then subscribes to its
    updates, and misses a finish that lands in between (seen on a busy machine), waiting
    out its whole timeout.
    """
    deadline = time.monotonic() + timeout
    while True:
        await job.refresh()
        if job.status in TERMINAL_STATUSES:
            return
        if time.monotonic() > deadline:
            raise AssertionError(f"job {job.key} is still {job.status} after {timeout} s")
        await asyncio.sleep(0.05)


async def wait_until(condition: Callable[[], bool], timeout: float = 10) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        await asyncio.sleep(0.02)


def spans_named(exporter: InMemorySpanExporter, name: str) -> list[ReadableSpan]:
    return [span for span in exporter.get_finished_spans() if span.name == name]


async def wait_for_spans(
    exporter: InMemorySpanExporter, name: str, count: int, timeout: float = 10
) -> list[ReadableSpan]:
    await wait_until(lambda: len(spans_named(exporter, name)) >= count, timeout)
    return sorted(spans_named(exporter, name), key=lambda span: span.start_time or 0)
