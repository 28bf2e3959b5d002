"""Where the trace context travels inside a job: the only module that knows.

The producer writes the context with the globally configured propagator (W3C
tracecontext and baggage by default) into ``job.meta["opentelemetry"]``, a flat dict
of strings, before SAQ persists the job. SAQ keeps ``meta`` across dequeue and
retries on every queue backend, so each attempt finds the producer's context there.
"""

from __future__ import annotations

import logging
import typing as t

from opentelemetry import propagate
from opentelemetry.context import Context
from opentelemetry.propagators.textmap import Getter

if t.TYPE_CHECKING:
    from saq.job import Job

logger = logging.getLogger(__name__)

# Public as opentelemetry.instrumentation.saq.META_KEY, documented there.
META_KEY = "opentelemetry"

RETRY_DUE = "saq-retry-due"
"""Carrier entry: when the job's pending retry became due, in epoch milliseconds.

SAQ's Redis queue keeps a retry's delay only in a sorted-set score and overwrites
``job.touched`` when a worker takes the job, so without this the queue wait of a retry
could not be told apart from the delay the user asked for.
"""

ENQUEUED_AFTER = "saq-enqueued-after"
"""Carrier entry: the attempts a Job object had made when it was enqueued again.

SAQ keeps a Job's attempt count when the object is enqueued again, so its next attempt
(numbered on) follows that enqueue, not a retry, and waits from the new enqueue time.
"""

# A W3C traceparent is 55 characters and baggage is capped at 8 KiB by the spec: a
# value beyond this is not ours, and handing it to a propagator would only cost time.
_MAX_VALUE_CHARS = 16 * 1024


class _CarrierGetter(Getter[t.Mapping[str, t.Any]]):
    """Reads our flat carrier of strings; anything else in it is ignored, not parsed."""

    def get(self, carrier: t.Mapping[str, t.Any], key: str) -> list[str] | None:
        value = carrier.get(key)
        if type(value) is str and len(value) <= _MAX_VALUE_CHARS:
            return [value]
        return None

    def keys(self, carrier: t.Mapping[str, t.Any]) -> list[str]:
        return [key for key in carrier if type(key) is str]


_GETTER = _CarrierGetter()


def inject(job: Job, context: Context) -> None:
    """Write ``context`` into the job, replacing a stale one.

    ``job.meta`` is copied, not mutated: ``map`` and user code may share one meta dict
    between several jobs that are enqueued concurrently.
    """
    meta = job.meta
    if meta is None:
        meta = {}
    elif not isinstance(meta, dict):
        logger.debug("job %s has a meta that is not a dict; no trace context written", job.key)
        return
    carrier: dict[str, str] = {}
    propagate.inject(carrier, context=context)
    if job.attempts:
        carrier[ENQUEUED_AFTER] = str(job.attempts)
    if carrier or META_KEY in meta:  # nothing to carry (no SDK, no parent): leave meta alone
        job.meta = {**meta, META_KEY: carrier}


def carries_context(job: Job) -> bool:
    """Whether the job already holds a context (maybe a stale one from an earlier enqueue)."""
    meta = job.meta
    return type(meta) is dict and META_KEY in meta


def extract(job: Job) -> Context | None:
    """The context the producer wrote into the job; None when it wrote none.

    A propagator that raises costs the attempt its parent, never the attempt.
    """
    carrier = _carrier(job)
    if carrier is None:
        return None
    try:
        # Into a fresh Context: a job's context is its producer's, not the worker's.
        return propagate.extract(carrier, context=Context(), getter=_GETTER)
    except Exception:
        logger.warning("the propagator could not read job %s's context", job.key, exc_info=True)
        return None


def mark_retry_due(job: Job, due_ms: int) -> None:
    """Record when the job's retry becomes due, next to its context."""
    meta = job.meta
    if type(meta) is not dict:
        return
    carrier = _carrier(job) or {}
    job.meta = {**meta, META_KEY: {**carrier, RETRY_DUE: str(due_ms)}}


def retry_due(job: Job) -> int | None:
    """When the job's retry became due, if an instrumented worker recorded it."""
    carrier = _carrier(job)
    value = carrier.get(RETRY_DUE) if carrier is not None else None
    if type(value) is not str or not value.isdigit():
        return None
    return int(value)


def enqueued_after(job: Job) -> int | None:
    """The attempts the job had made when it was last enqueued, if it had made any."""
    carrier = _carrier(job)
    value = carrier.get(ENQUEUED_AFTER) if carrier is not None else None
    if type(value) is not str or not value.isdigit():
        return None
    return int(value)


def _carrier(job: Job) -> dict[str, t.Any] | None:
    meta = job.meta
    if type(meta) is not dict:
        return None
    carrier = meta.get(META_KEY)
    if carrier is None:
        return None
    if type(carrier) is not dict:
        logger.debug("job %s: meta[%r] is not a dict; ignored", job.key, META_KEY)
        return None
    return carrier
