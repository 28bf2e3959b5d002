"""A stopping worker flushes the providers; a flush that hangs or fails is logged, never raised."""

from __future__ import annotations

import asyncio
import logging
import threading
import typing as t

import pytest
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace import SpanProcessor, TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from saq import Worker
from saq.queue.redis import RedisQueue

from opentelemetry.instrumentation.saq import SAQInstrumentor
from tests.workers import finished, running_worker, spans_named, wait_until


class StuckExport(SpanProcessor):
    """An exporter whose backend never answers: force_flush waits until released."""

    def __init__(self) -> None:
        self.flushing = threading.Event()
        self.release = threading.Event()

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        self.flushing.set()
        self.release.wait(60)
        return True


class BrokenExport(SpanProcessor):
    def __init__(self) -> None:
        self.flushes = 0

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        self.flushes += 1
        raise ConnectionError("collector gone")


async def noop(ctx: dict[str, t.Any]) -> None:
    pass


async def started(worker: Worker) -> None:
    # A worker stopped before its start() ran at all trips over SAQ itself.
    await wait_until(lambda: bool(worker.tasks))


async def test_a_flush_that_hangs_is_given_up_after_the_timeout_and_logged(
    queue: RedisQueue, caplog: pytest.LogCaptureFixture
) -> None:
    stuck = StuckExport()
    provider = TracerProvider()
    provider.add_span_processor(stuck)
    SAQInstrumentor().instrument(tracer_provider=provider, flush_timeout=0.2)
    try:
        with caplog.at_level(logging.WARNING, "opentelemetry.instrumentation.saq"):
            async with running_worker(queue, [noop]) as worker:
                await started(worker)
        # The worker stopped while the flush was still waiting for its backend.
        assert stuck.flushing.is_set() and not stuck.release.is_set()
        assert "did not flush within 0.2s" in caplog.text
    finally:
        stuck.release.set()


async def test_a_flush_that_fails_is_logged_and_the_stop_carries_on(
    queue: RedisQueue, caplog: pytest.LogCaptureFixture
) -> None:
    broken = BrokenExport()
    provider = TracerProvider()
    provider.add_span_processor(broken)
    SAQInstrumentor().instrument(tracer_provider=provider)
    with caplog.at_level(logging.WARNING, "opentelemetry.instrumentation.saq"):
        async with running_worker(queue, [noop]) as worker:
            await started(worker)
    assert broken.flushes >= 1
    assert "TracerProvider failed to flush" in caplog.text
    assert "collector gone" in caplog.text


async def test_a_stopping_worker_flushes_the_provider_given_to_instrument(
    queue: RedisQueue,
) -> None:
    flushed = threading.Event()

    class Watched(SpanProcessor):
        def force_flush(self, timeout_millis: int = 30000) -> bool:
            flushed.set()
            return True

    provider = TracerProvider()
    provider.add_span_processor(Watched())
    SAQInstrumentor().instrument(tracer_provider=provider)
    async with running_worker(queue, [noop]) as worker:
        await started(worker)
        assert not flushed.is_set()
    assert flushed.is_set()


async def test_flush_timeout_zero_turns_the_flush_off(queue: RedisQueue) -> None:
    broken = BrokenExport()
    provider = TracerProvider()
    provider.add_span_processor(broken)
    SAQInstrumentor().instrument(tracer_provider=provider, flush_timeout=0)
    async with running_worker(queue, [noop]) as worker:
        await started(worker)
    assert broken.flushes == 0


class CountedExport(SpanProcessor):
    def __init__(self) -> None:
        self.flushes = 0

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        self.flushes += 1
        return True


async def test_only_the_stop_call_that_stopped_the_worker_flushes(queue: RedisQueue) -> None:
    counted = CountedExport()
    provider = TracerProvider()
    provider.add_span_processor(counted)
    SAQInstrumentor().instrument(tracer_provider=provider)
    async with running_worker(queue, [noop]) as worker:
        await started(worker)
        await worker.stop()
        assert counted.flushes == 1
        await worker.stop()  # already stopped: SAQ returns at once, and so do we
    # running_worker stopped it once more, and Worker.start did on its way out.
    assert counted.flushes == 1


