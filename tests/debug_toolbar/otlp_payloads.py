"""OTLP/HTTP trace payloads as a worker in another process sends them.

Spans are made by a real SDK provider (with a resource of their own, as a worker's are)
and encoded by the SDK exporter's own encoder; the JSON form follows the OTLP/HTTP
specification (hex ids, integer enums, lowerCamelCase), written from that protobuf.
"""

from __future__ import annotations

import base64
import json
import typing as t

from google.protobuf import json_format
from opentelemetry import trace
from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import NonRecordingSpan, SpanContext, SpanKind, TraceFlags

RECEIVER = "/_debug_toolbar/saq/v1/traces"
PROTOBUF = {"content-type": "application/x-protobuf"}
JSON = {"content-type": "application/json"}


def worker_attempt(
    trace_id: str, parent_span_id: str, key: str, service: str = "remote-worker"
) -> list[ReadableSpan]:
    """A `process` attempt under the given send span, and a span the job started."""
    provider = TracerProvider(resource=Resource.create({"service.name": service}))
    exporter = InMemorySpanExporter()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    parent = SpanContext(int(trace_id, 16), int(parent_span_id, 16), True, TraceFlags(1))
    context = trace.set_span_in_context(NonRecordingSpan(parent))
    tracer = provider.get_tracer("tests.remote")
    attributes = {
        "messaging.system": "saq",
        "saq.job.key": key,
        "saq.job.function": "send_email",
        "saq.job.attempt": 1,
        "saq.job.status": "complete",
        "saq.job.queue_wait_ms": 3,
    }
    with (
        tracer.start_as_current_span(
            "process remote", context=context, kind=SpanKind.CONSUMER, attributes=attributes
        ),
        tracer.start_as_current_span("render email"),
    ):
        pass
    return list(exporter.get_finished_spans())


def spans_without_saq(trace_id: str, service: str = "other-service") -> list[ReadableSpan]:
    """A sender's request and a span under it, in a trace of its own: no SAQ span."""
    provider = TracerProvider(resource=Resource.create({"service.name": service}))
    exporter = InMemorySpanExporter()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    root = SpanContext(int(trace_id, 16), 0x1234, True, TraceFlags(1))
    context = trace.set_span_in_context(NonRecordingSpan(root))
    tracer = provider.get_tracer("tests.other")
    with (
        tracer.start_as_current_span("GET /elsewhere", context=context, kind=SpanKind.SERVER),
        tracer.start_as_current_span("SELECT users"),
    ):
        pass
    return list(exporter.get_finished_spans())


def protobuf(spans: list[ReadableSpan]) -> bytes:
    return bytes(encode_spans(spans).SerializeToString())


def otlp_json(spans: list[ReadableSpan]) -> bytes:
    document = json_format.MessageToDict(encode_spans(spans), use_integers_for_enums=True)
    _ids_to_hex(document)
    return json.dumps(document).encode()


def _ids_to_hex(node: t.Any) -> None:
    if isinstance(node, list):
        for item in node:
            _ids_to_hex(item)
    elif isinstance(node, dict):
        for key, value in node.items():
            if key in ("traceId", "spanId", "parentSpanId"):
                node[key] = base64.b64decode(value).hex()
            else:
                _ids_to_hex(value)
