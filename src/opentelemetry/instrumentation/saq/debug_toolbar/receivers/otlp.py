"""OTLP/HTTP trace payloads, as the specification defines them, turned into SDK spans.

The wire format is decoded by ``opentelemetry-proto``; this module only does what the
specification asks of a receiver on top of it: JSON carries trace and span ids as hex
strings (protobuf's JSON mapping expects base64, so they are converted first), enums as
integers, field names in lowerCamelCase, and unknown fields are ignored. Spans become
``ReadableSpan`` objects, the shape the TraceStore keeps for spans of this process, so
the panel and the pages read one shape whichever process a span came from, within the
SDK's span limits (``otlp_limits``).
"""

from __future__ import annotations

import base64
import binascii
import json
import typing as t

from google.protobuf import json_format
from google.protobuf.message import DecodeError
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import Event, ReadableSpan, SpanLimits
from opentelemetry.sdk.util.instrumentation import InstrumentationScope
from opentelemetry.trace import Link, SpanContext, SpanKind, TraceFlags, TraceState
from opentelemetry.trace.status import Status, StatusCode

from opentelemetry.instrumentation.saq.debug_toolbar.receivers import otlp_limits

if t.TYPE_CHECKING:
    from collections.abc import Sequence

    from opentelemetry.attributes import BoundedAttributes
    from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue
    from opentelemetry.proto.trace.v1.trace_pb2 import Span as ProtoSpan

PROTOBUF = "application/x-protobuf"
JSON = "application/json"
MEDIA_TYPES = (PROTOBUF, JSON)

# Fields that hold ids as bytes in protobuf and as hex strings in OTLP JSON.
_HEX_FIELDS = ("traceId", "trace_id", "spanId", "span_id", "parentSpanId", "parent_span_id")
# OTLP's SpanKind counts from UNSPECIFIED = 0; the SDK's from INTERNAL = 0.
_KINDS = {1: SpanKind.INTERNAL, 2: SpanKind.SERVER, 3: SpanKind.CLIENT}
_KINDS.update({4: SpanKind.PRODUCER, 5: SpanKind.CONSUMER})


class UndecodableError(ValueError):
    """The body is not an OTLP trace export in the announced format."""


def decode(body: bytes, media_type: str) -> ExportTraceServiceRequest:
    """An ExportTraceServiceRequest from a protobuf or OTLP JSON body."""
    request = ExportTraceServiceRequest()
    try:
        if media_type == PROTOBUF:
            request.ParseFromString(body)
        else:
            document = json.loads(body)
            if not isinstance(document, dict):
                raise UndecodableError("the JSON body is not an object")
            _hex_ids_to_base64(document)
            json_format.ParseDict(document, request, ignore_unknown_fields=True)
    except UndecodableError:
        raise
    except (DecodeError, json_format.ParseError, ValueError, RecursionError) as exc:
        raise UndecodableError(f"{type(exc).__name__}: {exc}") from None
    return request


def _hex_ids_to_base64(node: t.Any) -> None:
    """Rewrite OTLP JSON's hex ids (at any depth: spans and their links) as base64."""
    if isinstance(node, list):
        for item in node:
            _hex_ids_to_base64(item)
    elif isinstance(node, dict):
        for key, value in node.items():
            if key in _HEX_FIELDS and isinstance(value, str):
                try:
                    node[key] = base64.b64encode(bytes.fromhex(value)).decode()
                except ValueError:
                    raise UndecodableError(f"{key} is not hex: {value[:40]!r}") from None
            elif isinstance(value, (dict, list)):
                _hex_ids_to_base64(value)


def encode_response(media_type: str, rejected: int, message: str = "") -> bytes:
    """The success answer, in the request's format, with partial success when spans were
    rejected."""
    response = ExportTraceServiceResponse()
    if rejected:
        response.partial_success.rejected_spans = rejected
        response.partial_success.error_message = message
    if media_type == PROTOBUF:
        return bytes(response.SerializeToString())
    return json.dumps(json_format.MessageToDict(response)).encode()


_Part = t.TypeVar("_Part", Resource, InstrumentationScope)


class Sharing(t.Protocol):
    """Given a resource or scope, an equal one already held (``TraceStore.shared``)."""

    def __call__(self, part: _Part, /) -> _Part: ...


def _as_is(part: _Part, /) -> _Part:
    return part


def readable_spans(
    request: ExportTraceServiceRequest,
    limits: SpanLimits | None = None,
    shared: Sharing = _as_is,
) -> tuple[list[ReadableSpan], int]:
    """The request's spans as ReadableSpans within ``limits`` (``otlp_limits.span_limits()``
    by default), and how many were invalid (bad ids). Their resources and scopes are those
    ``shared`` gives: one object per sender, not one per export."""
    limits = limits or otlp_limits.span_limits()
    length = limits.max_attribute_length
    spans: list[ReadableSpan] = []
    invalid = 0
    for resource_spans in request.resource_spans:
        pairs = resource_spans.resource.attributes
        attributes = _attributes(pairs, limits.max_attributes, length)
        resource = shared(Resource(dict(attributes)))
        for scope_spans in resource_spans.scope_spans:
            scope = shared(
                InstrumentationScope(
                    otlp_limits.text(scope_spans.scope.name, length),
                    otlp_limits.text(scope_spans.scope.version, length) or None,
                )
            )
            for span in scope_spans.spans:
                readable = _readable(span, resource, scope, limits)
                if readable is None:
                    invalid += 1
                else:
                    spans.append(readable)
    return spans, invalid


