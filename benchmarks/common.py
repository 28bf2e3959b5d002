"""What every benchmark here shares: a throwaway redis-server, statistics, SDK set-ups.

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
import tempfile
import time
import typing as t
from collections.abc import Iterator, Sequence

from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult


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


def p99(values: Sequence[float]) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))]


class Run(t.NamedTuple):
    """One timed run: total seconds and, for enqueue runs, each call's latency."""

    seconds: float
    latencies: list[float]


class Comparison(t.NamedTuple):
    """Interleaved rounds: the per-round ratios instrumented/bare, and every run."""

    ratios: list[float]
    bare: list[Run]
    instrumented: list[Run]


async def interleave(
    run: t.Callable[[], t.Awaitable[Run]],
    rounds: int,
    instrument: t.Callable[[], None],
    uninstrument: t.Callable[[], None],
) -> Comparison:
    """Run bare and instrumented back to back, alternating which goes first."""
    comparison = Comparison([], [], [])
    for round_ in range(rounds):
        runs: dict[str, Run] = {}
        for kind in ("bare", "inst") if round_ % 2 == 0 else ("inst", "bare"):
            if kind == "bare":
                runs[kind] = await run()
                continue
            instrument()
            try:
                runs[kind] = await run()
            finally:
                uninstrument()
        comparison.ratios.append(runs["inst"].seconds / runs["bare"].seconds)
        comparison.bare.append(runs["bare"])
        comparison.instrumented.append(runs["inst"])
    return comparison


def added_us(comparison: Comparison, jobs: int) -> float:
    """What instrumentation adds per job in µs: the median of per-round differences.

    Beside the ratio, because the ratio depends on what the bare job costs: a queue whose
    enqueue is slower hides the same added microseconds in a smaller ratio.
    """
    return median(
        [
            (inst.seconds - bare.seconds) / jobs * 1e6
            for bare, inst in zip(comparison.bare, comparison.instrumented, strict=True)
        ]
    )


def machine() -> str:
    model = "unknown CPU"
    with contextlib.suppress(OSError), open("/proc/cpuinfo") as cpuinfo:
        for line in cpuinfo:
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    return f"{model}, {os.cpu_count()} cores, Python {platform.python_version()}"
