"""The floor: the least any SAQ instrumentation can do with the OpenTelemetry API and SDK.

The spans ours emits (names, kinds, attributes, parent, link, the carrier in the job),
written with the cheapest legal calls:

- one hook per side where SAQ allows it (``RedisQueue._enqueue``; ``_before_process``
  and ``_after_process``), a ContextVar to carry the attempt (SAQ's ``ctx`` belongs to the
  user's function);
- what does not change per queue (span names, the attributes the messaging conventions
  list as relevant for sampling, ``server.address`` and ``server.port``) worked out once
  per queue; the worker's id as a string once per worker;
- each span started with those attributes alone, the rest set only when it records;
- one read of the current context, the same context passed explicitly to
  ``propagate.inject``, and a getter for our flat carrier of strings.

Nothing else: no error handling, no metrics, no duplicates, no retries, no checks of
what comes back from Redis. It is what the SDK itself costs inside a real enqueue and a
real worker; what ours costs above it is ours to cut, below it no instrumentation goes.
``tests/test_benchmark_floor.py`` keeps it emitting the spans ours emits.

Not a product: only the benchmarks use it.
"""

from __future__ import annotations

import typing as t
from contextvars import ContextVar

from opentelemetry import context, propagate, trace
from opentelemetry.propagators.textmap import Getter
from opentelemetry.semconv._incubating.attributes.messaging_attributes import (
    MESSAGING_CLIENT_ID,
    MESSAGING_DESTINATION_NAME,
    MESSAGING_MESSAGE_ID,
    MESSAGING_OPERATION_NAME,
    MESSAGING_OPERATION_TYPE,
    MESSAGING_SYSTEM,
)
from opentelemetry.semconv.attributes.server_attributes import SERVER_ADDRESS, SERVER_PORT
from opentelemetry.trace import Link, SpanKind
from saq import Worker
from saq.queue.redis import RedisQueue

from opentelemetry.instrumentation.saq._attributes import (
    SAQ_JOB_ATTEMPT,
    SAQ_JOB_FUNCTION,
    SAQ_JOB_KEY,
    SAQ_JOB_QUEUE_WAIT_MS,
    SAQ_JOB_RETRIES,
    SAQ_JOB_STATUS,
    SAQ_JOB_TIMEOUT,
)
from opentelemetry.instrumentation.saq._propagation import META_KEY

if t.TYPE_CHECKING:
    from contextvars import Token

    from opentelemetry.context import Context
    from opentelemetry.trace import Span, TracerProvider
    from opentelemetry.util.types import AttributeValue

    Attributes = dict[str, AttributeValue]


class _FlatGetter(Getter[dict[str, str]]):
    """Our carrier is a flat dict of strings: one lookup per key, nothing to convert."""

    def get(self, carrier: dict[str, str], key: str) -> list[str] | None:
        value = carrier.get(key)
        return None if value is None else [value]

    def keys(self, carrier: dict[str, str]) -> list[str]:
        return list(carrier)


_GETTER = _FlatGetter()


class _Queue(t.NamedTuple):
    """What every span of one queue shares."""

    send_name: str
    process_name: str
    send: Attributes
    process: Attributes


def _learn(queue: RedisQueue) -> _Queue:
    kwargs = queue.redis.connection_pool.connection_kwargs
    name = queue.name

    def sampling(operation: str) -> Attributes:
        return {
            MESSAGING_SYSTEM: "saq",
            MESSAGING_OPERATION_TYPE: operation,
            MESSAGING_OPERATION_NAME: operation,
            MESSAGING_DESTINATION_NAME: name,
            SERVER_ADDRESS: kwargs["host"],
            SERVER_PORT: int(kwargs["port"]),
        }

    return _Queue(f"send {name}", f"process {name}", sampling("send"), sampling("process"))


_ATTEMPT: ContextVar[tuple[Span, Token[Context]] | None] = ContextVar("floor_attempt", default=None)


