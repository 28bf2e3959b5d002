"""What does the instrumentation cost? Bare SAQ against instrumented SAQ, in one run.

    python benchmarks/overhead.py            # about 3 minutes on 2 cores
    python benchmarks/overhead.py --quick    # about 1 minute

Rounds interleave bare and instrumented runs in one process and report the median of
the per-round ratios (instrumented time / bare time), so machine drift cancels out. The
peer, arq with opentelemetry-instrumentation-arq, is measured the same way in its own
venv (their pins clash with ours): see arq_peer.py.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import importlib.metadata
import json
import os
import subprocess
import sys
import time
import types
import typing as t
import uuid
from collections.abc import AsyncIterator
from contextlib import nullcontext
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import (
    Comparison,
    DropExporter,
    Run,
    added_us,
    interleave,
    machine,
    median,
    p99,
    redis_server,
)
from floor import Floor
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor
from saq import Worker
from saq.queue.redis import RedisQueue

from opentelemetry.instrumentation.saq import SAQInstrumentor
from opentelemetry.instrumentation.saq.trace_store import TraceStore

HERE = Path(__file__).resolve().parent
TARGETS = {"enqueue": 1.20, "end_to_end": 1.08, "api_only": 1.03}
API_ONLY = "API only (no SDK)"
SDK = "SDK, batch processor, dropping exporter"
FLOOR = "floor: the same spans, hand-written minimum (floor.py)"


class Setup(t.NamedTuple):
    name: str
    instrument: t.Callable[[], None]
    uninstrument: t.Callable[[], None]


def sdk_provider(store: bool = False) -> TracerProvider:
    """An SDK with a batch processor whose exporter drops: export is not ours to measure."""
    tracer_provider = TracerProvider()
    tracer_provider.add_span_processor(BatchSpanProcessor(DropExporter()))
    if store:
        tracer_provider.add_span_processor(TraceStore())
    return tracer_provider


def ours(**kwargs: t.Any) -> tuple[t.Callable[[], None], t.Callable[[], None]]:
    instrumentor = SAQInstrumentor()
    return lambda: instrumentor.instrument(**kwargs), instrumentor.uninstrument


def setups() -> list[Setup]:
    floor = Floor(sdk_provider())
    # Metrics go to the API's no-op meter unless the set-up says otherwise, as they do in
    # an app that configured tracing only.
    return [
        Setup(API_ONLY, *ours()),
        Setup(SDK, *ours(tracer_provider=sdk_provider())),
        Setup(FLOOR, floor.instrument, floor.uninstrument),
        Setup("SDK + TraceStore", *ours(tracer_provider=sdk_provider(store=True))),
        Setup(
            "SDK + SDK metrics",
            *ours(
                tracer_provider=sdk_provider(),
                meter_provider=MeterProvider(metric_readers=[InMemoryMetricReader()]),
            ),
        ),
    ]


async def noop(ctx: dict[str, t.Any], *, n: int) -> int:
    return n


@contextlib.asynccontextmanager
async def connected_queue(url: str) -> AsyncIterator[RedisQueue]:
    """A queue of its own name, connected for the whole of one measurement."""
    queue = RedisQueue.from_url(url, name=f"bench-{uuid.uuid4().hex[:8]}")
    await queue.connect()
    try:
        yield queue
    finally:
        await queue.disconnect()


async def enqueue_run(queue: RedisQueue, jobs: int) -> Run:
    latencies = []
    started = time.perf_counter()
    for n in range(jobs):
        before = time.perf_counter()
        await queue.enqueue("noop", n=n)
        latencies.append(time.perf_counter() - before)
    seconds = time.perf_counter() - started
    await queue.redis.flushdb()
    return Run(seconds, latencies)


async def end_to_end_run(queue: RedisQueue, jobs: int) -> Run:
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
    worker = Worker(queue, functions=[counted], concurrency=10)
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
    return Run(seconds, [])


async def compare(
    url: str,
    runner: t.Callable[[RedisQueue, int], t.Awaitable[Run]],
    jobs: int,
    rounds: int,
    setup: Setup | None,
) -> Comparison:
    """Interleaved rounds (setup=None: bare against bare after uninstrument()).

    One queue (one connection pool) serves every run of the comparison: opening a dozen
    connections per run made the end-to-end figures bimodal.
    """
    async with connected_queue(url) as queue:
        await runner(queue, jobs // 4)  # warm up connections and caches
        if setup is None:
            instrumentor = SAQInstrumentor()

            def on() -> None:  # instrument and uninstrument at once: must leave nothing
                instrumentor.instrument()
                instrumentor.uninstrument()

            return await interleave(lambda: runner(queue, jobs), rounds, on, lambda: None)
        return await interleave(
            lambda: runner(queue, jobs), rounds, setup.instrument, setup.uninstrument
        )


async def bytecodes_per_job(
    url: str,
    runner: t.Callable[[RedisQueue, int], t.Awaitable[Run]],
    setup: Setup | None,
    jobs: int = 200,
) -> float:
    """Python bytecodes the event loop's thread executes per job (setup=None: bare).

    Unlike time, a count that does not move with the machine's noise (this VM's bare
    runs differ by ±5% between rounds): two runs give the same figure to within a few
    bytecodes. It does not weigh bytecodes by cost, nor see C code or the exporter's
    thread; end to end, it includes the worker's start, the same with and without us.
    """
    executed = 0

    def count(frame: types.FrameType, event: str, arg: t.Any) -> t.Any:
        nonlocal executed
        frame.f_trace_opcodes = True
        if event == "opcode":
            executed += 1
        return count

    if setup is not None:
        setup.instrument()
    try:
        async with connected_queue(url) as queue:
            await runner(queue, 50)  # warm up: connections, names built once per queue
            sys.settrace(count)
            try:
                await runner(queue, jobs)
            finally:
                sys.settrace(None)
    finally:
        if setup is not None:
            setup.uninstrument()
    return executed / jobs


def span_costs(spans: int) -> dict[str, float]:
    """ns per span: the SDK's own start+end (the floor), and the TraceStore's on_end."""
    floor_provider = TracerProvider()
    floor_provider.add_span_processor(BatchSpanProcessor(DropExporter(), max_queue_size=spans * 2))
    tracer = floor_provider.get_tracer("floor")
    started = time.perf_counter_ns()
    for _ in range(spans):
        tracer.start_span("x").end()
    floor = (time.perf_counter_ns() - started) / spans
    floor_provider.shutdown()

    collector = TracerProvider()
    finished: list[t.Any] = []

    class Keep(DropExporter):
        def export(self, batch: t.Any) -> t.Any:
            finished.extend(batch)
            return super().export(batch)

    from opentelemetry.sdk.trace.export import SimpleSpanProcessor

    collector.add_span_processor(SimpleSpanProcessor(Keep()))
    collect = collector.get_tracer("collect")
    for i in range(spans):
        parent = collect.start_as_current_span("request") if i % 10 == 0 else nullcontext()
        with parent:
            collect.start_span("child").end()
    store = TraceStore(max_traces=1000, max_spans_per_trace=1000)
    started = time.perf_counter_ns()
    for span in finished:
        store.on_end(span)
    on_end = (time.perf_counter_ns() - started) / len(finished)
    return {"sdk_span_floor_ns": floor, "trace_store_on_end_ns": on_end}


def run_peer(url: str, quick: bool) -> dict[str, float] | None:
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
            timeout=600,
        ).stdout
        return t.cast(dict[str, float], json.loads(out.strip().splitlines()[-1]))
    except (subprocess.SubprocessError, OSError, ValueError) as exc:
        print(f"  (the arq peer could not run: {exc})")
        return None


def version(name: str) -> str:
    try:
        return importlib.metadata.version(name)
    except importlib.metadata.PackageNotFoundError:
        return "-"


async def main(quick: bool) -> None:
    jobs, e2e_jobs, rounds = (400, 200, 7) if quick else (1000, 400, 21)
    print(f"machine: {machine()}")
    print(
        f"saq {version('saq')}, opentelemetry-sdk {version('opentelemetry-sdk')}, "
        f"redis-py {version('redis')}; {rounds} rounds of {jobs} enqueues and "
        f"{e2e_jobs} jobs end to end (worker concurrency 10), interleaved\n"
    )
    results: dict[str, dict[str, float]] = {}
    with redis_server() as url:
        bytecodes: dict[str, tuple[float, float]] = {}
        for setup in [None, *setups()]:
            bytecodes[setup.name if setup else "bare SAQ"] = (
                await bytecodes_per_job(url, enqueue_run, setup),
                await bytecodes_per_job(url, end_to_end_run, setup),
            )
        for setup in setups():
            enqueue = await compare(url, enqueue_run, jobs, rounds, setup)
            e2e = await compare(url, end_to_end_run, e2e_jobs, rounds, setup)
            bare_lat = [x for run in enqueue.bare for x in run.latencies]
            inst_lat = [x for run in enqueue.instrumented for x in run.latencies]
            results[setup.name] = {
                "enqueue_ratio": median(enqueue.ratios),
                "e2e_ratio": median(e2e.ratios),
                "bare_median_us": median(bare_lat) * 1e6,
                "inst_median_us": median(inst_lat) * 1e6,
                "bare_p99_us": p99(bare_lat) * 1e6,
                "inst_p99_us": p99(inst_lat) * 1e6,
                "bare_per_s": jobs / median([r.seconds for r in enqueue.bare]),
                "inst_per_s": jobs / median([r.seconds for r in enqueue.instrumented]),
                "bare_e2e_ms": median([r.seconds for r in e2e.bare]) / e2e_jobs * 1e3,
                "inst_e2e_ms": median([r.seconds for r in e2e.instrumented]) / e2e_jobs * 1e3,
                "added_enqueue_us": added_us(enqueue, jobs),
                "added_e2e_us": added_us(e2e, e2e_jobs),
            }
        after_enqueue = await compare(url, enqueue_run, jobs, rounds, None)
        after_e2e = await compare(url, end_to_end_run, e2e_jobs, rounds, None)
        peer = run_peer(url, quick)
    costs = span_costs(20_000 if quick else 100_000)

    print("| set-up | enqueue median µs (bare → instr.) | p99 µs | enqueues/s | "
          "enqueue ratio | added per enqueue | end-to-end ms/job | end-to-end ratio | "
          "added per job |")  # fmt: skip
    print("| --- | --- | --- | --- | --- | --- | --- | --- | --- |")
    for name, r in results.items():
        print(
            f"| {name} | {r['bare_median_us']:.0f} → {r['inst_median_us']:.0f} | "
            f"{r['bare_p99_us']:.0f} → {r['inst_p99_us']:.0f} | "
            f"{r['bare_per_s']:.0f} → {r['inst_per_s']:.0f} | x{r['enqueue_ratio']:.3f} | "
            f"{r['added_enqueue_us']:+.0f} µs | "
            f"{r['bare_e2e_ms']:.3f} → {r['inst_e2e_ms']:.3f} | x{r['e2e_ratio']:.3f} | "
            f"{r['added_e2e_us']:+.0f} µs |"
        )
    print(
        f"| after uninstrument() | | | | x{median(after_enqueue.ratios):.3f} | "
        f"{added_us(after_enqueue, jobs):+.0f} µs | | x{median(after_e2e.ratios):.3f} | "
        f"{added_us(after_e2e, e2e_jobs):+.0f} µs |"
    )
    if peer:
        print(
            f"| peer: arq + opentelemetry-instrumentation-arq (SDK, same set-up) | "
            f"{peer['bare_median_us']:.0f} → {peer['inst_median_us']:.0f} | | | "
            f"x{peer['enqueue_ratio']:.3f} | {peer['added_enqueue_us']:+.0f} µs | | "
            f"x{peer['e2e_ratio']:.3f} | {peer['added_e2e_us']:+.0f} µs |"
        )
    print(
        "\n| Python bytecodes per job (deterministic) | per enqueue | ratio | end to end | ratio |"
    )
    print("| --- | --- | --- | --- | --- |")
    bare_enqueue, bare_e2e = bytecodes["bare SAQ"]
    for name, (enqueue_count, e2e_count) in bytecodes.items():
        print(
            f"| {name} | {enqueue_count:.0f} | x{enqueue_count / bare_enqueue:.3f} | "
            f"{e2e_count:.0f} | x{e2e_count / bare_e2e:.3f} |"
        )
    print(
        "\nthe SDK alone, start + end of one span in a tight loop: "
        f"{costs['sdk_span_floor_ns'] / 1000:.2f} µs; "
        f"TraceStore.on_end: {costs['trace_store_on_end_ns'] / 1000:.2f} µs per span\n"
    )
    sdk = results[SDK]
    api = results[API_ONLY]
    floor = results[FLOOR]
    print(
        f"ours above the floor: enqueue "
        f"{sdk['added_enqueue_us'] - floor['added_enqueue_us']:+.0f} µs, end to end "
        f"{sdk['added_e2e_us'] - floor['added_e2e_us']:+.0f} µs per job; in bytecodes "
        f"x{bytecodes[SDK][0] / bytecodes[FLOOR][0]:.3f} and "
        f"x{bytecodes[SDK][1] / bytecodes[FLOOR][1]:.3f}\n"
    )
    checks = [
        ("SDK enqueue ratio <= 1.20", sdk["enqueue_ratio"] <= TARGETS["enqueue"]),
        ("SDK end-to-end ratio <= 1.08", sdk["e2e_ratio"] <= TARGETS["end_to_end"]),
        ("API-only enqueue ratio <= 1.03", api["enqueue_ratio"] <= TARGETS["api_only"]),
        ("API-only end-to-end ratio <= 1.03", api["e2e_ratio"] <= TARGETS["api_only"]),
        (
            "after uninstrument() 1.00 within noise (±3%)",
            abs(median(after_enqueue.ratios) - 1) <= 0.03
            and abs(median(after_e2e.ratios) - 1) <= 0.03,
        ),
    ]
    checks += [
        ("the floor itself: enqueue ratio <= 1.20", floor["enqueue_ratio"] <= TARGETS["enqueue"]),
        ("the floor itself: end-to-end ratio <= 1.08", floor["e2e_ratio"] <= TARGETS["end_to_end"]),
    ]
    if peer:
        checks += [
            ("SDK enqueue ratio below the peer's", sdk["enqueue_ratio"] < peer["enqueue_ratio"]),
            ("SDK end-to-end ratio below the peer's", sdk["e2e_ratio"] < peer["e2e_ratio"]),
            (
                "SDK adds fewer µs per enqueue than the peer",
                sdk["added_enqueue_us"] < peer["added_enqueue_us"],
            ),
            (
                "SDK adds fewer µs per job end to end than the peer",
                sdk["added_e2e_us"] < peer["added_e2e_us"],
            ),
        ]
    for label, met in checks:
        print(f"  [{'met' if met else 'NOT met'}] {label}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="fewer rounds (about 1 minute)")
    os.environ.setdefault("OTEL_SDK_DISABLED", "false")
    asyncio.run(main(parser.parse_args().quick))
