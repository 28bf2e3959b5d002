"""The send span of every enqueue, and the context it writes into the job."""

from __future__ import annotations

import sys

import pytest
from opentelemetry import trace
from opentelemetry.sdk.trace import ReadableSpan, Span, SpanProcessor, TracerProvider
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, StatusCode
from saq import CronJob, Job, Worker
from saq.queue.redis import RedisQueue

from opentelemetry.instrumentation.saq import META_KEY
from tests.workers import running_worker, wait_for_spans

pytestmark = pytest.mark.usefixtures("instrument")


def traceparent_of(span: trace.Span | object) -> str:
    ctx = span.get_span_context()  # type: ignore[attr-defined]
    return f"00-{ctx.trace_id:032x}-{ctx.span_id:016x}"


def ids_of(traceparent: str) -> str:
    """Version, trace id and span id of a traceparent, without the flags."""
    return traceparent.rsplit("-", 1)[0]


async def test_enqueue_emits_a_producer_span_with_the_job_attributes(
    queue: RedisQueue, exporter: InMemorySpanExporter
) -> None:
    job = await queue.enqueue(
        "send_email", to="a@example.com", retries=3, timeout=7, scheduled=2_000_000_000
    )
    assert job is not None

    (span,) = exporter.get_finished_spans()
    assert span.name == f"send {queue.name}"
    assert span.kind is SpanKind.PRODUCER
    assert span.status.status_code is StatusCode.UNSET
    assert dict(span.attributes or {}) == {
        "messaging.system": "saq",
        "messaging.operation.type": "send",
        "messaging.operation.name": "send",
        "messaging.destination.name": queue.name,
        "messaging.message.id": job.id,
        "saq.job.key": job.key,
        "saq.job.function": "send_email",
        "saq.job.retries": 3,
        "saq.job.timeout": 7,
        "saq.job.scheduled": 2_000_000_000,
        "server.address": "127.0.0.1",
        "server.port": queue.redis.connection_pool.connection_kwargs["port"],
    }
    assert span.instrumentation_scope is not None
    assert span.instrumentation_scope.name == "opentelemetry.instrumentation.saq"
    # code.* (stable, code.function.name fully qualified) are named as in 1.33.0.
    assert span.instrumentation_scope.schema_url == "https://opentelemetry.io/schemas/1.33.0"


async def test_the_context_is_persisted_with_the_job(
    queue: RedisQueue, exporter: InMemorySpanExporter
) -> None:
    job = await queue.enqueue("noop")
    assert job is not None

    stored = await queue.job(job.key)
    assert stored is not None
    (span,) = exporter.get_finished_spans()
    assert ids_of(stored.meta[META_KEY]["traceparent"]) == traceparent_of(span)


async def test_send_is_a_child_of_the_current_span(
    queue: RedisQueue, exporter: InMemorySpanExporter, tracer_provider: TracerProvider
) -> None:
    with tracer_provider.get_tracer("app").start_as_current_span("GET /signup") as request:
        await queue.enqueue("noop")

    send = next(s for s in exporter.get_finished_spans() if s.name.startswith("send"))
    assert send.parent is not None
    assert send.parent.span_id == request.get_span_context().span_id
    assert send.context.trace_id == request.get_span_context().trace_id


async def test_the_users_meta_is_kept_and_a_job_enqueued_twice_gets_a_fresh_context(
    queue: RedisQueue, exporter: InMemorySpanExporter
) -> None:
    shared_meta = {"tenant": "acme"}
    job = Job("noop", meta=shared_meta, key="twice")
    assert await queue.enqueue(job) is not None
    await queue.finish(job, status=job.status.COMPLETE)  # frees the key for the second enqueue
    await queue.redis.delete(job.id)
    assert await queue.enqueue(job) is not None

    first, second = exporter.get_finished_spans()
    stored = await queue.job("twice")
    assert stored is not None
    assert stored.meta["tenant"] == "acme"
    assert ids_of(stored.meta[META_KEY]["traceparent"]) == traceparent_of(second)
    assert traceparent_of(first) != traceparent_of(second)
    # The caller's dict was not written into: map() may share it between jobs.
    assert shared_meta == {"tenant": "acme"}


