"""Spans, metrics and the toolbar's listener fail independently; odd set-ups still trace."""

from __future__ import annotations

import subprocess
import sys
import typing as t

import pytest
from opentelemetry import propagate, trace
from opentelemetry.context import Context
from opentelemetry.propagators.textmap import TextMapPropagator
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace import ReadableSpan, Span, SpanProcessor, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from saq.queue.redis import RedisQueue

from opentelemetry.instrumentation.saq import SAQInstrumentor, _capture
from tests.test_metrics import points
from tests.workers import finished, running_worker, wait_for_spans, wait_until

Ctx = dict[str, t.Any]

INSTRUMENTS = (
    "messaging.client.sent.messages",
    "messaging.client.operation.duration",
    "messaging.client.consumed.messages",
    "messaging.process.duration",
    "saq.job.queue.wait",
)


async def add(ctx: Ctx, *, a: int, b: int) -> int:
    return a + b


class Raises(SpanProcessor):
    def __init__(self, on: str) -> None:
        self.on = on

    def on_start(self, span: Span, parent_context: Context | None = None) -> None:
        if self.on == "start":
            raise RuntimeError("on_start broke")

    def on_end(self, span: ReadableSpan) -> None:
        if self.on == "end":
            raise RuntimeError("on_end broke")


class Listener:
    """What the debug toolbar's panel listens with: told of every enqueue."""

    def __init__(self) -> None:
        self.told: list[_capture.EnqueuedJob] = []

    def __call__(self, enqueued: _capture.EnqueuedJob) -> None:
        self.told.append(enqueued)

    def parent(self) -> Context | None:
        return None


def counted(reader: InMemoryMetricReader) -> dict[str, float]:
    found = points(reader)
    return {
        name: sum(getattr(p, "value", None) or getattr(p, "count", 0) for p in found.get(name, []))
        for name in INSTRUMENTS
    }


@pytest.fixture
def reader() -> InMemoryMetricReader:
    return InMemoryMetricReader()


@pytest.mark.parametrize("broken", ["start", "end"])
async def test_a_span_processor_that_raises_costs_no_metric_point_and_no_listener(
    queue: RedisQueue, reader: InMemoryMetricReader, broken: str
) -> None:
    provider = TracerProvider()
    provider.add_span_processor(Raises(broken))
    instrumentor = SAQInstrumentor()
    instrumentor.instrument(
        tracer_provider=provider, meter_provider=MeterProvider(metric_readers=[reader])
    )
    listener = Listener()
    token = _capture.listen(listener)
    try:
        job = await queue.enqueue("add", a=1, b=2)
        assert job is not None
        async with running_worker(queue, [add]):
            await finished(job, 10)
            await wait_until(lambda: counted(reader)["messaging.process.duration"] == 1)
    finally:
        _capture.stop(token)
        instrumentor.uninstrument()
    assert job.result == 3
    assert counted(reader) == dict.fromkeys(INSTRUMENTS, 1)
    assert [told.job.key for told in listener.told] == [job.key]


class ExtractRaises(TextMapPropagator):
    def extract(
        self, carrier: t.Any, context: Context | None = None, getter: t.Any = None
    ) -> Context:
        raise RuntimeError("extract broke")

    def inject(self, carrier: t.Any, context: Context | None = None, setter: t.Any = None) -> None:
        carrier["traceparent"] = "00-" + "ab" * 16 + "-" + "cd" * 8 + "-01"

    @property
    def fields(self) -> set[str]:
        return {"traceparent"}


async def test_a_propagator_whose_extract_raises_still_gives_a_root_attempt_and_metrics(
    queue: RedisQueue,
    exporter: InMemorySpanExporter,
    tracer_provider: TracerProvider,
    reader: InMemoryMetricReader,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(propagate, "_HTTP_TEXT_FORMAT", ExtractRaises())
    instrumentor = SAQInstrumentor()
    instrumentor.instrument(
        tracer_provider=tracer_provider, meter_provider=MeterProvider(metric_readers=[reader])
    )
    try:
        job = await queue.enqueue("add", a=2, b=2)
        assert job is not None
        async with running_worker(queue, [add]):
            (attempt,) = await wait_for_spans(exporter, f"process {queue.name}", 1)
            await finished(job, 10)
    finally:
        instrumentor.uninstrument()
    assert job.result == 4
    assert attempt.parent is None  # a root span: the context could not be read
    assert counted(reader)["messaging.process.duration"] == 1
    assert counted(reader)["saq.job.queue.wait"] == 1


@pytest.fixture
def unset_global_provider(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(trace, "_TRACER_PROVIDER", None)
    monkeypatch.setattr(trace, "_TRACER_PROVIDER_SET_ONCE", trace.Once())


@pytest.mark.usefixtures("unset_global_provider")
async def test_a_proxy_provider_passed_before_the_sdk_is_set_follows_the_global_one(
    queue: RedisQueue,
) -> None:
    instrumentor = SAQInstrumentor()
    # The contrib idiom, run before the app configured its SDK: this passes the proxy.
    instrumentor.instrument(tracer_provider=trace.get_tracer_provider())
    exporter = InMemorySpanExporter()
    try:
        assert await queue.enqueue("add", a=1, b=1) is not None  # before: nothing to record
        provider = TracerProvider()
        provider.add_span_processor(SimpleSpanProcessor(exporter))
        trace.set_tracer_provider(provider)
        assert await queue.enqueue("add", a=1, b=1) is not None
    finally:
        instrumentor.uninstrument()
    assert [s.name for s in exporter.get_finished_spans()] == [f"send {queue.name}"]


async def test_re_instrumenting_keeps_counting(
    queue: RedisQueue, tracer_provider: TracerProvider, reader: InMemoryMetricReader
) -> None:
    meter_provider = MeterProvider(metric_readers=[reader])
    instrumentor = SAQInstrumentor()
    for enqueues in (3, 5):
        instrumentor.instrument(tracer_provider=tracer_provider, meter_provider=meter_provider)
        for _ in range(enqueues):
            assert await queue.enqueue("add", a=1, b=1) is not None
        instrumentor.uninstrument()
    found = counted(reader)
    assert found["messaging.client.operation.duration"] == 8
    assert found["messaging.client.sent.messages"] == 8


def test_the_package_imports_where_saq_is_not_installed() -> None:
    # `opentelemetry-instrument` imports every installed instrumentor, SAQ or not.
    code = (
        "import sys; sys.modules['saq'] = None\n"  # `import saq` now raises ImportError
        "import opentelemetry.instrumentation.saq as m\n"
        "print(m.SAQInstrumentor().instrumentation_dependencies())\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert "saq" in result.stdout
