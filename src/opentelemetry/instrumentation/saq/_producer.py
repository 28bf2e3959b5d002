"""The enqueue side: one PRODUCER span per ``Queue.enqueue``.

``Queue.enqueue`` is the one door every producer path goes through (enqueue, apply, map,
batch, ``Job.enqueue``, cron scheduling, SAQ's HttpProxy), so the span starts and ends
there, and is current while SAQ builds and writes the job. It starts with only the
attributes that matter for sampling; ``Queue._before_enqueue``, the last moment before
SAQ persists the job and the first at which the job exists, adds the job's attributes
when the span records, and writes the span's context into the job in every case (an
unsampled context too, so the worker follows the producer's sampling decision).

Spans, metrics and the debug toolbar's listener fail independently: each is guarded on
its own, so a span processor that raises costs no metric point, and the other way round.
"""

from __future__ import annotations

import logging
import typing as t
from contextvars import ContextVar
from time import time_ns

from opentelemetry import context, trace
from opentelemetry.context import Context
from opentelemetry.instrumentation.utils import is_instrumentation_enabled
from opentelemetry.trace import SpanKind, Status, StatusCode

from opentelemetry.instrumentation.saq import _capture, _hooks, _propagation, _queues, _quiet
from opentelemetry.instrumentation.saq._attributes import (
    CODE_FILE_PATH,
    CODE_FUNCTION_NAME,
    CODE_LINE_NUMBER,
    ERROR_TYPE,
    SAQ_JOB_CRON,
    SAQ_JOB_DUPLICATE,
    SAQ_JOB_KWARGS,
    cron_of,
    job_attributes,
)
from opentelemetry.instrumentation.saq._outcome import error_type

if t.TYPE_CHECKING:
    from collections.abc import Awaitable, Callable

    from opentelemetry.trace import Span, Tracer
    from saq.job import Job
    from saq.queue import Queue

    from opentelemetry.instrumentation.saq._configured import Configured
    from opentelemetry.instrumentation.saq._hooks import SpanHook
    from opentelemetry.instrumentation.saq._metrics import Instruments
    from opentelemetry.instrumentation.saq._patching import Args, Kwargs, Method, Wrapper
    from opentelemetry.instrumentation.saq._queues import QueueFacts
    from opentelemetry.instrumentation.saq.arguments import ArgumentPolicy

    Enqueue = Callable[..., Awaitable[Job | None]]
    BeforeEnqueue = Callable[..., Awaitable[None]]

logger = logging.getLogger(__name__)


class _Send:
    """One enqueue in flight, from its start in ``enqueue`` to its end there."""

    __slots__ = (
        "caller",
        "context",
        "cron",
        "facts",
        "job",
        "listener",
        "proxied",
        "queue",
        "span",
        "started_ns",
    )

    def __init__(self, queue: Queue, facts: QueueFacts, started_ns: int) -> None:
        self.queue = queue
        self.facts = facts
        self.started_ns = started_ns
        self.listener: _capture.Listener | None = None
        self.caller: _capture.CallerLocation | None = None
        self.span: Span | None = None
        self.context: Context | None = None  # the span's context: what the job carries
        self.cron = False  # a cron tick's unique job: SAQ may enqueue nothing, and says so
        self.job: Job | None = None
        # SAQ's HttpProxy enqueueing a job an HttpQueue client sent: the job already
        # carries the client's send context, which an intermediary must not replace.
        self.proxied = False


# The enqueue running in this task, for the before-enqueue hook.
_SENDING: ContextVar[_Send | None] = ContextVar("saq_sending", default=None)
# Set while SAQ's HttpProxy handles a request from an HttpQueue client.
_PROXYING: ContextVar[bool] = ContextVar("saq_proxying", default=False)
# The worker scheduling its cron jobs, while it does (see Producer.wrap_schedule).
_CRON_TICK: ContextVar[t.Any] = ContextVar("saq_cron_tick", default=None)


