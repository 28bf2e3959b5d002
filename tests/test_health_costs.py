"""What one queue-health read costs on the wire, through a counting proxy to a real server.

The figures docs/guides/prometheus-grafana.md gives (round trips per read; bytes at 10 and
1,000 workers) are pinned here: a read must cost the same however many workers the queue
has, or a fleet's reads grow with the square of its size.
"""

from __future__ import annotations

import inspect
import typing as t
import uuid
from collections.abc import AsyncIterator
from urllib.parse import urlsplit, urlunsplit

import pytest
from saq.queue import Queue
from saq.queue.postgres import PostgresQueue
from saq.queue.redis import RedisQueue

from opentelemetry.instrumentation.saq import _queue_snapshot
from tests.wire import Wire, proxy

# The round trips of one read: Redis answers one pipeline (then one MGET of the next
# jobs when any is queued); Postgres one statement, after SAQ's pool has checked the
# connection it hands out (an empty query: a round trip of its own). SAQ 0.20's pool is
# not in autocommit: psycopg sends BEGIN before the statement and COMMIT when the
# connection goes back to the pool, two more.
ROUND_TRIPS = {("redis", "empty"): 1, ("redis", "queued"): 2, ("postgres", "empty"): 2}
ROUND_TRIPS["postgres", "queued"] = 2
TRANSACTION = 2  # BEGIN, COMMIT


def _through(url: str, port: int) -> str:
    parts = urlsplit(url)
    netloc = parts.netloc.rsplit(":", 1)[0] + f":{port}"
    return urlunsplit(parts._replace(netloc=netloc))


@pytest.fixture(params=["redis", "postgres"])
async def proxied(
    request: pytest.FixtureRequest,
) -> AsyncIterator[tuple[str, Queue, Wire]]:
    broker = t.cast(str, request.param)
    url = t.cast(str, request.getfixturevalue("redis_url" if broker == "redis" else "postgres_url"))
    port = urlsplit(url).port
    assert port is not None
    async with proxy(port) as (proxy_port, wire):
        name = f"costs-{uuid.uuid4().hex[:8]}"
        queue: Queue
        if broker == "redis":
            queue = RedisQueue.from_url(_through(url, proxy_port), name=name)
        else:
            options: dict[str, t.Any] = {"min_size": 1, "max_size": 2}
            if "poll_interval" in inspect.signature(PostgresQueue).parameters:
                options["poll_interval"] = 1
            queue = PostgresQueue.from_url(_through(url, proxy_port), name=name, **options)
        await queue.connect()
        try:
            yield broker, queue, wire
        finally:
            await queue.disconnect()


async def _register(queue: Queue, first: int, last: int) -> None:
    """Workers as SAQ registers them: its own worker_info write, with a worker's TTL."""
    for _ in range(first, last):
        await queue.worker_info(str(uuid.uuid4()), queue_key=queue.name, ttl=60)


async def _expected_round_trips(broker: str, queue: Queue, queued: bool) -> int:
    expected = ROUND_TRIPS[broker, "queued" if queued else "empty"]
    if broker == "postgres":
        async with queue.pool.connection() as conn:  # type: ignore[attr-defined]
            if not conn.autocommit:
                expected += TRANSACTION
    return expected


async def _measured_read(queue: Queue, wire: Wire) -> tuple[_queue_snapshot.Snapshot, int, int]:
    await _queue_snapshot.read(queue)  # the connections are open: measure a steady read
    wire.reset()
    snapshot = await _queue_snapshot.read(queue)
    return snapshot, wire.round_trips, wire.bytes_to_client


async def test_a_read_costs_the_same_with_10_or_1000_workers(
    proxied: tuple[str, Queue, Wire],
) -> None:
    broker, queue, wire = proxied
    await _register(queue, 0, 10)
    ten, trips_ten, bytes_ten = await _measured_read(queue, wire)
    assert ten.workers == len((await queue.info())["workers"]) == 10
    await _register(queue, 10, 1000)
    thousand, trips_thousand, bytes_thousand = await _measured_read(queue, wire)
    assert thousand.workers == len((await queue.info())["workers"]) == 1000
    print(f"{broker}: one read, 10 workers {bytes_ten} B, 1,000 workers {bytes_thousand} B")
    # The same answer but for the count's digits ("10" → "1000"), never a byte a worker.
    assert bytes_thousand - bytes_ten <= 4
    assert trips_ten == trips_thousand == await _expected_round_trips(broker, queue, False)


async def test_a_read_costs_the_round_trips_the_readme_says(
    proxied: tuple[str, Queue, Wire],
) -> None:
    broker, queue, wire = proxied
    await _register(queue, 0, 1)
    empty, trips, _ = await _measured_read(queue, wire)
    assert (empty.queued, empty.oldest_age_s) == (0, 0.0)
    assert trips == await _expected_round_trips(broker, queue, False)
    for _ in range(3):
        await queue.enqueue("some_function")
    queued, trips, _ = await _measured_read(queue, wire)
    assert queued.queued == 3
    assert queued.oldest_age_s is not None and queued.oldest_age_s >= 0
    assert trips == await _expected_round_trips(broker, queue, True)
