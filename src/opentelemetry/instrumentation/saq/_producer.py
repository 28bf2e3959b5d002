"""The enqueue side: one PRODUCER span per ``Queue.enqueue``.

``Queue.enqueue`` is the one door every producer path goes through (enqueue, apply,
map, batch, ``Job.enqueue``, cron scheduling), so the span covers it: it starts when
``enqueue`` is called. It is created a little later, in ``Queue._before_enqueue``, the
last moment before SAQ persists the job and the first at which the job exists: so the
span gets all its attributes at once (cheaper than setting them one by one), the
context is written into the job, and the span is current while SAQ writes to Redis or
Postgres.
"""

from __future__ import annotations

import logging
import typing as t
from contextvars import ContextVar
from time import time_ns

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
    error_description,
    error_type,
    job_attributes,
    operation_attributes,
    span_name,
)
from opentelemetry.instrumentation.saq._tracing import SpansRecordable

if t.TYPE_CHECKING:
    from collections.abc import Awaitable, Callable
    from contextvars import Token

    from opentelemetry.context import Context
    from opentelemetry.trace import Span, Tracer
    from saq.job import Job
    from saq.queue import Queue

    from opentelemetry.instrumentation.saq._metrics import Instruments
    from opentelemetry.instrumentation.saq.arguments import ArgumentPolicy

    Enqueue = Callable[..., Awaitable[Job | None]]
    BeforeEnqueue = Callable[[Queue, Job], Awaitable[None]]

logger = logging.getLogger(__name__)


class _Send:
    """One enqueue in flight."""

    __slots__ = ("caller", "carried", "job", "listener", "span", "started_ns", "token")

    def __init__(self, listener: _capture.Listener | None) -> None:
        self.started_ns = time_ns()
        self.listener = listener
        self.caller: _capture.CallerLocation | None = None
        self.job: Job | None = None
        # The context the job arrived with, when the send span continues it (see _start).
        self.carried: Context | None = None
        self.span: Span | None = None
        self.token: Token[Context] | None = None


