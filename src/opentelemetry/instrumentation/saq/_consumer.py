"""The worker side: one CONSUMER span per attempt.

``Worker.process`` dequeues (an unbounded wait that must not be in the span), marks the
job active, then awaits ``_before_process``, runs the job function in a task created
right after it, finishes or retries the job, and awaits ``_after_process`` in a
``finally``. So the span starts in ``_before_process`` and is made current there: the
job's task inherits it, and so does a sync function, which SAQ runs in a copied context.
It ends at the top of ``_after_process``, when the outcome is known, before any user hook
can be interrupted by a cancellation.
"""

from __future__ import annotations

import contextlib
import logging
import typing as t
from contextvars import ContextVar
from time import time_ns

from opentelemetry import context, trace
from opentelemetry.context import Context
from opentelemetry.instrumentation.utils import is_instrumentation_enabled
from opentelemetry.trace import Link, SpanKind, Status, StatusCode
from saq.job import Status as JobStatus
from saq.utils import now

from opentelemetry.instrumentation.saq import _propagation
from opentelemetry.instrumentation.saq._attributes import (
    ERROR_TYPE,
    PROCESS,
    SAQ_JOB_ATTEMPT,
    SAQ_JOB_QUEUE_WAIT_MS,
    SAQ_JOB_STATUS,
    SAQ_JOB_WILL_RETRY,
    SAQ_WORKER_ID,
    error_description,
    error_type,
    job_attributes,
    last_line,
    operation_attributes,
    span_name,
)
from opentelemetry.instrumentation.saq._tracing import SpansRecordable

if t.TYPE_CHECKING:
    from collections.abc import Awaitable, Callable
    from contextvars import Token

    from opentelemetry.trace import Span, Tracer
    from saq.job import Job

    from opentelemetry.instrumentation.saq._metrics import Instruments

    Hook = Callable[[t.Any, t.Any], Awaitable[None]]

logger = logging.getLogger(__name__)


class _Attempt(t.NamedTuple):
    span: Span | None  # None when no span could record (no SDK): metrics only
    token: Token[Context]
    queue_name: str
    started_ns: int


# The attempt whose span this worker task made current; read back in _after_process.
_ATTEMPT: ContextVar[_Attempt | None] = ContextVar("saq_attempt", default=None)

ABORTED = "aborted"
CANCELLED = "cancelled"


class Consumer:
    """Wrappers for the worker side, bound to one tracer."""

    def __init__(
        self,
        tracer: Tracer,
        instruments: Instruments,
        use_links: bool = False,
        recordable: SpansRecordable | None = None,
    ) -> None:
        self._tracer = tracer
        self._instruments = instruments
        self._use_links = use_links
        self._recordable = recordable if recordable is not None else SpansRecordable(None)

    def wrap_before_process(self, before_process: Hook) -> Hook:
        async def traced_before_process(worker: t.Any, ctx: t.Any) -> None:
            if is_instrumentation_enabled():
                try:
                    self._start_attempt(worker, ctx["job"])
                except Exception:
                    logger.warning(
                        "could not start the process span; job runs untraced", exc_info=True
                    )
            await before_process(worker, ctx)

        return traced_before_process

    def wrap_after_process(self, after_process: Hook) -> Hook:
        async def traced_after_process(worker: t.Any, ctx: t.Any) -> None:
            attempt = _ATTEMPT.get()
            if attempt is not None:
                _ATTEMPT.set(None)
                self._end_attempt(attempt, ctx)
            await after_process(worker, ctx)

        return traced_after_process

    def wrap_retry(self, retry: Callable[..., Awaitable[None]]) -> Callable[..., t.Any]:
        async def traced_retry(queue: t.Any, job: Job, *args: t.Any, **kwargs: t.Any) -> None:
            if is_instrumentation_enabled():
                try:
                    _propagation.mark_retry(job, now())
                except Exception:
                    logger.warning("could not record the retry time in the job", exc_info=True)
            await retry(queue, job, *args, **kwargs)

        return traced_retry

    def _end_attempt(self, attempt: _Attempt, ctx: t.Any) -> None:
        try:
            status, error = _end_attempt(attempt.span, ctx["job"], ctx.get("exception"))
            seconds = max(0, time_ns() - attempt.started_ns) / 1e9
            self._instruments.record_outcome(attempt.queue_name, seconds, status, error)
        except Exception:
            logger.warning("could not record the outcome of the attempt", exc_info=True)
            if attempt.span is not None and attempt.span.is_recording():
                with contextlib.suppress(Exception):
                    attempt.span.end()
        finally:
            context.detach(attempt.token)

    def _start_attempt(self, worker: t.Any, job: Job) -> None:
        producer = _propagation.extract(job)
        # A fresh Context, never the worker task's: a job's trace is its producer's, not
        # whatever was current when the worker started.
        parent = producer if producer is not None else Context()
        queue_name = job.get_queue().name
        # The attempt began when the worker stamped job.started, before marking it active.
        now_ns = time_ns()
        started_ns = job.started * 1_000_000
        if not 0 < started_ns <= now_ns:
            started_ns = now_ns
        wait_ms = queue_wait_ms(job)
        span = None
        if self._recordable.check():
            span = self._start_span(worker, job, queue_name, producer, started_ns, wait_ms)
            # Baggage from the producer travels on even when the span only links to it.
            token = context.attach(trace.set_span_in_context(span, parent))
        else:
            token = context.attach(parent)
        _ATTEMPT.set(_Attempt(span, token, queue_name, started_ns))
        self._instruments.record_start(queue_name, None if wait_ms is None else wait_ms / 1000)

    def _start_span(
        self,
        worker: t.Any,
        job: Job,
        queue_name: str,
        producer: Context | None,
        started_ns: int,
        wait_ms: int | None,
    ) -> Span:
        producer_span = trace.get_current_span(producer).get_span_context() if producer else None
        links = []
        if producer_span is not None and producer_span.is_valid:
            links.append(Link(producer_span))
        else:
            logger.debug(
                "job %s carries no usable trace context; its attempt is a root span", job.key
            )
        attributes = job_attributes(job, operation_attributes(PROCESS, queue_name))
        attributes[SAQ_JOB_ATTEMPT] = job.attempts
        worker_id = getattr(worker, "id", None) or getattr(job, "worker_id", None)
        if worker_id is not None:
            attributes[SAQ_WORKER_ID] = str(worker_id)
        if wait_ms is not None:
            attributes[SAQ_JOB_QUEUE_WAIT_MS] = wait_ms
        return self._tracer.start_span(
            span_name(PROCESS, queue_name),
            context=Context() if self._use_links or producer is None else producer,
            kind=SpanKind.CONSUMER,
            attributes=attributes,
            links=links,
            start_time=started_ns,
        )


