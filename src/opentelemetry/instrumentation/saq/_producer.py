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

from opentelemetry.instrumentation.saq import _capture, _propagation
from opentelemetry.instrumentation.saq._attributes import (
    CODE_FILE_PATH,
    CODE_FUNCTION_NAME,
    CODE_LINE_NUMBER,
    ERROR_TYPE,
    SAQ_JOB_DUPLICATE,
    SAQ_JOB_KWARGS,
    SEND,
    error_type,
    job_attributes,
    operation_attributes,
)

if t.TYPE_CHECKING:
    from collections.abc import Awaitable, Callable

    from opentelemetry.trace import Span, Tracer
    from saq.job import Job
    from saq.queue import Queue

    from opentelemetry.instrumentation.saq._metrics import Instruments
    from opentelemetry.instrumentation.saq.arguments import ArgumentPolicy

logger = logging.getLogger(__name__)


class _Send:
    """One enqueue in flight: its span, and the job once SAQ has built it."""

    __slots__ = ("job", "span")

    def __init__(self, span: Span) -> None:
        self.span = span
        self.job: Job | None = None


# The enqueue running in this task, for the before-enqueue hook.
_SENDING: ContextVar[_Send | None] = ContextVar("saq_sending", default=None)
# Set while a worker schedules its cron jobs (see Producer.wrap_schedule).
_CRON_TICK: ContextVar[bool] = ContextVar("saq_cron_tick", default=False)


class Producer:
    """Wrappers for the enqueue side, bound to one tracer."""

    def __init__(
        self,
        tracer: Tracer,
        instruments: Instruments,
        record_caller: bool = False,
        arguments: ArgumentPolicy | None = None,
    ) -> None:
        self._tracer = tracer
        self._instruments = instruments
        self._record_caller = record_caller
        self._arguments = arguments
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
            listener = _capture.listener()
            span = self._start_span(queue, listener)
            caller = None
            if listener is not None or self._record_caller:
                caller = _capture.caller_location()
                if caller is not None:
                    span.set_attributes(
                        {
                            CODE_FILE_PATH: caller.file,
                            CODE_LINE_NUMBER: caller.line,
                            CODE_FUNCTION_NAME: caller.function,
                        }
                    )
            send = _Send(span)
            otel_token = context.attach(trace.set_span_in_context(span))
            sending_token = _SENDING.set(send)
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
            # A cron tick re-enqueues unique cron jobs every second; SAQ ignores all but
            # the first. An unended span is never exported, so such no-ops stay out of the
            # user's traces and metrics.
            if job is None and _CRON_TICK.get():
                return None
            try:
                if job is None:
                    span.set_attribute(SAQ_JOB_DUPLICATE, True)
                span.end()  # a span processor's on_end may raise: never into the caller
                self._record(queue, started, None, sent=job is not None)
                if listener is not None and send.job is not None:
                    _tell(listener, queue, send, caller, duplicate=job is None)
            except Exception:
                logger.warning("could not end the send span", exc_info=True)
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
        send = _SENDING.get()
        if send is None:
            return
        # The hook runs once per enqueue: nested enqueues from a callback set their own.
        _SENDING.set(None)
        try:
            job: Job = args[0] if args else kwargs["job"]
            send.job = job
            send.span.set_attributes(job_attributes(job))
            if self._arguments is not None:
                send.span.set_attribute(SAQ_JOB_KWARGS, self._arguments.render(job.kwargs))
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

    def _start_span(self, queue: Queue, listener: _capture.Listener | None) -> Span:
        name = queue.name
        span_name = self._span_names.get(name)
        if span_name is None:
            span_name = self._span_names[name] = f"{SEND} {name}"
        parent = None
        # A listener (the toolbar panel) groups a request's jobs in one trace even when no
        # tracing middleware made a server span current.
        if listener is not None and not trace.get_current_span().get_span_context().is_valid:
            parent = listener.parent()
        return self._tracer.start_span(
            span_name,
            context=parent,
            kind=SpanKind.PRODUCER,
            attributes=operation_attributes(SEND, name),
        )


def _tell(
    listener: _capture.Listener,
    queue: Queue,
    send: _Send,
    caller: _capture.CallerLocation | None,
    duplicate: bool,
) -> None:
    try:
        assert send.job is not None
        span_context = send.span.get_span_context()
        listener(
            _capture.EnqueuedJob(
                queue=queue,
                job=send.job,
                trace_id=span_context.trace_id,
                span_id=span_context.span_id,
                duplicate=duplicate,
                caller=caller,
            )
        )
    except Exception:
        logger.warning("the enqueue listener failed", exc_info=True)


def _end_with_error(span: Span, exc: BaseException) -> None:
    try:
        span.record_exception(exc)
        span.set_attribute(ERROR_TYPE, error_type(exc))
        span.set_status(Status(StatusCode.ERROR, f"{type(exc).__name__}: {exc}"))
        span.end()
    except Exception:
        logger.warning("could not record the enqueue error on its span", exc_info=True)
