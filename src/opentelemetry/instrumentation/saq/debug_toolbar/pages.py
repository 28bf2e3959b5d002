"""The trace pages' content, independent of the web framework that serves them."""

from __future__ import annotations

import typing as t

from opentelemetry.instrumentation.saq.debug_toolbar import trace_page, trace_view
from opentelemetry.instrumentation.saq.debug_toolbar.tracing import trace_store


def parse_trace_id(text: str) -> int | None:
    """The trace id in a URL, or None when it is not 32 hex digits."""
    if len(text) != 32:
        return None
    try:
        return int(text, 16)
    except ValueError:
        return None


def traces_json() -> dict[str, t.Any]:
    return {"traces": trace_view.recent_traces(trace_store())}


def trace_json(trace_id_text: str) -> dict[str, t.Any] | None:
    trace_id = parse_trace_id(trace_id_text)
    if trace_id is None:
        return None
    spans = trace_store().get_trace(trace_id)
    if not spans:
        return None
    return trace_view.trace_rows(trace_id, spans)


def list_html() -> str:
    return trace_page.render_list(traces_json()["traces"])


def trace_html(trace_id_text: str) -> str | None:
    view = trace_json(trace_id_text)
    return trace_page.render_trace(view) if view is not None else None
