"""With the OpenTelemetry API alone (no SDK yet): jobs, metrics and context still work.

The instrumentation skips span work while no tracer provider is configured (see
_configured.py); these tests prove that the shortcut loses nothing and ends as soon as a
provider is set.
"""

from __future__ import annotations

import typing as t
from collections.abc import Iterator

import pytest
from opentelemetry import baggage, context, trace
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from saq import Job
from saq.queue.redis import RedisQueue

from opentelemetry.instrumentation.saq import META_KEY, SAQInstrumentor, _configured
from tests.test_metrics import base, by_attributes, points
from tests.workers import finished, running_worker, wait_for_spans

Ctx = dict[str, t.Any]


async def add(ctx: Ctx, *, a: int, b: int) -> int:
    return a + b


async def fails(ctx: Ctx) -> None:
    raise ValueError("no")


async def read_baggage(ctx: Ctx) -> str | None:
    value = baggage.get_baggage("tenant")
    return str(value) if value is not None else None


FUNCTIONS = [add, fails, read_baggage]


@pytest.fixture
def no_sdk(monkeypatch: pytest.MonkeyPatch) -> None:
    """The process as it is before anyone configured tracing."""
    monkeypatch.setattr(trace, "_TRACER_PROVIDER", None)
    monkeypatch.delenv("OTEL_PYTHON_TRACER_PROVIDER", raising=False)


@pytest.fixture
def reader() -> InMemoryMetricReader:
    return InMemoryMetricReader()


@pytest.fixture
def api_only(no_sdk: None, reader: InMemoryMetricReader) -> Iterator[SAQInstrumentor]:
    instrumentor = SAQInstrumentor()
    instrumentor.instrument(meter_provider=MeterProvider(metric_readers=[reader]))
    yield instrumentor
    instrumentor.uninstrument()


async def test_jobs_run_and_are_measured_without_an_sdk(
    queue: RedisQueue, reader: InMemoryMetricReader, api_only: SAQInstrumentor
) -> None:
    job = await queue.enqueue("add", a=1, b=2)
    failing = await queue.enqueue("fails")
    assert job is not None and failing is not None
    assert META_KEY not in (job.meta or {})  # no span, nothing to carry
    async with running_worker(queue, FUNCTIONS):
        await finished(job, 10)
        await finished(failing, 10)
    assert job.result == 3

    found = points(reader)
    sent = by_attributes(found["messaging.client.sent.messages"])
    assert {k: p.value for k, p in sent.items()} == {base(queue, "send"): 2}
    process = by_attributes(found["messaging.process.duration"])
    assert {k: p.count for k, p in process.items()} == {
        base(queue, "process", **{"saq.job.function": "add", "saq.job.status": "complete"}): 1,
        base(
            queue,
            "process",
            **{"saq.job.function": "fails", "saq.job.status": "failed", "error.type": "ValueError"},
        ): 1,
    }
    wait = by_attributes(found["saq.job.queue.wait"])
    assert {k: p.count for k, p in wait.items()} == {
        base(queue, "process", **{"saq.job.function": "add"}): 1,
        base(queue, "process", **{"saq.job.function": "fails"}): 1,
    }


async def test_duplicates_and_failed_enqueues_are_measured_without_an_sdk(
    queue: RedisQueue, reader: InMemoryMetricReader, api_only: SAQInstrumentor
) -> None:
    assert await queue.enqueue("add", key="once", a=1, b=1) is not None
    assert await queue.enqueue("add", key="once", a=1, b=1) is None  # SAQ sends nothing

    async def refuse(job: t.Any) -> None:
        raise RuntimeError("full")

    queue.register_before_enqueue(refuse)
    with pytest.raises(RuntimeError, match="full"):
        await queue.enqueue("add", a=1, b=1)

    found = points(reader)
    failed = base(queue, "send", **{"error.type": "RuntimeError"})
    sent = by_attributes(found["messaging.client.sent.messages"])
    assert {k: p.value for k, p in sent.items()} == {base(queue, "send"): 1, failed: 1}
    durations = by_attributes(found["messaging.client.operation.duration"])
    assert {k: p.count for k, p in durations.items()} == {base(queue, "send"): 2, failed: 1}