# The enqueue running in this task, for the before-enqueue hook.
_SENDING: ContextVar[_Send | None] = ContextVar("saq_sending", default=None)
# Set while SAQ's HttpProxy handles a request from an HttpQueue client.
_PROXYING: ContextVar[bool] = ContextVar("saq_proxying", default=False)
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
        recordable: SpansRecordable | None = None,
    ) -> None:
        self._tracer = tracer
        self._recordable = recordable if recordable is not None else SpansRecordable(None)
        self._instruments = instruments
        self._record_caller = record_caller
        self._arguments = arguments

    def wrap_enqueue(self, enqueue: Enqueue) -> Enqueue:
        async def traced_enqueue(queue: Queue, *args: t.Any, **kwargs: t.Any) -> Job | None:
            if not is_instrumentation_enabled():
                return await enqueue(queue, *args, **kwargs)
            if (
                not self._recordable.check()
                and _fresh_job(args, kwargs)
                and _capture.listener() is None  # the panel lists jobs even with no spans
                and not _current_span_is_valid()  # an incoming context the API passes on
            ):
                return await self._measured(enqueue, queue, args, kwargs)
            try:
                send = _Send(_capture.listener())
                if send.listener is not None or self._record_caller:
                    send.caller = _capture.caller_location()
                sending = _SENDING.set(send)
            except Exception:
                logger.warning("could not trace an enqueue; job enqueued untraced", exc_info=True)
                return await enqueue(queue, *args, **kwargs)
            try:
                job = await enqueue(queue, *args, **kwargs)
            except BaseException as exc:
                self._end_with_error(queue, send, exc)
                raise
            else:
                # A cron tick re-enqueues unique cron jobs every second; SAQ ignores all
                # but the first. An unended span is never exported, so such no-ops stay
                # out of the user's traces and metrics.
                if job is None and _CRON_TICK.get():
                    return None
                self._end(queue, send, duplicate=job is None)
                return job
            finally:
                _SENDING.reset(sending)
                if send.token is not None:
                    context.detach(send.token)

        return traced_enqueue

    def wrap_before_enqueue(self, before_enqueue: BeforeEnqueue) -> BeforeEnqueue:
        async def traced_before_enqueue(queue: Queue, job: Job) -> None:
            await before_enqueue(queue, job)
            send = _SENDING.get()
            if send is None or send.span is not None:
                return  # not ours, or already seen (the hook runs once per enqueue)
            try:
                send.job = job
                span = self._start(queue, send)
                if (
                    not span.is_recording()
                    and not span.get_span_context().is_valid
                    and not _propagation.carries_context(job)
                ):
                    return  # no SDK, no parent, nothing stale: nothing to carry or clear
                # On top of a carried context, so its baggage travels on with the job.
                send.token = context.attach(trace.set_span_in_context(span, send.carried))
                _propagation.inject(job)
            except Exception:
                logger.warning("could not write the trace context into the job", exc_info=True)

        return traced_before_enqueue

    def wrap_schedule(self, schedule: Callable[..., Awaitable[t.Any]]) -> Callable[..., t.Any]:
        async def traced_schedule(worker: t.Any, *args: t.Any, **kwargs: t.Any) -> t.Any:
            token = _CRON_TICK.set(True)
            try:
                return await schedule(worker, *args, **kwargs)
            finally:
                _CRON_TICK.reset(token)

        return traced_schedule

    async def _measured(
        self, enqueue: Enqueue, queue: Queue, args: tuple[t.Any, ...], kwargs: dict[str, t.Any]
    ) -> Job | None:
        """No span can record (no SDK): measure the enqueue, build no span, carry nothing."""
        started_ns = time_ns()
        try:
            job = await enqueue(queue, *args, **kwargs)
        except BaseException as exc:
            self._record(queue, started_ns, error_type(exc), sent=False)
            raise
        if job is None and _CRON_TICK.get():
            return None  # a no-op cron tick, as in traced_enqueue
        self._record(queue, started_ns, None, sent=job is not None)
        return job

    def _record(self, queue: Queue, started_ns: int, error: str | None, sent: bool) -> None:
        """The enqueue's metrics: every path through an enqueue ends here."""
        try:
            seconds = (time_ns() - started_ns) / 1e9
            self._instruments.record_send(queue.name, seconds, error, sent=sent)
        except Exception:
            logger.warning("could not record the enqueue's metrics", exc_info=True)

    def wrap_proxy_process(
        self, process: Callable[..., Awaitable[t.Any]]
    ) -> Callable[..., Awaitable[t.Any]]:
        async def traced_process(proxy: t.Any, *args: t.Any, **kwargs: t.Any) -> t.Any:
            token = _PROXYING.set(True)
            try:
                return await process(proxy, *args, **kwargs)
            finally:
                _PROXYING.reset(token)

        return traced_process

    def _start(self, queue: Queue, send: _Send) -> Span:
        name = queue.name
        base = operation_attributes(SEND, name)
        job = send.job
        attributes = job_attributes(job, base) if job is not None else dict(base)
        caller = send.caller
        if caller is not None:
            attributes[CODE_FILE_PATH] = caller.file
            attributes[CODE_LINE_NUMBER] = caller.line
            attributes[CODE_FUNCTION_NAME] = caller.function
        if self._arguments is not None and job is not None:
            attributes[SAQ_JOB_KWARGS] = self._arguments.render(job.kwargs)
        parent = None
        listener = send.listener
        carried = job is not None and _PROXYING.get() and _propagation.carries_context(job)
        if (listener is not None or carried) and not _current_span_is_valid():
            if listener is not None:
                # The toolbar panel groups a request's jobs in one trace even when no
                # tracing middleware made a server span current.
                parent = listener.parent()
            elif job is not None:
                # SAQ's HttpProxy enqueues the jobs its HttpQueue clients send, carrying
                # the context of the client's send span: continue that trace, or each
                # proxied job would start a trace of its own on the proxy.
                parent = send.carried = _propagation.extract(job)
        span = self._tracer.start_span(
            span_name(SEND, name),
            context=parent,
            kind=SpanKind.PRODUCER,
            attributes=attributes,
            start_time=send.started_ns,
        )
        send.span = span
        return span

    def _end(self, queue: Queue, send: _Send, duplicate: bool) -> None:
        try:
            span = send.span if send.span is not None else self._start(queue, send)
            if duplicate:
                span.set_attribute(SAQ_JOB_DUPLICATE, True)
            span.end()  # a span processor's on_end may raise: never into the caller
            self._record(queue, send.started_ns, None, sent=not duplicate)
            if send.listener is not None and send.job is not None:
                _tell(send, queue, duplicate)
        except Exception:
            logger.warning("could not end the send span", exc_info=True)

    def _end_with_error(self, queue: Queue, send: _Send, exc: BaseException) -> None:
        try:
            span = send.span if send.span is not None else self._start(queue, send)
            span.record_exception(exc)
            error = error_type(exc)
            span.set_attribute(ERROR_TYPE, error)
            span.set_status(Status(StatusCode.ERROR, error_description(exc)))
            span.end()
            self._record(queue, send.started_ns, error, sent=False)
        except Exception:
            logger.warning("could not record the enqueue error on its span", exc_info=True)


def _current_span_is_valid() -> bool:
    return trace.get_current_span().get_span_context().is_valid


def _fresh_job(args: tuple[t.Any, ...], kwargs: dict[str, t.Any]) -> bool:
    """Whether SAQ builds a new job with no meta of the caller's: one that cannot carry a
    stale context from an earlier enqueue, so the no-SDK path need not look at it."""
    return bool(args) and isinstance(args[0], str) and "meta" not in kwargs


def _tell(send: _Send, queue: Queue, duplicate: bool) -> None:
    assert send.listener is not None and send.job is not None and send.span is not None
    try:
        span_context = send.span.get_span_context()
        send.listener(
            _capture.EnqueuedJob(
                queue=queue,
                job=send.job,
                trace_id=span_context.trace_id,
                span_id=span_context.span_id,
                duplicate=duplicate,
                caller=send.caller,
            )
        )
    except Exception:
        logger.warning("the enqueue listener failed", exc_info=True)
