"""What a request's enqueues cost, and which of them repeat: the SQL panel's checks, for jobs.

As litestar-debug-toolbar's SQL panel flags duplicate and N+1 queries, this flags:

- **duplicates**: the same function enqueued with the same arguments more than once in
  one request. Arguments are compared by a hash of their serialized form, made here and
  kept only in memory: no argument value reaches the stats unless the panel shows
  arguments anyway (``show_arguments``).
- **repeated enqueues**: one function enqueued ``threshold`` times or more one after
  another, each call awaited before the next started. Enqueues that overlap in time
  (``asyncio.gather`` of ``queue.enqueue``) and those of ``queue.map`` are not counted.

The advice is what keeps the calls' meaning: ``asyncio.gather`` of the enqueues sends them
concurrently and, like the awaited calls, returns without waiting for the jobs to run.
``queue.map`` makes that same gather, then waits for every job's result (SAQ 0.26 polls
each job's status, 0.20 listens for it): the note says so, lest a request that handed its
jobs off start waiting for them.

The stats keep the SQL panel's names where they fit: ``duplicate_count``,
``duplicates``, ``has_issues``, groups with ``count`` and ``total_duration_ms``.
"""

from __future__ import annotations

import hashlib
import json
import logging
import typing as t

if t.TYPE_CHECKING:
    from opentelemetry.instrumentation.saq.debug_toolbar.panel.jobs import TrackedJob

logger = logging.getLogger(__name__)


def analyse(tracked: list[TrackedJob], threshold: int) -> dict[str, t.Any]:
    """The request's enqueue stats; also marks each job's entry (``is_duplicate``,
    ``is_repeated``, ``enqueue_ms`` and the job's options)."""
    total_ns = 0
    scheduled = 0
    same: dict[tuple[str, str, str], list[TrackedJob]] = {}
    one_by_one: dict[tuple[str, str], list[TrackedJob]] = {}
    for item in tracked:
        enqueued, entry = item.enqueued, item.entry
        job = enqueued.job
        total_ns += enqueued.duration_ns
        entry["enqueue_ms"] = round(enqueued.duration_ns / 1e6, 3)
        entry["scheduled_at"] = job.scheduled or None
        entry["timeout"] = job.timeout
        entry["max_attempts"] = job.retries  # SAQ's retries: attempts at most
        entry["is_duplicate"] = False
        entry["is_repeated"] = False
        if job.scheduled:
            scheduled += 1
        fingerprint = _fingerprint(job.kwargs)
        if fingerprint is not None:
            same.setdefault((enqueued.queue.name, job.function, fingerprint), []).append(item)
        if not enqueued.in_map:
            one_by_one.setdefault((enqueued.queue.name, job.function), []).append(item)
    for key, items in list(one_by_one.items()):
        one_by_one[key] = _awaited_in_turn(items)

    duplicates: list[dict[str, t.Any]] = []
    for (queue, function, _), items in same.items():
        if len(items) < 2:
            continue
        for item in items[1:]:
            item.entry["is_duplicate"] = True
        duplicates.append({"function": function, "queue": queue, "count": len(items)})

    repeated = []
    for (queue, function), items in one_by_one.items():
        if len(items) < threshold:
            continue
        for item in items:
            item.entry["is_repeated"] = True
        repeated.append(_repeated_group(queue, function, items))
    repeated.sort(key=lambda group: group["count"], reverse=True)

    duplicate_count = sum(group["count"] - 1 for group in duplicates)
    return {
        "enqueue_count": len(tracked),
        "enqueue_time": total_ns / 1e9,
        "enqueue_time_ms": round(total_ns / 1e6, 3),
        "scheduled_count": scheduled,
        "duplicate_count": duplicate_count,
        "duplicates": duplicates,
        "repeated_count": len(repeated),
        "repeated_groups": repeated,
        "repeat_threshold": threshold,
        "has_issues": bool(duplicate_count or repeated),
    }


def notes(stats: t.Mapping[str, t.Any]) -> list[str]:
    """One readable line per finding, for the panel's notes."""
    lines = [
        f"{group['function']} enqueued {group['count']} times with the same arguments "
        f"on queue {group['queue']!r}: {group['count'] - 1} duplicate"
        f"{'' if group['count'] == 2 else 's'}"
        for group in stats.get("duplicates", [])
    ]
    lines += [group["suggestion"] for group in stats.get("repeated_groups", [])]
    return lines


def _repeated_group(queue: str, function: str, items: list[TrackedJob]) -> dict[str, t.Any]:
    total_ms = round(sum(item.enqueued.duration_ns for item in items) / 1e6, 3)
    # Where they were enqueued, each place once, in the order first seen.
    origins = list(dict.fromkeys(str(item.entry.get("enqueued_at")) for item in items))
    return {
        "function": function,
        "queue": queue,
        "count": len(items),
        "total_duration_ms": total_ms,
        "origins": origins,
        "suggestion": (
            f"{function} enqueued {len(items)} times one after another ({total_ms:.1f} ms in "
            "all, each call waiting for the one before): await asyncio.gather(*(queue.enqueue("
            f"{function!r}, ...) for ...)) sends them concurrently and, like these calls, "
            "returns without waiting for the jobs to run (queue.map would also wait for every "
            "job's result)"
        ),
    }


def _awaited_in_turn(items: list[TrackedJob]) -> list[TrackedJob]:
    """The enqueues that overlap no other of ``items`` in time: each awaited before the
    next began. Concurrent ones (a gather) overlap, since each starts before any returns."""
    ordered = sorted(items, key=lambda item: item.enqueued.started_ns)
    alone: set[int] = set()
    latest_end = None
    for index, item in enumerate(ordered):
        start = item.enqueued.started_ns
        end = start + item.enqueued.duration_ns
        after = ordered[index + 1].enqueued.started_ns if index + 1 < len(ordered) else None
        overlaps = (latest_end is not None and start < latest_end) or (
            after is not None and after < end
        )
        if not overlaps:
            alone.add(id(item))
        latest_end = end if latest_end is None else max(latest_end, end)
    # In the order they were enqueued, as the stats list them.
    return [item for item in items if id(item) in alone]


def _fingerprint(kwargs: t.Any) -> str | None:
    """A digest of the arguments, to compare them without keeping them; None when they
    cannot be serialized (such jobs are never called duplicates)."""
    try:
        text = json.dumps(kwargs or {}, sort_keys=True, default=repr)
    except Exception:  # a key that is not a string, a cycle: not comparable
        logger.debug("arguments not comparable", exc_info=True)
        return None
    return hashlib.blake2b(text.encode(), digest_size=16).hexdigest()
