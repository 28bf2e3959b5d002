"""Queue-health gauges read by real workers, checked against what SAQ reports (Redis, Postgres)."""

from __future__ import annotations

import asyncio
import logging
import time
import typing as t
from collections.abc import Iterator

import pytest
from opentelemetry import metrics
from opentelemetry.metrics import _internal as metrics_api
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from saq.queue import Queue
from saq.queue.redis import RedisQueue

from opentelemetry.instrumentation.saq import SAQInstrumentor, _queue_snapshot
from tests.workers import running_worker, wait_until

Ctx = dict[str, t.Any]
# Reads once a second instead of SAQ's default ten: the worker_info timer is the clock.
TIMERS = {"schedule": 1, "worker_info": 1, "sweep": 60, "abort": 0.1}


async def blocks(ctx: Ctx) -> None:
    await asyncio.sleep(600)  # cancelled when the worker stops


async def quick(ctx: Ctx) -> None:
    return None


done: list[str] = []


async def records(ctx: Ctx) -> None:
    done.append(ctx["job"].key)


@pytest.fixture
def reader() -> InMemoryMetricReader:
    return InMemoryMetricReader()


@pytest.fixture
def healthy(reader: InMemoryMetricReader) -> Iterator[SAQInstrumentor]:
    instrumentor = SAQInstrumentor()
    instrumentor.instrument(
        meter_provider=MeterProvider(metric_readers=[reader]), queue_health=True
    )
    yield instrumentor
    instrumentor.uninstrument()


@pytest.fixture(params=["redis", "postgres"])
def any_queue(request: pytest.FixtureRequest) -> Queue:
    return t.cast(
        Queue, request.getfixturevalue("queue" if request.param == "redis" else "pg_queue")
    )


Series = dict[frozenset[tuple[str, t.Any]], float]


def gauges(reader: InMemoryMetricReader) -> dict[str, Series]:
    data = reader.get_metrics_data()
    found: dict[str, Series] = {}
    for resource_metrics in data.resource_metrics if data else []:
        for scope_metrics in resource_metrics.scope_metrics:
            for metric in scope_metrics.metrics:
                if metric.name.startswith(("saq.queue.", "saq.worker.")):
                    found[metric.name] = {
                        frozenset((p.attributes or {}).items()): p.value
                        for p in metric.data.data_points
                    }
    return found


def of_queue(queue: Queue, **extra: t.Any) -> frozenset[tuple[str, t.Any]]:
    attributes = {
        "messaging.system": "saq",
        "messaging.destination.name": queue.name,
        "server.address": "127.0.0.1",
        **extra,
    }
    port = _port(queue)
    attributes["server.port"] = port
    return frozenset(attributes.items())


def _port(queue: Queue) -> int:
    redis = getattr(queue, "redis", None)
    if redis is not None:
        return int(redis.connection_pool.connection_kwargs["port"])
    from psycopg.conninfo import conninfo_to_dict

    return int(conninfo_to_dict(queue.pool.conninfo)["port"])  # type: ignore[attr-defined]


def expected_from_saq(
    queue: Queue, info: t.Any, worker_ids: list[str], busy: int
) -> dict[str, Series]:
    return {
        "saq.queue.job.count": {
            of_queue(queue, **{"saq.job.state": "queued"}): info["queued"],
            of_queue(queue, **{"saq.job.state": "active"}): info["active"],
            of_queue(queue, **{"saq.job.state": "scheduled"}): info["scheduled"],
        },
        "saq.queue.worker.count": {of_queue(queue): len(info["workers"])},
        "saq.worker.slot.busy": {
            of_queue(queue, **{"messaging.client.id": worker_id}): busy for worker_id in worker_ids
        },
    }


def matches(found: dict[str, Series], expected: dict[str, Series]) -> bool:
    return all(found.get(name) == series for name, series in expected.items())


