"""What SAQInstrumentor promises: exact restore, no double wrap, suppression, safety."""

from __future__ import annotations

import logging
import typing as t
from importlib.metadata import entry_points

import pytest
import saq.job
import saq.queue.base
import saq.queue.http
import saq.queue.redis
import saq.worker
from opentelemetry import propagate
from opentelemetry.context import Context
from opentelemetry.instrumentation.utils import suppress_instrumentation
from opentelemetry.propagators.textmap import TextMapPropagator
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from saq.job import Status
from saq.queue.redis import RedisQueue

from opentelemetry.instrumentation.saq import META_KEY, SAQInstrumentor
from tests.workers import finished, running_worker, spans_named

PATCHED = [
    (saq.queue.base.Queue, "enqueue"),
    (saq.queue.base.Queue, "_before_enqueue"),
    (saq.queue.base.Queue, "retry"),
    (saq.queue.base.Queue, "map"),
    (saq.queue.base.Queue, "finish_abort"),
    (saq.queue.redis.RedisQueue, "finish_abort"),
    (saq.queue.http.HttpQueue, "finish_abort"),
    (saq.job.Job, "next_retry_delay"),
    (saq.worker.Worker, "schedule"),
    (saq.worker.Worker, "_before_process"),
    (saq.worker.Worker, "_after_process"),
    (saq.worker.Worker, "upkeep"),
    (saq.worker.Worker, "process"),
    (saq.worker.Worker, "stop"),
    (saq.worker.Worker, "__init__"),
    (saq.queue.http.HttpProxy, "process"),
]


async def add(ctx: dict[str, t.Any], *, a: int, b: int) -> int:
    return a + b


def test_uninstrument_restores_every_patched_function_to_the_original_object(
    tracer_provider: TracerProvider,
) -> None:
    originals = [cls.__dict__[name] for cls, name in PATCHED]
    instrumentor = SAQInstrumentor()
    instrumentor.instrument(tracer_provider=tracer_provider)
    assert all(
        cls.__dict__[name] is not original
        for (cls, name), original in zip(PATCHED, originals, strict=True)
    )
    instrumentor.uninstrument()
    assert all(
        cls.__dict__[name] is original
        for (cls, name), original in zip(PATCHED, originals, strict=True)
    )


SAQ_CLASSES = sorted({cls for cls, _ in PATCHED}, key=lambda cls: cls.__qualname__)


def saq_as_it_is() -> list[dict[str, t.Any]]:
    return [dict(cls.__dict__) for cls in SAQ_CLASSES]


