"""The floor: the least any SAQ instrumentation can do with the OpenTelemetry SDK.

One span per enqueue with the attributes our send span carries and its context written
into the job; one span per attempt with the attributes our process span carries, a
child of the context read back from the job. Nothing else: no error handling, no
metrics, no checks, one hook per side where SAQ allows it. It is what the SDK itself
costs inside a real enqueue and a real worker, which a microbenchmark of
``start_span().end()`` understates two to three times (cold caches between spans).
What our instrumentation costs above this is ours; below it no instrumentation goes.

Not a product: only ``overhead.py`` uses it, to print the floor beside our figures.
"""

from __future__ import annotations

import typing as t

from opentelemetry import context, propagate, trace
from opentelemetry.trace import SpanKind
from saq import Worker
from saq.queue.redis import RedisQueue

if t.TYPE_CHECKING:
    from opentelemetry.trace import TracerProvider


class Floor:
    def __init__(self, tracer_provider: TracerProvider) -> None:
        self._tracer = tracer_provider.get_tracer("floor")
        self._originals: dict[tuple[type, str], t.Any] = {}

    def instrument(self) -> None:
        tracer = self._tracer
        enqueue = RedisQueue.__dict__["_enqueue"]
        before = Worker.__dict__["_before_process"]
        after = Worker.__dict__["_after_process"]
        self._originals = {
            (RedisQueue, "_enqueue"): enqueue,
            (Worker, "_before_process"): before,
            (Worker, "_after_process"): after,
        }

        async def floor_enqueue(queue: t.Any, job: t.Any) -> t.Any:
            name = queue.name
            span = tracer.start_span(
                f"send {name}",
                kind=SpanKind.PRODUCER,
                attributes={
                    "messaging.system": "saq",
                    "messaging.operation.type": "send",
                    "messaging.operation.name": "send",
                    "messaging.destination.name": name,
                    "messaging.message.id": job.id,
                    "saq.job.key": job.key,
                    "saq.job.function": job.function,
                    "saq.job.retries": job.retries,
                    "saq.job.timeout": job.timeout,
                },
            )
            token = context.attach(trace.set_span_in_context(span))
            carrier: dict[str, str] = {}
            propagate.inject(carrier)
            job.meta = {**job.meta, "opentelemetry": carrier}
            try:
                return await enqueue(queue, job)
            finally:
                context.detach(token)
                span.end()

        async def floor_before_process(worker: t.Any, ctx: t.Any) -> None:
            job = ctx["job"]
            name = job.queue.name
            parent = propagate.extract(job.meta.get("opentelemetry") or {})
            span = tracer.start_span(
                f"process {name}",
                context=parent,
                kind=SpanKind.CONSUMER,
                links=[trace.Link(trace.get_current_span(parent).get_span_context())],
                attributes={
                    "messaging.system": "saq",
                    "messaging.operation.type": "process",
                    "messaging.operation.name": "process",
                    "messaging.destination.name": name,
                    "messaging.message.id": job.id,
                    "saq.job.key": job.key,
                    "saq.job.function": job.function,
                    "saq.job.retries": job.retries,
                    "saq.job.timeout": job.timeout,
                    "saq.job.attempt": job.attempts,
                    "saq.worker.id": str(worker.id),
                    "saq.job.queue_wait_ms": max(0, job.started - job.queued),
                },
            )
            ctx["floor"] = (span, context.attach(trace.set_span_in_context(span, parent)))
            await before(worker, ctx)

        async def floor_after_process(worker: t.Any, ctx: t.Any) -> None:
            span, token = ctx.pop("floor")
            span.set_attribute("saq.job.status", job_status(ctx["job"]))
            span.end()
            context.detach(token)
            await after(worker, ctx)

        RedisQueue._enqueue = floor_enqueue  # type: ignore[method-assign]
        Worker._before_process = floor_before_process  # type: ignore[method-assign]
        Worker._after_process = floor_after_process  # type: ignore[method-assign]

    def uninstrument(self) -> None:
        for (owner, name), original in self._originals.items():
            setattr(owner, name, original)


def job_status(job: t.Any) -> str:
    return str(job.status.value)
