"""The worker side: one CONSUMER span per attempt.

``Worker.process`` dequeues (an unbounded wait that must not be in the span), marks the
job active, then awaits ``_before_process``, runs the job function in a task created
right after it, finishes or retries the job, and awaits ``_after_process`` in a
``finally``. So the attempt starts at the top of ``_before_process``, before the user's
hooks, and its context is current there: the user's hooks and the job's task inherit
it (a sync function too: SAQ runs it in a copied context). The span ends at the top of
``_after_process``, once SAQ has decided the outcome; the context stays current while
the user's after-process hooks run (a job they enqueue joins the attempt's trace) and
is detached after them, so contexts the user's hooks attach and detach nest inside ours.

Spans and metrics fail independently: each is guarded on its own.
"""

from __future__ import annotations

import logging
import typing as t
from contextvars import ContextVar
from time import time_ns

from opentelemetry import context, trace
from opentelemetry.context import Context
from opentelemetry.instrumentation.utils import is_instrumentation_enabled
from opentelemetry.trace import Link, SpanKind, Status, StatusCode

from opentelemetry.instrumentation.saq import _hooks, _propagation, _queues, _quiet, _status
from opentelemetry.instrumentation.saq._attempt import MAX_IN_FLIGHT, Attempt, InFlight, aborting
from opentelemetry.instrumentation.saq._attributes import (
    CRON_KEY_PREFIX,
    ERROR_TYPE,
    MESSAGING_CLIENT_ID,
    SAQ_JOB_ATTEMPT,
    SAQ_JOB_CRON,
    SAQ_JOB_OTHER_FUNCTION,
    SAQ_JOB_QUEUE_WAIT_MS,
    SAQ_JOB_STATUS,
    SAQ_JOB_WILL_RETRY,
    cron_of,
    job_attributes,
)
from opentelemetry.instrumentation.saq._metrics import registered_function
from opentelemetry.instrumentation.saq._outcome import Outcome, judge, retry_not_written
from opentelemetry.instrumentation.saq._timing import attempt_start_ns, now_ms, queue_wait_ms

if t.TYPE_CHECKING:
    from collections.abc import Callable

    from opentelemetry.trace import Span, Tracer
    from saq.job import Job

    from opentelemetry.instrumentation.saq._configured import Configured
    from opentelemetry.instrumentation.saq._hooks import SpanHook
    from opentelemetry.instrumentation.saq._metrics import Instruments
    from opentelemetry.instrumentation.saq._patching import Args, Kwargs, Method, Wrapper
    from opentelemetry.instrumentation.saq._queues import QueueFacts

logger = logging.getLogger(__name__)


# The attempt this worker task started; read back in _after_process.
_ATTEMPT: ContextVar[Attempt | None] = ContextVar("saq_attempt", default=None)
# Set while SAQ finishes an abort in this task (see wrap_finish_abort).
_FINISHING_ABORT: ContextVar[bool] = ContextVar("saq_finishing_abort", default=False)
# The job SAQ is re-queueing in this task, while Queue.retry runs (see wrap_retry_delay).
_RETRYING: ContextVar[t.Any] = ContextVar("saq_retrying", default=None)


