"""Workers and queues at a glance: each queue's depth and workers, read on demand.

Which queues: those this process enqueued to, ran a job of, or made a worker for (see
``_queues.known_queues``), and those named by the SAQ spans it holds (a remote worker's,
a script's). A queue only named by spans is read through a known Redis queue on the same
server (a queue there is a name over one connection); otherwise the page says it has no
connection to it.

Each read is the queue-health gauges' own (``_queue_snapshot.read``: counts as
``Queue.info()`` gives them, and the oldest ready job), plus the workers SAQ lists for
the queue: Redis' stats set and each worker's info, Postgres' stats table, at most
``MAX_WORKERS`` of them, read in the same round trips' manner. Every queue is read at
once, each within ``READ_TIMEOUT`` seconds; one that fails or does not answer in time
says so ("could not read") and holds up nothing else.

What SAQ's worker info holds: its queue, its counters (complete, failed, retried,
aborted), its uptime, the user's metadata, and when it expires. Not when it was written:
"last seen" is the expiry less the time-to-live SAQ wrote it with, which is the worker's
``worker_info`` timer plus one second: known for workers made in this process, SAQ's
default (10 s) assumed for others. Busy slots and concurrency are not in it either: both
are known for workers in this process; for others, busy slots are counted from the Redis
queue's active jobs (SAQ 0.26 records the worker running each; at most ``MAX_ACTIVE``),
and their concurrency is not known.
"""

from __future__ import annotations

import asyncio
import json
import time
import typing as t

from opentelemetry.instrumentation.utils import suppress_instrumentation

from opentelemetry.instrumentation.saq import _queue_snapshot, _queues
from opentelemetry.instrumentation.saq._attributes import (
    MESSAGING_DESTINATION_NAME,
    MESSAGING_SYSTEM,
    MESSAGING_SYSTEM_SAQ,
    SERVER_ADDRESS,
    SERVER_PORT,
)
from opentelemetry.instrumentation.saq.debug_toolbar.panel.worker_logs import worker_log_store
from opentelemetry.instrumentation.saq.debug_toolbar.tracing import trace_store

if t.TYPE_CHECKING:
    from saq.queue import Queue

READ_TIMEOUT = 2.0
"""Seconds one queue's read may take before the page says it could not read it."""
MAX_WORKERS = 200
"""Workers listed per queue at most (reading them is one key per worker)."""
MAX_ACTIVE = 500
"""Active jobs read per Redis queue at most, to count each worker's busy slots."""
MAX_LINES = 500
"""The most recent lines workers wrote outside attempts, shown at most."""
_DEFAULT_TTL_S = 11  # SAQ's worker_info timer (10 s) plus one: the ttl its info is written with
_SCANNED_TRACES = 200  # the most recent traces whose spans name queues

Row = dict[str, t.Any]


async def workers_json(timeout: float = READ_TIMEOUT) -> dict[str, t.Any]:
    """Every queue's depth and workers, and the workers' lines outside attempts."""
    in_process = {str(worker.id): worker for worker in _queues.known_workers()}
    loop = asyncio.get_running_loop()
    known, elsewhere = [], []
    for queue in _queues.known_queues():
        queue_loop = getattr(queue, "_loop", None)
        if queue_loop is None or queue_loop is loop:
            known.append(queue)
        elif not queue_loop.is_closed():  # its connections belong to another loop
            elsewhere.append(queue.name)
    names = {queue.name for queue in known} | set(elsewhere)
    named = {name: broker for name, broker in _named_in_spans().items() if name not in names}
    reachable, unreachable = _siblings(known, named)
    queues = [*known, *reachable]
    reads = await asyncio.gather(*(_read(queue, timeout, in_process) for queue in queues))
    rows = list(reads)
    rows += [_unconnected(name, _NO_CONNECTION) for name in sorted(unreachable)]
    rows += [_unconnected(name, _OTHER_LOOP) for name in sorted(elsewhere)]
    rows.sort(key=lambda row: row["name"])
    store = worker_log_store()
    lines = store.lines()[-MAX_LINES:]
    return {
        "queues": rows,
        "lines": [line.as_dict() for line in reversed(lines)],
        "lines_store": {
            "held_bytes": store.held_bytes,
            "max_bytes": store.max_bytes,
            "dropped_lines": store.dropped_lines,
        },
        "read_timeout_s": timeout,
        "max_workers": MAX_WORKERS,
        "now": time.time(),
    }