class Producer:
    """Wrappers for the enqueue side, bound to one tracer."""

    def __init__(
        self,
        tracer: Tracer,
        instruments: Instruments,
        spans: Configured,
        meters: Configured,
        record_caller: bool = False,
        arguments: ArgumentPolicy | None = None,
        send_hook: SpanHook | None = None,
    ) -> None:
        self._tracer = tracer
        self._instruments = instruments
        self._spans = spans
        self._meters = meters
        self._record_caller = record_caller
        self._arguments = arguments
        self._send_hook = send_hook

    def wrap_enqueue(self) -> Wrapper:
        """The wrapper of ``Queue.enqueue``."""

        async def traced_enqueue(
            enqueue: Enqueue, queue: Queue, args: Args, kwargs: Kwargs
        ) -> Job | None:
            if not is_instrumentation_enabled() and not _quiet.only_saq_is_quiet():
                return await enqueue(*args, **kwargs)
            send = self._start(queue, args, kwargs)
            if send is None:
                return await enqueue(*args, **kwargs)
            token = _SENDING.set(send)
            attached = unquiet = None
            if send.context is not None:
                attached = context.attach(send.context)
                if _quiet.OUTSIDE.get() is not None:
                    # A cron tick from SAQ's quiet upkeep: its send span (a root, with no
                    # suppression) is what the user's before-enqueue callbacks run under.
                    unquiet = _quiet.OUTSIDE.set(None)
            try:
                job = await enqueue(*args, **kwargs)
            except BaseException as exc:
                self._end(send, None, exc)
                raise
            finally:
                if unquiet is not None:
                    _quiet.OUTSIDE.reset(unquiet)
                if attached is not None:
                    context.detach(attached)
                _SENDING.reset(token)
            self._end(send, job, None)
            return job

        return traced_enqueue

    def wrap_before_enqueue(self) -> Wrapper:
        """The wrapper of ``Queue._before_enqueue``."""
        quiet_outside = _quiet.OUTSIDE.get  # bound once: this runs on every enqueue

        async def traced_before_enqueue(
            before_enqueue: BeforeEnqueue, queue: Queue, args: Args, kwargs: Kwargs
        ) -> None:
            if quiet_outside() is not None:
                # An enqueue of SAQ's quiet machinery (a cron tick): not for the user's code.
                with _quiet.lifted():
                    return await traced_before_enqueue(before_enqueue, queue, args, kwargs)
            # The user's hooks first: one of them may replace job.meta.
            await before_enqueue(*args, **kwargs)
            send = _SENDING.get()
            if send is None or send.job is not None:
                return  # not ours, or already seen (the hook runs once per enqueue)
            try:
                job: Job = args[0]
            except IndexError:  # called as _before_enqueue(job=...), which just worked
                job = kwargs["job"]
            send.job = job
            span = send.span
            if span is not None and span.is_recording():
                try:
                    span.set_attributes(self._job_attributes(send, job))
                except Exception:
                    logger.warning("could not describe the job on its send span", exc_info=True)
                if self._send_hook is not None:
                    await _hooks.call(self._send_hook, "send", span, job)
            if send.context is not None and not send.proxied:
                try:
                    _propagation.inject(job, send.context)
                except Exception:
                    logger.warning("could not write the trace context into the job", exc_info=True)

        return traced_before_enqueue

    def wrap_schedule(self) -> Wrapper:
        """The wrapper of ``Worker.schedule``."""

        async def traced_schedule(
            schedule: Method, worker: t.Any, args: Args, kwargs: Kwargs
        ) -> t.Any:
            token = _CRON_TICK.set(worker)
            try:
                return await schedule(*args, **kwargs)
            finally:
                _CRON_TICK.reset(token)

        return traced_schedule

    def wrap_map(self) -> Wrapper:
        """The wrapper of ``Queue.map``."""

        async def traced_map(map_: Method, queue: Queue, args: Args, kwargs: Kwargs) -> t.Any:
            # map() enqueues in tasks of their own, whose stacks no longer hold the
            # user's frame: remember where the user called it before the fan-out.
            if not (self._record_caller or _capture.listener() is not None):
                return await map_(*args, **kwargs)
            mapping = _capture.start_map()
            try:
                token = _capture.remember_caller(_capture.caller_location())
            except Exception:
                logger.warning("could not tell where map() was called", exc_info=True)
                try:
                    return await map_(*args, **kwargs)
                finally:
                    _capture.end_map(mapping)
            try:
                return await map_(*args, **kwargs)
            finally:
                _capture.forget_caller(token)
                _capture.end_map(mapping)

        return traced_map

    def wrap_proxy_process(self) -> Wrapper:
        """The wrapper of ``HttpProxy.process``."""

        async def traced_process(
            process: Method, proxy: t.Any, args: Args, kwargs: Kwargs
        ) -> t.Any:
            token = _PROXYING.set(True)
            try:
                return await process(*args, **kwargs)
            finally:
                _PROXYING.reset(token)

        return traced_process

    def _start(
        self, queue: Queue, args: tuple[t.Any, ...], kwargs: dict[str, t.Any]
    ) -> _Send | None:
        """Begin one enqueue: decide what it needs, and start its span if it needs one.

        None when not even the queue could be looked at: the job is enqueued untraced.
        """
        try:
            send = _Send(queue, _queues.facts(queue), time_ns())
        except Exception:
            logger.warning("could not trace an enqueue; job enqueued untraced", exc_info=True)
            return None
        try:
            listener = send.listener = _capture.listener()
            if listener is not None or self._record_caller:
                send.caller = _capture.caller_location()
            cron_worker = _CRON_TICK.get()
            cron = None
            if cron_worker is not None:
                if "key" in kwargs:
                    # A unique cron job is re-enqueued every tick and SAQ ignores all but
                    # the first; whether this one counts is known only afterwards. A span is
                    # not started for what may be a no-op: the job's attempts are root spans.
                    send.cron = True
                    return send
                # Any other tick starts its own trace, not the one the worker's upkeep task
                # inherited when the worker started (inside a span, perhaps).
                current = Context()
                if args and isinstance(args[0], str):
                    cron = cron_of(cron_worker, args[0])
            else:
                current = context.get_current()
            parent: Context = current
            job = args[0] if args and not isinstance(args[0], str) else None
            if _PROXYING.get() and job is not None and _propagation.carries_context(job):
                # Continue the HttpQueue client's trace: its send span stays the parent of
                # the job's attempts, and this span is a child of it.
                send.proxied = True
                carried = _propagation.extract(job)
                if carried is not None:
                    parent = carried
            elif (
                not self._spans.check()
                and listener is None
                and job is None
                and "meta" not in kwargs
                and not trace.get_current_span(current).get_span_context().is_valid
            ):
                # No span can record, no parent to pass on, no stale context to clear in
                # a job SAQ builds afresh: measure the enqueue and carry nothing.
                return send
            elif (
                listener is not None
                and not trace.get_current_span(current).get_span_context().is_valid
            ):
                # The toolbar panel groups a request's jobs in one trace even when no
                # tracing middleware made a server span current.
                parent = listener.parent() or current
            facts = send.facts
            span = send.span = self._tracer.start_span(
                facts.send_name,
                context=parent,
                kind=SpanKind.PRODUCER,
                attributes=facts.send if cron is None else {**facts.send, SAQ_JOB_CRON: cron},
                start_time=send.started_ns,
            )
            send.context = trace.set_span_in_context(span, parent)
        except Exception:
            logger.warning("could not start the send span; job enqueued untraced", exc_info=True)
        return send

    def _job_attributes(self, send: _Send, job: Job) -> dict[str, t.Any]:
        attributes: dict[str, t.Any] = job_attributes(job)
        caller = send.caller
        if caller is not None:
            attributes[CODE_FILE_PATH] = caller.file
            attributes[CODE_LINE_NUMBER] = caller.line
            attributes[CODE_FUNCTION_NAME] = caller.function
        if self._arguments is not None:
            attributes[SAQ_JOB_KWARGS] = self._arguments.render(job.kwargs)
        return attributes

    def _end(self, send: _Send, job: Job | None, exc: BaseException | None) -> None:
        """End the enqueue: its span, its metric points, the listener, each on its own."""
        duplicate = exc is None and job is None
        if duplicate and send.cron:
            return  # a cron tick's no-op: not an enqueue the user asked for
        error = error_type(exc) if exc is not None else None
        span = send.span
        if span is not None:
            try:
                if exc is not None:
                    span.record_exception(exc)
                    span.set_attribute(ERROR_TYPE, t.cast(str, error))
                    span.set_status(Status(StatusCode.ERROR, str(exc) or None))
                elif duplicate:
                    span.set_attribute(SAQ_JOB_DUPLICATE, True)
                span.end()
            except Exception:
                logger.warning("could not end the send span", exc_info=True)
        if self._meters.check():
            try:
                seconds = (time_ns() - send.started_ns) / 1e9
                count = not duplicate and not send.proxied
                self._instruments.record_send(send.facts, seconds, error, count)
            except Exception:
                logger.warning("could not record the enqueue's metrics", exc_info=True)
        if send.listener is not None and send.job is not None and exc is None:
            _tell(send, duplicate)


def _tell(send: _Send, duplicate: bool) -> None:
    assert send.listener is not None and send.job is not None
    try:
        span_context = trace.get_current_span(send.context).get_span_context()
        send.listener(
            _capture.EnqueuedJob(
                queue=send.queue,
                job=send.job,
                trace_id=span_context.trace_id,
                span_id=span_context.span_id,
                duplicate=duplicate,
                caller=send.caller,
                duration_ns=time_ns() - send.started_ns,
                started_ns=send.started_ns,
                in_map=_capture.in_map(),
            )
        )
    except Exception:
        logger.warning("the enqueue listener failed", exc_info=True)