class Consumer:
    """Wrappers for the worker side, bound to one tracer."""

    def __init__(
        self,
        tracer: Tracer,
        instruments: Instruments,
        spans: Configured,
        meters: Configured,
        use_links: bool = False,
        process_hook: SpanHook | None = None,
    ) -> None:
        self._tracer = tracer
        self._instruments = instruments
        self._spans = spans
        self._meters = meters
        self._use_links = use_links
        self._process_hook = process_hook
        # The attempts in flight in this process, for SAQ's abort loop to mark the one it
        # finished as aborted: SAQ 0.20 finishes a job whose function swallowed the abort
        # as complete before the abort loop records it aborted. An abort that comes after
        # its attempt ended finds nothing and is dropped: it belongs to no later attempt.
        self._in_flight: InFlight = {}

    def wrap_before_process(self) -> Wrapper:
        """The wrapper of ``Worker._before_process`` (and of subclasses' overrides)."""

        async def traced_before_process(
            before_process: Method, worker: t.Any, args: Args, kwargs: Kwargs
        ) -> None:
            if is_instrumentation_enabled():
                job = (args[0] if args else kwargs["ctx"])["job"]
                # Set here only when a subclass's override already started this attempt.
                if _ATTEMPT.get() is None or not _started(job):
                    span = self._start(worker, job)
                    if span is not None and self._process_hook is not None:
                        await _hooks.call(self._process_hook, "process", span, job)
            await before_process(*args, **kwargs)

        return traced_before_process

    def wrap_after_process(self) -> Wrapper:
        """The wrapper of ``Worker._after_process`` (and of subclasses' overrides)."""

        async def traced_after_process(
            after_process: Method, worker: t.Any, args: Args, kwargs: Kwargs
        ) -> None:
            attempt = _ATTEMPT.get()
            if attempt is None:
                await after_process(*args, **kwargs)
                return
            _ATTEMPT.set(None)
            self._end(attempt, worker, args[0] if args else kwargs["ctx"])
            try:
                await after_process(*args, **kwargs)
            finally:
                context.detach(attempt.token)

        return traced_after_process

    def wrap_finish_abort(self) -> Wrapper:
        """The wrapper of ``Queue.finish_abort`` and of SAQ's queues' own."""

        async def traced_finish_abort(
            finish_abort: Method, queue: t.Any, args: Args, kwargs: Kwargs
        ) -> None:
            if _FINISHING_ABORT.get():
                # Queue's own, reached through super() after a round trip of SAQ's Redis or
                # HTTP queue: noted once already, when its attempt was surely in flight.
                await finish_abort(*args, **kwargs)
                return
            try:
                job: Job = args[0] if args else kwargs["job"]
                attempt = aborting(self._in_flight, queue, job)
                if attempt is not None:
                    attempt.abort = job.error or ""
            except Exception:
                logger.warning("could not note the abort of a job", exc_info=True)
            token = _FINISHING_ABORT.set(True)
            try:
                await finish_abort(*args, **kwargs)
            finally:
                _FINISHING_ABORT.reset(token)

        return traced_finish_abort

    def wrap_retry(self) -> Wrapper:
        """The wrapper of ``Queue.retry``."""

        async def traced_retry(retry: Method, queue: t.Any, args: Args, kwargs: Kwargs) -> None:
            enabled = is_instrumentation_enabled() or _quiet.only_saq_is_quiet()
            job: Job = args[0] if args else kwargs["job"]
            if not enabled or not (
                self._spans.check() or self._meters.check() or _propagation.carries_context(job)
            ):
                # Nothing here would read when the retry is due: leave the job as it is.
                await retry(*args, **kwargs)
                return
            # Due now, unless SAQ draws a retry delay (see wrap_retry_delay).
            _mark_retry_due(job, 0)
            token = _RETRYING.set(job)
            try:
                await retry(*args, **kwargs)
            except BaseException as exc:
                # The job reads queued, but the queue may hold it anything: the attempt
                # (a worker re-queueing its own job) must not claim a retry.
                attempt = _ATTEMPT.get()
                if attempt is not None and attempt.id[1] == job.key:
                    attempt.retry_error = exc
                raise
            finally:
                _RETRYING.reset(token)

        return traced_retry

    def wrap_retry_delay(self) -> Wrapper:
        """The wrapper of ``Job.next_retry_delay``."""

        def traced_next_retry_delay(
            next_retry_delay: Callable[[], float], job: Job, args: Args, kwargs: Kwargs
        ) -> float:
            # SAQ draws the delay (with random jitter under backoff) just before it writes
            # the re-queued job: the one moment the due time can be known and travel along.
            delay = next_retry_delay(*args, **kwargs)
            if _RETRYING.get() is job:
                _mark_retry_due(job, delay)
            return delay

        return traced_next_retry_delay

    def _start(self, worker: t.Any, job: Job) -> Span | None:
        """Start the attempt: its span when one could record, its context, its metrics."""
        try:
            facts = _queues.facts(job.get_queue())
            attempt_id = (id(job.queue), job.key, job.started)
            now_ns = time_ns()
            started_ns = attempt_start_ns(job, now_ns)
            producer = _propagation.extract(job)
            # A fresh Context, never the worker task's: a job's trace is its producer's,
            # not whatever was current when the worker started.
            parent = producer if producer is not None else Context()
        except Exception:
            logger.warning("could not start the attempt; job runs untraced", exc_info=True)
            return None
        span = None
        wait_ms: int | None = None
        if self._spans.check():
            try:
                span = self._start_span(worker, job, facts, producer, started_ns)
            except Exception:
                logger.warning("could not start the process span", exc_info=True)
            if span is not None and span.is_recording():
                try:
                    wait_ms = queue_wait_ms(job)
                    self._describe(span, worker, job, producer, wait_ms)
                except Exception:  # the span still starts, and ends with the attempt
                    logger.warning("could not describe the job on its span", exc_info=True)
        # Baggage from the producer travels on even when the span only links to it.
        attempt_context = parent if span is None else trace.set_span_in_context(span, parent)
        token = context.attach(attempt_context)
        metered = self._meters.check()
        function = registered_function(worker, job) if metered else SAQ_JOB_OTHER_FUNCTION
        attempt = Attempt(span, token, facts, started_ns, attempt_id, function)
        _ATTEMPT.set(attempt)
        in_flight = self._in_flight
        in_flight[attempt.id] = attempt
        if len(in_flight) > MAX_IN_FLIGHT:
            del in_flight[next(iter(in_flight))]
        if metered:
            try:
                if wait_ms is None:
                    wait_ms = queue_wait_ms(job)
                wait = None if wait_ms is None else wait_ms / 1000
                self._instruments.record_start(facts, function, wait)
            except Exception:
                logger.warning("could not record the attempt's start", exc_info=True)
        return span if span is not None and span.is_recording() else None

    def _start_span(
        self,
        worker: t.Any,
        job: Job,
        facts: QueueFacts,
        producer: Context | None,
        started_ns: int,
    ) -> Span:
        links = None
        if self._use_links and producer is not None:
            # A new trace: the link is the attempt's only relation to its producer, and
            # a sampler may want to see it.
            producer_span = trace.get_current_span(producer).get_span_context()
            if producer_span.is_valid:
                links = [Link(producer_span)]
        return self._tracer.start_span(
            facts.process_name,
            context=Context() if self._use_links or producer is None else producer,
            kind=SpanKind.CONSUMER,
            attributes=facts.process,
            links=links,
            start_time=started_ns,
        )

    def _describe(
        self, span: Span, worker: t.Any, job: Job, producer: Context | None, wait_ms: int | None
    ) -> None:
        """What only a recorded span needs: the job's attributes and the link."""
        attributes = job_attributes(job)
        attributes[SAQ_JOB_ATTEMPT] = job.attempts
        worker_id = getattr(worker, "id", None) or getattr(job, "worker_id", None)
        if worker_id is not None:
            attributes[MESSAGING_CLIENT_ID] = str(worker_id)
        if wait_ms is not None:
            attributes[SAQ_JOB_QUEUE_WAIT_MS] = wait_ms
        if job.key.startswith(CRON_KEY_PREFIX):
            # A unique cron tick has no send span: its attempt says what started it.
            cron = cron_of(worker, job.function)
            if cron is not None:
                attributes[SAQ_JOB_CRON] = cron
        span.set_attributes(attributes)
        if not self._use_links and producer is not None:
            producer_span = trace.get_current_span(producer).get_span_context()
            if producer_span.is_valid:
                span.add_link(producer_span)
            else:
                logger.debug("job %s carries no usable trace context; a root span", job.key)

    def _end(self, attempt: Attempt, worker: t.Any, ctx: t.Any) -> None:
        """End the attempt by what SAQ decided: its span and its metric point, each alone."""
        if self._in_flight.get(attempt.id) is attempt:
            del self._in_flight[attempt.id]
        try:
            outcome = judge(ctx["job"], ctx.get("exception"), _stopping(worker), attempt.abort)
            if attempt.retry_error is not None:
                outcome = retry_not_written(outcome, attempt.retry_error)
        except Exception:
            logger.warning("could not judge the outcome of the attempt", exc_info=True)
            outcome = Outcome(_status.UNKNOWN, "_OTHER", None, False)
        span = attempt.span
        if span is not None:
            try:
                _end_span(span, outcome)
            except Exception:
                logger.warning("could not end the process span", exc_info=True)
        if self._meters.check():
            try:
                seconds = max(0, time_ns() - attempt.started_ns) / 1e9
                self._instruments.record_outcome(
                    attempt.facts, attempt.function, seconds, outcome.status, outcome.error
                )
            except Exception:
                logger.warning("could not record the outcome of the attempt", exc_info=True)


