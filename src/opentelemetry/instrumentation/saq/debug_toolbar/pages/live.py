"""What the live panel and trace page poll: has anything changed, and is it still worth asking.

The spec asks for polling, not a push channel: the docked panel and the trace page ask
``status(trace_id)`` once a second while they are open, redraw when its ``version``
differs from the one they show, and stop when ``live`` turns false: every job final,
every attempt's spans here and no log line expected any more (``late_logs``), or the
panel's watch window over.

Two versions, one per reader. ``jobs`` changes when a job's state as the panel shows it
changes; ``page`` also changes when a span or a log line of the trace arrives (from this
process or a worker elsewhere), since the page draws both.
"""

from __future__ import annotations

import time
import typing as t

from opentelemetry.instrumentation.saq.debug_toolbar.pages import expected, late_logs, trace_view
from opentelemetry.instrumentation.saq.debug_toolbar.panel import refresher
from opentelemetry.instrumentation.saq.debug_toolbar.panel.job_logs import log_store
from opentelemetry.instrumentation.saq.debug_toolbar.panel.panel import SAQPanel
from opentelemetry.instrumentation.saq.debug_toolbar.panel.panel_view import jobs_version
from opentelemetry.instrumentation.saq.debug_toolbar.tracing import trace_store

if t.TYPE_CHECKING:
    from opentelemetry.sdk.trace import ReadableSpan

POLL_SECONDS = 1.0
"""How often an open panel or page asks (the refresher reads the queues twice as often)."""


def page_version(
    entries: t.Iterable[t.Mapping[str, t.Any]], spans: list[ReadableSpan], log_lines: int
) -> str:
    return f"{jobs_version(entries)}-{len(spans)}-{log_lines}"


class Watch(t.NamedTuple):
    """Where a trace stands for its readers (see the module docstring)."""

    live: bool
    following: bool
    """The panel's jobs are still read from their queues."""
    jobs: str
    page: str
    checked_ago: float
    """Seconds since the jobs were last read: how fresh what is shown is."""
    awaiting_spans: dict[str, list[int]]


def watch(trace_id: int, spans: list[ReadableSpan]) -> Watch:
    """The trace's live state, from the panel's followed entries and the spans here."""
    owner = refresher.for_trace(trace_id)
    followed = owner.of_trace(trace_id) if owner is not None else None
    entries = [item.entry for item in followed.tracked] if followed is not None else []
    known = {entry["key"]: entry for entry in entries}
    awaiting = expected.missing(spans, known)
    following = owner is not None and followed is not None and owner.follows(followed)
    if followed is not None:
        window_open = followed.watched
    else:  # a trace no request of this process followed: its own age decides
        start = min((span.start_time or 0) for span in spans) / 1e9 if spans else 0.0
        window_open = time.time() - start < refresher.watch_seconds(SAQPanel.watch_seconds)
    unfinished = bool(spans) and bool(trace_view.summary(trace_id, spans, known)["unfinished"])
    checked_ago = time.time() - followed.checked_at if following and followed else 0.0
    log_lines = len(log_store().lines(trace_id))
    settling = bool(spans) and late_logs.settling(trace_id, spans, log_lines)
    return Watch(
        live=window_open and (following or unfinished or bool(awaiting) or settling),
        following=following,
        jobs=jobs_version(entries),
        page=page_version(entries, spans, log_lines),
        checked_ago=max(0.0, round(checked_ago, 3)),
        awaiting_spans=awaiting,
    )


def status_json(trace_id: int) -> dict[str, t.Any] | None:
    """The small answer the panel and the page poll; None for a trace unknown here."""
    spans = trace_store().get_trace(trace_id)
    if not spans and refresher.for_trace(trace_id) is None:
        return None
    state = watch(trace_id, spans)
    return {
        "trace_id": f"{trace_id:032x}",
        "live": state.live,
        "following": state.following,
        "version": {"jobs": state.jobs, "page": state.page},
        "checked_ago_s": state.checked_ago,
        "awaiting_spans": state.awaiting_spans,
        "poll_seconds": POLL_SECONDS,
    }
