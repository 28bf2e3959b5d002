"""Every job the TraceStore's traces hold, one row each, grouped by trace: the list page.

A job is whatever SAQ span names it (its send, its attempts), wherever it was born: in a
request, a cron tick, another job, a script or another service, run in this process or
by a worker that exports to the receivers. Each row says what started the job: the
request (method and path), ``cron `*/5 * * * *``` (``saq.job.cron``), the job whose
attempt enqueued it, or "outside a request".

The list is filtered by queue, function, status and origin, and searched by job key, job
id, trace id and text in errors and log lines. The query comes from a URL: every value
is bounded and checked here (``BadQuery`` is a 400), and shown only through the
autoescaping templates or JSON.
"""

from __future__ import annotations

import typing as t

from opentelemetry.trace import SpanKind, StatusCode

from opentelemetry.instrumentation.saq import _status
from opentelemetry.instrumentation.saq._attributes import (
    ERROR_TYPE,
    MESSAGING_DESTINATION_NAME,
    MESSAGING_MESSAGE_ID,
    MESSAGING_SYSTEM,
    MESSAGING_SYSTEM_SAQ,
    SAQ_JOB_ATTEMPT,
    SAQ_JOB_CRON,
    SAQ_JOB_DUPLICATE,
    SAQ_JOB_FUNCTION,
    SAQ_JOB_KEY,
    SAQ_JOB_KWARGS,
    SAQ_JOB_QUEUE_WAIT_MS,
)
from opentelemetry.instrumentation.saq._outcome import error_summary
from opentelemetry.instrumentation.saq.debug_toolbar.pages import trace_view
from opentelemetry.instrumentation.saq.debug_toolbar.panel.job_logs import worst_level

if t.TYPE_CHECKING:
    from opentelemetry.sdk.trace import ReadableSpan

    from opentelemetry.instrumentation.saq.debug_toolbar.panel.job_logs import LogLine

REQUEST, CRON, JOB, OUTSIDE = "request", "cron", "job", "outside"
ORIGINS = (REQUEST, CRON, JOB, OUTSIDE)
"""What may start a job, as the origin filter names it."""
FAILURES = "failures"
STATUSES = (FAILURES, *trace_view.SEVERITY)
"""The status filter's words, failures first ("failures": failed or aborted)."""
MAX_VALUE_CHARS = 200
"""The longest value a query parameter may hold."""
DEFAULT_LIMIT = 200
MAX_LIMIT = 1000
MAX_SHOWN_CHARS = 200  # of an argument or a log line, in a row


class BadQueryError(ValueError):
    """A query the list cannot answer: its message says which parameter and why."""


class Query(t.NamedTuple):
    """What the list is asked for; empty strings filter nothing."""

    queue: str = ""
    function: str = ""
    status: str = ""
    origin: str = ""
    text: str = ""
    limit: int = DEFAULT_LIMIT

    @property
    def filters(self) -> bool:
        return bool(self.queue or self.function or self.status or self.origin or self.text)

    def as_dict(self) -> dict[str, t.Any]:
        return {
            "queue": self.queue,
            "function": self.function,
            "status": self.status,
            "origin": self.origin,
            "q": self.text,
            "limit": self.limit,
        }


def parse(params: t.Mapping[str, str]) -> Query:
    """The query in a URL's parameters (``queue``, ``function``, ``status``, ``origin``,
    ``q``, ``limit``); raises ``BadQueryError`` for a value out of bounds."""
    values: dict[str, str] = {}
    for name in ("queue", "function", "status", "origin", "q", "limit"):
        value = params.get(name) or ""
        if not isinstance(value, str):
            raise BadQueryError(f"{name} must be text")
        if len(value) > MAX_VALUE_CHARS:
            raise BadQueryError(f"{name} is longer than {MAX_VALUE_CHARS} characters")
        values[name] = value.strip()
    if values["status"] and values["status"] not in STATUSES:
        raise BadQueryError(f"status must be one of: {', '.join(STATUSES)}")
    if values["origin"] and values["origin"] not in ORIGINS:
        raise BadQueryError(f"origin must be one of: {', '.join(ORIGINS)}")
    limit = DEFAULT_LIMIT
    if values["limit"]:
        digits = values["limit"]
        if not (digits.isascii() and digits.isdigit()) or not 1 <= int(digits) <= MAX_LIMIT:
            raise BadQueryError(f"limit must be a whole number from 1 to {MAX_LIMIT}")
        limit = int(values["limit"])
    return Query(
        values["queue"],
        values["function"],
        values["status"],
        values["origin"],
        values["q"],
        limit,
    )


