"""TraceStore: finished spans kept in memory, indexed by trace id, within bounds.

It is a span processor: add it to an SDK ``TracerProvider`` and it keeps the spans of
the most recent traces, so that the debug toolbar can show a request's jobs without an
external backend. Example::

    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.instrumentation.saq.trace_store import TraceStore

    store = TraceStore(max_traces=500, max_spans_per_trace=1000)
    provider = TracerProvider()
    provider.add_span_processor(store)
    ...
    spans = store.get_trace(trace_id)

Requires the SDK (the ``sdk`` extra); the instrumentation itself does not.
"""

from __future__ import annotations

import threading
import typing as t
from collections import OrderedDict

from opentelemetry.sdk.trace import ReadableSpan, SpanProcessor

if t.TYPE_CHECKING:
    from opentelemetry.context import Context
    from opentelemetry.sdk.trace import Span

__all__ = ["TraceStore"]


class TraceStore(SpanProcessor):
    """Keeps at most ``max_traces`` traces (oldest evicted first) of at most
    ``max_spans_per_trace`` spans each; what did not fit is counted in ``dropped_spans``.

    Thread-safe: spans end on worker threads (sync jobs) and in the event loop alike.
    A trace counts as new when its first span ends; later spans refresh its age.
    """

    def __init__(self, max_traces: int = 1000, max_spans_per_trace: int = 1000) -> None:
        if max_traces < 1 or max_spans_per_trace < 1:
            raise ValueError("max_traces and max_spans_per_trace must be at least 1")
        self.max_traces = max_traces
        self.max_spans_per_trace = max_spans_per_trace
        self._traces: OrderedDict[int, list[ReadableSpan]] = OrderedDict()
        self._lock = threading.Lock()
        self.dropped_spans = 0
        """Spans not kept because their trace was full."""
        self.evicted_traces = 0
        """Traces dropped, oldest first, to make room for new ones."""
        self.evicted_spans = 0
        """Spans that went with the evicted traces."""

    # SpanProcessor: only on_end does work; spans are kept once they are finished.
    def on_start(self, span: Span, parent_context: Context | None = None) -> None:
        return None

    def on_end(self, span: ReadableSpan) -> None:
        context = span.context
        if context is None:
            return
        trace_id = context.trace_id
        with self._lock:
            spans = self._traces.get(trace_id)
            if spans is None:
                spans = self._traces[trace_id] = []
                if len(self._traces) > self.max_traces:
                    _, evicted = self._traces.popitem(last=False)
                    self.evicted_traces += 1
                    self.evicted_spans += len(evicted)
            else:
                self._traces.move_to_end(trace_id)
            if len(spans) < self.max_spans_per_trace:
                spans.append(span)
            else:
                self.dropped_spans += 1

    def add_received(self, spans: t.Iterable[ReadableSpan]) -> int:
        """Keep spans another process exported, of traces this store already holds; returns
        how many were kept.

        Spans of other traces are left out (a worker's cron jobs must not push the app's
        requests out), and so are spans already kept (an exporter's retry, or an app that
        exports its own spans back to itself).
        """
        kept = 0
        seen: dict[int, set[int]] = {}  # span ids per trace, built once per call
        with self._lock:
            for span in spans:
                context = span.context
                trace = self._traces.get(context.trace_id) if context is not None else None
                if trace is None or context is None:
                    continue
                ids = seen.get(context.trace_id)
                if ids is None:
                    ids = seen[context.trace_id] = {
                        old.context.span_id for old in trace if old.context is not None
                    }
                if context.span_id in ids:
                    continue
                if len(trace) >= self.max_spans_per_trace:
                    self.dropped_spans += 1
                    continue
                trace.append(span)
                ids.add(context.span_id)
                self._traces.move_to_end(context.trace_id)
                kept += 1
        return kept

    def shutdown(self) -> None:
        self.clear()

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        return True

    # Reading
    def get_trace(self, trace_id: int) -> list[ReadableSpan]:
        """The finished spans of one trace, in the order they ended (a copy)."""
        with self._lock:
            return list(self._traces.get(trace_id, ()))

    def trace_ids(self) -> list[int]:
        """Trace ids, most recently updated last."""
        with self._lock:
            return list(self._traces)

    def __len__(self) -> int:
        with self._lock:
            return len(self._traces)

    def __contains__(self, trace_id: object) -> bool:
        with self._lock:
            return trace_id in self._traces

    def clear(self) -> None:
        with self._lock:
            self._traces.clear()
