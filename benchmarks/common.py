"""What every benchmark here shares: a redis-server, interleaved rounds, the two units.

No SAQ and no arq in here: the peer's script imports it from its own venv.
"""

from __future__ import annotations

import contextlib
import os
import platform
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import types
import typing as t
from collections.abc import Iterator, Sequence

from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter, SpanExportResult
from opentelemetry.sdk.trace.sampling import ALWAYS_OFF, ALWAYS_ON, ParentBased


class DropExporter(SpanExporter):
    """An exporter that drops everything: the cost of exporting is not ours to measure."""

    def export(self, spans: Sequence[t.Any]) -> SpanExportResult:
        return SpanExportResult.SUCCESS


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextlib.contextmanager
def redis_server() -> Iterator[str]:
    """A redis-server on a free loopback port, no persistence; yields its URL."""
    binary = shutil.which("redis-server")
    if binary is None:
        raise SystemExit("redis-server is not installed (apt-get install redis-server)")
    port = free_port()
    workdir = tempfile.mkdtemp(prefix="saq-bench-")
    proc = subprocess.Popen(
        [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly",
         "no", "--dir", workdir],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 10
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), 0.2).close()
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.05)
        yield f"redis://127.0.0.1:{port}"
    finally:
        proc.terminate()
        proc.wait(10)
        shutil.rmtree(workdir, ignore_errors=True)


def median(values: Sequence[float]) -> float:
    return statistics.median(values)


BARE = "bare"


class Variant(t.NamedTuple):
    """One way to run the same code: instrumented some way, or (hooks doing nothing) bare."""

    name: str
    instrument: t.Callable[[], None]
    uninstrument: t.Callable[[], None]


def bare() -> Variant:
    return Variant(BARE, lambda: None, lambda: None)


async def interleave(
    run: t.Callable[[], t.Awaitable[float]], rounds: int, variants: Sequence[Variant]
) -> dict[str, list[float]]:
    """Seconds of each run, per variant: every round runs every variant once.

    The order rotates from round to round, so no variant always runs first or just after
    another; compare variants within a round (``added_us``), so that drift of the machine
    between rounds cancels out.
    """
    seconds: dict[str, list[float]] = {variant.name: [] for variant in variants}
    for round_ in range(rounds):
        shift = round_ % len(variants)
        for variant in [*variants[shift:], *variants[:shift]]:
            variant.instrument()
            try:
                seconds[variant.name].append(await run())
            finally:
                variant.uninstrument()
    return seconds


def added_us(seconds: dict[str, list[float]], name: str, jobs: int) -> float:
    """What variant ``name`` adds to bare per job, in µs: the median of per-round differences.

    Differences, not ratios: a queue whose bare job is slower hides the same added
    microseconds in a smaller ratio.
    """
    pairs = zip(seconds[BARE], seconds[name], strict=True)
    return median([(inst - base) / jobs * 1e6 for base, inst in pairs])


def per_job_us(seconds: dict[str, list[float]], name: str, jobs: int) -> float:
    return median(seconds[name]) / jobs * 1e6


async def bytecodes_per_job(run: t.Callable[[], t.Awaitable[t.Any]], jobs: int) -> float:
    """Python bytecodes this thread executes per job while ``run()`` runs.

    Counted with ``sys.settrace`` opcode events: unlike time, a count that hardly moves
    with the machine's noise. Only the event loop's turns per Redis reply (and redis-py's
    reads) depend on timing: about ±0.5% of a job between counts, so take a median. It
    does not weigh bytecodes by cost, nor see C code or the exporter's thread.
    """
    executed = 0

    def count(frame: types.FrameType, event: str, arg: t.Any) -> t.Any:
        nonlocal executed
        if event == "opcode":
            executed += 1
        elif event == "call":
            frame.f_trace_lines = False
            frame.f_trace_opcodes = True
        return count

    sys.settrace(count)
    try:
        await run()
    finally:
        sys.settrace(None)
    return executed / jobs


def sdk_provider(sampled: bool) -> TracerProvider:
    """An SDK with a batch processor whose exporter drops: export is not ours to measure.

    Sampled: every span records (the default sampler, parent-based always on). Unsampled:
    ``parentbased_always_off``, what a job of an app that samples at its edge goes through.
    """
    provider = TracerProvider(sampler=ParentBased(ALWAYS_ON if sampled else ALWAYS_OFF))
    provider.add_span_processor(BatchSpanProcessor(DropExporter()))
    return provider


def machine() -> str:
    model = "unknown CPU"
    with contextlib.suppress(OSError), open("/proc/cpuinfo") as cpuinfo:
        for line in cpuinfo:
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    return f"{model}, {os.cpu_count()} cores, Python {platform.python_version()}"


class Figures(t.NamedTuple):
    """One set-up in both units: bytecodes per job and µs added per job (0 for bare)."""

    enqueue_bytecodes: float
    e2e_bytecodes: float
    enqueue_us: float  # added to bare; for bare itself, what one enqueue takes
    e2e_us: float  # added to bare; for bare itself, what one job takes end to end


def figures(
    every: t.Sequence[Variant],
    enqueue_counts: dict[str, list[float]],
    e2e_counts: dict[str, list[float]],
    enqueues: dict[str, list[float]],
    e2e: dict[str, list[float]],
    sizes: Sizes,
) -> dict[str, Figures]:
    """Each set-up's figures from its bytecode counts and its interleaved timings."""
    found = {}
    for variant in every:
        name = variant.name
        timed = per_job_us if name == BARE else added_us
        found[name] = Figures(
            median(enqueue_counts[name]),
            median(e2e_counts[name]),
            timed(enqueues, name, sizes.enqueues),
            timed(e2e, name, sizes.e2e_jobs),
        )
    return found


class Sizes(t.NamedTuple):
    """How much each measurement runs: ``--quick`` trades precision for time."""

    rounds: int  # interleaved rounds of timed runs
    enqueues: int  # per timed enqueue run
    e2e_jobs: int  # per timed end-to-end run
    counts: int  # bytecode counts per set-up (the median is taken)
    counted_jobs: int  # jobs per bytecode count

    @classmethod
    def of(cls, quick: bool) -> Sizes:
        return cls(9, 400, 200, 3, 150) if quick else cls(25, 1000, 400, 7, 300)
