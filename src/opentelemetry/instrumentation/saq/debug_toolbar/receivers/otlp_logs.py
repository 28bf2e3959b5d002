"""The toolbar as a local OTLP/HTTP logs receiver, beside the trace receiver.

A worker in another process started as docs/guides/remote-workers.md says
(``OTEL_LOGS_EXPORTER=otlp``, ``OTEL_PYTHON_LOGGING_AUTO_INSTRUMENTATION_ENABLED=true``,
``OTEL_EXPORTER_OTLP_LOGS_ENDPOINT=http://127.0.0.1:8000/_debug_toolbar/saq/v1/logs``)
sends the log records its jobs wrote with the SDK's own ``OTLPLogExporter``. They are
decoded from the OTLP wire format by ``opentelemetry-proto`` (protobuf, or OTLP JSON with
hex ids) and kept in the ``LogStore`` under the span that was current, for traces the
TraceStore holds; lines of a trace not here yet wait a while for its spans, apart
(``pending_logs``): a remote worker sends lines every second and spans every five, so
the first lines of a trace no request of the app started come before the trace. Gating,
size limits and status codes are the trace receiver's own: this module gives it only the
decoding (see ``receiver.Signal``).
"""

from __future__ import annotations

import json
import typing as t

from google.protobuf import json_format
from google.protobuf.message import DecodeError
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import (
    ExportLogsServiceRequest,
    ExportLogsServiceResponse,
)
from opentelemetry.semconv.attributes.exception_attributes import (
    EXCEPTION_MESSAGE,
    EXCEPTION_STACKTRACE,
    EXCEPTION_TYPE,
)
from opentelemetry.semconv.attributes.service_attributes import SERVICE_NAME

from opentelemetry.instrumentation.saq.debug_toolbar.panel import job_logs, worker_logs
from opentelemetry.instrumentation.saq.debug_toolbar.receivers import otlp, otlp_limits, receiver
from opentelemetry.instrumentation.saq.debug_toolbar.receivers.pending_logs import pending_lines
from opentelemetry.instrumentation.saq.debug_toolbar.tracing import trace_store

if t.TYPE_CHECKING:
    from collections.abc import AsyncIterator

    from opentelemetry.proto.logs.v1.logs_pb2 import LogRecord
    from opentelemetry.proto.resource.v1.resource_pb2 import Resource
    from opentelemetry.sdk.trace import SpanLimits

# OTLP severity numbers (1-24) in steps of four, named as Python's logging names them, so
# that a line reads the same from any process (the SDK sends "WARN" for WARNING).
_SEVERITIES = (
    (21, "CRITICAL", 50),
    (17, "ERROR", 40),
    (13, "WARNING", 30),
    (9, "INFO", 20),
    (5, "DEBUG", 10),
    (1, "TRACE", 5),
)


async def receive(headers: t.Mapping[str, str], body: AsyncIterator[bytes]) -> receiver.Answer:
    """Answer one logs export (see ``receiver.receive``); never raises."""
    return await receiver.receive(headers, body, LOGS)


def _keep(raw: bytes, media_type: str) -> tuple[int, int]:
    request = decode(raw, media_type)
    lines, invalid = log_lines(request)
    store = trace_store()
    sent = {line.trace_id for line in lines}
    held = {trace_id for trace_id in sent if trace_id in store}
    # Lines that waited for a trace that came in another way (the app's own spans, or
    # another process of the app through the store on disk) go first.
    receiver.release_logs(pending_lines().waiting(held))
    kept = job_logs.log_store().add_received(lines, held)
    # Lines of a trace not here yet wait for its spans (see pending_logs); they are
    # counted once moved or dropped, and not rejected now.
    waiting, gone = pending_lines().hold(
        line for line in lines if line.trace_id not in held and not job_logs.is_skipped(line.logger)
    )
    receiver.log_counts.add(0, gone)
    # Spans that arrived since the look-up above found none of these lines waiting: the
    # trace receiver adds, then releases; this side holds, then looks again.
    arrived = pending_lines().waiting(sent - held)
    receiver.release_logs(trace_id for trace_id in arrived if trace_id in store)
    # Records with no trace: a worker's start-up, a crash between jobs (the workers page).
    outside = sum(
        worker_logs.add_received(found, source) for source, found in outside_lines(request)
    )
    return kept + outside, len(lines) - kept - waiting + invalid - outside


def decode(body: bytes, media_type: str) -> ExportLogsServiceRequest:
    """An ExportLogsServiceRequest from a protobuf or OTLP JSON body."""
    request = ExportLogsServiceRequest()
    try:
        if media_type == otlp.PROTOBUF:
            request.ParseFromString(body)
        else:
            document = json.loads(body)
            if not isinstance(document, dict):
                raise otlp.UndecodableError("the JSON body is not an object")
            otlp.hex_ids_to_base64(document)
            json_format.ParseDict(document, request, ignore_unknown_fields=True)
    except otlp.UndecodableError:
        raise
    except (DecodeError, json_format.ParseError, ValueError, RecursionError) as exc:
        raise otlp.UndecodableError(f"{type(exc).__name__}: {exc}") from None
    return request


