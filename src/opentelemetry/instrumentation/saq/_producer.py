"""The enqueue side: one PRODUCER span per ``Queue.enqueue``.

``Queue.enqueue`` is the one door every producer path goes through (enqueue, apply,
map, batch, ``Job.enqueue``, cron scheduling), so the span wraps it. The context is
written by a second, tiny hook on ``Queue._before_enqueue``: that is the last moment
before SAQ persists the job, after the user's own before-enqueue callbacks.
"""

from __future__ import annotations

import logging
import typing as t
from contextvars import ContextVar
from time import perf_counter

from opentelemetry import context, trace
from opentelemetry.instrumentation.utils import is_instrumentation_enabled
from opentelemetry.trace import SpanKind, Status, StatusCode

from opentelemetry.instrumentation.saq import _propagation
from opentelemetry.instrumentation.saq._attributes import (
    ERROR_TYPE,
    SAQ_JOB_DUPLICATE,
    SEND,
    error_type,
    job_attributes,
    operation_attributes,
)

if t.TYPE_CHECKING:
    from collections.abc import Awaitable, Callable

    from opentelemetry.trace import Span, Tracer

    from opentelemetry.instrumentation.saq._metrics import Instruments
    from saq.job import Job
    from saq.queue import Queue

logger = logging.getLogger(__name__)

# The send span of the enqueue running in this task, for the before-enqueue hook.
_SENDING: ContextVar[Span | None] = ContextVar("saq_sending", default=None)
# Set while a worker schedules its cron jobs (see Producer.wrap_schedule).
_CRON_TICK: ContextVar[bool] = ContextVar("saq_cron_tick", default=False)


class Producer:
    """Wrappers for the enqueue side, bound to one tracer."""

    def __init__(self, tracer: Tracer, instruments: Instruments) -> None:
        self._tracer = tracer
        self._instruments = instruments
        self._span_names: dict[str, str] = {}

    async def wrap_enqueue(
        self,
        wrapped: Callable[..., Awaitable[Job | None]],
        queue: Queue,
        args: tuple[t.Any, ...],
        kwargs: dict[str, t.Any],
    ) -> Job | None:
        if not is_instrumentation_enabled():
            return await wrapped(*args, **kwargs)
        try:
            span = self._start_span(queue)
            otel_token = context.attach(trace.set_span_in_context(span))
            sending_token = _SENDING.set(span)
        except Exception:
            logger.warning("could not start the send span; job enqueued untraced", exc_info=True)
            return await wrapped(*args, **kwargs)

        started = perf_counter()
        try:
            job = await wrapped(*args, **kwargs)
        except BaseException as exc:
            _end_with_error(span, exc)
            self._record(queue, started, error_type(exc), sent=False)
            raise
        else:
            if job is None:
                # A cron tick re-enqueues unique cron jobs every second; SAQ ignores all but
                # the first. An unended span is never exported, so such no-ops stay out of
                # the user's traces and metrics.
                if _CRON_TICK.get():
                    return None
                span.set_attribute(SAQ_JOB_DUPLICATE, True)
            span.end()
            self._record(queue, started, None, sent=job is not None)
            return job
        finally:
            _SENDING.reset(sending_token)
            context.detach(otel_token)

    async def wrap_before_enqueue(
        self,
        wrapped: Callable[..., Awaitable[None]],
        queue: Queue,
        args: tuple[t.Any, ...],
        kwargs: dict[str, t.Any],
    ) -> None:
        await wrapped(*args, **kwargs)
        span = _SENDING.get()
        if span is None:
            return
        # The hook runs once per enqueue: nested enqueues from a callback set their own.
        _SENDING.set(None)
        try:
            job: Job = args[0] if args else kwargs["job"]
            span.set_attributes(job_attributes(job))
            _propagation.inject(job)
        except Exception:
            logger.warning("could not write the trace context into the job", exc_info=True)

    async def wrap_schedule(
        self,
        wrapped: Callable[..., Awaitable[None]],
        worker: t.Any,
        args: tuple[t.Any, ...],
        kwargs: dict[str, t.Any],
    ) -> None:
        token = _CRON_TICK.set(True)
        try:
            await wrapped(*args, **kwargs)
        finally:
            _CRON_TICK.reset(token)

    def _record(self, queue: Queue, started: float, error: str | None, sent: bool) -> None:
        try:
            self._instruments.record_send(queue.name, perf_counter() - started, error, sent)
        except Exception:
            logger.warning("could not record the enqueue metrics", exc_info=True)

    def _start_span(self, queue: Queue) -> Span:
        name = queue.name
        span_name = self._span_names.get(name)
        if span_name is None:
            span_name = self._span_names[name] = f"{SEND} {name}"
        return self._tracer.start_span(
            span_name,
            kind=SpanKind.PRODUCER,
            attributes=operation_attributes(SEND, name),
        )


def _end_with_error(span: Span, exc: BaseException) -> None:
    try:
        span.record_exception(exc)
        span.set_attribute(ERROR_TYPE, error_type(exc))
        span.set_status(Status(StatusCode.ERROR, f"{type(exc).__name__}: {exc}"))
        span.end()
    except Exception:
        logger.warning("could not record the enqueue error on its span", exc_info=True)
