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
    "to this app (see the README's worker recipe)"
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
) -> list[Row]:
    """One row per attempt with no span here, drawn after the job's last one seen.

    When each attempt ran is not known here (the queue keeps only the latest one's
    times), so the rows are marked ``compressible`` and may sit in a compressed band.
    """
    status = str(entry.get("status") or _status.UNKNOWN)
    final = status in _status.FINAL
    last = int(entry.get("attempts") or 0)
    took = (entry.get("queue_ms") or 0) + (entry.get("run_ms") or 0)
    drawn: list[Row] = []
    for attempt in attempts:
        said = f"{status}, read from the queue" if attempt == last else "ended"
        drawn.append(
            {
                "id": None,
                "parent_id": None,
                "name": f"attempt {attempt} · {said} · its spans have not arrived from "
                "its worker's process",
                "kind": "wait",
                "depth": depth,
                "start_ms": after_ms,
                "duration_ms": float(took) if final else max(0.0, now_ms - after_ms),
                "status": "error" if attempt == last and status in _status.UNSUCCESSFUL else "ok",
                "error": entry.get("error") if attempt == last else None,
                "attributes": {},
                "function": entry.get("function"),
                "job_key": entry.get("key"),
                "attempt": attempt,
                "pending": not final,
                "awaiting_spans": True,
                "compressible": True,
                "hint": WHY,
            }
        )
    return drawn
