"""What a finished span, a resource and an instrumentation scope hold in memory, in bytes.

Measured, not guessed: ``sys.getsizeof`` of every text and value a span holds (a string
of 8,192 four-byte characters holds 32 KiB, not 8,192), plus a cost per span, attribute,
event and link for the objects around them, measured with ``tracemalloc`` on CPython 3.11
and SDK 1.45 (in-process SDK spans and spans the OTLP receiver builds, which cost a little
more). Each figure errs high: a string shared with other objects (a constant attribute
key, a logger's name) is counted as if the span held it alone.

A span's resource and scope are shared by many spans (one per provider and tracer; one
per sender at the OTLP receiver): they are sized apart (``part_bytes``), and the
TraceStore counts each received one once (this process's are held by its provider and
tracers whether the store keeps spans or not).
"""

from __future__ import annotations

import itertools
import sys
import typing as t

from opentelemetry.sdk.resources import Resource

if t.TYPE_CHECKING:
    from opentelemetry.sdk.trace import ReadableSpan
    from opentelemetry.sdk.util.instrumentation import InstrumentationScope

# The span with its contexts, status, locks and containers; each attribute's slot in its
# mapping; each event or link with its own attribute mapping; a resource or scope with its
# attribute mapping and the store's record of it.
_SPAN_BYTES = 2900
_ATTRIBUTE_BYTES = 48
_EVENT_BYTES = 500
_PART_BYTES = 1000
TRACE_BYTES = 600
"""What the store's index holds for each trace: its entries, its list, and the set of
the received resources and scopes it points to."""

_sizeof = sys.getsizeof
# C-level test for the values that hold others (the SDK keeps sequences as tuples).
_is_tuple: t.Callable[[object], bool] = tuple.__instancecheck__


def estimated_bytes(span: ReadableSpan) -> int:
    """The memory a finished span holds, in bytes, but for its resource and scope (see
    ``part_bytes``): its name, status message, trace state, attributes, events and links."""
    context = span.context
    size = (
        _SPAN_BYTES
        + _sizeof(span.name)
        + _sizeof(span.status.description)
        + attributes_bytes(span.attributes)
    )
    if context is not None and context.trace_state:
        size += attributes_bytes(context.trace_state)
    for event in span.events:
        size += _EVENT_BYTES + _sizeof(event.name) + attributes_bytes(event.attributes)
    for link in span.links:
        size += _EVENT_BYTES + attributes_bytes(link.attributes)
    return size


def part_bytes(part: Resource | InstrumentationScope | None) -> int:
    """The memory a span's resource or instrumentation scope holds, in bytes."""
    if part is None:
        return 0
    size = _PART_BYTES + attributes_bytes(part.attributes) + _sizeof(part.schema_url)
    name = getattr(part, "name", None)  # a scope's; a resource has attributes only
    if name is not None:
        size += _sizeof(name) + _sizeof(getattr(part, "version", None))
    return size


def attributes_bytes(attributes: t.Mapping[str, t.Any] | None) -> int:
    """Keys and values, as ``sys.getsizeof`` counts them, plus a slot for each."""
    # This runs as every span ends: sizes are summed in C (map, sum), not in a Python
    # loop, from a plain copy (the SDK's BoundedAttributes, behind a read-only proxy,
    # iterates in Python).
    copy = getattr(attributes, "copy", None)
    found = copy() if copy is not None else dict(attributes or {})
    values = found.values()
    held = itertools.chain(found, values, itertools.chain.from_iterable(filter(_is_tuple, values)))
    return len(found) * _ATTRIBUTE_BYTES + sum(map(_sizeof, held))


class HeldPart:
    """A resource or scope the store's spans point to: sized and counted once."""

    __slots__ = ("bytes", "is_resource", "part", "traces", "value")

    def __init__(self, part: Resource | InstrumentationScope | None) -> None:
        self.part = part
        self.bytes = part_bytes(part)
        self.is_resource = isinstance(part, Resource)
        self.traces = 0  # how many of the store's traces point to it
        self.value = PartValue.of(part)


class PartValue:
    """A resource or scope as a key by value (its hash, costly for a large resource, is
    made once, outside the store's lock)."""

    __slots__ = ("hash", "part")

    def __init__(self, part: Resource | InstrumentationScope, hashed: int) -> None:
        self.part = part
        self.hash = hashed

    @classmethod
    def of(cls, part: Resource | InstrumentationScope | None) -> PartValue | None:
        if part is None:
            return None
        try:
            return cls(part, hash(part))
        except Exception:  # a value the SDK's hash cannot read: shared by identity only
            return None

    def __hash__(self) -> int:
        return self.hash

    def __eq__(self, other: object) -> bool:
        return (
            isinstance(other, PartValue)
            and type(other.part) is type(self.part)
            and bool(other.part == self.part)
        )
