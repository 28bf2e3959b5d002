"""A request's jobs as the panel shows them: plain JSON dicts, refreshed in place.

A job's state comes from its ``process`` spans when a worker in this process ran it
(they are in the TraceStore), and otherwise from its queue, read by key with one round
trip per queue and a short timeout, so a slow or stopped Redis never holds up a page.
"""

from __future__ import annotations

import asyncio
import logging
import os
import typing as t

from opentelemetry.trace import SpanKind, StatusCode

from opentelemetry.instrumentation.saq._attributes import (
    SAQ_JOB_ATTEMPT,
    SAQ_JOB_KEY,
    SAQ_JOB_QUEUE_WAIT_MS,
    SAQ_JOB_STATUS,
    last_line,
)
from opentelemetry.instrumentation.saq._consumer import queue_wait_ms

if t.TYPE_CHECKING:
    from opentelemetry.sdk.trace import ReadableSpan
    from saq.job import Job
    from saq.queue import Queue

    from opentelemetry.instrumentation.saq._capture import EnqueuedJob
    from opentelemetry.instrumentation.saq.arguments import ArgumentPolicy
    from opentelemetry.instrumentation.saq.trace_store import TraceStore

logger = logging.getLogger(__name__)

Entry = dict[str, t.Any]

TERMINAL = frozenset({"complete", "failed", "aborted"})
UNKNOWN = "unknown"
_ICONS = {
    "complete": "✓",
    "failed": "✗",
    "aborted": "⊘",
    "active": "⏳",
    "queued": "⏸",
    "new": "·",
    "aborting": "⊘",
    UNKNOWN: "?",
}
_SUMMARY_ORDER = ("complete", "failed", "aborted", "active", "queued", "new", UNKNOWN)


class TrackedJob(t.NamedTuple):
    """An enqueue of the request and the dict the panel shows for it."""

    enqueued: EnqueuedJob
    entry: Entry


def new_entry(enqueued: EnqueuedJob, arguments: ArgumentPolicy | None) -> Entry:
    job = enqueued.job
    entry: Entry = {
        "badge": "",
        "function": job.function,
        "queue": enqueued.queue.name,
        "job_id": job.id,
        "key": job.key,
        "status": UNKNOWN,
        "attempts": 0,
        "queue_ms": None,
        "run_ms": None,
        "error": None,
        "duplicate": enqueued.duplicate,
        "enqueued_at": _where(enqueued),
        "trace_id": f"{enqueued.trace_id:032x}",
    }
    if arguments is not None:
        entry["arguments"] = arguments.clean(job.kwargs or {})
    return entry


async def refresh(tracked: list[TrackedJob], store: TraceStore | None, timeout: float) -> list[str]:
    """Bring unfinished entries up to date; returns notes on what could not be read."""
    pending: dict[int, tuple[Queue, list[TrackedJob]]] = {}
    for item in tracked:
        if item.entry["status"] in TERMINAL:
            continue
        spans = _process_spans(store, item) if store is not None else []
        if spans:
            _from_spans(item.entry, spans)
        if not spans or item.entry["status"] not in TERMINAL:
            queue = item.enqueued.queue
            pending.setdefault(id(queue), (queue, []))[1].append(item)
    notes = []
    for queue, items in pending.values():
        note = await _from_queue(queue, items, timeout)
        if note:
            notes.append(note)
    for item in tracked:
        item.entry["badge"] = badge(item.entry)
    return notes


def summary(entries: t.Iterable[Entry]) -> str:
    """'3 jobs · 1 complete · 1 failed · 1 queued'."""
    entries = list(entries)
    counts: dict[str, int] = {}
    for entry in entries:
        counts[entry["status"]] = counts.get(entry["status"], 0) + 1
    parts = [f"{len(entries)} job{'' if len(entries) == 1 else 's'}"]
    parts += [f"{counts[status]} {status}" for status in _SUMMARY_ORDER if counts.get(status)]
    parts += [f"{n} {status}" for status, n in counts.items() if status not in _SUMMARY_ORDER]
    return " · ".join(parts)


