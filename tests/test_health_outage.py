"""Queue-health gauges while the broker is down: a real Redis, stopped under a real worker."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import socket
import time
import traceback
import uuid
from collections.abc import AsyncIterator, Iterator

import pytest
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from saq.queue.redis import RedisQueue

from opentelemetry.instrumentation.saq import SAQInstrumentor
from tests.servers import RedisServer
from tests.test_health import TIMERS, gauges, of_queue, quick
from tests.workers import running_worker, wait_until

# Ticks far enough apart that the server stops between a read and the next write.
SLOW_TIMERS = {**TIMERS, "worker_info": 5}


@pytest.fixture
def own_redis() -> Iterator[RedisServer]:
    server = RedisServer()  # this test stops it: not the session's shared server
    server.start()
    yield server
    server.stop()


@pytest.fixture
async def own_queue(own_redis: RedisServer) -> AsyncIterator[RedisQueue]:
    queue = RedisQueue.from_url(own_redis.url, name=f"outage-{uuid.uuid4().hex[:8]}")
    await queue.connect()
    yield queue
    await queue.disconnect()


def _answers(server: RedisServer) -> bool:
    with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", server.port), 1):
        return True
    return False


def _failed_worker_info_writes(caplog: pytest.LogCaptureFixture) -> int:
    """SAQ's own log lines for a failed worker_info write (its upkeep logs and goes on)."""
    count = 0
    for record in caplog.records:
        failure = "".join(traceback.format_exception(*record.exc_info)) if record.exc_info else ""
        if record.name.startswith("saq") and "write_worker_info" in failure:
            count += 1
    return count


async def test_the_depth_vanishes_at_the_first_tick_the_broker_is_down(
    own_redis: RedisServer, own_queue: RedisQueue, caplog: pytest.LogCaptureFixture
) -> None:
    reader = InMemoryMetricReader()
    instrumentor = SAQInstrumentor()
    instrumentor.instrument(
        meter_provider=MeterProvider(metric_readers=[reader]), queue_health=True
    )
    depth = of_queue(own_queue, **{"saq.job.state": "queued"})
    try:
        with caplog.at_level(logging.WARNING):
            async with running_worker(own_queue, [quick], timers=SLOW_TIMERS) as worker:
                await wait_until(
                    lambda: depth in gauges(reader).get("saq.queue.job.count", {}), timeout=30
                )
                own_redis.stop()
                # SAQ's write fails before any read of ours could: at that very tick the
                # depth is gone, not repeated until it is a few intervals old.
                await wait_until(lambda: _failed_worker_info_writes(caplog) >= 1, timeout=30)
                found = gauges(reader)
                for name in ("saq.queue.job.count", "saq.queue.worker.count"):
                    assert name not in found, found.get(name)
                assert "saq.queue.oldest_job.age" not in found
                # The worker's own slots need no read and stay.
                assert found["saq.worker.slot.max"] == {
                    of_queue(own_queue, **{"messaging.client.id": str(worker.id)}): 10
                }
                await wait_until(lambda: _failed_worker_info_writes(caplog) >= 2, timeout=30)
                assert "saq.queue.job.count" not in gauges(reader)
                warnings = [
                    r.getMessage()
                    for r in caplog.records
                    if r.name.startswith("opentelemetry.instrumentation.saq")
                ]
                # One warning for the whole outage, saying why.
                assert warnings == [
                    f"could not read the health of queue {own_queue.name}:"
                    " SAQ could not write the worker's info"
                ]
                # Back with the broker: the next good read reports the queue again.
                own_redis.start()
                await wait_until(
                    lambda: (
                        gauges(reader).get("saq.queue.worker.count") == {of_queue(own_queue): 1}
                    ),
                    timeout=30,
                )
                assert gauges(reader)["saq.queue.job.count"][depth] == 0
    finally:
        instrumentor.uninstrument()
        if own_redis.url and not _answers(own_redis):
            own_redis.start()  # for the queue's disconnect


async def test_a_broker_that_hangs_drops_the_depth_once_the_read_is_too_old(
    own_redis: RedisServer, own_queue: RedisQueue, caplog: pytest.LogCaptureFixture
) -> None:
    reader = InMemoryMetricReader()
    instrumentor = SAQInstrumentor()
    instrumentor.instrument(
        meter_provider=MeterProvider(metric_readers=[reader]), queue_health=True
    )
    depth = of_queue(own_queue, **{"saq.job.state": "queued"})
    stopped = False
    try:
        with caplog.at_level(logging.WARNING):
            async with running_worker(own_queue, [quick], timers=SLOW_TIMERS) as worker:
                await wait_until(
                    lambda: depth in gauges(reader).get("saq.queue.job.count", {}), timeout=30
                )
                # Between two ticks: SAQ wrote the worker's info (TTL 6 s) 1 to 2 s ago, so
                # the read after it is done and the next write is seconds away.
                key = f"saq:{own_queue.name}:worker_info:{worker.id}"
                deadline = time.monotonic() + 30
                while not 4000 < await own_queue.redis.pttl(key) < 5000:
                    assert time.monotonic() < deadline
                    await asyncio.sleep(0.05)
                own_redis.signal(signal.SIGSTOP)  # connections open, nothing answered
                stopped = True
                # SAQ's next write hangs: no tick, no read; the last read ages out.
                await wait_until(lambda: "saq.queue.job.count" not in gauges(reader), timeout=40)
                assert "saq.queue.worker.count" not in gauges(reader)
                warnings = [
                    r.getMessage()
                    for r in caplog.records
                    if r.name.startswith("opentelemetry.instrumentation.saq")
                ]
                assert len(warnings) == 1, warnings
                assert warnings[0].startswith(f"the last read of queue {own_queue.name} is ")
                own_redis.signal(signal.SIGCONT)
                stopped = False
                await wait_until(
                    lambda: depth in gauges(reader).get("saq.queue.job.count", {}), timeout=30
                )
    finally:
        if stopped:
            own_redis.signal(signal.SIGCONT)
        instrumentor.uninstrument()