def _readable(
    span: ProtoSpan, resource: Resource, scope: InstrumentationScope, limits: SpanLimits
) -> ReadableSpan | None:
    if len(span.trace_id) != 16 or len(span.span_id) != 8:
        return None
    trace_id = int.from_bytes(span.trace_id, "big")
    span_id = int.from_bytes(span.span_id, "big")
    if not trace_id or not span_id:
        return None
    flags = TraceFlags(span.flags & 0xFF)
    state = _trace_state(span.trace_state)
    parent = None
    if len(span.parent_span_id) == 8 and any(span.parent_span_id):
        parent = SpanContext(trace_id, int.from_bytes(span.parent_span_id, "big"), True, flags)
    length = limits.max_span_attribute_length
    events = otlp_limits.last(span.events, limits.max_events)
    links = otlp_limits.last(span.links, limits.max_links)
    return ReadableSpan(
        name=otlp_limits.text(span.name, length),
        context=SpanContext(trace_id, span_id, True, flags, state),
        parent=parent,
        resource=resource,
        attributes=_attributes(
            span.attributes, limits.max_span_attributes, length, span.dropped_attributes_count
        ),
        events=otlp_limits.items(
            [_event(event, limits) for event in events],
            limits.max_events,
            len(span.events) - len(events) + span.dropped_events_count,
        ),
        links=otlp_limits.items(
            [
                Link(
                    SpanContext(
                        int.from_bytes(link.trace_id, "big"),
                        int.from_bytes(link.span_id, "big"),
                        True,
                    ),
                    _attributes(
                        link.attributes,
                        limits.max_link_attributes,
                        limits.max_attribute_length,
                        link.dropped_attributes_count,
                    ),
                )
                for link in links
                if len(link.trace_id) == 16 and len(link.span_id) == 8
            ],
            limits.max_links,
            len(span.links) - len(links) + span.dropped_links_count,
        ),
        kind=_KINDS.get(span.kind, SpanKind.INTERNAL),
        status=_status(span.status.code, span.status.message, length),
        start_time=span.start_time_unix_nano or None,
        end_time=span.end_time_unix_nano or None,
        instrumentation_scope=scope,
    )


def _event(event: ProtoSpan.Event, limits: SpanLimits) -> Event:
    length = limits.max_attribute_length
    attributes = _attributes(
        event.attributes, limits.max_event_attributes, length, event.dropped_attributes_count
    )
    return Event(otlp_limits.text(event.name, length), attributes, event.time_unix_nano or None)


def _status(code: int, message: str, length: int | None) -> Status:
    status_code = _status_code(code)
    # The SDK keeps a description with ERROR only, and logs a warning for each span given
    # one with another code: a sender could fill the app's log with it.
    if status_code is not StatusCode.ERROR:
        return Status(status_code)
    return Status(status_code, otlp_limits.text(message, length) or None)


def _status_code(code: int) -> StatusCode:
    try:
        return StatusCode(code)  # OTLP and the SDK number them alike: UNSET, OK, ERROR
    except ValueError:
        return StatusCode.UNSET


def _trace_state(text: str) -> TraceState | None:
    if not text:
        return None
    try:
        return TraceState.from_header([text])
    except ValueError:
        return None


def _attributes(
    pairs: Sequence[KeyValue], limit: int | None, length: int | None, dropped: int = 0
) -> BoundedAttributes:
    """Within the SDK's limits; the pairs the SDK would drop are not decoded."""
    kept = otlp_limits.last(pairs, limit)
    values = {pair.key: _value(pair.value) for pair in kept}
    return otlp_limits.attributes(values, limit, length, len(pairs) - len(kept) + dropped)


def _value(value: AnyValue) -> t.Any:
    """A plain Python value: scalars as they are, arrays as tuples (as the SDK keeps them),
    bytes as hex and key/value lists as JSON text, since span attributes are flat."""
    field = value.WhichOneof("value")
    if field is None:
        return None
    if field == "array_value":
        return tuple(_value(item) for item in value.array_value.values)
    if field == "kvlist_value":
        return json.dumps(
            {pair.key: _value(pair.value) for pair in value.kvlist_value.values}, default=str
        )
    if field == "bytes_value":
        return binascii.hexlify(value.bytes_value).decode()
    return getattr(value, field)


# The logs receiver (otlp_logs) reads the same wire format: one reading of ids and values.
hex_ids_to_base64 = _hex_ids_to_base64
attributes = _attributes
value = _value
