"""The panel's stats as the rows of its table: plain values, one dict per job.

The toolbar stores the stats as JSON and hands them back to the renderer, so this reads
them defensively: a missing field shows as a dash, never as an error.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import time
import typing as t

from opentelemetry.instrumentation.saq import _status
from opentelemetry.instrumentation.saq.debug_toolbar.pages.trace_view import status_path
from opentelemetry.instrumentation.saq.debug_toolbar.panel.jobs import TERMINAL, UNKNOWN
from opentelemetry.instrumentation.saq.debug_toolbar.templating import due, plural

Stats = t.Mapping[str, t.Any]


def panel_view(stats: Stats) -> dict[str, t.Any]:
    """Everything the panel template shows, in the order it shows it."""
    now = time.time()
    entries = _dicts(stats.get("jobs"))
    jobs = [_job(job, now) for job in entries]
    trace_id = str(stats.get("trace_id") or "")
    hex_id = len(trace_id) == 32 and all(c in "0123456789abcdef" for c in trace_id)
    return {
        # The dock polls the status endpoint while a job is unfinished (see static/dock.js).
        "live": hex_id and any(job["status"] not in TERMINAL for job in jobs),
        "version": jobs_version(entries),
        "status_url": status_path(trace_id) if hex_id else "",
        "now": now,  # the page counts due times down from the server's clock
        "summary": str(stats.get("summary") or plural(len(jobs), "job")),
        "notes": [str(note) for note in _list(stats.get("notes"))],
        "issues": [str(issue) for issue in _list(stats.get("issues"))],
        "cost": _cost(stats),
        "queues": [str(line) for line in _list(stats.get("queues"))],
        "trace_page": _local_path(stats.get("trace_page")),
        "trace_id": str(stats.get("trace_id") or ""),
        "jobs": jobs,
    }


def jobs_version(entries: t.Iterable[Stats]) -> str:
    """A short digest of what the panel shows of each job: equal digests, equal tables.

    The status endpoint computes it from the entries it follows, the panel from the
    stored stats: the dock reloads the table when the two differ.
    """
    shown = [[entry.get(field) for field in _SHOWN] for entry in entries]
    text = json.dumps(shown, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


_SHOWN = ("status", "attempts", "queue_ms", "run_ms", "error", "errors")
# A job not started yet may be waiting for its scheduled time.
_WAITING = (_status.QUEUED, _status.NEW, _status.DEFERRED)


def _job(job: Stats, now: float) -> dict[str, t.Any]:
    status = str(job.get("status") or UNKNOWN)
    attempts = _int(job.get("attempts"))
    errors = [
        {"attempt": _int(failure.get("attempt")), "error": str(failure.get("error") or "")}
        for failure in _dicts(job.get("errors"))
    ]
    final = job.get("error")
    if final and not any(failure["error"] == final for failure in errors):
        errors.append({"attempt": attempts, "error": str(final)})
    return {
        "status": status,
        "function": str(job.get("function") or "?"),
        "argument": str(job["argument"]) if job.get("argument") else None,
        "queue": str(job.get("queue") or "?"),
        "attempts": attempts,
        "retries": max(0, attempts - 1),
        "errors": errors,
        "waited_ms": _number(job.get("queue_ms")),
        "ran_ms": _number(job.get("run_ms")),
        "enqueued_at": str(job["enqueued_at"]) if job.get("enqueued_at") else None,
        "duplicate": bool(job.get("duplicate")),
        "due": _due(job, status, now),
        "due_at": _number(job.get("scheduled")),
        "is_duplicate": bool(job.get("is_duplicate")),
        "is_repeated": bool(job.get("is_repeated")),
        "key": str(job.get("key") or ""),
        "enqueue_ms": _number(job.get("enqueue_ms")),
        "options": _options(job),
        "logs": [
            {
                "attempt": _int(logs.get("attempt")),
                "count": _int(logs.get("count")),
                "worst_level": str(logs.get("worst_level") or ""),
            }
            for logs in _dicts(job.get("logs"))
        ],
    }


def _due(job: Stats, status: str, now: float) -> str | None:
    """'due in 28 s, at 14:03:12' for a job scheduled ahead that has not run yet."""
    scheduled = _number(job.get("scheduled"))
    if scheduled is None or status not in _WAITING or _int(job.get("attempts")) or scheduled <= now:
        return None
    return due(scheduled, now)


def _cost(stats: Stats) -> str | None:
    """'3 enqueues · 4.2 ms enqueueing · 1 scheduled'."""
    count = _int(stats.get("enqueue_count"))
    total = _number(stats.get("enqueue_time_ms"))
    if not count or total is None:
        return None
    line = f"{plural(count, 'enqueue')} · {total:.1f} ms enqueueing"
    scheduled = _int(stats.get("scheduled_count"))
    return f"{line} · {scheduled} scheduled" if scheduled else line


def _options(job: Stats) -> str:
    """'scheduled 14:03:12 · timeout 10 s · up to 2 attempts': what the job was given."""
    parts = []
    scheduled = _number(job.get("scheduled_at"))
    if scheduled:
        parts.append(f"scheduled {dt.datetime.fromtimestamp(scheduled):%H:%M:%S}")
    timeout = _number(job.get("timeout"))
    if timeout is not None:
        parts.append(f"timeout {timeout:g} s" if timeout else "no timeout")
    attempts = _int(job.get("max_attempts"))
    if attempts:
        parts.append(f"up to {plural(attempts, 'attempt')}")
    return " · ".join(parts)


def _local_path(value: t.Any) -> str | None:
    """Only a path on this server is made a link (the stats are plain JSON, anyone's)."""
    text = str(value) if value else ""
    return text if text.startswith("/") and not text.startswith("//") else None


def _dicts(value: t.Any) -> list[Stats]:
    return [item for item in _list(value) if isinstance(item, dict)]


def _list(value: t.Any) -> list[t.Any]:
    return value if isinstance(value, list) else []


def _int(value: t.Any) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) else 0


def _number(value: t.Any) -> float | None:
    ok = isinstance(value, (int, float)) and not isinstance(value, bool)
    return float(value) if ok else None
