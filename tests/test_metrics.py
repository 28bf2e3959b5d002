"""Metrics by the messaging semantic conventions, plus queue wait."""

from __future__ import annotations

import typing as t
from collections.abc import Iterator

import pytest
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import (
    HistogramDataPoint,
    InMemoryMetricReader,
    NumberDataPoint,
)
from opentelemetry.sdk.trace import TracerProvider
from saq.queue.redis import RedisQueue

from opentelemetry.instrumentation.saq import SAQInstrumentor
from opentelemetry.instrumentation.saq._metrics import DURATION_BUCKETS, QUEUE_WAIT_BUCKETS
from tests.workers import running_worker, wait_for_spans

Ctx = dict[str, t.Any]
_calls: dict[str, int] = {}


async def fails_once(ctx: Ctx) -> str:
    key = ctx["job"].key
    _calls[key] = _calls.get(key, 0) + 1
    if _calls[key] == 1:
        raise ConnectionError("flaky")
    return "ok"


async def always_fails(ctx: Ctx) -> None:
    raise ValueError("no")


async def ok(ctx: Ctx) -> None:
    return None


@pytest.fixture
def reader() -> InMemoryMetricReader:
    return InMemoryMetricReader()


@pytest.fixture
def metered(
    reader: InMemoryMetricReader, tracer_provider: TracerProvider
) -> Iterator[SAQInstrumentor]:
    instrumentor = SAQInstrumentor()
    instrumentor.instrument(
        tracer_provider=tracer_provider, meter_provider=MeterProvider(metric_readers=[reader])
    )
    yield instrumentor
    instrumentor.uninstrument()


Point = NumberDataPoint | HistogramDataPoint


def points(reader: InMemoryMetricReader) -> dict[str, list[t.Any]]:
    data = reader.get_metrics_data()
    found: dict[str, list[t.Any]] = {}
    for resource_metrics in data.resource_metrics if data else []:
        for scope_metrics in resource_metrics.scope_metrics:
            for metric in scope_metrics.metrics:
                found.setdefault(metric.name, []).extend(metric.data.data_points)
    return found


def by_attributes(found: list[Point]) -> dict[frozenset[tuple[str, t.Any]], Point]:
    return {frozenset((p.attributes or {}).items()): p for p in found}


def base(queue: RedisQueue, operation: str, **extra: t.Any) -> frozenset[tuple[str, t.Any]]:
    """The attribute set the conventions ask of every point: the broker's address and
    port are Conditionally Required, and so is the operation type on the duration."""
    return frozenset(
        {
            "messaging.system": "saq",
            "messaging.operation.name": operation,
            "messaging.operation.type": operation,
            "messaging.destination.name": queue.name,
            "server.address": "127.0.0.1",
            "server.port": queue.redis.connection_pool.connection_kwargs["port"],
            **extra,
        }.items()
    )


async def test_counts_and_histograms_match_the_jobs_and_attempts(
    queue: RedisQueue, reader: InMemoryMetricReader, metered: SAQInstrumentor, exporter: t.Any
) -> None:
    await queue.enqueue("ok")
    await queue.enqueue("fails_once", retries=2)
    await queue.enqueue("always_fails")
    await queue.enqueue("ok", key="dup")
    await queue.enqueue("ok", key="dup")  # a duplicate: SAQ sends nothing
    async with running_worker(queue, [ok, fails_once, always_fails]):
        await wait_for_spans(exporter, f"process {queue.name}", 5)

    found = points(reader)
    sent = by_attributes(found["messaging.client.sent.messages"])
    assert {k: p.value for k, p in sent.items()} == {base(queue, "send"): 4}

    operation = by_attributes(found["messaging.client.operation.duration"])
    assert {k: p.count for k, p in operation.items()} == {base(queue, "send"): 5}
    assert tuple(operation[base(queue, "send")].explicit_bounds) == DURATION_BUCKETS

    consumed = by_attributes(found["messaging.client.consumed.messages"])
    assert {k: p.value for k, p in consumed.items()} == {base(queue, "process"): 5}

    process = by_attributes(found["messaging.process.duration"])

    def of(function: str, **extra: str) -> frozenset[tuple[str, t.Any]]:
        return base(queue, "process", **{"saq.job.function": function, **extra})

    assert {k: p.count for k, p in process.items()} == {
        of("ok", **{"saq.job.status": "complete"}): 2,
        of("fails_once", **{"saq.job.status": "complete"}): 1,
        of("fails_once", **{"saq.job.status": "queued", "error.type": "ConnectionError"}): 1,
        of("always_fails", **{"saq.job.status": "failed", "error.type": "ValueError"}): 1,
    }
    assert all(p.sum >= 0 for p in process.values())

    wait = by_attributes(found["saq.job.queue.wait"])
    assert {k: p.count for k, p in wait.items()} == {
        of("ok"): 2,
        of("fails_once"): 2,
        of("always_fails"): 1,
    }
    assert tuple(wait[of("ok")].explicit_bounds) == QUEUE_WAIT_BUCKETS


async def test_a_failed_enqueue_is_counted_with_its_error_type(
    queue: RedisQueue, reader: InMemoryMetricReader, metered: SAQInstrumentor
) -> None:
    async def refuse(job: t.Any) -> None:
        raise RuntimeError("full")

    queue.register_before_enqueue(refuse)
    with pytest.raises(RuntimeError):
        await queue.enqueue("ok")

    found = points(reader)
    failed = base(queue, "send", **{"error.type": "RuntimeError"})
    assert {
        k: p.value for k, p in by_attributes(found["messaging.client.sent.messages"]).items()
    } == {failed: 1}
    assert by_attributes(found["messaging.client.operation.duration"])[failed].count == 1


async def test_nothing_more_is_recorded_after_uninstrument(
    queue: RedisQueue, reader: InMemoryMetricReader, metered: SAQInstrumentor
) -> None:
    await queue.enqueue("ok")
    before = points(reader)["messaging.client.sent.messages"][0].value
    metered.uninstrument()
    await queue.enqueue("ok")
    after = points(reader)["messaging.client.sent.messages"][0].value
    metered.instrument()  # the fixture's teardown uninstruments
    assert (before, after) == (1, 1)


async def nightly(ctx: Ctx) -> None:
    return None


async def test_the_function_on_points_is_one_the_worker_registered_or_other(
    queue: RedisQueue, reader: InMemoryMetricReader, metered: SAQInstrumentor, exporter: t.Any
) -> None:
    from saq import CronJob

    await queue.enqueue("ok")
    await queue.enqueue("nightly")  # registered through the worker's cron jobs
    await queue.enqueue("made_up_by_a_producer")  # not registered: SAQ fails it
    await queue.enqueue("another_unknown")
    cron = CronJob(nightly, cron="0 0 1 1 *")  # never due during the test
    async with running_worker(queue, [ok], cron_jobs=[cron]):
        await wait_for_spans(exporter, f"process {queue.name}", 4)

    found = points(reader)
    functions = {
        (p.attributes["saq.job.function"], p.attributes["saq.job.status"]): p.count
        for p in found["messaging.process.duration"]
    }
    assert functions == {("ok", "complete"): 1, ("nightly", "complete"): 1, ("_OTHER", "failed"): 2}
    waits = {p.attributes["saq.job.function"]: p.count for p in found["saq.job.queue.wait"]}
    assert waits == {"ok": 1, "nightly": 1, "_OTHER": 2}
