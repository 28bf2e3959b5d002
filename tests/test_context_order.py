"""The user's worker hooks see contexts in the order SAQ gives them, with us or without."""

from __future__ import annotations

import asyncio
import typing as t

from opentelemetry import baggage, context
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from saq.job import Status
from saq.queue.redis import RedisQueue

from opentelemetry.instrumentation.saq import SAQInstrumentor
from tests.workers import running_worker, spans_named, wait_for_spans

Ctx = dict[str, t.Any]


async def noop(ctx: Ctx) -> str | None:
    value = baggage.get_baggage("tenant")
    return str(value) if value is not None else None


class TenantHooks:
    """A before-process hook that attaches a context and an after-process hook that reads
    it back and detaches it: the pattern of a user's own request-scoped context."""

    def __init__(self) -> None:
        self.seen_after: list[object] = []

    async def before(self, ctx: Ctx) -> None:
        ctx["tenant_token"] = context.attach(baggage.set_baggage("tenant", "acme"))

    async def after(self, ctx: Ctx) -> None:
        self.seen_after.append(baggage.get_baggage("tenant"))
        context.detach(ctx["tenant_token"])
        self.seen_after.append(baggage.get_baggage("tenant"))  # their own context is gone
        if ctx["job"].function == "noop" and not ctx["job"].key.startswith("follow-up"):
            await ctx["job"].get_queue().enqueue("noop", key=f"follow-up-{ctx['job'].key}")


async def _completed(queue: RedisQueue, key: str) -> t.Any:
    """The job once complete, read by polling (not by SAQ's notification, which a job
    that completes while the waiter subscribes can slip past)."""
    for _ in range(500):
        job = await queue.job(key)
        if job is not None and job.status == Status.COMPLETE:
            return job
        await asyncio.sleep(0.02)
    raise AssertionError(f"{key} did not complete")


async def _run(queue: RedisQueue, hooks: TenantHooks) -> str | None:
    job = await queue.enqueue("noop")
    assert job is not None
    async with running_worker(
        queue, [noop], before_process=hooks.before, after_process=hooks.after
    ):
        done = await _completed(queue, job.key)
        await _completed(queue, f"follow-up-{job.key}")
    return t.cast("str | None", done.result)


async def test_hooks_that_attach_and_detach_a_context_work_without_us(
    queue: RedisQueue,
) -> None:
    hooks = TenantHooks()
    assert await _run(queue, hooks) == "acme"
    assert hooks.seen_after[:2] == ["acme", None]


async def test_hooks_that_attach_and_detach_a_context_work_with_us(
    queue: RedisQueue, exporter: InMemorySpanExporter, instrument: SAQInstrumentor
) -> None:
    hooks = TenantHooks()
    assert await _run(queue, hooks) == "acme"
    assert hooks.seen_after[:2] == ["acme", None]  # theirs nests inside ours, as without us

    # The job enqueued from the after-process hook joins the attempt's trace.
    first_attempt, _ = await wait_for_spans(exporter, f"process {queue.name}", 2)
    follow_up_send = [
        s
        for s in spans_named(exporter, f"send {queue.name}")
        if str((s.attributes or {})["saq.job.key"]).startswith("follow-up")
    ]
    assert len(follow_up_send) == 1
    (send,) = follow_up_send
    assert send.context.trace_id == first_attempt.context.trace_id
    assert send.parent is not None and send.parent.span_id == first_attempt.context.span_id