class Floor:
    def __init__(self, tracer_provider: TracerProvider) -> None:
        self._tracer = tracer_provider.get_tracer("floor")
        self._originals: dict[tuple[type, str], t.Any] = {}
        # Strong references: a benchmark has a handful of queues and workers.
        self._queues: dict[RedisQueue, _Queue] = {}
        self._workers: dict[Worker, str] = {}

    def instrument(self) -> None:
        tracer = self._tracer
        queues = self._queues
        workers = self._workers
        enqueue = RedisQueue.__dict__["_enqueue"]
        before = Worker.__dict__["_before_process"]
        after = Worker.__dict__["_after_process"]
        self._originals = {
            (RedisQueue, "_enqueue"): enqueue,
            (Worker, "_before_process"): before,
            (Worker, "_after_process"): after,
        }

        async def floor_enqueue(queue: RedisQueue, job: t.Any) -> t.Any:
            known = queues.get(queue)
            if known is None:
                known = queues[queue] = _learn(queue)
            parent = context.get_current()  # read once, passed on explicitly
            span = tracer.start_span(
                known.send_name, context=parent, kind=SpanKind.PRODUCER, attributes=known.send
            )
            if span.is_recording():
                span.set_attributes(
                    {
                        MESSAGING_MESSAGE_ID: job.id,
                        SAQ_JOB_KEY: job.key,
                        SAQ_JOB_FUNCTION: job.function,
                        SAQ_JOB_RETRIES: job.retries,
                        SAQ_JOB_TIMEOUT: job.timeout,
                    }
                )
            current = trace.set_span_in_context(span, parent)
            token = context.attach(current)
            carrier: dict[str, str] = {}
            propagate.inject(carrier, context=current)
            job.meta = {**job.meta, META_KEY: carrier}
            try:
                return await enqueue(queue, job)
            finally:
                context.detach(token)
                span.end()

        async def floor_before_process(worker: Worker, ctx: t.Any) -> None:
            job = ctx["job"]
            queue = job.queue
            known = queues.get(queue)
            if known is None:
                known = queues[queue] = _learn(queue)
            parent = propagate.extract(job.meta[META_KEY], getter=_GETTER)
            span = tracer.start_span(
                known.process_name,
                context=parent,
                kind=SpanKind.CONSUMER,
                links=(Link(trace.get_current_span(parent).get_span_context()),),
                attributes=known.process,
            )
            if span.is_recording():
                worker_id = workers.get(worker)
                if worker_id is None:
                    worker_id = workers[worker] = str(worker.id)
                span.set_attributes(
                    {
                        MESSAGING_MESSAGE_ID: job.id,
                        SAQ_JOB_KEY: job.key,
                        SAQ_JOB_FUNCTION: job.function,
                        SAQ_JOB_RETRIES: job.retries,
                        SAQ_JOB_TIMEOUT: job.timeout,
                        SAQ_JOB_ATTEMPT: job.attempts,
                        MESSAGING_CLIENT_ID: worker_id,
                        SAQ_JOB_QUEUE_WAIT_MS: max(0, job.started - job.queued),
                    }
                )
            _ATTEMPT.set((span, context.attach(trace.set_span_in_context(span, parent))))
            await before(worker, ctx)

        async def floor_after_process(worker: Worker, ctx: t.Any) -> None:
            attempt = _ATTEMPT.get()
            if attempt is not None:
                _ATTEMPT.set(None)
                span, token = attempt
                if span.is_recording():
                    span.set_attribute(SAQ_JOB_STATUS, ctx["job"].status.value)
                span.end()
                context.detach(token)
            await after(worker, ctx)

        RedisQueue._enqueue = floor_enqueue  # type: ignore[method-assign]
        Worker._before_process = floor_before_process  # type: ignore[method-assign]
        Worker._after_process = floor_after_process  # type: ignore[method-assign]

    def uninstrument(self) -> None:
        for (owner, name), original in self._originals.items():
            setattr(owner, name, original)
