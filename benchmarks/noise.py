"""How many traces does a worker export beside its jobs' own? Redis and Postgres.

    python benchmarks/noise.py             # 20 s idle windows; about 2 minutes
    python benchmarks/noise.py --idle 5    # shorter windows

With the Redis and psycopg instrumentations on (as `opentelemetry-instrument` loads them),
one worker (concurrency 10, SAQ's default timers, no cron jobs) idles for the window:
root traces exported. Then jobs run one at a time, with the upkeep timers pushed out of
the way: traces and spans exported per job. Each as today ("quiet", the default) and as
before quiet workers (``enable_internal_instrumentation=True``, which installs none of it).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import sys
import typing as t
import uuid
from collections.abc import AsyncIterator, Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # tests.servers: Postgres

from common import machine, redis_server
from opentelemetry.instrumentation.psycopg import PsycopgInstrumentor
from opentelemetry.instrumentation.redis import RedisInstrumentor
from opentelemetry.instrumentation.utils import suppress_instrumentation
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from saq import Worker
from saq.queue import Queue

from opentelemetry.instrumentation.saq import SAQInstrumentor
from tests.servers import postgres_server

JOBS = 10
# Upkeep out of the way while jobs are counted: only what a job causes is exported.
NO_UPKEEP = {"schedule": 3600, "worker_info": 3600, "sweep": 3600, "abort": 3600}
SETUPS = {"before (every command)": {"enable_internal_instrumentation": True}, "quiet": {}}


async def noop(ctx: dict[str, t.Any]) -> None:
    pass


@contextlib.asynccontextmanager
async def instrumented(options: dict[str, t.Any]) -> AsyncIterator[InMemorySpanExporter]:
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    RedisInstrumentor().instrument(tracer_provider=provider)
    PsycopgInstrumentor().instrument(tracer_provider=provider)
    SAQInstrumentor().instrument(tracer_provider=provider, **options)
    try:
        yield exporter
    finally:
        SAQInstrumentor().uninstrument()
        PsycopgInstrumentor().uninstrument()
        RedisInstrumentor().uninstrument()


@contextlib.asynccontextmanager
async def working(queue: Queue, **options: t.Any) -> AsyncIterator[None]:
    worker = Worker(queue, functions=[noop], concurrency=10, **options)
    task = asyncio.create_task(worker.start())
    await asyncio.sleep(2)  # started: its first stats write and sweep are behind it
    try:
        yield
    finally:
        await worker.stop()
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


async def idle_roots(
    make_queue: Callable[[], Queue], options: dict[str, t.Any], window: float
) -> int:
    async with instrumented(options) as exporter:
        queue = make_queue()
        await queue.connect()
        try:
            async with working(queue):
                exporter.clear()
                await asyncio.sleep(window)
                spans = exporter.get_finished_spans()
                return len({span.context.trace_id for span in spans if span.parent is None})
        finally:
            await queue.disconnect()


async def per_job(
    make_queue: Callable[[], Queue], options: dict[str, t.Any]
) -> tuple[float, float]:
    async with instrumented(options) as exporter:
        queue = make_queue()
        await queue.connect()
        try:
            async with working(queue, timers=NO_UPKEEP):
                exporter.clear()
                for _ in range(JOBS):
                    job = await queue.enqueue("noop")
                    assert job is not None
                    with suppress_instrumentation():  # the benchmark's own polling
                        await job.refresh(until_complete=30)
                await asyncio.sleep(0.5)  # the last job's after-process
                spans = exporter.get_finished_spans()
        finally:
            await queue.disconnect()
    traces = {span.context.trace_id for span in spans if span.context}
    return len(traces) / JOBS, len(spans) / JOBS


async def main(window: float) -> None:
    rows = []
    with redis_server() as redis_url, postgres_server() as postgres_url:
        brokers: dict[str, Callable[[], Queue]] = {
            "Redis": lambda: Queue.from_url(redis_url, name=f"noise-{uuid.uuid4().hex[:8]}"),
            "Postgres": lambda: Queue.from_url(
                postgres_url, name=f"noise-{uuid.uuid4().hex[:8]}", min_size=2, max_size=12
            ),
        }
        for broker, make_queue in brokers.items():
            for setup, options in SETUPS.items():
                roots = await idle_roots(make_queue, options, window)
                traces, spans = await per_job(make_queue, options)
                rows.append((broker, setup, roots, traces, spans))
    print(machine())
    print(f"idle: one worker, concurrency 10, default timers, {window:g} s; ", end="")
    print(f"jobs: {JOBS}, one at a time\n")
    print(f"| broker | set-up | idle root traces per {window:g} s ", end="")
    print("| traces per job | spans per job |")
    print("| --- | --- | --- | --- | --- |")
    for broker, setup, roots, traces, spans in rows:
        print(f"| {broker} | {setup} | {roots} | {traces:g} | {spans:g} |")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--idle", type=float, default=20, help="seconds of the idle window")
    asyncio.run(main(parser.parse_args().idle))
