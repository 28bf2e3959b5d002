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
from arq.connections import ArqRedis, RedisSettings
from arq.worker import Worker, func
from common import Comparison, DropExporter, Run, added_us, interleave, median
from opentelemetry.instrumentation.arq import ArqInstrumentor
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor


async def enqueue_run(pool: ArqRedis, jobs: int) -> Run:
    name = f"arq-{uuid.uuid4().hex[:8]}"
    latencies = []
    started = time.perf_counter()
    for n in range(jobs):
        before = time.perf_counter()
        await pool.enqueue_job("noop", n=n, _queue_name=name)
        latencies.append(time.perf_counter() - before)
    seconds = time.perf_counter() - started
    await pool.flushdb()
    return Run(seconds, latencies)


async def end_to_end_run(pool: ArqRedis, jobs: int) -> Run:
    """A burst, as overhead.py runs it: enqueue ``jobs`` jobs, then a worker runs them."""
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
    started = time.perf_counter()
    for n in range(jobs):
        await pool.enqueue_job("noop", n=n, _queue_name=name)
    task = asyncio.create_task(worker.async_run())
    await asyncio.wait_for(done.wait(), 120)
    seconds = time.perf_counter() - started
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task
    # Not worker.close(): it would close the pool the next runs share.
    await asyncio.gather(*worker.tasks.values(), return_exceptions=True)
    await pool.flushdb()
    return Run(seconds, [])


async def compare(
    url: str, runner: t.Any, jobs: int, rounds: int, provider: TracerProvider
) -> Comparison:
    """One pool for every run of the comparison, as overhead.py keeps one queue."""
    instrumentor = ArqInstrumentor()
    pool = await create_pool(RedisSettings.from_dsn(url))
    try:
        await runner(pool, jobs // 4)
        return await interleave(
            lambda: runner(pool, jobs),
            rounds,
            lambda: instrumentor.instrument(tracer_provider=provider),
            instrumentor.uninstrument,
        )
    finally:
        await pool.aclose()


async def main(url: str, quick: bool) -> None:
    jobs, e2e_jobs, rounds = (400, 200, 7) if quick else (1000, 400, 21)
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
                "added_enqueue_us": added_us(enqueue, jobs),
                "added_e2e_us": added_us(e2e, e2e_jobs),
            }
        )
    )


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], "--quick" in sys.argv))
