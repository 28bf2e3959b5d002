"""Spans from this process (the SDK's) and from a worker process (OTLP) in one shape."""

from __future__ import annotations

import typing as t

from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.trace import SpanKind, StatusCode

from tests.otlp_receiver import ReceivedSpan


class Span(t.NamedTuple):
    name: str
    kind: str  # "server", "producer", "consumer", ...
    trace_id: str
    span_id: str
    parent_id: str  # "" for a root span
    attributes: dict[str, t.Any]
    error: bool


def from_sdk(span: ReadableSpan) -> Span:
    assert span.context is not None
    return Span(
        span.name,
        span.kind.name.lower(),
        f"{span.context.trace_id:032x}",
        f"{span.context.span_id:016x}",
        f"{span.parent.span_id:016x}" if span.parent else "",
        dict(span.attributes or {}),
        span.status.status_code is StatusCode.ERROR,
    )


_OTLP_KINDS = {2: SpanKind.SERVER, 4: SpanKind.PRODUCER, 5: SpanKind.CONSUMER}


def from_otlp(span: ReceivedSpan) -> Span:
    kind = _OTLP_KINDS.get(span.kind, SpanKind.INTERNAL)
    return Span(
        span.name,
        kind.name.lower(),
        span.trace_id,
        span.span_id,
        span.parent_span_id,
        span.attributes,
        span.status_code == 2,
    )


def assert_one_trace_per_request(spans: list[Span], queue: str, job_ids: dict[str, str]) -> None:
    """The request's server span, a send span per job under it, every attempt under its send.

    ``job_ids`` maps function to job id, as the request handler returned them;
    send_welcome runs once, sync_crm fails once and succeeds on its retry.
    """
    sends = {
        span.attributes["messaging.message.id"]: span
        for span in spans
        if span.name == f"send {queue}"
    }
    attempts = [span for span in spans if span.name == f"process {queue}"]
    assert set(sends) == set(job_ids.values()), (
        sorted(sends),
        job_ids,
        [(span.name, span.attributes.get("saq.job.function")) for span in spans],
    )
    (server,) = [span for span in spans if span.span_id == next(iter(sends.values())).parent_id]
    assert server.kind == "server" and server.attributes["http.target"] == "/signup"
    for send in sends.values():
        assert send.kind == "producer"
        assert (send.trace_id, send.parent_id) == (server.trace_id, server.span_id)
    by_job: dict[str, list[Span]] = {}
    for attempt in sorted(attempts, key=lambda span: span.attributes["saq.job.attempt"]):
        by_job.setdefault(attempt.attributes["messaging.message.id"], []).append(attempt)
        send = sends[attempt.attributes["messaging.message.id"]]
        assert attempt.kind == "consumer"
        assert (attempt.trace_id, attempt.parent_id) == (server.trace_id, send.span_id)
    welcome, crm = by_job[job_ids["send_welcome"]], by_job[job_ids["sync_crm"]]
    assert [a.attributes["saq.job.status"] for a in welcome] == ["complete"]
    assert [a.attributes["saq.job.status"] for a in crm] == ["queued", "complete"]
    assert crm[0].error and crm[0].attributes["saq.job.will_retry"] is True
    assert crm[0].attributes["error.type"] == "ConnectionError"