async def test_an_idle_queue_reports_zeros_not_a_vanished_series(
    any_queue: Queue, reader: InMemoryMetricReader, healthy: SAQInstrumentor
) -> None:
    async with running_worker(any_queue, [quick], timers=TIMERS, concurrency=3) as worker:
        await wait_until(lambda: "saq.queue.job.count" in gauges(reader), timeout=20)
        info = await any_queue.info()
        assert (info["queued"], info["active"], info["scheduled"]) == (0, 0, 0)
        assert list(info["workers"]) == [str(worker.id)]
        expected = expected_from_saq(any_queue, info, [str(worker.id)], busy=0)
        await wait_until(lambda: matches(gauges(reader), expected), timeout=20)
        found = gauges(reader)
        assert found["saq.queue.oldest_job.age"] == {of_queue(any_queue): 0}
        assert found["saq.worker.slot.max"] == {
            of_queue(any_queue, **{"messaging.client.id": str(worker.id)}): 3
        }
        # Still there after the next read: an idle queue keeps its series.
        await _two_worker_info_ticks(any_queue, worker)
        assert matches(gauges(reader), expected)


async def test_a_backlog_is_counted_by_state_and_its_oldest_job_ages(
    any_queue: Queue, reader: InMemoryMetricReader, healthy: SAQInstrumentor
) -> None:
    first_enqueue = time.time()
    for _ in range(4):
        await any_queue.enqueue("blocks")
    await any_queue.enqueue("quick", scheduled=int(time.time()) + 600)
    async with running_worker(any_queue, [blocks, quick], timers=TIMERS, concurrency=1) as worker:
        await wait_until(lambda: len(worker.job_task_contexts) == 1, timeout=20)
        # SAQ 0.20's Postgres queue can take a second job (marked active) for a dequeue that
        # then waits: the gauges must equal what SAQ says, read again until both agree.
        deadline = time.monotonic() + 20
        while True:
            info = await any_queue.info()
            expected = expected_from_saq(any_queue, info, [str(worker.id)], busy=1)
            if matches(gauges(reader), expected):
                break
            assert time.monotonic() < deadline, (info, gauges(reader))
            await asyncio.sleep(0.2)
        assert info["queued"] + info["active"] == 4 and info["active"] in (1, 2)
        assert info["scheduled"] == 1

        def oldest_age() -> float:
            return gauges(reader)["saq.queue.oldest_job.age"][of_queue(any_queue)]

        first = oldest_age()
        assert 0 < first <= time.time() - first_enqueue
        await wait_until(lambda: oldest_age() > first, timeout=20)  # the next read: older
        assert oldest_age() <= time.time() - first_enqueue


async def test_two_workers_on_one_queue_report_one_depth_and_their_own_slots(
    queue: Queue, reader: InMemoryMetricReader, healthy: SAQInstrumentor
) -> None:
    for _ in range(5):
        await queue.enqueue("blocks")
    async with (
        running_worker(queue, [blocks], timers=TIMERS, concurrency=1) as one,
        running_worker(queue, [blocks], timers=TIMERS, concurrency=2) as two,
    ):
        await wait_until(lambda: len(one.job_task_contexts) + len(two.job_task_contexts) == 3)
        info = await queue.info()
        assert (info["queued"], info["active"], len(info["workers"])) == (2, 3, 2)

        def reported() -> bool:
            found = gauges(reader)
            return (
                found.get("saq.queue.job.count", {}).get(
                    of_queue(queue, **{"saq.job.state": "queued"})
                )
                == 2
                and found.get("saq.queue.worker.count") == {of_queue(queue): 2}
                and found.get("saq.worker.slot.busy")
                == {
                    of_queue(queue, **{"messaging.client.id": str(one.id)}): 1,
                    of_queue(queue, **{"messaging.client.id": str(two.id)}): 2,
                }
            )

        await wait_until(reported, timeout=20)
        # One series per queue and state, however many workers of this process read it.
        assert len(gauges(reader)["saq.queue.job.count"]) == 3


