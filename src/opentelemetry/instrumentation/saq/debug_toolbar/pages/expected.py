"""Attempts the queue reports that have no span here yet: what a trace page still waits for.

A worker in another process sends its spans when its exporter flushes (the SDK's
``BatchSpanProcessor``: every 5 s by default), so its queue can say "complete after 2
attempts" seconds before the second attempt's span arrives. Until it does, the page
draws that attempt from the queue's word, says why its spans are missing, and keeps
following (see ``live``).
"""

from __future__ import annotations

import typing as t

from opentelemetry.trace import SpanKind

from opentelemetry.instrumentation.saq import _status
from opentelemetry.instrumentation.saq._attributes import SAQ_JOB_ATTEMPT, SAQ_JOB_KEY

if t.TYPE_CHECKING:
    from opentelemetry.sdk.trace import ReadableSpan

Row = dict[str, t.Any]
Known = t.Mapping[str, t.Mapping[str, t.Any]]

WHY = (
    "a worker in another process sends its spans when its exporter flushes (every 5 s by "
    "default, OTEL_BSP_SCHEDULE_DELAY); if none ever arrive, that worker does not export "
    "to this app (see 'Workers in other processes' in the documentation)"
)


def attempts_seen(spans: t.Iterable[ReadableSpan]) -> dict[str, set[int]]:
    """The attempt numbers with a ``process`` span here, by job key."""
    seen: dict[str, set[int]] = {}
    for span in spans:
        attributes = span.attributes or {}
        key, attempt = attributes.get(SAQ_JOB_KEY), attributes.get(SAQ_JOB_ATTEMPT)
        if span.kind is SpanKind.CONSUMER and isinstance(key, str) and isinstance(attempt, int):
            seen.setdefault(key, set()).add(attempt)
    return seen


def missing(spans: t.Iterable[ReadableSpan], known: Known) -> dict[str, list[int]]:
    """Ended attempts the queue counts whose spans are not here, by job key.

    An attempt still running has no span anywhere yet (a span is kept once it ends), so
    only attempts the queue has seen end are expected.
    """
    seen = attempts_seen(spans)
    found: dict[str, list[int]] = {}
    for key, entry in known.items():
        if entry.get("duplicate"):
            continue
        attempts = entry.get("attempts")
        if not isinstance(attempts, int) or isinstance(attempts, bool):
            continue
        running = entry.get("status") not in (*_status.FINAL, _status.QUEUED)
        ended = attempts - 1 if running else attempts
        gone = [n for n in range(1, ended + 1) if n not in seen.get(key, set())]
        if gone:
            found[key] = gone
    return found


def rows(
    entry: t.Mapping[str, t.Any],
    attempts: list[int],
    after_ms: float,
    depth: int,
    now_ms: float,
    origin_ms: float,
) -> list[Row]:
    """One row per attempt with no span here (times in ms from the trace's ``origin_ms``).

    The latest attempt is drawn when its queue says it waited and ran (SAQ keeps that
    attempt's ``started`` and ``completed``); an earlier one's times are not kept
    anywhere, so it is drawn as a mark after the job's last attempt seen, ``compressible``.
    """
    status = str(entry.get("status") or _status.UNKNOWN)
    final = status in _status.FINAL
    last = int(entry.get("attempts") or 0)
    started, completed = entry.get("started"), entry.get("completed")
    drawn: list[Row] = []
    for attempt in attempts:
        said = f"{status}, read from the queue" if attempt == last else "ended"
        start, duration, known_times = after_ms, 0.0, False
        if attempt == last and isinstance(started, (int, float)) and started > 0:
            start = max(0.0, started - origin_ms - float(entry.get("queue_ms") or 0))
            end = completed if isinstance(completed, (int, float)) and completed else None
            duration = max(0.0, (end - origin_ms if end else now_ms) - start)
            known_times = True
        drawn.append(
            {
                "id": None,
                "parent_id": None,
                "name": f"attempt {attempt} · {said} · its spans have not arrived from "
                "its worker's process",
                "kind": "wait",
                "depth": depth,
                "start_ms": round(start, 3),
                "duration_ms": round(duration, 3),
                "status": "error" if attempt == last and status in _status.UNSUCCESSFUL else "ok",
                "error": entry.get("error") if attempt == last else None,
                "attributes": {},
                "function": entry.get("function"),
                "job_key": entry.get("key"),
                "attempt": attempt,
                "pending": not final,
                "awaiting_spans": True,
                "compressible": not known_times,
                "hint": WHY,
            }
        )
    return drawn