def jobs(
    trace_id: int,
    spans: list[ReadableSpan],
    known: trace_view.Known,
    lines: list[LogLine],
) -> list[dict[str, t.Any]]:
    """The jobs of one trace, in the order they were enqueued (or first ran)."""
    by_id = {span.context.span_id: span for span in spans if span.context is not None}
    sends: dict[str, ReadableSpan] = {}
    attempts: dict[str, list[ReadableSpan]] = {}
    for span in sorted(spans, key=lambda span: span.start_time or 0):
        attributes = span.attributes or {}
        key = attributes.get(SAQ_JOB_KEY)
        if attributes.get(MESSAGING_SYSTEM) != MESSAGING_SYSTEM_SAQ or not isinstance(key, str):
            continue
        if span.kind is SpanKind.PRODUCER and not attributes.get(SAQ_JOB_DUPLICATE):
            sends.setdefault(key, span)
        elif span.kind is SpanKind.CONSUMER:
            attempts.setdefault(key, []).append(span)
    states = trace_view.job_states(spans, known)
    logs = _lines_by_job(lines, by_id)
    rows = []
    for key in dict.fromkeys([*sends, *attempts]):
        send, tried = sends.get(key), attempts.get(key, [])
        tried.sort(key=_attempt_number)
        rows.append(
            _row(trace_id, key, send, tried, by_id, known.get(key), states, logs.get(key, []))
        )
    return rows


def _row(
    trace_id: int,
    key: str,
    send: ReadableSpan | None,
    tried: list[ReadableSpan],
    by_id: dict[int, ReadableSpan],
    entry: t.Mapping[str, t.Any] | None,
    states: dict[str, str],
    lines: list[LogLine],
) -> dict[str, t.Any]:
    first = send or tried[0]
    attributes = {**(tried[-1].attributes or {} if tried else {}), **(first.attributes or {})}
    last = tried[-1] if tried else None
    wait = (tried[0].attributes or {}).get(SAQ_JOB_QUEUE_WAIT_MS) if tried else None
    run_ms = None
    if last is not None and last.end_time and last.start_time:
        run_ms = round((last.end_time - last.start_time) / 1e6, 3)
    errors = [span for span in tried if span.status.status_code is StatusCode.ERROR]
    error = None
    if errors:
        failed = errors[-1]
        error = error_summary((failed.attributes or {}).get(ERROR_TYPE), failed.status.description)
    attempts = _attempt_number(last) if last is not None else 0
    if entry is not None:  # the panel's word, read from the queue: it may know more
        attempts = max(attempts, int(entry.get("attempts") or 0))
        wait = wait if wait is not None else entry.get("queue_ms")
        run_ms = run_ms if run_ms is not None else entry.get("run_ms")
        error = error or entry.get("error")
    origin, started_by = _origin(send or tried[0], tried, by_id)
    started_ns = first.start_time or 0
    if send is None and isinstance(wait, int):
        started_ns -= wait * 1_000_000  # enqueued elsewhere: it was waiting since then
    argument = entry.get("argument") if entry is not None else None
    if argument is None and attributes.get(SAQ_JOB_KWARGS) is not None:
        # Recorded only when the ArgumentPolicy opted in, and as that policy shows it.
        argument = _clip(str(attributes[SAQ_JOB_KWARGS]))
    return {
        "key": key,
        "job_id": _text(attributes.get(MESSAGING_MESSAGE_ID)),
        "function": _text(attributes.get(SAQ_JOB_FUNCTION)),
        "argument": argument,
        "queue": _text(attributes.get(MESSAGING_DESTINATION_NAME)),
        "status": states.get(key),
        "attempts": attempts,
        "wait_ms": wait,
        "run_ms": run_ms,
        "error": error,
        "origin": origin,
        "started_by": started_by,
        "started_at": started_ns / 1e9,
        "trace_id": f"{trace_id:032x}",
        "page": trace_view.page_path(trace_id),
        "logs": len(lines),
        "last_log": _clip(lines[-1].message) if lines else None,
        "log_level": worst_level(lines),
        "_searchable": [line.message for line in lines]
        + [line.exception for line in lines if line.exception],
    }


