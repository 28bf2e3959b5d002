"""OTLP trace payloads turned into the spans the TraceStore keeps."""

from __future__ import annotations

import json

import pytest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue
from opentelemetry.trace import SpanKind, StatusCode

from opentelemetry.instrumentation.saq.debug_toolbar.receivers import otlp

TRACE, SPAN, PARENT = bytes(range(1, 17)), bytes(range(1, 9)), bytes(range(9, 17))


def export(**span_fields: object) -> ExportTraceServiceRequest:
    request = ExportTraceServiceRequest()
    resource_spans = request.resource_spans.add()
    resource_spans.resource.attributes.add(key="service.name", value=AnyValue(string_value="w"))
    scope_spans = resource_spans.scope_spans.add()
    scope_spans.scope.name = "tests"
    scope_spans.spans.add(**span_fields)
    return request


def test_every_attribute_type_becomes_a_plain_value() -> None:
    values = {
        "text": AnyValue(string_value="x"),
        "flag": AnyValue(bool_value=True),
        "count": AnyValue(int_value=3),
        "ratio": AnyValue(double_value=0.5),
        "bytes": AnyValue(bytes_value=b"\x01\xff"),
        "empty": AnyValue(),
    }
    values["list"] = AnyValue()
    values["list"].array_value.values.add(int_value=1)
    values["list"].array_value.values.add(int_value=2)
    values["map"] = AnyValue()
    values["map"].kvlist_value.values.add(key="a", value=AnyValue(string_value="b"))
    request = export(
        trace_id=TRACE,
        span_id=SPAN,
        parent_span_id=PARENT,
        name="job",
        kind=5,
        trace_state="vendor=1",
        attributes=[KeyValue(key=key, value=value) for key, value in values.items()],
        status={"code": 2, "message": "boom"},
        start_time_unix_nano=10,
        end_time_unix_nano=20,
    )
    request.resource_spans[0].scope_spans[0].spans[0].links.add(trace_id=TRACE, span_id=PARENT)

    (span,), invalid = otlp.readable_spans(request)

    assert invalid == 0
    assert dict(span.attributes or {}) == {
        "text": "x",
        "flag": True,
        "count": 3,
        "ratio": 0.5,
        "bytes": "01ff",
        "empty": None,
        "list": (1, 2),
        "map": json.dumps({"a": "b"}),
    }
    assert span.kind is SpanKind.CONSUMER and span.status.status_code is StatusCode.ERROR
    assert span.status.description == "boom"
    assert span.parent is not None and span.parent.span_id == int.from_bytes(PARENT, "big")
    assert span.context is not None and span.context.trace_state.get("vendor") == "1"
    assert [link.context.span_id for link in span.links] == [int.from_bytes(PARENT, "big")]
    assert span.resource.attributes["service.name"] == "w"
    assert (span.start_time, span.end_time) == (10, 20)


@pytest.mark.parametrize(
    ("trace_id", "span_id"),
    [(b"", SPAN), (TRACE, b"\x01"), (bytes(16), SPAN), (TRACE, bytes(8))],
)
def test_spans_with_invalid_ids_are_counted_not_kept(trace_id: bytes, span_id: bytes) -> None:
    spans, invalid = otlp.readable_spans(export(trace_id=trace_id, span_id=span_id, name="x"))
    assert (spans, invalid) == ([], 1)


def test_a_root_span_and_an_unknown_kind_read_as_the_sdk_would() -> None:
    (span,), _ = otlp.readable_spans(export(trace_id=TRACE, span_id=SPAN, name="x", kind=0))
    assert span.parent is None and span.kind is SpanKind.INTERNAL