async def test_a_producer_without_an_sdk_passes_an_incoming_context_on(
    queue: RedisQueue, api_only: SAQInstrumentor
) -> None:
    # What a request carries in when the app itself has no SDK: the API propagates the
    # caller's trace through untouched, and so do we, into the job.
    incoming = trace.SpanContext(
        trace_id=0x0AF7651916CD43DD8448EB211C80319C,
        span_id=0xB7AD6B7169203331,
        is_remote=True,
        trace_flags=trace.TraceFlags(trace.TraceFlags.SAMPLED),
    )
    token = context.attach(trace.set_span_in_context(trace.NonRecordingSpan(incoming)))
    try:
        fresh = await queue.enqueue("add", a=1, b=2)
        from_object = await queue.enqueue(Job("add", kwargs={"a": 1, "b": 2}))
    finally:
        context.detach(token)
    for job in (fresh, from_object):
        assert job is not None
        assert job.meta[META_KEY]["traceparent"] == (
            "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"
        )


async def test_a_worker_without_an_sdk_passes_the_producers_context_on(
    queue: RedisQueue, no_sdk: None, tracer_provider: TracerProvider
) -> None:
    producer = SAQInstrumentor()
    producer.instrument(tracer_provider=tracer_provider)
    token = context.attach(baggage.set_baggage("tenant", "acme"))
    try:
        job = await queue.enqueue("read_baggage")
    finally:
        context.detach(token)
        producer.uninstrument()
    assert job is not None and "baggage" in job.meta[META_KEY]

    worker_side = SAQInstrumentor()
    worker_side.instrument()  # API only on the worker's side
    try:
        async with running_worker(queue, FUNCTIONS):
            await finished(job, 10)
    finally:
        worker_side.uninstrument()
    assert job.result == "acme"


async def test_spans_start_as_soon_as_a_provider_is_set(
    queue: RedisQueue,
    no_sdk: None,
    monkeypatch: pytest.MonkeyPatch,
    tracer_provider: TracerProvider,
    exporter: InMemorySpanExporter,
) -> None:
    instrumentor = SAQInstrumentor()
    instrumentor.instrument()  # before the app configured tracing, as often happens
    try:
        earlier = await queue.enqueue("add", a=1, b=1)
        assert earlier is not None and META_KEY not in (earlier.meta or {})
        assert exporter.get_finished_spans() == ()

        monkeypatch.setattr(trace, "_TRACER_PROVIDER", tracer_provider)  # set_tracer_provider
        job = await queue.enqueue("add", a=2, b=2)
        assert job is not None and "traceparent" in job.meta[META_KEY]
        async with running_worker(queue, FUNCTIONS):
            processes = await wait_for_spans(exporter, f"process {queue.name}", 2)
    finally:
        instrumentor.uninstrument()
    (send,) = [s for s in exporter.get_finished_spans() if s.name == f"send {queue.name}"]
    parents = {
        (p.attributes or {})["saq.job.key"]: p.parent.span_id if p.parent else None
        for p in processes
    }
    # The job enqueued before the provider was set carries no context: a root attempt.
    assert parents == {job.key: send.context.span_id, earlier.key: None}


def test_a_provider_given_to_instrument_is_trusted_and_a_no_op_one_is_not(
    no_sdk: None, tracer_provider: TracerProvider
) -> None:
    assert _configured.spans(tracer_provider).check()
    assert not _configured.spans(trace.NoOpTracerProvider()).check()
    global_ = _configured.spans(None)
    assert not global_.check()


@pytest.mark.parametrize("probe", ["the API's global", "the public getter"])
def test_the_global_provider_is_followed_by_the_cheap_probe_and_by_the_public_getter(
    no_sdk: None, monkeypatch: pytest.MonkeyPatch, probe: str
) -> None:
    # The probe reads the API's own "provider set" global; should a future API rename
    # it, the public getter answers the same (slower) question.
    assert _configured._global_set(trace, "_TRACER_PROVIDER") is not None
    is_set = (
        _configured._global_set(trace, "_TRACER_PROVIDER") if probe.startswith("the API") else None
    )
    spans = _configured.Configured(
        None, trace.get_tracer_provider, trace.ProxyTracerProvider, trace.NoOpTracerProvider, is_set
    )
    assert not spans.check()
    monkeypatch.setattr(trace, "_TRACER_PROVIDER", TracerProvider())
    assert spans.check()