def _origin(
    span: ReadableSpan, tried: list[ReadableSpan], by_id: dict[int, ReadableSpan]
) -> tuple[str, str]:
    """What started the job: its origin word and the row's words for it."""
    for candidate in (span, *tried):
        cron = (candidate.attributes or {}).get(SAQ_JOB_CRON)
        if cron:
            return CRON, f"cron `{cron}`"
    seen: set[int] = set()
    parent = span.parent
    while parent is not None and parent.span_id in by_id and parent.span_id not in seen:
        seen.add(parent.span_id)
        above = by_id[parent.span_id]
        attributes = above.attributes or {}
        if above.kind is SpanKind.CONSUMER and attributes.get(MESSAGING_SYSTEM):
            return JOB, f"job `{attributes.get(SAQ_JOB_FUNCTION)}`"
        if above.kind is SpanKind.SERVER:
            method, path = trace_view.request_of(above)
            return REQUEST, f"{method} {path}" if method and path else above.name
        parent = above.parent
    return OUTSIDE, "outside a request"


def _lines_by_job(lines: list[LogLine], by_id: dict[int, ReadableSpan]) -> dict[str, list[LogLine]]:
    """Each log line under the job whose attempt it was written in (or in a span of)."""
    found: dict[str, list[LogLine]] = {}
    for line in lines:
        span = by_id.get(line.span_id)
        hops = 0
        while span is not None and hops < 64:
            attributes = span.attributes or {}
            key = attributes.get(SAQ_JOB_KEY)
            if span.kind is SpanKind.CONSUMER and isinstance(key, str):
                found.setdefault(key, []).append(line)
                break
            span = by_id.get(span.parent.span_id) if span.parent is not None else None
            hops += 1
    return found


def matches(row: t.Mapping[str, t.Any], query: Query) -> bool:
    """Whether a job row answers the query (text: case-insensitive, anywhere in the key,
    the job id, the trace id, the error and the job's log lines)."""
    if query.queue and row["queue"] != query.queue:
        return False
    if query.function and row["function"] != query.function:
        return False
    if query.origin and row["origin"] != query.origin:
        return False
    if query.status == FAILURES:
        if row["status"] not in _status.UNSUCCESSFUL:
            return False
    elif query.status and row["status"] != query.status:
        return False
    if query.text:
        needle = query.text.casefold()
        haystack = [row["key"], row["job_id"], row["trace_id"], row["error"] or ""]
        haystack += row["_searchable"]
        if not any(needle in str(text).casefold() for text in haystack):
            return False
    return True


def public(row: dict[str, t.Any]) -> dict[str, t.Any]:
    """The row as the page and the JSON API show it."""
    return {name: value for name, value in row.items() if not name.startswith("_")}


def _attempt_number(span: ReadableSpan) -> int:
    number = (span.attributes or {}).get(SAQ_JOB_ATTEMPT)
    return number if isinstance(number, int) else 0


def _text(value: object) -> str:
    return "" if value is None else str(value)


def _clip(text: str) -> str:
    return text if len(text) <= MAX_SHOWN_CHARS else text[: MAX_SHOWN_CHARS - 1] + "…"
