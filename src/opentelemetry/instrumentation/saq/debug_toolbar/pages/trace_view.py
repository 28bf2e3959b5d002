"""A trace from the TraceStore as plain data: rows on one time axis.

Shared by the trace page (HTML) and its JSON API. Rows are the spans of the trace in
tree order (children under their parent, siblings by start time), plus one synthetic
``wait`` row before each ``process`` span: the time that attempt spent in the queue.

Spans may come from this process or from workers elsewhere (through the receiver). A job
with no attempt among them is described by ``known``: the panel's entry for it, read from
its queue, so that the page and the panel tell the same story.
"""

from __future__ import annotations

import time
import typing as t

from opentelemetry.semconv.attributes.service_attributes import SERVICE_NAME
from opentelemetry.trace import SpanKind, StatusCode

from opentelemetry.instrumentation.saq import _status
from opentelemetry.instrumentation.saq._attributes import (
    ERROR_TYPE,
    MESSAGING_SYSTEM,
    MESSAGING_SYSTEM_SAQ,
    SAQ_JOB_ATTEMPT,
    SAQ_JOB_DUPLICATE,
    SAQ_JOB_FUNCTION,
    SAQ_JOB_KEY,
    SAQ_JOB_QUEUE_WAIT_MS,
    SAQ_JOB_SCHEDULED,
    SAQ_JOB_STATUS,
)
from opentelemetry.instrumentation.saq._outcome import error_summary
from opentelemetry.instrumentation.saq.debug_toolbar.pages import as_in_panel, clock_skew, expected

if t.TYPE_CHECKING:
    from opentelemetry.sdk.trace import ReadableSpan


Row = dict[str, t.Any]
Known = t.Mapping[str, t.Mapping[str, t.Any]]
"""The panel's entry of each job, by job key (see ``jobs.new_entry``)."""

PAGE_PREFIX = "/_debug_toolbar/saq"
SEVERITY = (
    _status.FAILED,
    _status.ABORTED,
    _status.RETRYING,
    _status.ACTIVE,
    _status.QUEUED,
    _status.COMPLETE,
)
"""Job statuses, worst first: a trace is listed with the worst of its jobs'."""
FINAL = _status.FINAL


def page_path(trace_id: int | str) -> str:
    return f"{PAGE_PREFIX}/{_hex(trace_id)}"


def status_path(trace_id: int | str) -> str:
    """The small endpoint an open panel or trace page polls (see ``live``)."""
    return f"{PAGE_PREFIX}/api/status/{_hex(trace_id)}"


def _hex(trace_id: int | str) -> str:
    return f"{trace_id:032x}" if isinstance(trace_id, int) else trace_id


def is_saq_trace(spans: list[ReadableSpan]) -> bool:
    return any(
        (span.attributes or {}).get(MESSAGING_SYSTEM) == MESSAGING_SYSTEM_SAQ for span in spans
    )


def summary(
    trace_id: int, spans: list[ReadableSpan], known: Known | None = None
) -> dict[str, t.Any]:
    """One line of the trace list: request, number of jobs, worst status."""
    root = _root(spans)
    method, path = request_of(root) if root is not None else (None, None)
    jobs = job_states(spans, known or {})
    start = min((span.start_time or 0) for span in spans) if spans else 0
    return {
        "trace_id": _hex(trace_id),
        "method": method,
        "path": path,
        "name": root.name if root is not None else None,
        "jobs": len(jobs),
        "worst_status": _worst(jobs.values()),
        "retries": _retries(spans),
        "unfinished": any(state not in FINAL for state in jobs.values()),
        "due_at": _next_due(spans, jobs),
        "services": sorted({s for s in map(_service, spans) if s}),
        "started_at": start / 1e9,
        "page": page_path(trace_id),
    }


