"""The Postgres queue against a real PostgreSQL: one trace, kept across retries."""

from __future__ import annotations

import typing as t

import pytest
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, StatusCode
from saq.job import Status
from saq.queue.postgres import PostgresQueue

from opentelemetry.instrumentation.saq import META_KEY
from tests.workers import finished, running_worker, spans_named, wait_for_spans

pytestmark = pytest.mark.usefixtures("instrument")
Ctx = dict[str, t.Any]
_calls: dict[str, int] = {}


async def build_report(ctx: Ctx, *, month: str) -> str:
    return f"report {month}"


async def fails_twice(ctx: Ctx) -> str:
    key = ctx["job"].key
    _calls[key] = _calls.get(key, 0) + 1
    if _calls[key] < 3:
        raise TimeoutError(f"warehouse slow ({_calls[key]})")
    return "ok"


async def test_a_postgres_job_joins_the_request_trace(
    pg_queue: PostgresQueue, exporter: InMemorySpanExporter, tracer_provider: TracerProvider
) -> None:
    with tracer_provider.get_tracer("app").start_as_current_span("POST /report") as request:
        job = await pg_queue.enqueue("build_report", month="2026-11")
    assert job is not None
    stored = await pg_queue.job(job.key)
    assert stored is not None and "traceparent" in stored.meta[META_KEY]

    async with running_worker(pg_queue, [build_report], poll_interval=0.05):
        (process,) = await wait_for_spans(exporter, f"process {pg_queue.name}", 1)
        await finished(job, 10)

    (send,) = spans_named(exporter, f"send {pg_queue.name}")
    assert job.status == Status.COMPLETE and job.result == "report 2026-11"
    assert send.kind is SpanKind.PRODUCER and process.kind is SpanKind.CONSUMER
    assert send.parent is not None and send.parent.span_id == request.get_span_context().span_id
    assert process.parent is not None and process.parent.span_id == send.context.span_id
    assert process.context.trace_id == request.get_span_context().trace_id
    attributes = process.attributes or {}
    assert attributes["messaging.system"] == "saq"
    assert attributes["messaging.destination.name"] == pg_queue.name
    assert attributes["messaging.message.id"] == job.id
    assert attributes["saq.job.status"] == "complete"


async def test_retries_on_postgres_keep_the_producer_context(
    pg_queue: PostgresQueue, exporter: InMemorySpanExporter
) -> None:
    job = await pg_queue.enqueue("fails_twice", retries=3)
    assert job is not None
    async with running_worker(pg_queue, [fails_twice], poll_interval=0.05):
        attempts = await wait_for_spans(exporter, f"process {pg_queue.name}", 3, timeout=20)
        await finished(job, 10)

    (send,) = spans_named(exporter, f"send {pg_queue.name}")
    assert job.status == Status.COMPLETE and job.result == "ok"
    assert [(a.attributes or {})["saq.job.attempt"] for a in attempts] == [1, 2, 3]
    assert all(a.parent is not None and a.parent.span_id == send.context.span_id for a in attempts)
    first, second, third = attempts
    for failed in (first, second):
        assert failed.status.status_code is StatusCode.ERROR
        assert (failed.attributes or {})["error.type"] == "TimeoutError"
        assert (failed.attributes or {})["saq.job.will_retry"] is True
    assert third.status.status_code is StatusCode.UNSET
    assert all(isinstance((a.attributes or {})["saq.job.queue_wait_ms"], int) for a in attempts)
