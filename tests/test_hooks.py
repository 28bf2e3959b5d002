"""The user's send and process hooks: their attributes land; their faults do not."""

from __future__ import annotations

import logging
import typing as t
from collections.abc import Iterator

import pytest
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.sdk.trace.sampling import ALWAYS_OFF, ParentBased
from opentelemetry.trace import Span
from saq.job import Job
from saq.queue.redis import RedisQueue

from opentelemetry.instrumentation.saq import InstrumentOptions, SAQInstrumentor
from tests.workers import finished, running_worker, wait_for_spans

Ctx = dict[str, t.Any]


async def greet(ctx: Ctx, *, tenant: str) -> str:
    return f"hello {tenant}"


def tenant_of_send(span: Span, job: Job) -> None:
    span.set_attribute("app.tenant", job.kwargs["tenant"])  # type: ignore[index]


async def tenant_of_process(span: Span, job: Job) -> None:  # an async hook works too
    span.set_attribute("app.tenant", job.kwargs["tenant"])  # type: ignore[index]
    span.set_attribute("app.attempt", job.attempts)


def broken(span: Span, job: Job) -> None:
    raise KeyError("the hook has a bug")


@pytest.fixture
def instrumented(
    tracer_provider: TracerProvider, request: pytest.FixtureRequest
) -> Iterator[SAQInstrumentor]:
    options: InstrumentOptions = request.param
    instrumentor = SAQInstrumentor()
    instrumentor.instrument(tracer_provider=tracer_provider, **options)
    yield instrumentor
    instrumentor.uninstrument()


@pytest.mark.parametrize(
    "instrumented",
    [{"send_hook": tenant_of_send, "process_hook": tenant_of_process}],
    indirect=True,
)
@pytest.mark.usefixtures("instrumented")
async def test_hooks_add_the_users_attributes(
    queue: RedisQueue, exporter: InMemorySpanExporter
) -> None:
    job = await queue.enqueue("greet", tenant="acme")
    assert job is not None
    async with running_worker(queue, [greet]):
        (process,) = await wait_for_spans(exporter, f"process {queue.name}", 1)
    (send,) = [s for s in exporter.get_finished_spans() if s.name == f"send {queue.name}"]
    assert (send.attributes or {})["app.tenant"] == "acme"
    assert (process.attributes or {})["app.tenant"] == "acme"
    assert (process.attributes or {})["app.attempt"] == 1


@pytest.mark.parametrize(
    "instrumented", [{"send_hook": broken, "process_hook": broken}], indirect=True
)
@pytest.mark.usefixtures("instrumented")
async def test_a_hook_that_raises_is_logged_and_breaks_nothing(
    queue: RedisQueue, exporter: InMemorySpanExporter, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING, logger="opentelemetry.instrumentation.saq"):
        job = await queue.enqueue("greet", tenant="acme")
        assert job is not None
        async with running_worker(queue, [greet]):
            await finished(job, 10)
            await wait_for_spans(exporter, f"process {queue.name}", 1)
    assert job.result == "hello acme"
    assert "the send hook raised" in caplog.text
    assert "the process hook raised" in caplog.text
    assert len(exporter.get_finished_spans()) == 2  # both spans still end


async def test_hooks_are_not_called_for_spans_that_do_not_record(queue: RedisQueue) -> None:
    calls: list[str] = []
    provider = TracerProvider(sampler=ParentBased(ALWAYS_OFF))
    exporter = InMemorySpanExporter()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    instrumentor = SAQInstrumentor()
    instrumentor.instrument(
        tracer_provider=provider,
        send_hook=lambda span, job: calls.append("send"),
        process_hook=lambda span, job: calls.append("process"),
    )
    try:
        job = await queue.enqueue("greet", tenant="acme")
        assert job is not None
        async with running_worker(queue, [greet]):
            await finished(job, 10)
    finally:
        instrumentor.uninstrument()
    assert job.result == "hello acme"
    assert calls == []
    assert exporter.get_finished_spans() == ()
