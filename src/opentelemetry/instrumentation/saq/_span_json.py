"""A finished span as JSON and back, for the store on disk (see ``trace_disk``).

JSON, never pickle: the file may be written by anyone who can write to its folder, and
reading it must not run their code. What is kept is what the pages read: name, ids,
parent, kind, times, status, attributes, events, links, resource and scope. A span read
back is an SDK ``ReadableSpan``, the shape the memory store holds.
"""

from __future__ import annotations

import json
import logging
import typing as t

from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import Event, ReadableSpan
from opentelemetry.sdk.util.instrumentation import InstrumentationScope
from opentelemetry.trace import Link, SpanContext, SpanKind, Status, StatusCode, TraceFlags

if t.TYPE_CHECKING:
    from opentelemetry.instrumentation.saq.disk_store import DiskStore

__all__ = ["encode_span", "persisted_spans", "span_from_json", "span_to_json"]

logger = logging.getLogger(__name__)

_BYTES = "__bytes__"  # an attribute value of bytes, as hex (JSON has no bytes)


def _value(value: t.Any) -> t.Any:
    if isinstance(value, bytes):
        return {_BYTES: value.hex()}
    if isinstance(value, (list, tuple)):
        return [_value(item) for item in value]
    if isinstance(value, t.Mapping):
        return {str(key): _value(item) for key, item in value.items()}
    return value


def _read_value(value: t.Any) -> t.Any:
    if isinstance(value, list):  # the SDK keeps sequences as tuples
        return tuple(_read_value(item) for item in value)
    if isinstance(value, dict):
        if len(value) == 1 and isinstance(value.get(_BYTES), str):
            return bytes.fromhex(value[_BYTES])
        return {key: _read_value(item) for key, item in value.items()}
    return value


_PLAIN = frozenset({str, int, float, bool})  # JSON as they are: most attribute values


def _attributes(attributes: t.Mapping[str, t.Any] | None) -> dict[str, t.Any]:
    if not attributes:
        return {}
    return {
        key: value if type(value) in _PLAIN else _value(value) for key, value in attributes.items()
    }


def _read_attributes(value: t.Any) -> dict[str, t.Any]:
    if not isinstance(value, dict):
        return {}
    return {str(key): _read_value(item) for key, item in value.items()}


def _context(context: SpanContext | None) -> list[t.Any] | None:
    if context is None:
        return None
    return [
        f"{context.trace_id:032x}",
        f"{context.span_id:016x}",
        int(context.trace_flags),
        context.is_remote,
    ]


def _read_context(value: t.Any) -> SpanContext | None:
    if not isinstance(value, list) or len(value) != 4:
        return None
    trace_id, span_id, flags, remote = value
    return SpanContext(
        int(trace_id, 16), int(span_id, 16), bool(remote), trace_flags=TraceFlags(int(flags))
    )


def span_to_json(span: ReadableSpan) -> str:
    """The span as one line of JSON."""
    scope = span.instrumentation_scope
    status = span.status
    return json.dumps(
        {
            "name": span.name,
            "context": _context(span.context),
            "parent": _context(span.parent),
            "kind": span.kind.value,
            "start": span.start_time,
            "end": span.end_time,
            "status": [status.status_code.value, status.description],
            "attributes": _attributes(span.attributes),
            "events": [
                [event.name, event.timestamp, _attributes(event.attributes)]
                for event in span.events
            ],
            "links": [
                [_context(link.context), _attributes(link.attributes)] for link in span.links
            ],
            "resource": [_attributes(span.resource.attributes), span.resource.schema_url],
            "scope": None
            if scope is None
            else [scope.name, scope.version, scope.schema_url, _attributes(scope.attributes)],
        },
        separators=(",", ":"),
    )


class Parts:
    """Resources and scopes read back, shared by equal value: the spans of one read
    point to one object each, as spans of one process do."""

    def __init__(self) -> None:
        self._resources: dict[str, Resource] = {}
        self._scopes: dict[str, InstrumentationScope] = {}

    def resource(self, value: t.Any) -> Resource:
        text = json.dumps(value, sort_keys=True)
        found = self._resources.get(text)
        if found is None:
            attributes, schema_url = value if isinstance(value, list) else ({}, "")
            found = Resource(_read_attributes(attributes), schema_url or "")
            self._resources[text] = found
        return found

    def scope(self, value: t.Any) -> InstrumentationScope | None:
        if not isinstance(value, list) or len(value) != 4:
            return None
        text = json.dumps(value, sort_keys=True)
        found = self._scopes.get(text)
        if found is None:
            name, version, schema_url, attributes = value
            found = InstrumentationScope(
                str(name), version, schema_url, _read_attributes(attributes)
            )
            self._scopes[text] = found
        return found


def span_from_json(text: str, parts: Parts | None = None) -> ReadableSpan:
    """The span ``span_to_json`` wrote; raises ``ValueError`` (or ``KeyError``,
    ``TypeError``) on anything else."""
    parts = parts or Parts()
    row = json.loads(text)
    code, description = row["status"]
    return ReadableSpan(
        name=str(row["name"]),
        context=_read_context(row["context"]),
        parent=_read_context(row["parent"]),
        resource=parts.resource(row["resource"]),
        attributes=_read_attributes(row["attributes"]),
        events=[
            Event(str(name), _read_attributes(attributes), timestamp)
            for name, timestamp, attributes in row["events"]
        ],
        links=[
            Link(context, _read_attributes(attributes))
            for value, attributes in row["links"]
            if (context := _read_context(value)) is not None
        ],
        kind=SpanKind(row["kind"]),
        status=Status(StatusCode(code), description),
        start_time=row["start"],
        end_time=row["end"],
        instrumentation_scope=parts.scope(row["scope"]),
    )


def encode_span(span: ReadableSpan) -> tuple[int, str, str]:
    """The span as the disk store keeps it: (trace id, span id in hex, JSON)."""
    context = span.context
    if context is None:
        raise ValueError("a span without a context")
    return context.trace_id, f"{context.span_id:016x}", span_to_json(span)


def persisted_spans(
    disk: DiskStore, trace_id: int, in_memory: list[ReadableSpan]
) -> list[ReadableSpan]:
    """The trace's spans on disk, in the order they were written, then those of
    ``in_memory`` not written yet; a span this process holds is not read back again."""
    waiting = {span.context.span_id: span for span in in_memory if span.context is not None}
    parts = Parts()
    spans: list[ReadableSpan] = []
    for key, body in disk.rows(trace_id):
        try:
            span = waiting.pop(int(key, 16), None) if len(key) == 16 else None
            if span is None:
                span = span_from_json(body, parts)
        except Exception:  # not what we write (a foreign or damaged row): left out
            logger.debug("a span on disk could not be read", exc_info=True)
            continue
        spans.append(span)
    spans.extend(
        span for span in in_memory if span.context is not None and span.context.span_id in waiting
    )
    return spans