def queue_wait_ms(job: Job) -> int | None:
    """Milliseconds the attempt waited: from when it could run to when it started.

    It could run from the later of its enqueue (or, for a retry, its re-queue) and its
    scheduled time. None when that moment is unknown (a retry recorded by an
    uninstrumented worker). Clamped at zero against clock skew between machines.
    """
    if job.started <= 0:
        return None
    ready = job.queued
    if job.attempts > 1:
        retried = _propagation.retried_at(job)
        if retried is None:
            return None
        ready = retried
    ready = max(ready, job.scheduled * 1000)
    return max(0, job.started - ready)


class _Outcome(t.NamedTuple):
    status: str  # SAQ's status word
    error: str | None  # error.type, None on success
    description: str | None  # the span status description, None on success
    will_retry: bool
    exception: BaseException | None = None  # to record on the span


def _judge(job: Job, exc: BaseException | None) -> _Outcome:
    """What the attempt came to, from the job's status after SAQ handled it."""
    status = job.status
    word = status.value if isinstance(status, JobStatus) else str(status)
    if status == JobStatus.COMPLETE:
        return _Outcome(word, None, None, False)
    if status in (JobStatus.ABORTED, JobStatus.ABORTING):
        return _Outcome(word, ABORTED, f"aborted: {job.error or ''}".rstrip(": "), False)
    if exc is not None:
        retry = status == JobStatus.QUEUED
        return _Outcome(word, error_type(exc), error_description(exc), retry, exc)
    if status == JobStatus.QUEUED and job.error == CANCELLED:
        # The worker shut down mid-job; SAQ re-queued it without an exception.
        return _Outcome(word, CANCELLED, "cancelled by worker shutdown", True)
    if status == JobStatus.FAILED:
        return _Outcome(word, "failed", last_line(job.error) or "", False)
    return _Outcome(word, None, None, False)


def _end_attempt(span: Span | None, job: Job, exc: BaseException | None) -> tuple[str, str | None]:
    """End the attempt's span (if any) by its outcome; return the status word and error type."""
    outcome = _judge(job, exc)
    if span is None:
        return outcome.status, outcome.error
    span.set_attribute(SAQ_JOB_STATUS, outcome.status)
    if outcome.error is not None:
        if outcome.exception is not None:
            span.record_exception(outcome.exception)
        if outcome.will_retry:
            span.set_attribute(SAQ_JOB_WILL_RETRY, True)
        span.set_attribute(ERROR_TYPE, outcome.error)
        span.set_status(Status(StatusCode.ERROR, outcome.description))
    span.end()
    return outcome.status, outcome.error
