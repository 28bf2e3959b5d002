"""Faults: Redis going away, span processors that raise, a full TraceStore."""

from __future__ import annotations

import asyncio
import logging
import subprocess
import tempfile
import typing as t

import pytest
import redis.exceptions
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace import ReadableSpan, SpanProcessor, TracerProvider
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from saq.job import Status
from saq.queue.redis import RedisQueue

from opentelemetry.instrumentation.saq import SAQInstrumentor
from tests.servers import RedisServer
from tests.workers import finished, running_worker, spans_named

Ctx = dict[str, t.Any]


async def double(ctx: Ctx, *, n: int) -> int:
    await asyncio.sleep(0.01)
    return n * 2


class PersistentRedis(RedisServer):
    """A Redis that keeps its data across a restart (append-only file), like production."""

    def __init__(self) -> None:
        super().__init__()
        self.dir = tempfile.mkdtemp(prefix="saq-otel-aof-")

    def start(self) -> None:
        self._proc = subprocess.Popen(
            [self._binary, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
             "--appendonly", "yes", "--appendfsync", "always", "--dir", self.dir],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )  # fmt: skip
        from tests.servers import _wait_for_port

        _wait_for_port(self.port, self._proc)


@pytest.mark.slow
async def test_redis_stopped_and_restarted_loses_no_acknowledged_job(
    instrument: SAQInstrumentor, exporter: InMemorySpanExporter
) -> None:
    server = PersistentRedis()
    server.start()
    queue = RedisQueue.from_url(server.url, name="restart")
    await queue.connect()
    acknowledged: dict[str, int] = {}
    refused: list[BaseException] = []
    started: list[str] = []  # attempts that reached before_process, where our span starts

    async def count_started(ctx: Ctx) -> None:
        started.append(ctx["job"].key)

    async def enqueue_many(start: int) -> None:
        for n in range(start, start + 40):
            try:
                job = await queue.enqueue("double", n=n, timeout=1, retries=3)
            except (redis.exceptions.ConnectionError, OSError) as exc:
                refused.append(exc)
            else:
                assert job is not None
                acknowledged[job.key] = n
            await asyncio.sleep(0.005)

    try:
        async with running_worker(
            queue, [double], concurrency=5, before_process=[count_started]
        ) as worker:
            await enqueue_many(0)
            server.stop()  # mid-stream: the worker is still processing
            await enqueue_many(100)  # refused while Redis is down, by redis-py, not by us
            server.start()
            await enqueue_many(200)
            # Jobs in flight when Redis went away stay "active" in Redis, exactly as they
            # do without us; SAQ's sweep re-queues them once their timeout has passed.
            await asyncio.sleep(1.2)
            await queue.redis.delete(f"saq:{queue.name}:sweep")
            await queue.sweep()
            for _ in range(300):
                jobs = await queue.jobs(list(acknowledged))
                if all(job is not None and job.status == Status.COMPLETE for job in jobs):
                    break
                await asyncio.sleep(0.05)
            assert worker.tasks  # the worker kept running through the outage
    finally:
        await queue.disconnect()
        server.stop()

    assert refused, "Redis was down for a while: some enqueues must have been refused"
    assert all(isinstance(exc, (redis.exceptions.ConnectionError, OSError)) for exc in refused)
    assert [job.status if job else None for job in jobs] == [Status.COMPLETE] * len(acknowledged)
    assert [job.result for job in jobs if job] == [n * 2 for n in acknowledged.values()]
    # Every attempt's span ended (one per attempt), and the refused enqueues' spans say why.
    # SAQ may count one attempt more than ran: when Redis goes away as the worker writes a
    # job ACTIVE, the write can land with its reply lost; SAQ then never calls
    # before_process for it (nor we), and its sweep re-queues the job later.
    attempts = sum(job.attempts for job in jobs if job)
    assert len(spans_named(exporter, "process restart")) == len(started) <= attempts
    sends = spans_named(exporter, "send restart")
    assert len(sends) == len(acknowledged) + len(refused)
    failed_sends = [s for s in sends if s.status.status_code.name == "ERROR"]
    assert len(failed_sends) == len(refused)
    assert all(
        (s.attributes or {})["error.type"].startswith("redis.")
        or "Error" in (s.attributes or {})["error.type"]
        for s in failed_sends
    )


