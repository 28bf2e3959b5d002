"""What does the instrumentation cost? Bare SAQ against every set-up, the floor and the peer.

    python benchmarks/overhead.py            # about 5 minutes on 2 shared cores
    python benchmarks/overhead.py --quick    # about 1 minute, noisier µs

Two units per set-up: Python bytecodes per job (deterministic) and µs added per job
(medians of per-round differences, every set-up run once per round, bare included).
The peer, arq with opentelemetry-instrumentation-arq, is measured the same way in its
own venv (their pins clash with ours): see arq_peer.py. report.py prints the tables and
the targets of the performance issue.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import importlib.metadata
import json
import logging
import os
import subprocess
import sys
import tempfile
import time
import typing as t
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import (
    Figures,
    Sizes,
    Variant,
    bare,
    bytecodes_per_job,
    figures,
    interleave,
    machine,
    redis_server,
    sdk_provider,
)
from floor import Floor
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from report import AFTER, API_ONLY, FLOOR, FLOOR_UNSAMPLED, METRICS, SDK, STORE, UNSAMPLED, report
from saq import Worker
from saq.queue.redis import RedisQueue

from opentelemetry.instrumentation.saq import SAQInstrumentor
from opentelemetry.instrumentation.saq._span_json import encode_span
from opentelemetry.instrumentation.saq.disk_store import DiskStore
from opentelemetry.instrumentation.saq.trace_store import TraceStore

HERE = Path(__file__).resolve().parent

Runner = t.Callable[[RedisQueue, int], t.Awaitable[float]]

# The worker's periodic chores (schedule, abort, stats, sweep) run by the clock, not per
# job: under sys.settrace a run lasts ten times longer and does ten times more of them.
QUIET: t.Any = {"schedule": 3600, "abort": 3600, "worker_info": 3600, "sweep": 3600}


def ours(name: str, **kwargs: t.Any) -> Variant:
    instrumentor = SAQInstrumentor()
    return Variant(name, lambda: instrumentor.instrument(**kwargs), instrumentor.uninstrument)


def floor(name: str, sampled: bool) -> Variant:
    instrumentation = Floor(sdk_provider(sampled))
    return Variant(name, instrumentation.instrument, instrumentation.uninstrument)


def after_uninstrument() -> Variant:
    """Bare SAQ, right after instrument() and uninstrument(): must leave nothing behind."""
    instrumentor = SAQInstrumentor()

    def on_and_off() -> None:
        instrumentor.instrument(tracer_provider=sdk_provider(sampled=True))
        instrumentor.uninstrument()

    return Variant(AFTER, on_and_off, lambda: None)


def variants() -> list[Variant]:
    with_store = sdk_provider(sampled=True)
    # The store as the toolbar installs it by default: writing behind to a file on disk.
    store = TraceStore()
    disk = DiskStore(
        Path(tempfile.mkdtemp(prefix="saq-bench-")) / "traces.sqlite3",
        encode_span,
        max_traces=store.max_traces,
        max_bytes=store.max_bytes,
    )
    disk.start()
    store.keep_on_disk(disk)
    with_store.add_span_processor(store)
    # Metrics go to the API's no-op meter unless the set-up says otherwise, as they do in
    # an app that configured tracing only.
    return [
        bare(),
        ours(API_ONLY),
        ours(SDK, tracer_provider=sdk_provider(sampled=True)),
        ours(UNSAMPLED, tracer_provider=sdk_provider(sampled=False)),
        floor(FLOOR, sampled=True),
        floor(FLOOR_UNSAMPLED, sampled=False),
        ours(STORE, tracer_provider=with_store),
        ours(
            METRICS,
            tracer_provider=sdk_provider(sampled=True),
            meter_provider=MeterProvider(metric_readers=[InMemoryMetricReader()]),
        ),
        after_uninstrument(),
    ]


async def noop(ctx: dict[str, t.Any], *, n: int) -> int:
    return n


@contextlib.asynccontextmanager
async def connected_queue(url: str) -> AsyncIterator[RedisQueue]:
    """A queue of its own name, connected for the whole of one measurement.

    One connection pool serves every run of a measurement: opening a dozen connections
    per run made the end-to-end figures bimodal.
    """
    queue = RedisQueue.from_url(url, name=f"bench-{uuid.uuid4().hex[:8]}")
    await queue.connect()
    try:
        yield queue
    finally:
        await queue.disconnect()


async def enqueue_run(queue: RedisQueue, jobs: int) -> float:
    """Seconds for ``jobs`` sequential enqueues."""
    started = time.perf_counter()
    for n in range(jobs):
        await queue.enqueue("noop", n=n)
    seconds = time.perf_counter() - started
    await queue.redis.flushdb()
    return seconds


async def end_to_end_run(queue: RedisQueue, jobs: int) -> float:
    """A burst: enqueue ``jobs`` jobs, then a worker (concurrency 10) runs them all.

    Timed from the first enqueue to the last job's end. The worker starts after the
    burst is queued: enqueues racing a worker in one event loop made runs of the same
    code differ by 20%, which drowned what this measures.
    """
    done = asyncio.Event()
    count = 0

    async def counted(ctx: dict[str, t.Any], *, n: int) -> int:
        nonlocal count
        count += 1
        if count == jobs:
            done.set()
        return n

    counted.__qualname__ = "noop"
    await queue.redis.set(f"saq:{queue.name}:sweep", 1, ex=60)  # SAQ's startup sweep race
    worker = Worker(queue, functions=[counted], concurrency=10, timers=QUIET)
    worker.SIGNALS = []
    started = time.perf_counter()
    for n in range(jobs):
        await queue.enqueue("noop", n=n)
    task = asyncio.create_task(worker.start())
    await asyncio.wait_for(done.wait(), 120)
    seconds = time.perf_counter() - started
    await worker.stop()
    task.cancel()
    await queue.redis.flushdb()
    return seconds


async def count_bytecodes(queue: RedisQueue, runner: Runner, variant: Variant, jobs: int) -> float:
    variant.instrument()
    try:
        await runner(queue, 20)  # warm up: connections, what is built once per queue
        return await bytecodes_per_job(lambda: runner(queue, jobs), jobs)
    finally:
        variant.uninstrument()


async def measure(url: str, sizes: Sizes) -> dict[str, Figures]:
    """Every set-up in both units, bare included; µs of all set-ups in the same rounds."""
    every = variants()
    enqueue_counts: dict[str, list[float]] = {variant.name: [] for variant in every}
    e2e_counts: dict[str, list[float]] = {variant.name: [] for variant in every}
    async with connected_queue(url) as queue:
        for _ in range(sizes.counts):
            for variant in every:
                jobs = sizes.counted_jobs
                enqueue_counts[variant.name].append(
                    await count_bytecodes(queue, enqueue_run, variant, jobs)
                )
                e2e_counts[variant.name].append(
                    await count_bytecodes(queue, end_to_end_run, variant, jobs)
                )
        await enqueue_run(queue, sizes.enqueues // 4)  # warm up
        enqueues = await interleave(lambda: enqueue_run(queue, sizes.enqueues), sizes.rounds, every)
        e2e = await interleave(lambda: end_to_end_run(queue, sizes.e2e_jobs), sizes.rounds, every)
    return figures(every, enqueue_counts, e2e_counts, enqueues, e2e, sizes)


def run_peer(url: str, quick: bool) -> dict[str, Figures] | None:
    """The arq peer in its own venv (created on first use); None if it cannot be set up."""
    venv = HERE / ".venv-arq"
    python = venv / "bin" / "python"
    try:
        if not python.exists():
            subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
            subprocess.run(
                [str(python), "-m", "pip", "install", "-q", "--disable-pip-version-check",
                 "arq", "opentelemetry-instrumentation-arq", "opentelemetry-sdk"],
                check=True,
            )  # fmt: skip
        out = subprocess.run(
            [str(python), str(HERE / "arq_peer.py"), url, *(["--quick"] if quick else [])],
            check=True,
            capture_output=True,
            text=True,
            timeout=1200,
        ).stdout
        result = json.loads(out.strip().splitlines()[-1])
        return {name: Figures(*values) for name, values in result.items()}
    except subprocess.CalledProcessError as exc:
        print(f"  (the arq peer failed: {exc.stderr.strip().splitlines()[-1:]})")
        return None
    except (subprocess.SubprocessError, OSError, ValueError) as exc:
        print(f"  (the arq peer could not run: {exc})")
        return None


def version(name: str) -> str:
    try:
        return importlib.metadata.version(name)
    except importlib.metadata.PackageNotFoundError:
        return "-"


async def main(quick: bool) -> None:
    logging.getLogger("saq").setLevel(logging.ERROR)  # a stopped worker's cancelled dequeues
    sizes = Sizes.of(quick)
    print(f"machine: {machine()}")
    print(
        f"saq {version('saq')}, opentelemetry-sdk {version('opentelemetry-sdk')}, "
        f"redis-py {version('redis')}; {sizes.rounds} interleaved rounds of "
        f"{sizes.enqueues} enqueues and of {sizes.e2e_jobs} jobs end to end (worker "
        f"concurrency 10); bytecodes per job: the median of {sizes.counts} counts over "
        f"{sizes.counted_jobs} jobs\n",
        flush=True,
    )
    with redis_server() as url:
        ours = await measure(url, sizes)
        peer = run_peer(url, quick)
    report(ours, peer)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="fewer rounds and jobs")
    os.environ.setdefault("OTEL_SDK_DISABLED", "false")
    asyncio.run(main(parser.parse_args().quick))