def trace_rows(
    trace_id: int, spans: list[ReadableSpan], known: Known | None = None
) -> dict[str, t.Any]:
    """The whole trace on one time axis, in milliseconds from its first moment; the
    spans of a process whose clock is behind are shifted (see ``clock_skew``)."""
    known = known or {}
    spans, shifts, skews = clock_skew.adjusted(spans)
    now_ns = time.time_ns()
    by_id = {span.context.span_id: span for span in spans if span.context is not None}
    children: dict[int | None, list[ReadableSpan]] = {}
    for span in spans:
        parent = span.parent.span_id if span.parent is not None else None
        children.setdefault(parent if parent in by_id else None, []).append(span)
    for siblings in children.values():
        siblings.sort(key=lambda span: span.start_time or 0)
        as_in_panel.order(siblings, known)

    # SAQ stamps jobs in milliseconds: a wait computed from them can seem to begin up to
    # 1 ms before its enqueue span. It cannot, so it is clamped to the send.
    sent_at = {
        (span.attributes or {}).get(SAQ_JOB_KEY): span.start_time or 0
        for span in spans
        if span.kind is SpanKind.PRODUCER
    }

    def wait_start(span: ReadableSpan) -> int | None:
        start = _wait_start(span)
        sent = sent_at.get((span.attributes or {}).get(SAQ_JOB_KEY))
        return max(start, sent) if start is not None and sent is not None else start

    starts = [span.start_time or 0 for span in spans]
    starts += [w for w in (wait_start(span) for span in spans) if w is not None]
    origin = min(starts) if starts else now_ns
    ends = [span.end_time or now_ns for span in spans]
    end = max(ends) if ends else now_ns

    rows: list[Row] = []

    attempted = {
        (span.attributes or {}).get(SAQ_JOB_KEY) for span in spans if span.kind is SpanKind.CONSUMER
    }
    awaited = expected.missing(spans, known)
    attempt_end: dict[t.Any, int] = {}
    for span in spans:
        if span.kind is SpanKind.CONSUMER:
            key = (span.attributes or {}).get(SAQ_JOB_KEY)
            attempt_end[key] = max(attempt_end.get(key, 0), span.end_time or now_ns)

    def visit(span: ReadableSpan, depth: int) -> None:
        waited_from = wait_start(span)
        if waited_from is not None:
            rows.append(_wait_row(span, waited_from, origin, depth))
        rows.append(_span_row(span, origin, depth, now_ns))
        attributes = span.attributes or {}
        if (
            span.kind is SpanKind.PRODUCER
            and attributes.get(SAQ_JOB_KEY) not in attempted
            and not attributes.get(SAQ_JOB_DUPLICATE)
        ):
            entry = known.get(str(attributes.get(SAQ_JOB_KEY)))
            rows.append(_pending_row(span, origin, depth, now_ns, entry))
        for child in children.get(span.context.span_id if span.context else None, []):
            visit(child, depth + 1)
        key = attributes.get(SAQ_JOB_KEY)
        if span.kind is SpanKind.PRODUCER and key in attempted and key in awaited:
            after = _ms(attempt_end[key] - origin)
            rows.extend(
                expected.rows(
                    known[str(key)],
                    awaited[str(key)],
                    after,
                    depth + 1,
                    _ms(now_ns - origin),
                    origin / 1e6,
                )
            )

    for top in children.get(None, []):
        visit(top, 0)

    if any(row.get("pending") for row in rows):
        end = max(end, now_ns)  # a job still waiting stretches the axis to now
    for row in rows:
        shift = shifts.get(int(row["id"], 16)) if row["id"] else None
        if shift:
            row["clock_shift_ms"] = _ms(shift)
    end = max([end] + [origin + int((r["start_ms"] + r["duration_ms"]) * 1e6) for r in rows])
    as_in_panel.name_arguments(rows, known)
    summary_line = summary(trace_id, spans, known)
    return {
        **summary_line,
        "duration_ms": _ms(end - origin),
        "awaiting_spans": sum(len(attempts) for attempts in awaited.values()),
        "rows": rows,
        "clock_skew": [skew.as_dict() for skew in skews],
    }


