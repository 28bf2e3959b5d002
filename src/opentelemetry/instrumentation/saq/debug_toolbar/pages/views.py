"""The trace pages' content, independent of the web framework that serves them."""

from __future__ import annotations

import typing as t

from opentelemetry.instrumentation.saq.debug_toolbar.pages import (
    clock_skew,
    job_list,
    live,
    span_details,
    trace_page,
    trace_view,
)
from opentelemetry.instrumentation.saq.debug_toolbar.panel import refresher
from opentelemetry.instrumentation.saq.debug_toolbar.panel.job_logs import log_store
from opentelemetry.instrumentation.saq.debug_toolbar.tracing import trace_store


def parse_trace_id(text: str) -> int | None:
    """The trace id in a URL, or None when it is not 32 hex digits."""
    if len(text) != 32:
        return None
    try:
        return int(text, 16)
    except ValueError:
        return None


def _known(trace_id: int) -> trace_view.Known:
    """The panel's entries of a trace's jobs, as last read (no lookup)."""
    owner = refresher.for_trace(trace_id)
    followed = owner.of_trace(trace_id) if owner is not None else None
    if followed is None:
        return {}
    return {item.entry["key"]: item.entry for item in followed.tracked}


MAX_TRACES = 100
"""The most traces one answer of the list lists."""


def traces_json(params: t.Mapping[str, str] | None = None) -> dict[str, t.Any]:
    """The list: the most recent traces with SAQ jobs, newest first, each with its jobs
    that answer the query in ``params`` (see ``job_list.parse``: raises ``BadQueryError``)."""
    query = job_list.parse(params or {})
    store, logs = trace_store(), log_store()
    traces: list[dict[str, t.Any]] = []
    listed = 0
    queues: set[str] = set()
    functions: set[str] = set()
    for trace_id in reversed(store.trace_ids()):
        if listed >= query.limit or len(traces) >= MAX_TRACES:
            break
        spans = store.get_trace(trace_id)
        if not trace_view.is_saq_trace(spans):
            continue
        spans = clock_skew.adjusted(spans)[0]
        known = _known(trace_id)
        rows = job_list.jobs(trace_id, spans, known, logs.lines(trace_id))
        queues.update(row["queue"] for row in rows if row["queue"])
        functions.update(row["function"] for row in rows if row["function"])
        found = [row for row in rows if job_list.matches(row, query)]
        if query.filters and not found:
            continue
        found = found[: query.limit - listed]
        listed += len(found)
        summary = trace_view.summary(trace_id, spans, known)
        started_by = f"{summary['method']} {summary['path']}" if summary["method"] else None
        if started_by is None:
            started_by = rows[0]["started_by"] if rows else "outside a request"
        listed_jobs = [job_list.public(row) for row in found]
        traces.append({**summary, "started_by": started_by, "listed_jobs": listed_jobs})
    traces.sort(key=lambda item: item["started_at"], reverse=True)
    return {
        "traces": traces,
        "listed_jobs": listed,
        "query": query.as_dict(),
        "choices": {
            "queue": sorted(queues),
            "function": sorted(functions),
            "status": list(job_list.STATUSES),
            "origin": list(job_list.ORIGINS),
        },
        "store": store.stats(),
    }


async def trace_json(trace_id_text: str) -> dict[str, t.Any] | None:
    trace_id = parse_trace_id(trace_id_text)
    if trace_id is None:
        return None
    spans = trace_store().get_trace(trace_id)
    if not spans:
        return None
    owner = refresher.for_trace(trace_id)
    if owner is not None:
        # The same lookup the panel makes, on the same entries: they cannot disagree.
        await owner.refresh_trace(trace_id)
    followed = owner.of_trace(trace_id) if owner is not None else None
    if followed is not None:  # the panel's per-attempt log counts, as the page shows them
        span_details.note_logs(followed.tracked, trace_store())
    view = trace_view.trace_rows(trace_id, spans, _known(trace_id))
    span_details.add_details(view["rows"], spans, log_store().lines(trace_id))
    # Followed while jobs are on their way or spans still expected, within the watch
    # window: the page polls the status endpoint with this version (see live).
    state = live.watch(trace_id, spans)
    view["live"], view["version"] = state.live, state.page
    view["status_url"] = trace_view.status_path(trace_id)
    return view


def status_json(trace_id_text: str) -> dict[str, t.Any] | None:
    """What an open panel or trace page polls (see ``live``); None for an unknown trace."""
    trace_id = parse_trace_id(trace_id_text)
    return live.status_json(trace_id) if trace_id is not None else None


def list_html(params: t.Mapping[str, str] | None = None) -> str:
    listing = traces_json(params)
    return trace_page.render_list(listing["traces"], listing["store"], listing)


async def trace_html(trace_id_text: str) -> str | None:
    view = await trace_json(trace_id_text)
    return trace_page.render_trace(view) if view is not None else None