def log_lines(request: ExportLogsServiceRequest) -> tuple[list[job_logs.LogLine], int]:
    """The request's records as LogLines, and how many had no valid trace and span id
    (records written outside any span: nothing to show them under)."""
    lines: list[job_logs.LogLine] = []
    invalid = 0
    # A record's attributes are bounded as a span's are (the SDK's limits, read once).
    limits = otlp_limits.span_limits()
    for resource_logs in request.resource_logs:
        service = _service(resource_logs.resource)
        for scope_logs in resource_logs.scope_logs:
            for record in scope_logs.log_records:
                line = _line(record, scope_logs.scope.name, limits, service)
                if line is None:
                    invalid += 1
                else:
                    lines.append(line)
    return lines, invalid


def outside_lines(
    request: ExportLogsServiceRequest,
) -> list[tuple[str, list[job_logs.LogLine]]]:
    """The records written outside any span, by the resource that sent them (its name)."""
    limits = otlp_limits.span_limits()
    found = []
    for resource_logs in request.resource_logs:
        resource = otlp.attributes(
            resource_logs.resource.attributes, limits.max_attributes, limits.max_attribute_length
        )
        service = _service(resource_logs.resource)
        lines = [
            line
            for scope_logs in resource_logs.scope_logs
            for record in scope_logs.log_records
            if (line := _line(record, scope_logs.scope.name, limits, service, traced=False))
            is not None
        ]
        if lines:
            found.append((worker_logs.resource_name(resource), lines))
    return found


def encode_response(media_type: str, rejected: int, message: str = "") -> bytes:
    response = ExportLogsServiceResponse()
    if rejected:
        response.partial_success.rejected_log_records = rejected
        response.partial_success.error_message = message
    if media_type == otlp.PROTOBUF:
        return bytes(response.SerializeToString())
    return json.dumps(json_format.MessageToDict(response)).encode()


UNNAMED = "a process with no service.name"


def _service(resource: Resource) -> str:
    """Who sent the lines, as its resource says (a line tells which process wrote it)."""
    names = [otlp.value(pair.value) for pair in resource.attributes if pair.key == SERVICE_NAME]
    return job_logs.clip(str(names[-1]), 200) if names and names[-1] else UNNAMED


def _line(
    record: LogRecord, scope: str, limits: SpanLimits, service: str, traced: bool = True
) -> job_logs.LogLine | None:
    """The record as a line: one with a valid trace and span id, or (``traced=False``) one
    with none; None otherwise."""
    trace_id = int.from_bytes(record.trace_id, "big") if len(record.trace_id) == 16 else 0
    span_id = int.from_bytes(record.span_id, "big") if len(record.span_id) == 8 else 0
    if traced != bool(trace_id and span_id):
        return None
    attributes = otlp.attributes(
        record.attributes, limits.max_attributes, limits.max_attribute_length
    )
    level, number = _severity(record.severity_number, record.severity_text)
    body = otlp.value(record.body)
    message = body if isinstance(body, str) else json.dumps(body, default=str)
    if not traced:  # a worker's line outside any job: SAQ's jobs in it lose their arguments
        message = worker_logs.redact(message or "")
    return job_logs.LogLine(
        trace_id=trace_id,
        span_id=span_id,
        time_ns=record.time_unix_nano or record.observed_time_unix_nano,
        level=level,
        level_number=number,
        # The SDK's LoggingHandler names the scope after the Python logger.
        logger=job_logs.clip(scope, 200),
        message=job_logs.clip(message or "", job_logs.MAX_MESSAGE_CHARS),
        exception=_exception(attributes),
        service=service,
    )


def _severity(number: int, text: str) -> tuple[str, int]:
    for lowest, name, python_level in _SEVERITIES:
        if number >= lowest:
            return name, python_level
    return (text or "UNSPECIFIED")[:20], 0


# The exception the SDK's LoggingHandler records, as semantic-convention attributes.
def _exception(attributes: t.Mapping[str, t.Any]) -> str | None:
    stacktrace = attributes.get(EXCEPTION_STACKTRACE)
    if not stacktrace:
        kind, message = attributes.get(EXCEPTION_TYPE), attributes.get(EXCEPTION_MESSAGE)
        stacktrace = ": ".join(str(part) for part in (kind, message) if part) or None
    return job_logs.clip(str(stacktrace), job_logs.MAX_EXCEPTION_CHARS) if stacktrace else None


LOGS = receiver.Signal("logs", _keep, encode_response, receiver.log_counts)