def queue_lines(entries: t.Iterable[Entry]) -> list[str]:
    """One line per queue: 'Queue: default │ Total: 3 │ Complete: 1'."""
    by_queue: dict[str, list[Entry]] = {}
    for entry in entries:
        by_queue.setdefault(entry["queue"], []).append(entry)
    lines = []
    for queue, jobs in by_queue.items():
        complete = sum(1 for job in jobs if job["status"] == "complete")
        lines.append(f"Queue: {queue} │ Total: {len(jobs)} │ Complete: {complete}")
    return lines


def badge(entry: Entry) -> str:
    """'✓ send_email · complete · waited 3 ms · ran 45 ms · 1 attempt'."""
    status = entry["status"]
    parts = [f"{_ICONS.get(status, '?')} {entry['function']}", status]
    if entry.get("duplicate"):
        parts.append("duplicate key: not enqueued again")
    if entry["queue_ms"] is not None:
        parts.append(f"waited {_ms(entry['queue_ms'])}")
    if entry["run_ms"] is not None:
        parts.append(f"ran {_ms(entry['run_ms'])}")
    attempts = entry["attempts"]
    parts.append(f"{attempts} attempt{'' if attempts == 1 else 's'}")
    if entry["error"]:
        parts.append(entry["error"])
    return " · ".join(parts)


def _ms(value: int) -> str:
    return f"{value} ms" if value < 10_000 else f"{value / 1000:.1f} s"


def _where(enqueued: EnqueuedJob) -> str | None:
    caller = enqueued.caller
    if caller is None:
        return None
    path = caller.file
    try:
        relative = os.path.relpath(path)
        path = relative if not relative.startswith("..") else path
    except ValueError:  # another drive on Windows
        pass
    return f"{path}:{caller.line} in {caller.function}"


def _process_spans(store: TraceStore, item: TrackedJob) -> list[ReadableSpan]:
    key = item.enqueued.job.key
    spans = [
        span
        for span in store.get_trace(item.enqueued.trace_id)
        if span.kind is SpanKind.CONSUMER and (span.attributes or {}).get(SAQ_JOB_KEY) == key
    ]
    spans.sort(key=lambda span: span.start_time or 0)
    return spans


def _from_spans(entry: Entry, spans: list[ReadableSpan]) -> None:
    last = spans[-1]
    attributes = last.attributes or {}
    entry["status"] = str(attributes.get(SAQ_JOB_STATUS, UNKNOWN))
    entry["attempts"] = int(t.cast(int, attributes.get(SAQ_JOB_ATTEMPT, len(spans))))
    wait = attributes.get(SAQ_JOB_QUEUE_WAIT_MS)
    entry["queue_ms"] = int(t.cast(int, wait)) if wait is not None else None
    if last.start_time is not None and last.end_time is not None:
        entry["run_ms"] = (last.end_time - last.start_time) // 1_000_000
    failed = last.status.status_code is StatusCode.ERROR and entry["status"] != "complete"
    entry["error"] = last.status.description if failed else None


async def _from_queue(queue: Queue, items: list[TrackedJob], timeout: float) -> str | None:
    keys = [item.enqueued.job.key for item in items]
    try:
        jobs = await asyncio.wait_for(queue.jobs(keys), timeout)
    except Exception as exc:  # Redis down or slow: the page renders without it
        logger.warning("could not read %d job(s) from queue %r: %r", len(keys), queue.name, exc)
        for item in items:
            item.entry["status"] = UNKNOWN
        return f"queue {queue.name!r} could not be read ({type(exc).__name__}); status unknown"
    for item, job in zip(items, jobs, strict=False):
        _from_job(item.entry, job)
    return None


def _from_job(entry: Entry, job: Job | None) -> None:
    if job is None:  # expired (ttl) or deleted
        entry["status"] = UNKNOWN
        return
    status = job.status
    entry["status"] = status.value if hasattr(status, "value") else str(status)
    entry["attempts"] = job.attempts
    entry["queue_ms"] = queue_wait_ms(job)
    entry["run_ms"] = max(0, job.completed - job.started) if job.completed and job.started else None
    entry["error"] = last_line(job.error) if entry["status"] in ("failed", "aborted") else None
