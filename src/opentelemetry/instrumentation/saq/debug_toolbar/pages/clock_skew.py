"""Clock skew between the processes of one trace: found, said, and shifted for drawing.

Spans from workers elsewhere are timed by their own machine's clock. A span cannot start
before its parent started, so when a span starts before its parent in another process,
that process's clock is behind the parent's by at least the difference: a worker whose
clock is 120 s behind shows its attempts starting 120 s before the send that enqueued
them, and would stretch the waterfall to 120 s.

The trace then says so (which process, by how much, and the pair of spans that shows
it), and that process's spans are drawn shifted by that much, all of them by the same
amount since a process has one clock: the smallest shift that puts every span after its
parent (Jaeger's clock-skew adjuster does the same for a child that starts before its
parent; unlike Jaeger, a child that ends after its parent is left alone, since a job
runs after the request that enqueued it has ended). The API keeps each shifted row's
shift, so the time the process recorded can be read back.

A clock that is ahead cannot be told from a job that waited in its queue, and is not
corrected. Skew under 1 ms is ignored: SAQ itself stamps jobs in milliseconds.
"""

from __future__ import annotations

import typing as t

from opentelemetry.sdk.trace import Event, ReadableSpan
from opentelemetry.semconv.attributes.service_attributes import SERVICE_NAME

MIN_SKEW_NS = 1_000_000
Process = tuple[tuple[str, str], ...]
"""A process, told apart by its resource's attributes."""


class Skew(t.NamedTuple):
    """One process's clock, found behind the trace's by at least ``shift_ns``."""

    service: str
    shift_ns: int
    span: str  # the span that started before its parent, by name
    parent: str
    parent_service: str

    def as_dict(self) -> dict[str, t.Any]:
        return {
            "service": self.service,
            "behind_ms": round(self.shift_ns / 1_000_000, 3),
            "span": self.span,
            "parent": self.parent,
            "parent_service": self.parent_service,
        }


def adjusted(spans: list[ReadableSpan]) -> tuple[list[ReadableSpan], dict[int, int], list[Skew]]:
    """The spans with skewed processes shifted, each shifted span's shift by span id, and
    the skew of each process found behind (none: the spans themselves, unchanged)."""
    by_id = {span.context.span_id: span for span in spans if span.context is not None}
    keys: dict[int, Process] = {}  # by id(resource): exports of one worker share no object

    def process(span: ReadableSpan) -> Process:
        key = keys.get(id(span.resource))
        if key is None:
            attributes = span.resource.attributes if span.resource is not None else {}
            key = tuple(sorted((name, str(value)) for name, value in attributes.items()))
            keys[id(span.resource)] = key
        return key

    edges = []
    for span in spans:
        parent = by_id.get(span.parent.span_id) if span.parent is not None else None
        if (
            parent is not None
            and span.start_time
            and parent.start_time
            and process(parent) != process(span)
        ):
            edges.append((parent, span))
    if not edges:
        return spans, {}, []

    reference = process(_first_root(spans))
    shifts: dict[Process, int] = {}
    found: dict[Process, tuple[ReadableSpan, ReadableSpan]] = {}
    # A shift can reveal another (a worker's child in a third process): settle them all,
    # at most once per process, since a cycle of processes could otherwise never settle.
    for _ in range(len(set(map(process, spans)))):
        changed = False
        for parent, child in edges:
            key = process(child)
            if key == reference:
                continue
            parent_start = t.cast(int, parent.start_time) + shifts.get(process(parent), 0)
            behind = parent_start - (t.cast(int, child.start_time) + shifts.get(key, 0))
            if behind >= MIN_SKEW_NS:
                shifts[key] = shifts.get(key, 0) + behind
                found[key] = (parent, child)
                changed = True
        if not changed:
            break
    if not shifts:
        return spans, {}, []

    shifted_by_id: dict[int, int] = {}
    result = []
    for span in spans:
        shift = shifts.get(process(span), 0)
        if shift and span.context is not None:
            shifted_by_id[span.context.span_id] = shift
            span = _shifted(span, shift)
        result.append(span)
    skews = [
        Skew(_service(child), shifts[key], child.name, parent.name, _service(parent))
        for key, (parent, child) in found.items()
    ]
    return result, shifted_by_id, sorted(skews, key=lambda skew: -skew.shift_ns)


def _first_root(spans: list[ReadableSpan]) -> ReadableSpan:
    """The span the trace's clock is read from: its earliest root, else its earliest span."""
    roots = [span for span in spans if span.parent is None] or spans
    return min(roots, key=lambda span: span.start_time or 0)


def _shifted(span: ReadableSpan, shift: int) -> ReadableSpan:
    return ReadableSpan(
        name=span.name,
        context=span.context,
        parent=span.parent,
        resource=span.resource,
        attributes=span.attributes,
        events=[
            Event(event.name, event.attributes, event.timestamp + shift) for event in span.events
        ],
        links=span.links,
        kind=span.kind,
        status=span.status,
        start_time=span.start_time + shift if span.start_time is not None else None,
        end_time=span.end_time + shift if span.end_time is not None else None,
        instrumentation_scope=span.instrumentation_scope,
    )


def _service(span: ReadableSpan) -> str:
    name = span.resource.attributes.get(SERVICE_NAME) if span.resource is not None else None
    return str(name) if name else "a process with no service.name"