async def test_a_queue_that_cannot_be_read_drops_its_series_and_jobs_still_run(
    queue: Queue,
    reader: InMemoryMetricReader,
    healthy: SAQInstrumentor,
    caplog: pytest.LogCaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    async def broken_read(*args: t.Any, **kwargs: t.Any) -> t.Any:
        raise ConnectionError("redis went away")

    # Only the gauges' read fails: SAQ's own calls still work.
    monkeypatch.setattr(_queue_snapshot, "read", broken_read)
    done.clear()
    with caplog.at_level(logging.WARNING, "opentelemetry.instrumentation.saq"):
        async with running_worker(queue, [records], timers=TIMERS) as worker:
            await wait_until(lambda: "could not read the health" in caplog.text, timeout=20)
            await queue.enqueue("records", key="after")
            await wait_until(lambda: done == ["after"])
            found = gauges(reader)
            assert "saq.queue.job.count" not in found
            # The worker's own gauges need no read.
            assert found["saq.worker.slot.max"] == {
                of_queue(queue, **{"messaging.client.id": str(worker.id)}): 10
            }
    assert caplog.text.count("could not read the health") == 1  # once per failing streak


async def _two_worker_info_ticks(queue: Queue, worker: t.Any) -> None:
    """Wait until SAQ wrote the worker's info twice (when a read would have started)."""
    uptimes: set[int] = set()

    async def tick() -> bool:
        info = await queue.info()
        entry = info["workers"].get(str(worker.id))
        if entry and entry.get("stats"):
            uptimes.add(entry["stats"]["uptime"])
        return len(uptimes) >= 2

    deadline = time.monotonic() + 20
    while not await tick():
        assert time.monotonic() < deadline
        await asyncio.sleep(0.1)


async def test_no_gauges_without_the_option_or_after_uninstrument(queue: Queue) -> None:
    instrumentor = SAQInstrumentor()
    without = InMemoryMetricReader()
    instrumentor.instrument(meter_provider=MeterProvider(metric_readers=[without]))
    try:
        async with running_worker(queue, [quick], timers=TIMERS) as worker:
            await _two_worker_info_ticks(queue, worker)
            assert gauges(without) == {}
    finally:
        instrumentor.uninstrument()

    after = InMemoryMetricReader()
    instrumentor.instrument(meter_provider=MeterProvider(metric_readers=[after]), queue_health=True)
    instrumentor.uninstrument()
    async with running_worker(queue, [quick], timers=TIMERS) as worker:
        await _two_worker_info_ticks(queue, worker)
        assert gauges(after) == {}


async def test_nothing_is_read_while_no_meter_provider_could_record(
    queue: Queue, redis_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(metrics_api, "_METER_PROVIDER", None)  # no SDK configured yet
    monkeypatch.delenv("OTEL_PYTHON_METER_PROVIDER", raising=False)
    reads = 0
    original = _queue_snapshot.read

    async def counted_read(*args: t.Any, **kwargs: t.Any) -> t.Any:
        nonlocal reads
        reads += 1
        return await original(*args, **kwargs)

    monkeypatch.setattr(_queue_snapshot, "read", counted_read)
    instrumentor = SAQInstrumentor()
    instrumentor.instrument(queue_health=True)
    observer = RedisQueue.from_url(redis_url, name=queue.name)  # the test's own reads
    await observer.connect()
    try:
        async with running_worker(queue, [quick], timers=TIMERS) as worker:
            await _two_worker_info_ticks(observer, worker)
            assert reads == 0
            # A provider set later: the worker starts reading at its next tick.
            monkeypatch.setattr(metrics_api, "_METER_PROVIDER", MeterProvider())
            assert not isinstance(metrics.get_meter_provider(), metrics.NoOpMeterProvider)
            await wait_until(lambda: reads > 0, timeout=20)
    finally:
        instrumentor.uninstrument()
        await observer.disconnect()


async def test_a_worker_stopped_mid_read_leaves_no_read_behind(
    queue: Queue,
    healthy: SAQInstrumentor,
    caplog: pytest.LogCaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    reading = asyncio.Event()
    real_read = _queue_snapshot.read

    async def slow_read(*args: t.Any, **kwargs: t.Any) -> t.Any:
        snapshot = await real_read(*args, **kwargs)
        reading.set()
        await asyncio.sleep(600)  # a broker that answers slowly: the read is under way
        return snapshot

    monkeypatch.setattr(_queue_snapshot, "read", slow_read)
    # A read may take as long as the worker_info timer: the stop comes well within it.
    timers = {**TIMERS, "worker_info": 60}
    with caplog.at_level(logging.WARNING, "opentelemetry.instrumentation.saq"):
        async with running_worker(queue, [quick], timers=timers):
            await wait_until(reading.is_set, timeout=20)
        # The worker has stopped (SAQ disconnects its queue next): nothing of it still runs.
        left = [task for task in asyncio.all_tasks() if task is not asyncio.current_task()]
        for task in left:
            task.cancel()
        await asyncio.gather(*left, return_exceptions=True)
    assert left == []
    assert "could not read the health" not in caplog.text
