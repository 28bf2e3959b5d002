"""One read of a queue's state, for the queue-health gauges: what SAQ already stores.

The read asks for the same numbers ``Queue.info()`` gives (queued, active and scheduled
counts, workers alive) and the job the next dequeue takes, but as counts: a read costs the
same with 1 worker or 1,000. ``Queue.info()`` itself fetches every live worker's info (a
Redis ``MGET`` of all of them, every row of Postgres' stats table), so a fleet whose every
worker read it would pull O(workers²) bytes out of the broker.

- Redis: one pipelined round trip (``ZCOUNT`` of SAQ's stats set from now on: its scores
  are the workers' expiry times, the set ``info()`` ranges over; two ``LLEN`` and ``ZCARD``
  as ``Queue.count`` does; ``LINDEX`` of both ends of the queued list), then one ``MGET``
  of the end jobs when the queue holds any.
- Postgres: one statement of ``Queue.count``'s and ``info()``'s own conditions as counts,
  and the queued row with the earliest ``scheduled`` (SAQ's own dequeue index).
- Other queues (``HttpQueue``): ``Queue.info()``, and no age.
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


class _Counts(t.NamedTuple):
    queued: int
    active: int
    incomplete: int  # queued + active + scheduled, as SAQ counts them
    workers: int
    next_jobs: list[Job]  # the jobs the next dequeue may take
    known: bool  # whether the next jobs are known (not on HttpQueue)


async def read(queue: Queue) -> Snapshot:
    """Read the queue's counts, workers and oldest ready job (raises what the queue raises)."""
    if hasattr(queue, "redis") and hasattr(queue, "_queued"):  # RedisQueue and subclasses
        counts = await _redis_counts(queue)
    elif hasattr(queue, "pool") and hasattr(queue, "jobs_table"):  # PostgresQueue
        counts = await _postgres_counts(queue)
    else:
        counts = await _info_counts(queue)
    now_ns = time_ns()
    age = None
    if counts.known:
        ready = [_ready_ms(job) for job in counts.next_jobs]
        # No queued job: nothing is late. A job ready in the future (clock skew): not late.
        age = max(0, now_ns // _MS - min(ready)) / 1000 if ready else 0.0
    return Snapshot(
        queued=counts.queued,
        active=counts.active,
        # What info() reports: incomplete jobs neither queued nor active.
        scheduled=max(0, counts.incomplete - counts.queued - counts.active),
        workers=counts.workers,
        oldest_age_s=age,
        read_ns=now_ns,
    )


async def _redis_counts(queue: t.Any) -> _Counts:
    # SAQ's dequeue takes the list's left end (BLMOVE; BRPOPLPUSH on Redis < 6.2 the right
    # one) and retries push at the right: the oldest ready job is at one of the two ends.
    # info() counts the stats set's members from now (SAQ's now(), epoch ms) on.
    now_ms = time_ns() // _MS
    async with queue.redis.pipeline(transaction=False) as pipe:
        workers, queued, active, incomplete, first, last = await (
            pipe.zcount(queue._stats, now_ms, "inf")
            .llen(queue._queued)
            .llen(queue._active)
            .zcard(queue._incomplete)
            .lindex(queue._queued, 0)
            .lindex(queue._queued, -1)
            .execute()
        )
    job_ids = list(dict.fromkeys(job_id for job_id in (first, last) if job_id is not None))
    jobs = []
    if job_ids:
        jobs = [queue.deserialize(payload) for payload in await queue.redis.mget(job_ids)]
    return _Counts(
        int(queued),
        int(active),
        int(incomplete),
        int(workers),
        [job for job in jobs if job is not None],
        known=True,
    )


# Queue.count's conditions (the same in SAQ 0.20 and 0.26), info()'s worker condition,
# and the next job as SAQ's dequeue orders them: one statement, one snapshot.
_POSTGRES_READ = """
SELECT
  (SELECT count(*) FROM {jobs_table}
    WHERE status = 'queued' AND queue = %(queue)s AND %(now)s >= scheduled),
  (SELECT count(*) FROM {jobs_table} WHERE status = 'active' AND queue = %(queue)s),
  (SELECT count(*) FROM {jobs_table}
    WHERE status IN ('new', 'deferred', 'queued', 'active') AND queue = %(queue)s),
  (SELECT count(*) FROM {stats_table}
    WHERE expire_at >= EXTRACT(EPOCH FROM NOW()) AND queue_key = %(queue)s),
  (SELECT job FROM {jobs_table}
    WHERE status = 'queued' AND queue = %(queue)s AND scheduled <= EXTRACT(EPOCH FROM NOW())
    ORDER BY scheduled LIMIT 1)
"""


async def _postgres_counts(queue: t.Any) -> _Counts:
    from psycopg.sql import SQL

    query = SQL(_POSTGRES_READ).format(jobs_table=queue.jobs_table, stats_table=queue.stats_table)
    params = {"queue": queue.name, "now": time_ns() / 1e9}  # SAQ's now_seconds()
    async with queue.pool.connection() as conn, conn.cursor() as cursor:
        await cursor.execute(query, params)
        row = await cursor.fetchone()
    queued, active, incomplete, workers, payload = row
    job = None if payload is None else queue.deserialize(payload)
    return _Counts(
        int(queued),
        int(active),
        int(incomplete),
        int(workers),
        [] if job is None else [job],
        known=True,
    )


async def _info_counts(queue: Queue) -> _Counts:
    info = await queue.info()
    incomplete = int(info["queued"]) + int(info["active"]) + int(info["scheduled"])
    return _Counts(
        int(info["queued"]),
        int(info["active"]),
        incomplete,
        len(info["workers"]),
        [],
        known=False,
    )


def _ready_ms(job: Job) -> int:
    # A retry whose due time no instrumented worker recorded: ready since it was re-queued.
    ready = ready_at_ms(job)
    return int(job.touched) if ready is None else ready