def _end_span(span: Span, outcome: Outcome) -> None:
    if span.is_recording():
        span.set_attribute(SAQ_JOB_STATUS, outcome.status)
        if outcome.error is not None:
            if outcome.exception is not None:
                span.record_exception(outcome.exception)
            if outcome.will_retry:
                span.set_attribute(SAQ_JOB_WILL_RETRY, True)
            span.set_attribute(ERROR_TYPE, outcome.error)
            span.set_status(Status(StatusCode.ERROR, outcome.description))
    span.end()


def _started(job: Job) -> bool:
    """Whether this job's attempt has started already: a Worker subclass's override of
    ``_before_process`` (wrapped too, see _overrides) called Worker's through ``super()``."""
    attempt = _ATTEMPT.get()
    return attempt is not None and attempt.id[1:] == (job.key, job.started)


def _mark_retry_due(job: Job, delay_seconds: float) -> None:
    """Record that the job's retry is due ``delay_seconds`` from now."""
    try:
        due_ms = now_ms() + max(0, round(float(delay_seconds) * 1000))
        _propagation.mark_retry_due(job, due_ms)
    except Exception:
        logger.warning("could not record when the retry is due", exc_info=True)


def _stopping(worker: t.Any) -> bool:
    """Whether the worker is shutting down (``Worker.stop`` sets its event first)."""
    event = getattr(worker, "event", None)
    return bool(event is not None and event.is_set())