async def test_a_duplicate_key_is_marked_on_the_span(
    queue: RedisQueue, exporter: InMemorySpanExporter
) -> None:
    assert await queue.enqueue("noop", key="only-once") is not None
    assert await queue.enqueue("noop", key="only-once") is None

    first, duplicate = exporter.get_finished_spans()
    assert "saq.job.duplicate" not in (first.attributes or {})
    assert (duplicate.attributes or {})["saq.job.duplicate"] is True


async def test_an_enqueue_that_raises_is_recorded_and_the_same_exception_reraised(
    queue: RedisQueue, exporter: InMemorySpanExporter
) -> None:
    boom = RuntimeError("no room in the queue")

    async def refuse(job: Job) -> None:
        raise boom

    queue.register_before_enqueue(refuse)
    with pytest.raises(RuntimeError) as raised:
        await queue.enqueue("noop")
    assert raised.value is boom

    (span,) = exporter.get_finished_spans()
    assert span.status.status_code is StatusCode.ERROR
    assert (span.attributes or {})["error.type"] == "RuntimeError"
    assert [event.name for event in span.events] == ["exception"]


async def test_job_enqueue_and_batch_go_through_the_same_span(
    queue: RedisQueue, exporter: InMemorySpanExporter
) -> None:
    await Job("a", queue=queue).enqueue()
    async with queue.batch():
        await queue.enqueue("b")

    functions = [(s.attributes or {})["saq.job.function"] for s in exporter.get_finished_spans()]
    assert functions == ["a", "b"]


class OpenSpans(SpanProcessor):
    """What a processor that tracks open spans (a profiler, a span-count limiter) holds."""

    def __init__(self) -> None:
        self.open: set[int] = set()

    def on_start(self, span: Span, parent_context: object = None) -> None:
        self.open.add(span.context.span_id)

    def on_end(self, span: ReadableSpan) -> None:
        self.open.discard(span.context.span_id)


async def test_cron_ticks_start_no_span_they_do_not_end(
    queue: RedisQueue, exporter: InMemorySpanExporter, tracer_provider: TracerProvider
) -> None:
    open_spans = OpenSpans()
    tracer_provider.add_span_processor(open_spans)

    async def nightly(ctx: dict[str, object]) -> None: ...

    worker = Worker(queue, functions=[], cron_jobs=[CronJob(nightly, cron="0 3 * * *")])
    for _ in range(3):
        await worker.schedule()

    assert open_spans.open == set()  # nothing left started and never ended
    # Whether a tick enqueues is known only afterwards: no send span for unique cron
    # jobs; their attempts are root spans. The job itself is enqueued once, as without us.
    assert exporter.get_finished_spans() == ()
    stored = await queue.job("cron:test_cron_ticks_start_no_span_they_do_not_end.<locals>.nightly")
    assert stored is not None


async def test_an_ordinary_duplicate_inside_a_cron_worker_still_gets_a_span(
    queue: RedisQueue, exporter: InMemorySpanExporter
) -> None:
    await queue.enqueue("noop", key="k")
    await queue.enqueue("noop", key="k")
    assert len(exporter.get_finished_spans()) == 2


async def test_record_caller_puts_the_enqueuing_code_on_the_span(
    queue: RedisQueue,
    exporter: InMemorySpanExporter,
    tracer_provider: TracerProvider,
    instrument: object,
) -> None:
    from opentelemetry.instrumentation.saq import SAQInstrumentor

    SAQInstrumentor().uninstrument()
    SAQInstrumentor().instrument(tracer_provider=tracer_provider, record_caller=True)

    async def signup_handler() -> None:
        await queue.enqueue("send_email")

    await signup_handler()
    (span,) = exporter.get_finished_spans()
    attributes = span.attributes or {}
    # Fully qualified, as the conventions define code.function.name (before 3.11 a code
    # object knows only its own name, not the class or function around it).
    if sys.version_info >= (3, 11):
        assert attributes["code.function.name"] == (
            "tests.test_producer.test_record_caller_puts_the_enqueuing_code_on_the_span"
            ".<locals>.signup_handler"
        )
    else:
        assert attributes["code.function.name"] == "tests.test_producer.signup_handler"
    assert str(attributes["code.file.path"]).endswith("tests/test_producer.py")
    assert isinstance(attributes["code.line.number"], int)


