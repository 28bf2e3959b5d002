"""TraceStore: finished spans kept in memory, indexed by trace id, within bounds.

It is a span processor: add it to an SDK ``TracerProvider`` and it keeps the spans of
the most recent traces, so that the debug toolbar can show a request's jobs without an
external backend. Example::

    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.instrumentation.saq.trace_store import TraceStore

    store = TraceStore(max_traces=500, max_spans_per_trace=1000, max_bytes=32 * 2**20)
    provider = TracerProvider()
    provider.add_span_processor(store)
    ...
    spans = store.get_trace(trace_id)

It is bounded by counts and by an estimate of the memory its spans hold (64 MiB by
default): whichever bound is reached first evicts the oldest traces, and every eviction is
counted (``evicted_traces``) and logged once. Requires the SDK (the ``sdk`` extra); the
instrumentation itself does not.
"""

from __future__ import annotations

import logging
import threading
import typing as t
from collections import OrderedDict

from opentelemetry.sdk.trace import ReadableSpan, SpanProcessor

if t.TYPE_CHECKING:
    from opentelemetry.context import Context
    from opentelemetry.sdk.trace import Span

__all__ = ["DEFAULT_MAX_BYTES", "TraceStore", "estimated_bytes"]

logger = logging.getLogger(__name__)

DEFAULT_MAX_BYTES = 64 * 1024 * 1024
"""The default bound on the estimated memory the store's spans hold."""

# What a finished span costs beyond its text, measured with tracemalloc on CPython 3.11
# and SDK 1.45 (SDK spans with and without attributes and events): the span with its
# context, locks and containers; each attribute's dict slot and value; each event or link.
_SPAN_BYTES = 2700
_ATTRIBUTE_BYTES = 100
_EVENT_BYTES = 450


def estimated_bytes(span: ReadableSpan) -> int:
    """About how much memory a finished span holds: a measured cost per span, attribute,
    event and link, plus the length of their values as text (a long value dominates,
    which is what the memory bound is for)."""
    size = _SPAN_BYTES + _attributes_bytes(span.attributes)
    for event in span.events:
        size += _EVENT_BYTES + len(event.name) + _attributes_bytes(event.attributes)
    for link in span.links:
        size += _EVENT_BYTES + _attributes_bytes(link.attributes)
    return size


def _attributes_bytes(attributes: t.Mapping[str, t.Any] | None) -> int:
    # This runs as every span ends: the values are measured in C (map, str, len), not in
    # a Python loop, and read from a plain copy (the SDK's BoundedAttributes, behind a
    # read-only proxy, iterates in Python). str() of a text value is the value itself.
    copy = getattr(attributes, "copy", None)
    values = (copy() if copy is not None else attributes or {}).values()
    return len(values) * _ATTRIBUTE_BYTES + sum(map(len, map(str, values)))


