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

It is bounded by counts, by the memory its spans hold in bytes (64 MiB by default) and by
the distinct resources of the spans other processes sent (64): whichever bound is reached
first evicts the oldest traces, and every eviction is counted (``evicted_traces``) and
logged once. A resource or scope that many received spans share is counted once (see
``shared``); those of this process's spans are its provider's and tracers', not counted.
Requires the SDK (the ``sdk`` extra); the instrumentation itself does not.
"""

from __future__ import annotations

import logging
import threading
import typing as t
from collections import OrderedDict

from opentelemetry.sdk.trace import ReadableSpan, SpanProcessor

from opentelemetry.instrumentation.saq._memory import (
    TRACE_BYTES,
    HeldPart,
    PartValue,
    estimated_bytes,
)

if t.TYPE_CHECKING:
    from opentelemetry.context import Context
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import Span
    from opentelemetry.sdk.util.instrumentation import InstrumentationScope

    Part = t.TypeVar("Part", Resource, InstrumentationScope)

__all__ = ["DEFAULT_MAX_BYTES", "DEFAULT_MAX_RESOURCES", "TraceStore", "estimated_bytes"]

logger = logging.getLogger(__name__)

DEFAULT_MAX_BYTES = 64 * 1024 * 1024
"""The default bound on the memory the store's spans hold, in bytes."""
DEFAULT_MAX_RESOURCES = 64
"""The default bound on the distinct resources the store's spans point to."""


