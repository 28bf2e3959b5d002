"""The trace pages as server-rendered HTML (templates/trace_list.html and trace.html).

What the templates get is a plain view model built here from the trace API's data;
the template engine escapes everything in it (span names, queue names and exception
messages come from user code).
"""

from __future__ import annotations

import datetime as dt
import time
import typing as t

from opentelemetry.instrumentation.saq._status import QUEUED
from opentelemetry.instrumentation.saq.debug_toolbar.pages import trace_layout, tracebacks
from opentelemetry.instrumentation.saq.debug_toolbar.pages.trace_view import PAGE_PREFIX
from opentelemetry.instrumentation.saq.debug_toolbar.templating import due, render

PREVIEW_CHARS = 300
PREVIEW_LINES = 3
LEGEND = (
    ("request", "request"),
    ("request-span", "span in the request"),
    ("send", "enqueue (send)"),
    ("wait", "queue wait"),
    ("process", "attempt (process)"),
    ("error", "failed attempt"),
    ("job-span", "span in a job"),
)


def render_list(
    traces: list[dict[str, t.Any]],
    store: dict[str, int] | None = None,
    listing: t.Mapping[str, t.Any] | None = None,
) -> str:
    """Recent traces with SAQ jobs, newest first, each with its jobs that answer the
    query (``listing``: ``views.traces_json``), and what the TraceStore evicted."""
    listing = listing or {}
    now = time.time()
    return render(
        "trace_list.html",
        title="SAQ jobs",
        prefix=PAGE_PREFIX,
        store=store or {},
        query=listing.get("query") or {},
        choices=listing.get("choices") or {},
        filtered=any(v for k, v in (listing.get("query") or {}).items() if k != "limit"),
        now=now,
        traces=[
            {
                **trace,
                "title": _request_title(trace),
                "clock": _clock(trace["started_at"]),
                "due": due(trace["due_at"], now) if trace.get("due_at") else None,
                "listed_jobs": [
                    {**job, "clock": _clock(job["started_at"])}
                    for job in trace.get("listed_jobs") or []
                ],
            }
            for trace in traces
        ],
    )


def render_trace(view: dict[str, t.Any]) -> str:
    """One trace: request → send → queue wait → attempts, on one time axis."""
    # While jobs are on their way or spans still expected (`live`, from pages.trace_json),
    # the page's script polls the status endpoint and redraws when the version changes.
    title = _request_title(view)
    return render(
        "trace.html",
        title=f"SAQ trace {title}",
        prefix=PAGE_PREFIX,
        legend=LEGEND,
        **trace_model(view),
    )


def _row_key(row: t.Mapping[str, t.Any], seen: dict[str, int]) -> str:
    """What the page's script keeps an open pane by: the span id, else what the row is.

    Rows with no span (queue wait, an attempt whose spans have not arrived) are named by
    kind, job and attempt, not by position, so a span arriving above them in a live
    redraw does not hand their open pane to another row.
    """
    if row.get("id"):
        return str(row["id"])
    base = f"{row['kind']}:{row.get('job_key') or ''}:{row.get('attempt') or ''}"
    seen[base] = seen.get(base, 0) + 1
    return base if seen[base] == 1 else f"{base}:{seen[base]}"


def trace_model(view: dict[str, t.Any]) -> dict[str, t.Any]:
    """The trace page's view model: header facts, axis, and one drawable dict per row."""
    rows = view["rows"]
    now = time.time()
    axis = trace_layout.segments(rows, float(view["duration_ms"]))
    colours = trace_layout.colour(rows)
    drawn = []
    seen: dict[str, int] = {}
    for index, (row, colour) in enumerate(zip(rows, colours, strict=True)):
        start = float(row["start_ms"])
        left = trace_layout.position(axis, start)
        right = trace_layout.position(axis, start + float(row["duration_ms"]))
        hint = trace_layout.request_hint(rows, index) if row["kind"] == "request" else None
        outcome = row.get("job_status") if row["kind"] == "process" else None
        drawn.append(
            {
                **row,
                "colour": colour,
                "left": left,
                "width": max(0.0, right - left),
                "outcome": "will retry" if outcome == QUEUED else outcome,
                "service": row.get("service") if row["kind"] == "process" else None,
                "attempt": row.get("attempt"),
                "pending": bool(row.get("pending")),
                "function": row.get("function") if row["kind"] != "span" else None,
                "hint": hint or row.get("hint"),
                "clock_shift_ms": row.get("clock_shift_ms"),
                "argument": row.get("argument"),
                "due": due(float(row["due_at"]), now) if row.get("due_at") else None,
                "due_at": row.get("due_at"),
                "awaiting_spans": bool(row.get("awaiting_spans")),
                "title": _bar_title(row, hint or row.get("hint")),
                "key": _row_key(row, seen),
                "events": [
                    {**event, "traceback": tracebacks.parse(event.get("stacktrace"))}
                    for event in row.get("events") or ()
                ],
                "logs": [
                    {
                        **line,
                        "traceback": tracebacks.parse(line.get("exception")),
                        "preview": _preview(str(line.get("message") or "")),
                    }
                    for line in row.get("logs") or ()
                ],
            }
        )
    return {
        "view": {
            **view,
            "title": _request_title(view),
            "retries": view.get("retries", 0),
            "services": view.get("services") or [],
            "clock_skew": view.get("clock_skew") or [],
            "live": bool(view.get("live")),
            "version": str(view.get("version") or ""),
            "status_url": str(view.get("status_url") or ""),
            "awaiting_spans": int(view.get("awaiting_spans") or 0),
            "now": now,
        },
        "rows": drawn,
        "ticks": trace_layout.ticks(axis),
        "gaps": trace_layout.gaps(axis),
    }


def _preview(message: str) -> str | None:
    """The start of a long log message, shown until a click asks for all of it (a 4,000
    character message is a wall in the attempt's pane); None for a short one."""
    lines = message.split("\n")
    if len(message) <= PREVIEW_CHARS and len(lines) <= PREVIEW_LINES:
        return None
    return "\n".join(lines[:PREVIEW_LINES])[:PREVIEW_CHARS].rstrip() + "…"


def _bar_title(row: t.Mapping[str, t.Any], hint: str | None) -> str:
    lines = [str(row["name"])]
    lines += [f"error: {row['error']}"] if row.get("error") else []
    lines += [hint] if hint else []
    lines += [f"{key} = {value}" for key, value in row["attributes"].items()]
    return "\n".join(lines)


def _request_title(item: t.Mapping[str, t.Any]) -> str:
    if item.get("method") and item.get("path"):
        return f"{item['method']} {item['path']}"
    return str(item.get("name") or "(no request span)")


def _clock(epoch_seconds: float) -> str:
    return dt.datetime.fromtimestamp(epoch_seconds).strftime("%H:%M:%S")