async def test_an_instrument_that_fails_part_way_leaves_saq_as_it_was_and_can_be_retried(
    queue: RedisQueue,
    exporter: InMemorySpanExporter,
    tracer_provider: TracerProvider,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    # A SAQ without Worker.stop: patched last, after every other method.
    monkeypatch.delattr(saq.worker.Worker, "stop")
    before = saq_as_it_is()
    instrumentor = SAQInstrumentor()
    with caplog.at_level(logging.WARNING, logger="opentelemetry.instrumentation.saq"):
        instrumentor.instrument(tracer_provider=tracer_provider)

    assert "could not instrument SAQ: it runs uninstrumented" in caplog.text
    assert not instrumentor.is_instrumented_by_opentelemetry
    after = saq_as_it_is()
    for cls, was, now in zip(SAQ_CLASSES, before, after, strict=True):
        assert now.keys() == was.keys(), cls
        assert all(now[name] is was[name] for name in was), cls
    await queue.enqueue("add", a=1, b=2)
    assert exporter.get_finished_spans() == ()

    monkeypatch.undo()  # Worker.stop is back: the next instrument() is not refused
    instrumentor.instrument(tracer_provider=tracer_provider)
    assert instrumentor.is_instrumented_by_opentelemetry
    await queue.enqueue("add", a=1, b=2)
    assert [span.name for span in exporter.get_finished_spans()] == [f"send {queue.name}"]


@pytest.mark.parametrize("timeout", [None, "soon", -1, float("nan")])
def test_a_bad_flush_timeout_is_logged_and_saq_is_instrumented_as_usual(
    tracer_provider: TracerProvider, caplog: pytest.LogCaptureFixture, timeout: t.Any
) -> None:
    originals = {(cls, name): cls.__dict__[name] for cls, name in PATCHED}
    instrumentor = SAQInstrumentor()
    instrumentor.instrument(tracer_provider=tracer_provider, flush_timeout=timeout)
    try:
        assert instrumentor.is_instrumented_by_opentelemetry
        assert all(cls.__dict__[name] is not originals[cls, name] for cls, name in PATCHED)
    finally:
        instrumentor.uninstrument()
    assert all(cls.__dict__[name] is originals[cls, name] for cls, name in PATCHED)
    assert (timeout is None) != any("flush_timeout" in r.getMessage() for r in caplog.records)


async def test_instrument_twice_does_not_double_wrap(
    queue: RedisQueue,
    exporter: InMemorySpanExporter,
    instrument: SAQInstrumentor,
    tracer_provider: TracerProvider,
) -> None:
    instrument.instrument(tracer_provider=tracer_provider)
    await queue.enqueue("add", a=1, b=2)
    assert len(exporter.get_finished_spans()) == 1


async def test_after_uninstrument_nothing_is_traced_and_no_context_is_written(
    queue: RedisQueue, exporter: InMemorySpanExporter, instrument: SAQInstrumentor
) -> None:
    instrument.uninstrument()
    job = await queue.enqueue("add", a=1, b=2)
    assert job is not None
    async with running_worker(queue, [add]):
        await finished(job, 10)
    assert job.status == Status.COMPLETE
    assert META_KEY not in job.meta
    assert exporter.get_finished_spans() == ()


async def test_suppress_instrumentation_disables_both_sides(
    queue: RedisQueue, exporter: InMemorySpanExporter, instrument: SAQInstrumentor
) -> None:
    with suppress_instrumentation():
        job = await queue.enqueue("add", a=1, b=2)
        assert job is not None
        async with running_worker(queue, [add]):
            await finished(job, 10)
    assert job.status == Status.COMPLETE
    assert META_KEY not in job.meta
    assert exporter.get_finished_spans() == ()


class BrokenPropagator(TextMapPropagator):
    def extract(
        self, carrier: t.Any, context: Context | None = None, getter: t.Any = None
    ) -> Context:
        raise RuntimeError("broken extract")

    def inject(self, carrier: t.Any, context: Context | None = None, setter: t.Any = None) -> None:
        raise RuntimeError("broken inject")

    @property
    def fields(self) -> set[str]:
        return set()


async def test_a_broken_propagator_loses_no_job_and_is_logged(
    queue: RedisQueue,
    exporter: InMemorySpanExporter,
    instrument: SAQInstrumentor,
    caplog: pytest.LogCaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    with_context = await queue.enqueue("add", a=1, b=1)  # carries a context to extract
    monkeypatch.setattr(propagate, "_HTTP_TEXT_FORMAT", BrokenPropagator())
    with caplog.at_level(logging.WARNING, logger="opentelemetry.instrumentation.saq"):
        without_context = await queue.enqueue("add", a=2, b=3)
        assert with_context is not None and without_context is not None
        async with running_worker(queue, [add]):
            await finished(with_context, 10)
            await finished(without_context, 10)

    assert (with_context.status, with_context.result) == (Status.COMPLETE, 2)
    assert (without_context.status, without_context.result) == (Status.COMPLETE, 5)
    assert "could not write the trace context" in caplog.text
    assert "could not read job" in caplog.text
    # The send spans still end: a broken propagator costs the link, not the span.
    assert len(spans_named(exporter, f"send {queue.name}")) == 2


def test_the_opentelemetry_instrument_entry_point_loads_the_instrumentor() -> None:
    (entry_point,) = [
        ep for ep in entry_points(group="opentelemetry_instrumentor") if ep.name == "saq"
    ]
    assert entry_point.load() is SAQInstrumentor


def test_the_supported_saq_range_is_declared() -> None:
    assert any(dep.startswith("saq") for dep in SAQInstrumentor().instrumentation_dependencies())


def test_uninstrument_leaves_a_wrapper_someone_added_after_us(
    tracer_provider: TracerProvider, caplog: pytest.LogCaptureFixture
) -> None:
    original = saq.queue.base.Queue.__dict__["retry"]
    instrumentor = SAQInstrumentor()
    instrumentor.instrument(tracer_provider=tracer_provider)
    ours = saq.queue.base.Queue.__dict__["retry"]

    async def theirs(self: t.Any, job: t.Any, error: t.Any) -> None:
        await ours(self, job, error)

    saq.queue.base.Queue.retry = theirs  # type: ignore[method-assign]
    try:
        with caplog.at_level(logging.WARNING, logger="opentelemetry.instrumentation.saq"):
            instrumentor.uninstrument()
        assert saq.queue.base.Queue.__dict__["retry"] is theirs
        assert "Queue.retry was replaced after SAQ was instrumented" in caplog.text
        assert saq.queue.base.Queue.__dict__["enqueue"] is not ours  # the others restored
    finally:
        saq.queue.base.Queue.retry = original  # type: ignore[method-assign]