class TraceStore(SpanProcessor):
    """Keeps at most ``max_traces`` traces of at most ``max_spans_per_trace`` spans each,
    holding at most ``max_bytes`` bytes and pointing to at most ``max_resources`` distinct
    resources; the oldest traces are evicted first. A resource or scope many spans share
    is counted once. What did not fit is counted: ``dropped_spans`` (a full trace, or one
    trace larger than the whole bound on its own), ``evicted_traces`` and ``evicted_spans``.

    Thread-safe: spans end on worker threads (sync jobs) and in the event loop alike.
    A trace counts as new when its first span ends; later spans refresh its age.
    """

    def __init__(
        self,
        max_traces: int = 1000,
        max_spans_per_trace: int = 1000,
        max_bytes: int = DEFAULT_MAX_BYTES,
        max_resources: int = DEFAULT_MAX_RESOURCES,
    ) -> None:
        if min(max_traces, max_spans_per_trace, max_bytes, max_resources) < 1:
            raise ValueError(
                "max_traces, max_spans_per_trace, max_bytes and max_resources must be at least 1"
            )
        self.max_traces = max_traces
        self.max_spans_per_trace = max_spans_per_trace
        self.max_bytes = max_bytes
        self.max_resources = max_resources
        self._traces: OrderedDict[int, list[ReadableSpan]] = OrderedDict()
        # Per trace: its bytes (its spans, and the received resources and scopes they
        # point to, as if it held them alone) and the ids of those resources and scopes.
        self._sizes: dict[int, int] = {}
        self._points_to: dict[int, set[int]] = {}
        self._held: dict[int, HeldPart] = {}  # every received resource and scope, by id
        self._by_value: dict[PartValue, HeldPart] = {}
        self._resources = 0
        self._lock = threading.Lock()
        self._warned = False
        self.estimated_bytes = 0
        """The memory the kept spans hold, in bytes, counting each span (see
        ``estimated_bytes``) and each resource and scope they point to, once."""
        self.dropped_spans = 0
        """Spans not kept, because their trace was full (by count or by memory), or one
        span alone was larger than ``max_bytes``."""
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
                "resources": self._resources,
                "max_resources": self.max_resources,
                "evicted_traces": self.evicted_traces,
                "evicted_spans": self.evicted_spans,
                "dropped_spans": self.dropped_spans,
            }

    # SpanProcessor: only on_end does work; spans are kept once they are finished.
    def on_start(self, span: Span, parent_context: Context | None = None) -> None:
        """Does nothing: a span is kept once it has ended."""
        return None

    def on_end(self, span: ReadableSpan) -> None:
        """Keep the ended span in its trace, within the bounds; never raises into the SDK
        (a span that does not fit is counted in ``dropped_spans``)."""
        # A span of this process points to its provider's resource and its tracer's scope,
        # which they hold anyway: they cost the store nothing, and are not counted.
        context = span.context
        if context is None:
            return
        trace_id = context.trace_id
        size = estimated_bytes(span)
        with self._lock:
            spans = self._traces.get(trace_id)
            if spans is None:
                if size + TRACE_BYTES > self.max_bytes:
                    self.dropped_spans += 1
                    return
                spans = self._traces[trace_id] = []
                self._sizes[trace_id] = TRACE_BYTES
                self.estimated_bytes += TRACE_BYTES
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
        self,
        trace_id: int,
        spans: list[ReadableSpan],
        span: ReadableSpan,
        size: int,
        new: list[HeldPart] | None = None,
    ) -> bool:
        """Add a span to its trace, the newest, if the trace stays within its bounds, with
        the resource and scope it points to that the trace did not yet (lock held)."""
        trace_size = self._sizes[trace_id] + size
        if new:
            trace_size += sum(held.bytes for held in new)
        if len(spans) >= self.max_spans_per_trace or trace_size > self.max_bytes:
            return False
        if new and not self._point_to(trace_id, new):
            return False
        spans.append(span)
        self._sizes[trace_id] = trace_size
        self.estimated_bytes += size
        return True

    def _new_parts(
        self, trace_id: int, span: ReadableSpan, sized: dict[int, HeldPart]
    ) -> list[HeldPart]:
        """The received span's resource and scope, if its trace did not yet point to them
        (lock held); ``sized`` has them all, sized before the lock."""
        points_to = self._points_to.get(trace_id, ())
        new: list[HeldPart] = []
        for part in (span.resource, span.instrumentation_scope):
            if id(part) not in points_to and all(held.part is not part for held in new):
                new.append(self._held.get(id(part)) or sized[id(part)])
        return new

    def _point_to(self, trace_id: int, new: list[HeldPart]) -> bool:
        """Count the newest trace's spans pointing to resources and scopes it did not yet
        point to; False if a resource would be one too many (lock held)."""
        if any(held.is_resource and not held.traces for held in new):
            while self._resources >= self.max_resources and len(self._traces) > 1:
                self._evict_oldest()
            if self._resources >= self.max_resources:
                return False
        points_to = self._points_to.setdefault(trace_id, set())
        for held in new:
            if not held.traces:  # held by no other trace: now held, and counted once
                self._held[id(held.part)] = held
                if held.value is not None:
                    self._by_value.setdefault(held.value, held)
                self._resources += held.is_resource
                self.estimated_bytes += held.bytes
            held.traces += 1
            points_to.add(id(held.part))
        return True

    def _evict(self) -> None:
        """Drop the oldest traces until the store is within its bounds (lock held); the
        newest trace stays, since ``_keep`` keeps each trace within ``max_bytes``."""
        while len(self._traces) > self.max_traces or (
            self.estimated_bytes > self.max_bytes and len(self._traces) > 1
        ):
            self._evict_oldest()

    def _evict_oldest(self) -> None:
        """Forget the oldest trace, and the resources and scopes only it pointed to."""
        trace_id, spans = self._traces.popitem(last=False)
        size = self._sizes.pop(trace_id)
        points_to = self._points_to.pop(trace_id, None)
        if points_to:  # received spans' resources and scopes
            size -= self._let_go(points_to)
        self.estimated_bytes -= size
        self.evicted_traces += 1
        self.evicted_spans += len(spans)

    def _let_go(self, points_to: set[int]) -> int:
        """An evicted trace no longer points to these resources and scopes: those no other
        trace points to are no longer held. Returns their bytes in the trace's figure."""
        in_trace = 0
        for part_id in points_to:
            held = self._held[part_id]
            in_trace += held.bytes
            held.traces -= 1
            if not held.traces:
                del self._held[part_id]
                if held.value is not None and self._by_value.get(held.value) is held:
                    del self._by_value[held.value]
                self._resources -= held.is_resource
                self.estimated_bytes -= held.bytes
        return in_trace

    def _warn_once(self) -> None:
        if self._warned:
            return
        self._warned = True
        logger.warning(
            "The TraceStore is full (max_traces=%d, max_bytes=%d, max_resources=%d): the "
            "oldest traces are evicted from now on, and counted in its evicted_traces.",
            self.max_traces,
            self.max_bytes,
            self.max_resources,
        )

    def shared(self, part: Part) -> Part:
        """The resource or scope equal to ``part`` that the store's spans already point
        to, or ``part`` itself: the OTLP receiver builds spans on it, so that a sender's
        spans, export after export, share one object, held and counted once."""
        value = PartValue.of(part)  # hashed before the lock: a resource may be large
        if value is None:
            return part
        with self._lock:
            held = self._by_value.get(value)
        return t.cast("Part", held.part) if held is not None else part

    def add_received(
        self, spans: t.Iterable[ReadableSpan], start: t.Container[int] = frozenset()
    ) -> int:
        """Keep spans another process exported, of traces this store already holds or whose
        ids are in ``start`` (the receiver starts those holding SAQ spans); returns how many
        were kept.

        Spans of other traces are left out (a sender's unrelated traffic must not push the
        app's traces out), and so are spans already kept (an exporter's retry, or an app
        that exports its own spans back to itself). A trace started here is the newest, and
        the oldest go first to make room, as for the app's own.
        """
        kept = 0
        seen: dict[int, set[int]] = {}  # span ids per trace, built once per call
        spans_sized = [(span, estimated_bytes(span)) for span in spans]
        # Their resources and scopes, sized (and hashed) before the lock.
        sized: dict[int, HeldPart] = {}
        for span, _ in spans_sized:
            for part in (span.resource, span.instrumentation_scope):
                if id(part) not in sized:
                    sized[id(part)] = HeldPart(part)
        with self._lock:
            for span, size in spans_sized:
                context = span.context
                if context is None:
                    continue
                trace = self._traces.get(context.trace_id)
                if trace is None:
                    if context.trace_id not in start or size + TRACE_BYTES > self.max_bytes:
                        continue
                    trace = self._traces[context.trace_id] = []
                    self._sizes[context.trace_id] = TRACE_BYTES
                    self.estimated_bytes += TRACE_BYTES
                ids = seen.get(context.trace_id)
                if ids is None:
                    ids = seen[context.trace_id] = {
                        old.context.span_id for old in trace if old.context is not None
                    }
                if context.span_id in ids:
                    continue
                self._traces.move_to_end(context.trace_id)
                new = self._new_parts(context.trace_id, span, sized)
                if not self._keep(context.trace_id, trace, span, size, new):
                    self.dropped_spans += 1
                    continue
                ids.add(context.span_id)
                kept += 1
            full = len(self._traces) > self.max_traces or self.estimated_bytes > self.max_bytes
            if full:
                self._evict()
        if full and not self._warned:
            self._warn_once()
        return kept

    def shutdown(self) -> None:
        """Forget every span (the SDK calls it when the provider shuts down)."""
        self.clear()

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        """Nothing to flush: the store exports nothing. Always True."""
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
        """Forget every span, and the resources and scopes they pointed to."""
        with self._lock:
            self._traces.clear()
            self._sizes.clear()
            self._points_to.clear()
            self._held.clear()
            self._by_value.clear()
            self._resources = 0
            self.estimated_bytes = 0