def _span_row(span: ReadableSpan, origin: int, depth: int, now_ns: int) -> Row:
    attributes = dict(span.attributes or {})
    kind = _row_kind(span, attributes)
    error = span.status.status_code is StatusCode.ERROR
    start = span.start_time or origin
    row: Row = {
        "id": f"{span.context.span_id:016x}" if span.context else None,
        "parent_id": f"{span.parent.span_id:016x}" if span.parent else None,
        "name": span.name,
        "kind": kind,
        "depth": depth,
        "start_ms": _ms(start - origin),
        "duration_ms": _ms((span.end_time or now_ns) - start),
        "status": "error" if error else "ok",
        "error": error_summary((span.attributes or {}).get(ERROR_TYPE), span.status.description)
        if error
        else None,
        "attributes": {key: _plain(value) for key, value in attributes.items()},
        "service": _service(span),
    }
    if kind == "process":
        row["attempt"] = attributes.get(SAQ_JOB_ATTEMPT)
        row["job_status"] = attributes.get(SAQ_JOB_STATUS)
    if kind in ("send", "process"):
        row["function"] = attributes.get(SAQ_JOB_FUNCTION)
        row["job_key"] = attributes.get(SAQ_JOB_KEY)
    return row


def _wait_row(span: ReadableSpan, wait_start: int, origin: int, depth: int) -> Row:
    attributes = span.attributes or {}
    return _wait(
        span.parent.span_id if span.parent else None,
        f"queue wait · attempt {attributes.get(SAQ_JOB_ATTEMPT)}",
        depth,
        wait_start - origin,
        (span.start_time or wait_start) - wait_start,
        attributes,
        {SAQ_JOB_QUEUE_WAIT_MS: attributes.get(SAQ_JOB_QUEUE_WAIT_MS)},
    )


def _pending_row(
    send: ReadableSpan, origin: int, depth: int, now_ns: int, entry: t.Mapping[str, t.Any] | None
) -> Row:
    """A job with no attempt among the spans: waiting since it was sent, or, as its queue
    says, run by a worker whose spans have not arrived (a final job's bar stops growing)."""
    attributes = send.attributes or {}
    start = send.end_time or send.start_time or origin
    scheduled = attributes.get(SAQ_JOB_SCHEDULED)
    name = "waiting in queue · no attempt seen by this process"
    due = isinstance(scheduled, int) and scheduled * 1_000_000_000 > now_ns
    if due:
        name = "scheduled for later"  # not due yet: no worker could have run it
    status = str(entry["status"]) if entry is not None else None
    ran = status is not None and (status != _status.QUEUED or bool(entry and entry.get("attempts")))
    if ran:
        name = f"{status} · read from the queue, no spans from its worker yet"
    final = status in FINAL
    duration = max(0, now_ns - start)
    if final and entry is not None:
        duration = ((entry.get("queue_ms") or 0) + (entry.get("run_ms") or 0)) * 1_000_000
    shown = {SAQ_JOB_STATUS: status} if status is not None else {}
    row = _wait(
        send.context.span_id if send.context else None,
        name,
        depth + 1,
        start - origin,
        duration,
        attributes,
        shown,
    )
    row["pending"] = not final
    # The attempt the row stands for: the one the queue says ran, else the one it waits for.
    attempts = int((entry or {}).get("attempts") or 0)
    row["attempt"] = attempts if ran and status != _status.QUEUED else attempts + 1
    if due and not ran:
        # Waiting for its time is not queue wait: the axis may compress it.
        row["due_at"], row["compressible"] = scheduled, True
    if status in _status.UNSUCCESSFUL:
        row["status"], row["error"] = "error", entry.get("error") if entry else None
    return row


def _wait(
    parent_id: int | None,
    name: str,
    depth: int,
    start_ns: int,
    duration_ns: int,
    job: t.Mapping[str, t.Any],
    shown: dict[str, t.Any],
) -> Row:
    """A synthetic row for time a job spent in its queue (no span of its own)."""
    return {
        "id": None,
        "parent_id": f"{parent_id:016x}" if parent_id is not None else None,
        "name": name,
        "kind": "wait",
        "depth": depth,
        "start_ms": _ms(start_ns),
        "duration_ms": _ms(duration_ns),
        "status": "ok",
        "error": None,
        "attributes": shown,
        "function": job.get(SAQ_JOB_FUNCTION),
        "job_key": job.get(SAQ_JOB_KEY),
    }


