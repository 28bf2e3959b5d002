"""The soak's worker process: ``saq soak_worker.settings`` (run from benchmarks/).

The same settings serve both runs; ``SOAK_INSTRUMENTED=1`` adds the SDK (a
``BatchSpanProcessor`` exporting OTLP/HTTP to ``OTEL_EXPORTER_OTLP_ENDPOINT``) and
``SAQInstrumentor``. Both runs write one line per attempt to ``SOAK_DIR``: ``S`` when
the attempt starts (the user's before-process hook) and ``E`` when it has ended (the
user's after-process hook, which runs after our span ended). A SIGKILL between the two
leaves an attempt in flight; an ``E`` without its span means the span died in the
killed process's export buffer. The instrumented run also reports, when the worker
stops gracefully, the spans started and never ended in this process and the warnings
our loggers wrote.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import time
import typing as t
from pathlib import Path

from opentelemetry import trace
from opentelemetry.context import Context
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan, Span, SpanProcessor, TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor
from saq.queue import Queue

from opentelemetry.instrumentation.saq import SAQInstrumentor

Ctx = dict[str, t.Any]
SOAK_DIR = Path(os.environ.get("SOAK_DIR", "."))
OUR_LOGGERS = "opentelemetry.instrumentation.saq"
SDK_LOGGERS = ("opentelemetry.sdk", "opentelemetry.exporter")


class WarningCounter(logging.Handler):
    """Counts the warnings (and worse) a logger tree writes, keeping a few messages."""

    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.count = 0
        self.samples: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.count += 1
        if len(self.samples) < 5:
            self.samples.append(f"{record.name}: {record.getMessage()}"[:300])


def count_warnings(*loggers: str) -> WarningCounter:
    counter = WarningCounter()
    for name in loggers:
        logger = logging.getLogger(name)
        if logger.level == logging.NOTSET or logger.level > logging.WARNING:
            logger.setLevel(logging.WARNING)  # written even when the app logs only errors
        logger.addHandler(counter)
    return counter


class OpenSpans(SpanProcessor):
    """Counts spans started and ended in this process; reports when the provider stops.

    Added after the batch processor: the provider shuts its processors down in order (at
    exit, or when a worker's stop shuts it down), so the report is written once the
    batch processor has exported what it held.
    """

    def __init__(self, report_to: Path, ours: WarningCounter, sdk: WarningCounter) -> None:
        self.started = 0
        self.ended = 0
        self.open: dict[int, str] = {}
        self._report_to = report_to
        self._ours = ours
        self._sdk = sdk

    def on_start(self, span: Span, parent_context: Context | None = None) -> None:
        self.started += 1
        self.open[span.get_span_context().span_id] = span.name

    def on_end(self, span: ReadableSpan) -> None:
        self.ended += 1
        if span.context is not None:
            self.open.pop(span.context.span_id, None)

    def shutdown(self) -> None:
        if not self._report_to.exists():  # the first shutdown; at exit it may come again
            self._report_to.write_text(json.dumps(self.report()))

    def report(self) -> dict[str, t.Any]:
        names: dict[str, int] = {}
        for name in self.open.values():
            names[name] = names.get(name, 0) + 1
        return {
            "pid": os.getpid(),
            "spans_started": self.started,
            "spans_ended": self.ended,
            "spans_open": len(self.open),
            "open_names": names,
            "our_warnings": self._ours.count,
            "our_samples": self._ours.samples,
            "sdk_warnings": self._sdk.count,
            "sdk_samples": self._sdk.samples,
        }


def traced_provider(
    service: str, report_to: Path, traces_endpoint: str | None = None
) -> TracerProvider:
    """The SDK as a user sets it up: a batch processor exporting OTLP/HTTP, plus our counts.

    Without ``traces_endpoint``, the exporter reads ``OTEL_EXPORTER_OTLP_ENDPOINT``.
    """
    ours, sdk = count_warnings(OUR_LOGGERS), count_warnings(*SDK_LOGGERS)
    provider = TracerProvider(resource=Resource.create({"service.name": service}))
    # The SDK's defaults but a queue no run here fills: a span the SDK dropped for room
    # would read as one we lost (the SDK warns when it drops; the table counts that).
    exporter = OTLPSpanExporter(endpoint=traces_endpoint)
    provider.add_span_processor(BatchSpanProcessor(exporter, max_queue_size=100_000))
    provider.add_span_processor(OpenSpans(report_to, ours, sdk))
    return provider


def _instrument() -> None:
    pid = os.getpid()
    provider = traced_provider(f"soak-worker-{pid}", SOAK_DIR / f"report-{pid}.json")
    trace.set_tracer_provider(provider)
    SAQInstrumentor().instrument()


if os.environ.get("SOAK_INSTRUMENTED") == "1":
    _instrument()

_attempts: list[int] = []  # the file, opened by the first attempt (never in the producer)


def _note(mark: str, ctx: Ctx) -> None:
    if not _attempts:
        path = SOAK_DIR / f"attempts-{os.getpid()}.log"
        _attempts.append(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644))
    job = ctx["job"]
    # One write(2) per line: in the kernel as soon as it returns, whatever kills us next.
    os.write(_attempts[0], f"{mark} {job.key} {job.attempts}\n".encode())


async def attempt_started(ctx: Ctx) -> None:
    _note("S", ctx)


async def attempt_ended(ctx: Ctx) -> None:
    _note("E", ctx)


async def quick(ctx: Ctx, *, n: int) -> int:
    await asyncio.sleep(0.001)
    return n * 2


async def fail_once(ctx: Ctx, *, n: int) -> int:
    if ctx["job"].attempts == 1:
        raise RuntimeError("fails on its first attempt, by design")
    return n * 3


def sync_work(ctx: Ctx, *, n: int) -> int:
    deadline = time.perf_counter() + 0.0005  # a little CPU in SAQ's thread pool
    while time.perf_counter() < deadline:
        pass
    return n * 5


def expected_result(n: int) -> tuple[str, int]:
    """The function the soak enqueues for job n, and what the job must return."""
    kind = n % 10
    if kind < 6:
        return "quick", n * 2
    if kind < 8:
        return "fail_once", n * 3
    return "sync_work", n * 5


settings = {
    "queue": Queue.from_url(os.environ.get("SOAK_REDIS_URL", "redis://127.0.0.1:6379"),
                            name=os.environ.get("SOAK_QUEUE", "soak")),
    "functions": [quick, fail_once, sync_work],
    "concurrency": 10,
    "before_process": attempt_started,
    "after_process": attempt_ended,
    # Jobs of a SIGKILLed worker, or whose finish write met a stopped Redis, stay active
    # until SAQ's sweep finds them stuck (past their timeout): sweep often.
    "timers": {"sweep": int(os.environ.get("SOAK_SWEEP", "10"))},
    "shutdown_grace_period_s": 5,
}  # fmt: skip
