"""The peer, measured the way overhead.py measures SAQ: arq with opentelemetry-instrumentation-arq.

Runs in its own venv (benchmarks/.venv-arq, made by overhead.py: arq pins an older
redis-py than SAQ). Prints one JSON line: per set-up (bare, sampled, unsampled) the
bytecodes per enqueue and per job end to end, and the µs each adds per job.

    benchmarks/.venv-arq/bin/python benchmarks/arq_peer.py redis://127.0.0.1:6379 [--quick]

``ArqInstrumentor.uninstrument()`` (0.50b1) leaves its wrappers of ``Function.coroutine``
and ``CronJob.coroutine`` in place: the "bare" runs after it would run instrumented on
the worker side, and the peer's end-to-end cost would read about half what it is. So
the peer puts those back itself, then checks that every class and function of arq is
the very object it was before instrumenting, and stops if not: a future release that
leaves something else behind cannot silently flatter the comparison.
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
from arq.cron import CronJob
from arq.worker import Function, Worker, func
from common import (
    Sizes,
    Variant,
    bare,
    bytecodes_per_job,
    figures,
    interleave,
    sdk_provider,
)
from opentelemetry.instrumentation.arq import ArqInstrumentor

State = dict[tuple[str, str], object]


def arq_state() -> State:
    """Every name of arq's modules and every attribute of the classes they define."""
    state: State = {}
    for module_name, module in sorted(sys.modules.items()):
        if module_name != "arq" and not module_name.startswith("arq."):
            continue
        for name, value in vars(module).items():
            state[(module_name, name)] = value
            if isinstance(value, type) and value.__module__ == module_name:
                for attribute, member in vars(value).items():
                    state[(module_name, f"{name}.{attribute}")] = member
    return state


def check_pristine(pristine: State) -> None:
    """Raise unless arq is exactly as it was before it was ever instrumented."""
    now = arq_state()
    changed = sorted(
        ".".join(key)
        for key in pristine.keys() | now.keys()
        if key not in now or key not in pristine or now[key] is not pristine[key]
    )
    if changed:
        raise RuntimeError(f"arq is not back to pristine after uninstrument(): {changed}")


class Peer:
    """The arq instrumentation, switched on and fully off again."""

    def __init__(self) -> None:
        self._pristine = arq_state()
        self._originals = {
            owner: owner.__dict__.get("coroutine", _ABSENT) for owner in (Function, CronJob)
        }

    def variant(self, name: str, sampled: bool) -> Variant:
        provider = sdk_provider(sampled)
        return Variant(
            name, lambda: ArqInstrumentor().instrument(tracer_provider=provider), self.off
        )

    def off(self) -> None:
        ArqInstrumentor().uninstrument()
        for owner, original in self._originals.items():
            if original is _ABSENT:
                if "coroutine" in owner.__dict__:
                    delattr(owner, "coroutine")
            else:
                owner.coroutine = original
        check_pristine(self._pristine)


_ABSENT = object()


async def enqueue_run(pool: ArqRedis, jobs: int) -> float:
    name = f"arq-{uuid.uuid4().hex[:8]}"
    started = time.perf_counter()
    for n in range(jobs):
        await pool.enqueue_job("noop", n=n, _queue_name=name)
    seconds = time.perf_counter() - started
    await pool.flushdb()
    return seconds


async def end_to_end_run(pool: ArqRedis, jobs: int) -> float:
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
    return seconds


Runner = t.Callable[[ArqRedis, int], t.Awaitable[float]]


async def count_bytecodes(pool: ArqRedis, runner: Runner, variant: Variant, jobs: int) -> float:
    variant.instrument()
    try:
        await runner(pool, 20)
        return await bytecodes_per_job(lambda: runner(pool, jobs), jobs)
    finally:
        variant.uninstrument()


async def main(url: str, sizes: Sizes) -> None:
    peer = Peer()
    every = [bare(), peer.variant("sampled", True), peer.variant("unsampled", False)]
    pool = await create_pool(RedisSettings.from_dsn(url))
    try:
        enqueue_counts: dict[str, list[float]] = {variant.name: [] for variant in every}
        e2e_counts: dict[str, list[float]] = {variant.name: [] for variant in every}
        for _ in range(sizes.counts):
            for variant in every:
                jobs = sizes.counted_jobs
                enqueue_counts[variant.name].append(
                    await count_bytecodes(pool, enqueue_run, variant, jobs)
                )
                e2e_counts[variant.name].append(
                    await count_bytecodes(pool, end_to_end_run, variant, jobs)
                )
        await enqueue_run(pool, sizes.enqueues // 4)  # warm up
        enqueues = await interleave(lambda: enqueue_run(pool, sizes.enqueues), sizes.rounds, every)
        e2e = await interleave(lambda: end_to_end_run(pool, sizes.e2e_jobs), sizes.rounds, every)
    finally:
        await pool.aclose()
    print(json.dumps(figures(every, enqueue_counts, e2e_counts, enqueues, e2e, sizes)))


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], Sizes.of("--quick" in sys.argv)))