def _wait_start(span: ReadableSpan) -> int | None:
    if span.kind is not SpanKind.CONSUMER or span.start_time is None:
        return None
    wait = (span.attributes or {}).get(SAQ_JOB_QUEUE_WAIT_MS)
    if not isinstance(wait, int):
        return None
    return span.start_time - wait * 1_000_000


def _row_kind(span: ReadableSpan, attributes: dict[str, t.Any]) -> str:
    if attributes.get(MESSAGING_SYSTEM) == MESSAGING_SYSTEM_SAQ:
        return "send" if span.kind is SpanKind.PRODUCER else "process"
    if span.kind is SpanKind.SERVER:
        return "request"
    return "span"


def _root(spans: list[ReadableSpan]) -> ReadableSpan | None:
    roots = [span for span in spans if span.parent is None]
    return min(roots, key=lambda span: span.start_time or 0) if roots else None


def request_of(span: ReadableSpan) -> tuple[str | None, str | None]:
    attributes = span.attributes or {}
    method = attributes.get("http.request.method") or attributes.get("http.method")
    path = (
        attributes.get("url.path") or attributes.get("http.target") or attributes.get("http.route")
    )
    return (str(method) if method else None, str(path) if path else None)


def _service(span: ReadableSpan) -> str | None:
    name = span.resource.attributes.get(SERVICE_NAME) if span.resource is not None else None
    return str(name) if name else None


def job_states(spans: list[ReadableSpan], known: Known) -> dict[str, str]:
    """Each job's latest known state in this trace, by job key: from its latest attempt
    span, or from its queue (``known``) when the queue has seen a later attempt."""
    states: dict[str, tuple[int, str]] = {}
    for span in spans:
        attributes = span.attributes or {}
        key = attributes.get(SAQ_JOB_KEY)
        if not isinstance(key, str) or attributes.get(SAQ_JOB_DUPLICATE):
            continue
        if span.kind is SpanKind.PRODUCER:
            states.setdefault(key, (0, _status.QUEUED))
        elif span.kind is SpanKind.CONSUMER:
            attempt = int(t.cast(int, attributes.get(SAQ_JOB_ATTEMPT, 0)))
            status = str(attributes.get(SAQ_JOB_STATUS, _status.ACTIVE))
            if status == _status.QUEUED:
                status = _status.RETRYING
            if attempt >= states.get(key, (-1, ""))[0]:
                states[key] = (attempt, status)
    for key, (attempt, _) in list(states.items()):
        entry = known.get(key)
        if entry is None or entry.get("status") in (None, _status.UNKNOWN):
            continue
        if attempt == 0 or int(entry.get("attempts") or 0) > attempt:
            status = str(entry["status"])
            retrying = status == _status.QUEUED and entry.get("attempts")
            states[key] = (attempt, _status.RETRYING if retrying else status)
    return {key: state for key, (_, state) in states.items()}


def _next_due(spans: list[ReadableSpan], states: dict[str, str]) -> int | None:
    """When the first of the trace's queued jobs scheduled ahead is due (epoch seconds)."""
    now = time.time()
    due = [
        scheduled
        for span in spans
        if span.kind is SpanKind.PRODUCER
        and states.get(t.cast(str, (span.attributes or {}).get(SAQ_JOB_KEY))) == _status.QUEUED
        and isinstance(scheduled := (span.attributes or {}).get(SAQ_JOB_SCHEDULED), int)
        and scheduled > now
    ]
    return min(due, default=None)


def _retries(spans: list[ReadableSpan]) -> int:
    """Attempts that ended with the job back in its queue, to be tried again."""
    return sum(
        1
        for span in spans
        if span.kind is SpanKind.CONSUMER
        and (span.attributes or {}).get(SAQ_JOB_STATUS) == _status.QUEUED
    )


def _worst(statuses: t.Iterable[str]) -> str | None:
    found = set(statuses)
    for status in SEVERITY:
        if status in found:
            return status
    return next(iter(found), None)


def _plain(value: t.Any) -> t.Any:
    return list(value) if isinstance(value, tuple) else value


def _ms(ns: int) -> float:
    return round(ns / 1_000_000, 3)
