"""Jobs that carry what we did not write, or that cross instrumented and plain SAQ."""

from __future__ import annotations

import typing as t

import pytest
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import StatusCode
from saq import Job
from saq.job import Status
from saq.queue.redis import RedisQueue

from opentelemetry.instrumentation.saq import META_KEY, SAQInstrumentor
from tests.workers import finished, running_worker, spans_named, wait_for_spans

Ctx = dict[str, t.Any]


async def add(ctx: Ctx, *, a: int, b: int) -> int:
    return a + b


async def meta_seen(ctx: Ctx) -> t.Any:
    return ctx["job"].meta


@pytest.mark.parametrize(
    "meta",
    [
        {META_KEY: {"traceparent": "00-" + "0" * 32 + "-" + "0" * 16 + "-01"}},  # all-zero ids
        {META_KEY: {"traceparent": ["not", "a", "string"]}},
        {META_KEY: {"traceparent": "\x00\xff garbage"}},
        {META_KEY: None},
        {META_KEY: 12},
        {META_KEY: {"traceparent": "00-" + "f" * 40_000}},
        {"unrelated": {"traceparent": "anything"}},
    ],
    ids=["zero-ids", "list", "garbage", "none", "int", "oversized", "elsewhere"],
)
async def test_bad_context_in_meta_runs_the_job_under_a_root_span(
    queue: RedisQueue,
    exporter: InMemorySpanExporter,
    instrument: SAQInstrumentor,
    meta: dict[str, t.Any],
) -> None:
    instrument.uninstrument()  # the producer is plain SAQ: meta stays as given
    job = await queue.enqueue("add", a=2, b=3, meta=meta)
    assert job is not None
    instrument.instrument(tracer_provider=instrument.tracer_provider)
    async with running_worker(queue, [add]):
        await finished(job, 10)
        # SAQ marks the job complete before the attempt ends: wait for its span too.
        (process,) = await wait_for_spans(exporter, f"process {queue.name}", 1)

    assert (job.status, job.result) == (Status.COMPLETE, 5)
    assert process.parent is None and not process.links
    assert process.status.status_code is StatusCode.UNSET


async def test_a_meta_that_is_not_a_dict_is_left_alone(
    queue: RedisQueue, exporter: InMemorySpanExporter, instrument: SAQInstrumentor
) -> None:
    job = Job("add", kwargs={"a": 1, "b": 1})
    job.meta = ["a", "list"]  # type: ignore[assignment]
    assert await queue.enqueue(job) is not None
    (send,) = spans_named(exporter, f"send {queue.name}")
    assert job.meta == ["a", "list"]
    assert (send.attributes or {})["saq.job.function"] == "add"


async def test_jobs_from_an_uninstrumented_producer_run_under_root_spans(
    queue: RedisQueue, exporter: InMemorySpanExporter, instrument: SAQInstrumentor
) -> None:
    instrument.uninstrument()
    jobs = [await queue.enqueue("add", a=n, b=n) for n in range(5)]
    instrument.instrument(tracer_provider=instrument.tracer_provider)
    async with running_worker(queue, [add]):
        for job in jobs:
            assert job is not None
            await finished(job, 10)

    assert [job.result for job in jobs if job] == [0, 2, 4, 6, 8]
    processes = spans_named(exporter, f"process {queue.name}")
    assert len(processes) == 5 and all(p.parent is None for p in processes)


async def test_our_jobs_run_unchanged_on_an_uninstrumented_worker(
    queue: RedisQueue, exporter: InMemorySpanExporter, instrument: SAQInstrumentor
) -> None:
    job = await queue.enqueue("meta_seen", meta={"tenant": "acme"})
    assert job is not None
    instrument.uninstrument()
    try:
        async with running_worker(queue, [meta_seen]):
            await finished(job, 10)
    finally:
        instrument.instrument(tracer_provider=instrument.tracer_provider)

    assert job.status == Status.COMPLETE
    assert job.result["tenant"] == "acme"  # the user's meta arrives as it was
    assert set(job.result[META_KEY]) == {"traceparent"}  # and ours is plain strings
    assert spans_named(exporter, f"process {queue.name}") == []