async def _read(queue: Queue, timeout: float, in_process: dict[str, t.Any]) -> Row:
    row: Row = {"name": queue.name, "broker": _broker(queue), "read": False}
    try:
        # The page's reads are not the app's operations: no Redis or SQL spans for them.
        with suppress_instrumentation():
            snapshot, (listed, workers) = await asyncio.wait_for(
                asyncio.gather(_queue_snapshot.read(queue), _workers(queue)), timeout
            )
    except asyncio.TimeoutError:
        row["error"] = f"could not read: no answer within {timeout:g} s"
        return row
    except Exception as exc:  # a broker down, refused, or answering nonsense
        row["error"] = f"could not read: {type(exc).__name__}: {exc}"[:500]
        return row
    now_ms = time.time() * 1000
    row.update(
        read=True,
        queued=snapshot.queued,
        active=snapshot.active,
        scheduled=snapshot.scheduled,
        oldest_age_s=snapshot.oldest_age_s,
        workers_alive=max(snapshot.workers, listed),
        workers=[_worker_row(worker, now_ms, in_process) for worker in workers],
    )
    return row


class _Listed(t.NamedTuple):
    worker_id: str
    info: dict[str, t.Any]
    expires_ms: float | None
    busy: int | None = None  # its active jobs, where the queue tells (Redis, SAQ >= 0.26)


async def _workers(queue: Queue) -> tuple[int, list[_Listed]]:
    """How many workers SAQ lists for the queue, and the first ``MAX_WORKERS`` of them."""
    if hasattr(queue, "redis") and hasattr(queue, "_stats"):
        return await _redis_workers(queue)
    if hasattr(queue, "pool") and hasattr(queue, "stats_table"):
        return await _postgres_workers(queue)
    info = await queue.info()
    found = list(info["workers"].items())
    return len(found), [_Listed(str(key), dict(value), None) for key, value in found[:MAX_WORKERS]]


async def _redis_workers(queue: t.Any) -> tuple[int, list[_Listed]]:
    # As Queue.info() reads them: the stats set's members from now on (scores are expiry
    # times, epoch ms), then each member's key, which holds the worker's info as JSON. The
    # active jobs (at most MAX_ACTIVE) say which worker runs them (SAQ >= 0.26's worker_id).
    now_ms = int(time.time() * 1000)
    async with queue.redis.pipeline(transaction=False) as pipe:
        count, members, active = await (
            pipe.zcount(queue._stats, now_ms, "+inf")
            .zrangebyscore(queue._stats, now_ms, "+inf", start=0, num=MAX_WORKERS, withscores=True)
            .lrange(queue._active, 0, MAX_ACTIVE - 1)
            .execute()
        )
    if not members:
        return int(count), []
    payloads = await queue.redis.mget([key for key, _ in members] + list(active))
    busy = _busy(queue, payloads[len(members) :])
    listed = []
    for (key, score), payload in zip(members, payloads[: len(members)], strict=True):
        if not payload:
            continue
        name = key.decode() if isinstance(key, bytes) else str(key)
        info = json.loads(payload)
        info = info if isinstance(info, dict) else {}
        # The member is saq:{queue}:worker_info:{id}; info() takes the id after the last ":".
        worker_id = name.rsplit(":", 1)[-1]
        count_of = busy.get(worker_id, 0) if busy is not None else None
        listed.append(_Listed(worker_id, info, score, count_of))
    return int(count), listed


def _busy(queue: t.Any, payloads: list[t.Any]) -> dict[str, int] | None:
    """Active jobs by the id of the worker running them; None where jobs do not say."""
    busy: dict[str, int] = {}
    for payload in payloads:
        try:
            job = queue.deserialize(payload)
        except Exception:  # a job of another shape: it tells nothing
            continue
        if job is None:
            continue
        if not hasattr(job, "worker_id"):  # SAQ < 0.26 does not record who runs a job
            return None
        if job.worker_id is not None:
            busy[str(job.worker_id)] = busy.get(str(job.worker_id), 0) + 1
    return busy


_POSTGRES_WORKERS = """
SELECT worker_id, stats, queue_key, metadata, expire_at FROM {stats_table}
WHERE expire_at >= EXTRACT(EPOCH FROM NOW()) AND queue_key = %(queue)s
ORDER BY worker_id LIMIT %(limit)s
"""


async def _postgres_workers(queue: t.Any) -> tuple[int, list[_Listed]]:
    from psycopg.sql import SQL

    query = SQL(_POSTGRES_WORKERS).format(stats_table=queue.stats_table)
    async with queue.pool.connection() as conn, conn.cursor() as cursor:
        await cursor.execute(query, {"queue": queue.name, "limit": MAX_WORKERS})
        rows = await cursor.fetchall()
    listed = [
        _Listed(
            str(worker_id),
            {"stats": stats, "queue_key": queue_key, "metadata": metadata},
            float(expire_at) * 1000,
        )
        for worker_id, stats, queue_key, metadata, expire_at in rows
    ]
    return len(listed), listed


