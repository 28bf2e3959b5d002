"""Each attempt's own story: its events (the exception and its stack trace) and its logs.

A log line is kept under the span that was current when it was written: the attempt's
``process`` span, or a span the job started inside it. An attempt's story is its own
lines and those of every span under it, so the panel counts them per attempt and the
trace page lists them in the attempt's detail pane.
"""

from __future__ import annotations

import typing as t

from opentelemetry.semconv.attributes.exception_attributes import EXCEPTION_STACKTRACE
from opentelemetry.semconv.attributes.service_attributes import SERVICE_NAME
from opentelemetry.trace import SpanKind

from opentelemetry.instrumentation.saq._attributes import (
    MESSAGING_SYSTEM,
    MESSAGING_SYSTEM_SAQ,
    SAQ_JOB_ATTEMPT,
    SAQ_JOB_KEY,
)
from opentelemetry.instrumentation.saq.debug_toolbar.panel.job_logs import (
    LogLine,
    log_store,
    worst_level,
)

if t.TYPE_CHECKING:
    from opentelemetry.sdk.trace import ReadableSpan

    from opentelemetry.instrumentation.saq.debug_toolbar.panel.job_logs import LogStore
    from opentelemetry.instrumentation.saq.debug_toolbar.panel.jobs import TrackedJob
    from opentelemetry.instrumentation.saq.trace_store import TraceStore

# A parent chain longer than this is a loop in hostile input, not a real trace.
_MAX_DEPTH = 256
MAX_EVENTS_SHOWN = 50
MAX_LOGS_SHOWN = 200


def is_attempt(span: ReadableSpan) -> bool:
    attributes = span.attributes or {}
    return span.kind is SpanKind.CONSUMER and attributes.get(MESSAGING_SYSTEM) == (
        MESSAGING_SYSTEM_SAQ
    )


def attempts_of(store: TraceStore, trace_id: int, key: str) -> list[ReadableSpan]:
    """A job's ``process`` spans in a trace, first attempt first."""
    spans = [
        span
        for span in store.get_trace(trace_id)
        if span.kind is SpanKind.CONSUMER and (span.attributes or {}).get(SAQ_JOB_KEY) == key
    ]
    spans.sort(key=lambda span: span.start_time or 0)
    return spans


def lines_by_attempt(spans: list[ReadableSpan], lines: list[LogLine]) -> dict[int, list[LogLine]]:
    """The lines written in each attempt (by its span id), its inner spans' included."""
    parents = {
        span.context.span_id: span.parent.span_id if span.parent is not None else None
        for span in spans
        if span.context is not None
    }
    attempts = {span.context.span_id for span in spans if span.context and is_attempt(span)}
    found: dict[int, list[LogLine]] = {}
    for line in lines:
        node: int | None = line.span_id
        for _ in range(_MAX_DEPTH):
            if node is None or node in attempts:
                break
            node = parents.get(node)
        if node is not None and node in attempts:
            found.setdefault(node, []).append(line)
    return found


def summarise_logs(
    entry: dict[str, t.Any], attempts: list[ReadableSpan], store: TraceStore, logs: LogStore
) -> None:
    """Set the panel entry's ``logs``: per attempt, how many lines and the worst level."""
    if not attempts or attempts[0].context is None:
        return
    trace_id = attempts[0].context.trace_id
    lines = logs.lines(trace_id)
    if not lines:
        return
    by_attempt = lines_by_attempt(store.get_trace(trace_id), lines)
    summary = []
    for number, span in enumerate(attempts, start=1):
        found = by_attempt.get(span.context.span_id, []) if span.context else []
        if found:
            attempt = (span.attributes or {}).get(SAQ_JOB_ATTEMPT, number)
            summary.append(
                {"attempt": attempt, "count": len(found), "worst_level": worst_level(found)}
            )
    entry["logs"] = summary


def note_logs(tracked: list[TrackedJob], store: TraceStore) -> None:
    """Count each attempt's log lines anew, final jobs' too (no queue is read): the lines of
    a worker elsewhere arrive after its queue said the job was done."""
    for item in tracked:
        attempts = attempts_of(store, item.enqueued.trace_id, item.enqueued.job.key)
        summarise_logs(item.entry, attempts, store, log_store())


def add_details(
    rows: list[dict[str, t.Any]], spans: list[ReadableSpan], lines: list[LogLine]
) -> None:
    """Give each span row its ``events`` and ``logs`` (an attempt row: all of its story)."""
    by_id = {f"{s.context.span_id:016x}": s for s in spans if s.context is not None}
    own: dict[str, list[LogLine]] = {}
    for line in lines:
        own.setdefault(f"{line.span_id:016x}", []).append(line)
    in_attempt = {f"{k:016x}": v for k, v in lines_by_attempt(spans, lines).items()}
    names = {span_id: span.name for span_id, span in by_id.items()}
    services = {span_id: _service(span) for span_id, span in by_id.items()}
    for row in rows:
        span = by_id.get(row.get("id") or "")
        if span is None:
            continue
        start = span.start_time or 0
        row["events"] = [_event(event, start) for event in span.events[:MAX_EVENTS_SHOWN]]
        found = in_attempt.get(row["id"], []) if is_attempt(span) else own.get(row["id"], [])
        row["logs"] = [
            {
                **line.as_dict(),
                "at_ms": _ms(line.time_ns - start),
                "span": names.get(f"{line.span_id:016x}"),
                # Another process's word that a line was written in this span: who said so.
                "span_service": services.get(f"{line.span_id:016x}"),
            }
            for line in found[:MAX_LOGS_SHOWN]
        ]
        row["log_count"] = len(found)
        row["worst_level"] = worst_level(found)


def _event(event: t.Any, span_start: int) -> dict[str, t.Any]:
    attributes = dict(event.attributes or {})
    return {
        "name": event.name,
        "at_ms": _ms((event.timestamp or span_start) - span_start),
        "stacktrace": attributes.pop(EXCEPTION_STACKTRACE, None),
        "attributes": {
            key: list(v) if isinstance(v, tuple) else v for key, v in attributes.items()
        },
    }


def _service(span: ReadableSpan) -> str | None:
    name = span.resource.attributes.get(SERVICE_NAME) if span.resource is not None else None
    return str(name) if name else None


def _ms(ns: int) -> float:
    return round(ns / 1_000_000, 3)
