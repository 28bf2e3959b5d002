"""One read of a queue's state, for the queue-health gauges: what SAQ already stores.

``Queue.info()`` gives the queued, active and scheduled counts and the workers alive
(SAQ drops a worker's entry once its ``worker_info`` write is older than its TTL). The age
of the oldest ready job is one more small read of the job the next dequeue would take:
on Redis both ends of the queued list (one pipelined round trip, then one ``MGET``), on
Postgres the queued row with the earliest ``scheduled`` (SAQ's own dequeue index). Other
queues (``HttpQueue``) give the counts and no age.
"""

from __future__ import annotations

import typing as t
from time import time_ns

from opentelemetry.instrumentation.saq._timing import ready_at_ms

if t.TYPE_CHECKING:
    from saq.job import Job
    from saq.queue import Queue

_MS = 1_000_000  # nanoseconds


class Snapshot(t.NamedTuple):
    """A queue as one worker read it; immutable, so another thread may read it whole."""

    queued: int
    active: int
    scheduled: int
    workers: int
    oldest_age_s: float | None  # None: the queue cannot tell (HttpQueue)
    read_ns: int


async def read(queue: Queue) -> Snapshot:
    """Read the queue's counts, workers and oldest ready job (raises what the queue raises)."""
    info = await queue.info()
    oldest = await oldest_ready_ms(queue)
    now_ns = time_ns()
    age = None
    if oldest is not None:
        # No queued job: nothing is late. A job ready in the future (clock skew): not late.
        age = 0.0 if oldest < 0 else max(0, now_ns // _MS - oldest) / 1000
    return Snapshot(
        queued=int(info["queued"]),
        active=int(info["active"]),
        scheduled=max(0, int(info["scheduled"])),
        workers=len(info["workers"]),
        oldest_age_s=age,
        read_ns=now_ns,
    )


async def oldest_ready_ms(queue: Queue) -> int | None:
    """When the oldest ready job could have started (epoch ms); -1 if none; None if unknown."""
    jobs: list[Job | None]
    if hasattr(queue, "redis") and hasattr(queue, "_queued"):  # RedisQueue and subclasses
        jobs = await _redis_queue_ends(queue)
    elif hasattr(queue, "pool") and hasattr(queue, "jobs_table"):  # PostgresQueue
        jobs = [await _postgres_next(queue)]
    else:
        return None
    ready = [_ready_ms(job) for job in jobs if job is not None]
    return min(ready) if ready else -1


async def _redis_queue_ends(queue: t.Any) -> list[Job | None]:
    # SAQ's dequeue takes the list's left end (BLMOVE; BRPOPLPUSH on Redis < 6.2 the right
    # one) and retries push at the right: the oldest ready job is at one of the two ends.
    async with queue.redis.pipeline(transaction=False) as pipe:
        ends = await pipe.lindex(queue._queued, 0).lindex(queue._queued, -1).execute()
    job_ids = list(dict.fromkeys(job_id for job_id in ends if job_id is not None))
    if not job_ids:
        return []
    return [queue.deserialize(payload) for payload in await queue.redis.mget(job_ids)]


async def _postgres_next(queue: t.Any) -> Job | None:
    from psycopg.sql import SQL

    query = SQL(
        "SELECT job FROM {jobs_table} WHERE status = 'queued' AND queue = %(queue)s"
        " AND scheduled <= EXTRACT(EPOCH FROM NOW()) ORDER BY scheduled LIMIT 1"
    ).format(jobs_table=queue.jobs_table)
    async with queue.pool.connection() as conn, conn.cursor() as cursor:
        await cursor.execute(query, {"queue": queue.name})
        row = await cursor.fetchone()
    return None if row is None else t.cast("Job | None", queue.deserialize(row[0]))


def _ready_ms(job: Job) -> int:
    # A retry whose due time no instrumented worker recorded: ready since it was re-queued.
    ready = ready_at_ms(job)
    return int(job.touched) if ready is None else ready