def _worker_row(listed: _Listed, now_ms: float, in_process: dict[str, t.Any]) -> Row:
    worker = in_process.get(listed.worker_id)
    found = listed.info.get("stats")
    stats: dict[str, t.Any] = found if isinstance(found, dict) else {}
    row: Row = {
        "id": listed.worker_id,
        "queue": listed.info.get("queue_key"),
        "in_process": worker is not None,
        "busy": None,
        "concurrency": None,
        "last_seen_s": None,
        "last_seen_assumed": worker is None,
        "expires_in_s": None,
        "stats": {key: stats.get(key) for key in ("complete", "failed", "retried", "aborted")},
        "uptime_s": _seconds(stats.get("uptime")),
    }
    if worker is not None:
        row["busy"] = len(getattr(worker, "job_task_contexts", ()))
        row["concurrency"] = getattr(worker, "concurrency", None)
    else:
        row["busy"] = listed.busy
    if listed.expires_ms is not None:
        ttl_s = _DEFAULT_TTL_S
        if worker is not None:
            ttl_s = int(getattr(worker, "timers", {}).get("worker_info", 10)) + 1
        row["expires_in_s"] = round(max(0.0, listed.expires_ms - now_ms) / 1000, 1)
        row["last_seen_s"] = round(max(0.0, now_ms - (listed.expires_ms - ttl_s * 1000)) / 1000, 1)
    return row


def _seconds(milliseconds: t.Any) -> float | None:
    return round(milliseconds / 1000, 1) if isinstance(milliseconds, (int, float)) else None


def _broker(queue: Queue) -> str:
    attributes = _queues.broker_attributes(queue)
    kind = type(queue).__name__.replace("Queue", "") or type(queue).__name__
    where = attributes.get(SERVER_ADDRESS)
    port = attributes.get(SERVER_PORT)
    return f"{kind} {where}:{port}" if where and port else f"{kind} {where or ''}".strip()


Broker = tuple[t.Any, t.Any]  # server.address, server.port


def _named_in_spans() -> dict[str, Broker]:
    """The queues the most recent SAQ spans here name (their own or received), with the
    server the spans say they talk to."""
    store = trace_store()
    names: dict[str, Broker] = {}
    for trace_id in store.trace_ids()[-_SCANNED_TRACES:]:
        for span in store.get_trace(trace_id):
            attributes = span.attributes or {}
            if attributes.get(MESSAGING_SYSTEM) == MESSAGING_SYSTEM_SAQ:
                name = attributes.get(MESSAGING_DESTINATION_NAME)
                if isinstance(name, str) and name:
                    names[name[:300]] = (
                        attributes.get(SERVER_ADDRESS),
                        attributes.get(SERVER_PORT),
                    )
    return names


# Queues made here for names only spans gave, over a known queue's Redis connection.
_SIBLINGS: dict[tuple[int, str], Queue] = {}
_MAX_SIBLINGS = 50


def _siblings(known: list[Queue], names: dict[str, Broker]) -> tuple[list[Queue], set[str]]:
    """Queues to read for ``names``, and the names no known connection reaches: a name
    whose spans' server is the server of a known Redis queue is read over its connection."""
    by_server: dict[Broker, t.Any] = {}
    for queue in known:
        if hasattr(queue, "redis") and hasattr(queue, "_stats"):
            attributes = _queues.broker_attributes(queue)
            address, port = attributes.get(SERVER_ADDRESS), attributes.get(SERVER_PORT)
            by_server.setdefault((address, port), queue)
    found: list[Queue] = []
    unreachable: set[str] = set()
    for name, broker in sorted(names.items()):
        base = by_server.get(broker)
        if base is None or len(found) >= _MAX_SIBLINGS:
            unreachable.add(name)
            continue
        key = (id(base.redis), name)
        sibling = _SIBLINGS.get(key)
        if sibling is None:
            if len(_SIBLINGS) >= 4 * _MAX_SIBLINGS:
                _SIBLINGS.clear()
            try:  # a queue class of the user's may not take these arguments
                sibling = type(base)(base.redis, name=name, dump=base._dump, load=base._load)
            except Exception:
                unreachable.add(name)
                continue
            _SIBLINGS[key] = sibling  # connects nothing
        found.append(sibling)
    return found, unreachable


_NO_CONNECTION = "named by spans here, but this process has no connection to its broker"
_OTHER_LOOP = "connected in another event loop of this process: not read from this one"


def _unconnected(name: str, reason: str) -> Row:
    return {"name": name, "broker": None, "read": False, "error": reason}
