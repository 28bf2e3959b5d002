"""A stopping worker flushes the providers; a flush that hangs or fails is logged, never raised."""

from __future__ import annotations

import logging
import threading
import typing as t

import pytest
from opentelemetry.sdk.trace import SpanProcessor, TracerProvider
from saq import Worker
from saq.queue.redis import RedisQueue

from opentelemetry.instrumentation.saq import SAQInstrumentor
from tests.workers import running_worker, wait_until


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
