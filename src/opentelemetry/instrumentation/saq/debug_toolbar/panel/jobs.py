"""A request's jobs as the panel shows them: plain JSON dicts, refreshed in place.

A job's state comes from its ``process`` spans when a worker in this process ran it
(they are in the TraceStore), and otherwise from its queue, read by key with one read
per queue (SAQ's ``queue.jobs``: a Redis ``MGET``, a Postgres ``SELECT``) and a short
timeout, so a slow or stopped Redis never holds up a page.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import typing as t

from opentelemetry.trace import StatusCode

from opentelemetry.instrumentation.saq import _status
from opentelemetry.instrumentation.saq._attributes import (
    ERROR_TYPE,
    SAQ_JOB_ATTEMPT,
    SAQ_JOB_QUEUE_WAIT_MS,
    SAQ_JOB_STATUS,
)
from opentelemetry.instrumentation.saq._outcome import error_summary, last_line
from opentelemetry.instrumentation.saq._timing import queue_wait_ms
from opentelemetry.instrumentation.saq.arguments import REDACTED
from opentelemetry.instrumentation.saq.debug_toolbar.pages import span_details
from opentelemetry.instrumentation.saq.debug_toolbar.panel.job_logs import log_store

if t.TYPE_CHECKING:
    from opentelemetry.sdk.trace import ReadableSpan
    from saq.job import Job
    from saq.queue import Queue

    from opentelemetry.instrumentation.saq._capture import EnqueuedJob
    from opentelemetry.instrumentation.saq.arguments import ArgumentPolicy
    from opentelemetry.instrumentation.saq.trace_store import TraceStore

logger = logging.getLogger(__name__)

Entry = dict[str, t.Any]

TERMINAL = _status.FINAL
UNKNOWN = _status.UNKNOWN
# The marks of the plain-text lines (``tasks``, the generic table): characters DejaVu
# Sans has too, unlike an hourglass or a pause sign. The panel's table draws its own (SVG).
ICONS = {
    _status.COMPLETE: "✓",
    _status.FAILED: "✗",
    _status.ABORTED: "⊘",
    _status.ACTIVE: "▶",
    _status.QUEUED: "‖",
    _status.NEW: "·",
    _status.ABORTING: "⊘",
    UNKNOWN: "?",
}
_SUMMARY_ORDER = (
    _status.COMPLETE,
    _status.FAILED,
    _status.ABORTED,
    _status.ACTIVE,
    _status.QUEUED,
    _status.NEW,
    UNKNOWN,
)


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
        "errors": [],
        "argument": None,
        "duplicate": enqueued.duplicate,
        "enqueued_at": _where(enqueued),
        "scheduled": job.scheduled or None,  # epoch seconds: when a job is due
        # Epoch milliseconds of the latest attempt, as its queue says (run elsewhere): the
        # trace page draws an attempt whose spans have not arrived from them.
        "started": None,
        "completed": None,
        "trace_id": f"{enqueued.trace_id:032x}",
    }
    if arguments is not None:
        entry["arguments"] = arguments.clean(job.kwargs or {})
    return entry


async def refresh(
    tracked: list[TrackedJob], store: TraceStore | None, timeout: float
) -> dict[str, str]:
    """Bring unfinished entries up to date, reading each queue once whatever the number of
    jobs; returns a note per queue that could not be read, by queue name."""
    # Worked out on copies and applied together after the last await: the toolbar's API
    # and the pages read these very dicts meanwhile, and must never see a job's new status
    # beside the old summary.
    drafts = [TrackedJob(item.enqueued, dict(item.entry)) for item in tracked]
    pending: dict[int, tuple[Queue, list[TrackedJob]]] = {}
    for item in drafts:
        spans = _process_spans(store, item) if store is not None else []
        if spans:
            # A remote worker's spans and lines may arrive after its queue said "complete".
            span_details.summarise_logs(item.entry, spans, t.cast("TraceStore", store), log_store())
        if item.entry["status"] in TERMINAL:
            continue
        if spans:
            _from_spans(item.entry, spans)
        if not spans or item.entry["status"] not in TERMINAL:
            queue = item.enqueued.queue
            pending.setdefault(id(queue), (queue, []))[1].append(item)
    notes = {}
    for queue, items in pending.values():
        note = await _from_queue(queue, items, timeout)
        if note:
            notes[queue.name] = note
    for item, draft in zip(tracked, drafts, strict=True):
        draft.entry["badge"] = badge(draft.entry)
        item.entry.update(draft.entry)
    return notes


# The order the toolbar's generic table shows the stats in, when it shows them: what
# happened, one line per job, the way to the trace page, then the details.
_READING_ORDER = ("summary", "notes", "issues", "tasks", "trace_page", "queues", "trace_id", "jobs")


def describe(stats: dict[str, t.Any], tracked: list[TrackedJob], notes: list[str]) -> None:
    """The readable part of the stats, refreshed in place and kept in reading order."""
    entries = [item.entry for item in tracked]
    stats["summary"] = summary(entries)
    stats["tasks"] = [entry["badge"] for entry in entries]
    stats["queues"] = queue_lines(entries)
    if notes:
        stats["notes"] = notes
    else:
        stats.pop("notes", None)
    # Reordered in place: the toolbar stores this very dict.
    ordered = {key: stats.pop(key) for key in _READING_ORDER if key in stats}
    rest = dict(stats)
    stats.clear()
    stats.update(ordered)
    stats.update(rest)
    if "jobs" in stats:  # the details last, after the request's enqueue figures
        stats["jobs"] = stats.pop("jobs")


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
    """One line per queue: 'Queue: default │ Total: 3 │ Complete: 1 │ Failed: 1'."""
    by_queue: dict[str, list[Entry]] = {}
    for entry in entries:
        by_queue.setdefault(entry["queue"], []).append(entry)
    lines = []
    for queue, jobs in by_queue.items():
        complete = sum(1 for job in jobs if job["status"] == _status.COMPLETE)
        failed = sum(1 for job in jobs if job["status"] == _status.FAILED)
        lines.append(
            f"Queue: {queue} │ Total: {len(jobs)} │ Complete: {complete} │ Failed: {failed}"
        )
    return lines


def distinguish(entries: list[Entry]) -> None:
    """Tell apart jobs of one function (``queue.map``) by the argument whose value differs.

    Only shown arguments count, so the ArgumentPolicy has already redacted secrets and cut
    long values; a non-secret argument is preferred to a redacted one.
    """
    by_function: dict[str, list[Entry]] = {}
    for entry in entries:
        by_function.setdefault(entry["function"], []).append(entry)
    for same in by_function.values():
        shown = [entry.get("arguments") for entry in same]
        if len(same) < 2 or not all(isinstance(arguments, dict) for arguments in shown):
            continue
        cleaned = t.cast(list[dict[str, t.Any]], shown)
        keys = [key for key in cleaned[0] if all(key in arguments for arguments in cleaned)]
        differing = [key for key in keys if len({_text(a[key]) for a in cleaned}) > 1]
        differing.sort(key=lambda key: cleaned[0][key] == REDACTED)
        if differing:
            key = differing[0]
            for entry, arguments in zip(same, cleaned, strict=True):
                entry["argument"] = f"{key}={_text(arguments[key])}"


def badge(entry: Entry) -> str:
    """'✓ send_email · complete · waited 3 ms · ran 45 ms · 1 attempt'."""
    status = entry["status"]
    parts = [f"{ICONS.get(status, '?')} {entry['function']}", status]
    if entry.get("duplicate"):
        parts.append("duplicate key: SAQ enqueued nothing")
    if entry["queue_ms"] is not None:
        parts.append(f"waited {_ms(entry['queue_ms'])}")
    if entry["run_ms"] is not None:
        parts.append(f"ran {_ms(entry['run_ms'])}")
    attempts = entry["attempts"]
    parts.append(f"{attempts} attempt{'' if attempts == 1 else 's'}")
    if entry["error"]:
        parts.append(entry["error"])
    parts += [
        f"attempt {failure['attempt']}: {failure['error']}"
        for failure in entry.get("errors", [])
        if failure["error"] != entry["error"]
    ]
    return " · ".join(parts)


def _text(value: t.Any) -> str:
    return value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)


def _note_error(entry: Entry, attempt: int, error: str | None) -> None:
    """Keep one error per attempt, across refreshes: a queue only holds the latest."""
    if not error or attempt < 1:
        return
    known = [failure for failure in entry["errors"] if failure["attempt"] != attempt]
    known.append({"attempt": attempt, "error": error})
    entry["errors"] = sorted(known, key=lambda failure: failure["attempt"])


def _ms(value: int) -> str:
    return f"{value} ms" if value < 10_000 else f"{value / 1000:.1f} s"


# The stack of an enqueue in a task of its own (a gather) ends at the event loop.
CALLER_UNKNOWN = "not known: enqueued in a task of its own"


def _where(enqueued: EnqueuedJob) -> str:
    caller = enqueued.caller
    if caller is None:
        return CALLER_UNKNOWN
    path = caller.file
    try:
        relative = os.path.relpath(path)
        path = relative if not relative.startswith("..") else path
    except ValueError:  # another drive on Windows
        pass
    return f"{path}:{caller.line} in {caller.function}"


def _process_spans(store: TraceStore, item: TrackedJob) -> list[ReadableSpan]:
    return span_details.attempts_of(store, item.enqueued.trace_id, item.enqueued.job.key)


def _from_spans(entry: Entry, spans: list[ReadableSpan]) -> None:
    last = spans[-1]
    attributes = last.attributes or {}
    entry["status"] = str(attributes.get(SAQ_JOB_STATUS, UNKNOWN))
    entry["attempts"] = int(t.cast(int, attributes.get(SAQ_JOB_ATTEMPT, len(spans))))
    wait = attributes.get(SAQ_JOB_QUEUE_WAIT_MS)
    entry["queue_ms"] = int(t.cast(int, wait)) if wait is not None else None
    if last.start_time is not None and last.end_time is not None:
        entry["run_ms"] = (last.end_time - last.start_time) // 1_000_000
    failed = last.status.status_code is StatusCode.ERROR and entry["status"] != _status.COMPLETE
    entry["error"] = _span_error(last) if failed else None
    for attempt, span in enumerate(spans, start=1):
        if span.status.status_code is StatusCode.ERROR:
            number = (span.attributes or {}).get(SAQ_JOB_ATTEMPT, attempt)
            _note_error(entry, int(t.cast(int, number)), _span_error(span))


def _span_error(span: ReadableSpan) -> str | None:
    """``"ValueError: the message"``: the span's error.type and its description."""
    return error_summary((span.attributes or {}).get(ERROR_TYPE), span.status.description)


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
    entry["started"], entry["completed"] = job.started or None, job.completed or None
    entry["error"] = last_line(job.error) if entry["status"] in _status.UNSUCCESSFUL else None
    # A job back in its queue with an error is waiting for its retry: that error is the
    # last attempt's, and SAQ will overwrite it, so it is kept now.
    if entry["status"] in (*_status.UNSUCCESSFUL, _status.QUEUED):
        _note_error(entry, job.attempts, last_line(job.error))