@pytest.mark.parametrize("broken", ["on_start", "on_end"])
async def test_a_span_processor_that_raises_never_reaches_the_user(
    queue: RedisQueue, broken: str, caplog: pytest.LogCaptureFixture
) -> None:
    class Broken(SpanProcessor):
        def on_start(self, span: t.Any, parent_context: t.Any = None) -> None:
            if broken == "on_start":
                raise RuntimeError("on_start is broken")

        def on_end(self, span: ReadableSpan) -> None:
            if broken == "on_end":
                raise RuntimeError("on_end is broken")

    provider = TracerProvider()
    provider.add_span_processor(Broken())
    instrumentor = SAQInstrumentor()
    instrumentor.instrument(tracer_provider=provider)
    try:
        with caplog.at_level(logging.WARNING, logger="opentelemetry.instrumentation.saq"):
            job = await queue.enqueue("double", n=21)
            assert job is not None
            async with running_worker(queue, [double]):
                await finished(job, 10)
    finally:
        instrumentor.uninstrument()
    assert (job.status, job.result) == (Status.COMPLETE, 42)
    # Our wrappers caught the processor's error and logged it.
    assert any(r.name.startswith("opentelemetry.instrumentation.saq") for r in caplog.records)


async def test_an_exporter_that_raises_loses_no_job(queue: RedisQueue) -> None:
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor, SpanExporter

    class BrokenExporter(SpanExporter):
        def export(self, spans: t.Any) -> t.Any:
            raise ConnectionRefusedError("the collector is down")

    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(BrokenExporter()))
    instrumentor = SAQInstrumentor()
    instrumentor.instrument(tracer_provider=provider)
    try:
        job = await queue.enqueue("double", n=4)
        assert job is not None
        async with running_worker(queue, [double]):
            await finished(job, 10)
    finally:
        instrumentor.uninstrument()
    assert (job.status, job.result) == (Status.COMPLETE, 8)


# The Redis a job takes down with it (see fails_as_redis_goes_away).
_going_away: list[RedisServer] = []


async def fails_as_redis_goes_away(ctx: Ctx) -> None:
    for server in _going_away:
        server.stop()
    raise ConnectionError("the mail server hung up")


async def test_a_retry_saq_could_not_write_is_not_claimed_as_a_retry(
    tracer_provider: TracerProvider, exporter: InMemorySpanExporter
) -> None:
    # SAQ sets the job queued, then its write of the retry raises (Redis is gone): the queue
    # may hold the job anything, so the attempt says unknown, never "will retry".
    reader = InMemoryMetricReader()
    instrumentor = SAQInstrumentor()
    instrumentor.instrument(
        tracer_provider=tracer_provider, meter_provider=MeterProvider(metric_readers=[reader])
    )
    server = RedisServer()
    server.start()
    queue = RedisQueue.from_url(server.url, name="goes-away")
    await queue.connect()
    try:
        job = await queue.enqueue("fails_as_redis_goes_away", retries=3)
        assert job is not None
        _going_away.append(server)
        async with running_worker(queue, [fails_as_redis_goes_away]):
            for _ in range(500):
                if spans_named(exporter, "process goes-away"):
                    break
                await asyncio.sleep(0.02)
            _going_away.clear()
            server.start()  # back (empty) for the worker to stop cleanly
    finally:
        _going_away.clear()
        instrumentor.uninstrument()
        await queue.disconnect()
        server.stop()

    (attempt,) = spans_named(exporter, "process goes-away")
    attributes = attempt.attributes or {}
    assert attributes["saq.job.status"] == "unknown"
    assert "saq.job.will_retry" not in attributes
    assert attributes["error.type"] == "ConnectionError"  # the attempt's own error
    assert attempt.status.status_code.name == "ERROR"
    assert "the retry could not be written: redis.exceptions.ConnectionError" in (
        attempt.status.description or ""
    )
    data = reader.get_metrics_data()
    assert data is not None
    (point,) = [
        point
        for resource in data.resource_metrics
        for scope in resource.scope_metrics
        for metric in scope.metrics
        if metric.name == "messaging.process.duration"
        for point in metric.data.data_points
    ]
    assert point.attributes["saq.job.status"] == "unknown"
    assert point.attributes["error.type"] == "ConnectionError"