async def test_without_record_caller_no_code_attributes_are_recorded(
    queue: RedisQueue, exporter: InMemorySpanExporter
) -> None:
    await queue.enqueue("send_email")
    (span,) = exporter.get_finished_spans()
    assert not any(key.startswith("code.") for key in span.attributes or {})


async def test_a_context_left_from_an_earlier_enqueue_is_cleared_when_there_is_none(
    queue: RedisQueue, instrument: object
) -> None:
    from opentelemetry.instrumentation.saq import SAQInstrumentor

    job = Job("noop", key="again")
    assert await queue.enqueue(job) is not None
    assert "traceparent" in job.meta[META_KEY]
    await queue.finish(job, status=job.status.COMPLETE)
    await queue.redis.delete(job.id)

    SAQInstrumentor().uninstrument()
    SAQInstrumentor().instrument(tracer_provider=trace.NoOpTracerProvider())  # API only
    assert await queue.enqueue(job) is not None
    stored = await queue.job("again")
    assert stored is not None and stored.meta[META_KEY] == {}


async def test_an_unsampled_enqueue_still_carries_its_context_into_the_job(
    queue: RedisQueue, instrument: object
) -> None:
    from opentelemetry.sdk.trace.sampling import ALWAYS_OFF, ParentBased

    from opentelemetry.instrumentation.saq import SAQInstrumentor

    SAQInstrumentor().uninstrument()
    SAQInstrumentor().instrument(tracer_provider=TracerProvider(sampler=ParentBased(ALWAYS_OFF)))
    job = await queue.enqueue("noop")
    assert job is not None
    stored = await queue.job(job.key)
    # The worker follows the producer's decision: the sampled flag is not set.
    assert stored is not None
    flags = int(stored.meta[META_KEY]["traceparent"].rsplit("-", 1)[1], 16)
    assert flags & 0x01 == 0


async def test_each_tick_of_a_non_unique_cron_job_starts_its_own_trace(
    queue: RedisQueue, exporter: InMemorySpanExporter, tracer_provider: TracerProvider
) -> None:
    async def every_second(ctx: dict[str, object]) -> None: ...

    cron = CronJob(every_second, cron="* * * * * *", unique=False)
    # A worker started inside a span: its upkeep tasks, which enqueue the ticks, inherit
    # that context; a tick belongs to no one's trace but its own.
    with tracer_provider.get_tracer("app").start_as_current_span("start-up") as start_up:
        async with running_worker(queue, [], cron_jobs=[cron]):
            sends = await wait_for_spans(exporter, f"send {queue.name}", 2)

    assert all(send.parent is None for send in sends)
    # What started it, for the toolbar's list of jobs: the cron expression.
    assert [send.attributes["saq.job.cron"] for send in sends] == ["* * * * * *"] * len(sends)
    trace_ids = {send.context.trace_id for send in sends}
    assert len(trace_ids) == len(sends)
    assert start_up.get_span_context().trace_id not in trace_ids


async def test_a_unique_cron_jobs_attempt_says_its_cron_expression(
    queue: RedisQueue, exporter: InMemorySpanExporter
) -> None:
    async def every_second(ctx: dict[str, object]) -> None: ...

    cron = CronJob(every_second, cron="* * * * * *")
    async with running_worker(queue, [], cron_jobs=[cron]):
        (attempt, *_) = await wait_for_spans(exporter, f"process {queue.name}", 1)

    # No send span for a unique cron job: its attempt, a root, says what started it.
    assert attempt.parent is None
    assert attempt.attributes["saq.job.key"].startswith("cron:")
    assert attempt.attributes["saq.job.cron"] == "* * * * * *"