class TraceStore(SpanProcessor):
    """Keeps at most ``max_traces`` traces of at most ``max_spans_per_trace`` spans each,
    holding at most about ``max_bytes`` (``estimated_bytes`` per span); the oldest traces
    are evicted first. What did not fit is counted: ``dropped_spans`` (a full trace, or one
    span larger than the whole bound), ``evicted_traces`` and ``evicted_spans``.

    Thread-safe: spans end on worker threads (sync jobs) and in the event loop alike.
    A trace counts as new when its first span ends; later spans refresh its age.
    """

    def __init__(
        self,
        max_traces: int = 1000,
        max_spans_per_trace: int = 1000,
        max_bytes: int = DEFAULT_MAX_BYTES,
    ) -> None:
        if max_traces < 1 or max_spans_per_trace < 1 or max_bytes < 1:
            raise ValueError("max_traces, max_spans_per_trace and max_bytes must be at least 1")
        self.max_traces = max_traces
        self.max_spans_per_trace = max_spans_per_trace
        self.max_bytes = max_bytes
        self._traces: OrderedDict[int, list[ReadableSpan]] = OrderedDict()
        self._sizes: dict[int, int] = {}  # estimated bytes per trace
        self._lock = threading.Lock()
        self._warned = False
        self.estimated_bytes = 0
        """The estimated memory the kept spans hold (see ``estimated_bytes``)."""
        self.dropped_spans = 0
        """Spans not kept: their trace was full (by count or by memory), or one span alone
        was larger than ``max_bytes``."""
        self.evicted_traces = 0
        """Traces dropped, oldest first, to make room for new ones."""
        self.evicted_spans = 0
        """Spans that went with the evicted traces."""

    def stats(self) -> dict[str, int]:
        """The store's fill and bounds, and what it evicted and dropped, as plain data."""
        with self._lock:
            return {
                "traces": len(self._traces),
                "max_traces": self.max_traces,
                "estimated_bytes": self.estimated_bytes,
                "max_bytes": self.max_bytes,
                "evicted_traces": self.evicted_traces,
                "evicted_spans": self.evicted_spans,
                "dropped_spans": self.dropped_spans,
            }

    # SpanProcessor: only on_end does work; spans are kept once they are finished.
    def on_start(self, span: Span, parent_context: Context | None = None) -> None:
        return None

    def on_end(self, span: ReadableSpan) -> None:
        context = span.context
        if context is None:
            return
        trace_id = context.trace_id
        size = estimated_bytes(span)
        with self._lock:
            spans = self._traces.get(trace_id)
            if spans is None:
                if size > self.max_bytes:
                    self.dropped_spans += 1
                    return
                spans = self._traces[trace_id] = []
                self._sizes[trace_id] = 0
            else:
                self._traces.move_to_end(trace_id)
            if not self._keep(trace_id, spans, span, size):
                self.dropped_spans += 1
            full = len(self._traces) > self.max_traces or self.estimated_bytes > self.max_bytes
            if full:
                self._evict()
        if full and not self._warned:
            self._warn_once()

    def _keep(
        self, trace_id: int, spans: list[ReadableSpan], span: ReadableSpan, size: int
    ) -> bool:
        """Add a span to its trace if the trace stays within its bounds (lock held)."""
        trace_size = self._sizes[trace_id] + size
        if len(spans) >= self.max_spans_per_trace or trace_size > self.max_bytes:
            return False
        spans.append(span)
        self._sizes[trace_id] = trace_size
        self.estimated_bytes += size
        return True

    def _evict(self) -> None:
        """Drop the oldest traces until the store is within its bounds (lock held); the
        newest trace stays, since ``_keep`` keeps each trace within ``max_bytes``."""
        while len(self._traces) > self.max_traces or (
            self.estimated_bytes > self.max_bytes and len(self._traces) > 1
        ):
            trace_id, spans = self._traces.popitem(last=False)
            self.estimated_bytes -= self._sizes.pop(trace_id)
            self.evicted_traces += 1
            self.evicted_spans += len(spans)

    def _warn_once(self) -> None:
        if self._warned:
            return
        self._warned = True
        logger.warning(
            "The TraceStore is full (max_traces=%d, max_bytes=%d): the oldest traces are "
            "evicted from now on, and counted in its evicted_traces.",
            self.max_traces,
            self.max_bytes,
        )

    def add_received(self, spans: t.Iterable[ReadableSpan]) -> int:
        """Keep spans another process exported, of traces this store already holds; returns
        how many were kept.

        Spans of other traces are left out (a worker's cron jobs must not push the app's
        requests out), and so are spans already kept (an exporter's retry, or an app that
        exports its own spans back to itself).
        """
        kept = 0
        seen: dict[int, set[int]] = {}  # span ids per trace, built once per call
        sized = [(span, estimated_bytes(span)) for span in spans]
        with self._lock:
            for span, size in sized:
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
                if not self._keep(context.trace_id, trace, span, size):
                    self.dropped_spans += 1
                    continue
                ids.add(context.span_id)
                self._traces.move_to_end(context.trace_id)
                kept += 1
            full = len(self._traces) > self.max_traces or self.estimated_bytes > self.max_bytes
            if full:
                self._evict()
        if full and not self._warned:
            self._warn_once()
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
            self._sizes.clear()
            self.estimated_bytes = 0
