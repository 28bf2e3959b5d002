"""A Worker subclass that overrides SAQ's process hooks: its jobs are traced all the same.

The quiet worker suppresses other instrumentations in SAQ's machinery and lifts that at
the top of ``Worker._before_process``, where the attempt starts too: an override that
skips ``super()`` must not leave its jobs suppressed and untraced.
"""

from __future__ import annotations

import typing as t
from collections.abc import Iterator

import pytest
import redis.asyncio
from opentelemetry.instrumentation.redis import RedisInstrumentor
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from saq import Worker
from saq.job import Status
from saq.queue.redis import RedisQueue

from opentelemetry.instrumentation.saq import SAQInstrumentor
from opentelemetry.instrumentation.saq._attributes import SAQ_JOB_STATUS
from opentelemetry.instrumentation.saq._status import COMPLETE
from tests.workers import finished, running_worker, spans_named, wait_for_spans

Ctx = dict[str, t.Any]


class Overriding(Worker):
    """A subclass that overrides the hooks it is given; ``calls`` says which ran."""

    calls: t.ClassVar[list[str]]


def subclass(overrides: str) -> type[Overriding]:
    """A fresh Worker subclass overriding ``_before_process`` or ``_after_process`` (or
    both, calling ``super()``)."""

    class Skips(Overriding):
        calls: t.ClassVar[list[str]] = []

    async def before_without_super(self: Overriding, ctx: Ctx) -> None:
        self.calls.append("own _before_process")

    async def after_without_super(self: Overriding, ctx: Ctx) -> None:
        self.calls.append("own _after_process")

    async def before_with_super(self: Overriding, ctx: Ctx) -> None:
        self.calls.append("own _before_process")
        await Worker._before_process(self, ctx)

    async def after_with_super(self: Overriding, ctx: Ctx) -> None:
        self.calls.append("own _after_process")
        await super(Skips, self)._after_process(ctx)

    if overrides == "_before_process":
        Skips._before_process = before_without_super  # type: ignore[method-assign]
    elif overrides == "_after_process":
        Skips._after_process = after_without_super  # type: ignore[method-assign]
    else:
        Skips._before_process = before_with_super  # type: ignore[method-assign]
        Skips._after_process = after_with_super  # type: ignore[method-assign]
    return Skips


@pytest.fixture
def traced_redis(tracer_provider: TracerProvider) -> Iterator[None]:
    RedisInstrumentor().instrument(tracer_provider=tracer_provider)
    yield
    RedisInstrumentor().uninstrument()


def child_names(exporter: InMemorySpanExporter, parent: ReadableSpan) -> set[str]:
    assert parent.context is not None
    return {
        span.name
        for span in exporter.get_finished_spans()
        if span.parent is not None and span.parent.span_id == parent.context.span_id
    }


@pytest.mark.parametrize("defined", ["before instrument()", "after instrument()"])
@pytest.mark.parametrize(
    "overrides", ["_before_process", "_after_process", "both, calling super()"]
)
async def test_a_subclass_overriding_a_process_hook_runs_its_jobs_traced_and_unsuppressed(
    queue: RedisQueue,
    redis_url: str,
    exporter: InMemorySpanExporter,
    tracer_provider: TracerProvider,
    traced_redis: None,
    defined: str,
    overrides: str,
) -> None:
    if defined == "before instrument()":
        worker_class = subclass(overrides)
        own = dict(worker_class.__dict__)
    SAQInstrumentor().instrument(tracer_provider=tracer_provider)
    if defined == "after instrument()":
        worker_class = subclass(overrides)
        own = dict(worker_class.__dict__)
    client = redis.asyncio.Redis.from_url(redis_url)
    user_tracer = tracer_provider.get_tracer("the user's code")
    hooks_ran: list[str] = []

    async def visit(ctx: Ctx) -> int:
        await client.hgetall(f"{queue.name}:visitors")
        with user_tracer.start_as_current_span("user work"):
            return t.cast(int, await client.incr(f"{queue.name}:visits"))

    async def before_process(ctx: Ctx) -> None:
        hooks_ran.append("before_process")

    async def after_process(ctx: Ctx) -> None:
        hooks_ran.append("after_process")

    try:
        async with running_worker(
            queue,
            [("visit", visit)],
            worker_class=worker_class,
            before_process=before_process,
            after_process=after_process,
        ):
            exporter.clear()  # the test's own SET of the sweep lock
            job = await queue.enqueue("visit")
            assert job is not None
            await finished(job)
            (process,) = await wait_for_spans(exporter, f"process {queue.name}", 1)
    finally:
        await client.aclose()

    assert job.status == Status.COMPLETE
    assert process.attributes is not None and process.attributes[SAQ_JOB_STATUS] == COMPLETE
    (send,) = spans_named(exporter, f"send {queue.name}")
    assert send.context is not None and process.parent is not None
    assert process.parent.span_id == send.context.span_id
    # The job's own work: the user's span and the Redis client's, inside the attempt.
    assert {"user work", "HGETALL"} <= child_names(exporter, process)
    (user_work,) = spans_named(exporter, "user work")
    assert child_names(exporter, user_work) == {"INCRBY"}  # redis-py sends INCR as INCRBY
    assert len(spans_named(exporter, f"process {queue.name}")) == 1
    # What SAQ does with the override is unchanged: it runs, and the worker's own hooks
    # run only where the override calls Worker's.
    if overrides == "_before_process":
        assert worker_class.calls == ["own _before_process"]
        assert hooks_ran == ["after_process"]
    elif overrides == "_after_process":
        assert worker_class.calls == ["own _after_process"]
        assert hooks_ran == ["before_process"]
    else:
        assert worker_class.calls == ["own _before_process", "own _after_process"]
        assert hooks_ran == ["before_process", "after_process"]
    # uninstrument() puts the subclass's own methods back as well.
    SAQInstrumentor().uninstrument()
    assert all(worker_class.__dict__[name] is own[name] for name in own)