stop_cancelled = False


async def slow_to_stop(ctx: dict[str, t.Any]) -> None:
    while True:
        try:
            await asyncio.sleep(600)
        except asyncio.CancelledError:
            # Swallows the worker's own cancellation (older SAQ cancels jobs at once when it
            # stops), so that the stop is still under way when the test cancels it.
            if stop_cancelled:
                raise


async def test_a_cancelled_stop_starts_the_flush_but_does_not_wait_for_it(
    queue: RedisQueue,
) -> None:
    global stop_cancelled
    stop_cancelled = False
    stuck = StuckExport()
    provider = TracerProvider()
    provider.add_span_processor(stuck)
    SAQInstrumentor().instrument(tracer_provider=provider, flush_timeout=3600)
    stopping: asyncio.Task[None] | None = None
    try:
        async with running_worker(queue, [slow_to_stop], shutdown_grace_period_s=3600) as worker:
            await queue.enqueue("slow_to_stop", key="slow")
            await wait_until(lambda: bool(worker.job_task_contexts))
            stopping = asyncio.create_task(worker.stop())
            await wait_until(lambda: worker.event.is_set() and not worker.tasks)
            stop_cancelled = True
            stopping.cancel()
            # The cancellation goes on while the flush still waits for its backend.
            await wait_until(stopping.done)
            assert stopping.cancelled()
            await wait_until(stuck.flushing.is_set)
            assert not stuck.release.is_set()
    finally:
        stuck.release.set()
        if stopping is not None:
            await asyncio.gather(stopping, return_exceptions=True)


async def test_providers_the_apps_shutdown_hook_shut_down_stop_the_worker_without_a_warning(
    queue: RedisQueue, caplog: pytest.LogCaptureFixture
) -> None:
    exporter = InMemorySpanExporter()
    tracer_provider = TracerProvider()
    tracer_provider.add_span_processor(BatchSpanProcessor(exporter))
    meter_provider = MeterProvider(metric_readers=[InMemoryMetricReader()])
    SAQInstrumentor().instrument(tracer_provider=tracer_provider, meter_provider=meter_provider)

    async def shutdown(ctx: dict[str, t.Any]) -> None:
        # What an app's own shutdown hook does: its providers export and end.
        tracer_provider.shutdown()
        meter_provider.shutdown()

    with caplog.at_level(logging.DEBUG, "opentelemetry.instrumentation.saq"):
        async with running_worker(queue, [noop], shutdown=shutdown):
            job = await queue.enqueue("noop")
            assert job is not None
            await finished(job)
        # The job's span went out with the app's own shutdown.
        assert spans_named(exporter, f"process {queue.name}")
        assert "TracerProvider refused to flush: shut down already" in caplog.text
    ours = [r for r in caplog.records if r.name.startswith("opentelemetry.instrumentation.saq")]
    assert [r.getMessage() for r in ours if r.levelno >= logging.WARNING] == []


class SlowExport(SpanProcessor):
    """A backend that answers late: force_flush uses most of its time, then gives up."""

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        threading.Event().wait(timeout_millis * 0.75 / 1000)
        return False


async def test_a_provider_that_gives_up_flushing_late_is_still_warned_of(
    queue: RedisQueue, caplog: pytest.LogCaptureFixture
) -> None:
    provider = TracerProvider()
    provider.add_span_processor(SlowExport())
    SAQInstrumentor().instrument(tracer_provider=provider, flush_timeout=1)
    with caplog.at_level(logging.WARNING, "opentelemetry.instrumentation.saq"):
        async with running_worker(queue, [noop]) as worker:
            await started(worker)
        # Logged from the flush thread, whether or not the stop waited that long.
        await wait_until(lambda: "TracerProvider did not flush in time" in caplog.text)
    assert "TracerProvider did not flush in time" in caplog.text
