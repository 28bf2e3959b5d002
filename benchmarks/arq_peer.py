"""The peer, measured the way overhead.py measures SAQ: arq with opentelemetry-instrumentation-arq.

Runs in its own venv (benchmarks/.venv-arq, made by overhead.py: arq pins an older
redis-py than SAQ). Prints one JSON line of medians of per-round ratios.

    benchmarks/.venv-arq/bin/python benchmarks/arq_peer.py redis://127.0.0.1:6379 [--quick]
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import sys
import time
import typing as t
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from arq import create_pool
from arq.connections import RedisSettings
from arq.worker import Worker, func
from common import Comparison, DropExporter, Run, interleave, median
from opentelemetry.instrumentation.arq import ArqInstrumentor
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor


async def enqueue_run(url: str, jobs: int) -> Run:
    pool = await create_pool(RedisSettings.from_dsn(url))
    name = f"arq-{uuid.uuid4().hex[:8]}"
    latencies = []
    started = time.perf_counter()
    for n in range(jobs):
        before = time.perf_counter()
        await pool.enqueue_job("noop", n=n, _queue_name=name)
        latencies.append(time.perf_counter() - before)
    seconds = time.perf_counter() - started
    await pool.flushdb()
    await pool.aclose()
    return Run(seconds, latencies)


async def end_to_end_run(url: str, jobs: int) -> Run:
    pool = await create_pool(RedisSettings.from_dsn(url))
    name = f"arq-{uuid.uuid4().hex[:8]}"
    done = asyncio.Event()
    count = 0

    async def noop(ctx: dict[str, t.Any], *, n: int) -> int:
        nonlocal count
        count += 1
        if count == jobs:
            done.set()
        return n

    worker = Worker(
        functions=[func(noop, name="noop")],
        redis_pool=pool,
        queue_name=name,
        max_jobs=10,
        poll_delay=0.01,
        handle_signals=False,
        keep_result=0,
    )
    task = asyncio.create_task(worker.async_run())
    await asyncio.sleep(0.05)
    started = time.perf_counter()
    for n in range(jobs):
        await pool.enqueue_job("noop", n=n, _queue_name=name)
    await asyncio.wait_for(done.wait(), 120)
    seconds = time.perf_counter() - started
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task
    with contextlib.suppress(asyncio.CancelledError):
        await worker.close()
    await pool.flushdb()
    await pool.aclose()
    return Run(seconds, [])


async def compare(
    url: str, runner: t.Any, jobs: int, rounds: int, provider: TracerProvider
) -> Comparison:
    instrumentor = ArqInstrumentor()
    await runner(url, jobs // 4)
    return await interleave(
        lambda: runner(url, jobs),
        rounds,
        lambda: instrumentor.instrument(tracer_provider=provider),
        instrumentor.uninstrument,
    )


async def main(url: str, quick: bool) -> None:
    jobs, e2e_jobs, rounds = (400, 200, 5) if quick else (1500, 600, 11)
    provider = TracerProvider()
    provider.add_span_processor(BatchSpanProcessor(DropExporter()))
    enqueue = await compare(url, enqueue_run, jobs, rounds, provider)
    e2e = await compare(url, end_to_end_run, e2e_jobs, rounds, provider)
    bare = [x for run in enqueue.bare for x in run.latencies]
    instrumented = [x for run in enqueue.instrumented for x in run.latencies]
    print(
        json.dumps(
            {
                "enqueue_ratio": median(enqueue.ratios),
                "e2e_ratio": median(e2e.ratios),
                "bare_median_us": median(bare) * 1e6,
                "inst_median_us": median(instrumented) * 1e6,
            }
        )
    )


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], "--quick" in sys.argv))
