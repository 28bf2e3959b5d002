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

if t.TYPE_CHECKING:
    from saq.job import Job

logger = logging.getLogger(__name__)

META_KEY = "opentelemetry"
"""The key of ``job.meta`` that holds the trace context carrier."""

RETRIED_AT = "saq-retried-at"
"""Carrier entry: when SAQ last re-queued the job for a retry, in epoch milliseconds.

SAQ overwrites ``job.touched`` when a worker picks the job up, so the moment of the
retry would be lost without it; queue wait of a retry is measured from here.
"""

# A W3C traceparent is 55 characters and baggage is capped at 8 KiB by the spec:
# a carrier beyond this is not ours, and parsing it would only cost time.
_MAX_CARRIER_CHARS = 16 * 1024


def inject(job: Job) -> None:
    """Write the current context into the job, replacing a stale one.

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
    propagate.inject(carrier)
    if carrier or META_KEY in meta:  # nothing to carry (no SDK, no parent): leave meta alone
        job.meta = {**meta, META_KEY: carrier}


def carries_context(job: Job) -> bool:
    """Whether the job already holds a context (maybe a stale one from an earlier enqueue)."""
    return isinstance(job.meta, dict) and META_KEY in job.meta


def extract(job: Job) -> Context | None:
    """The context the producer wrote into the job, or None when there is none usable."""
    carrier = _carrier(job)
    if carrier is None:
        return None
    return propagate.extract(carrier)


def mark_retry(job: Job, at_ms: int) -> None:
    """Record the moment of a retry in the job, next to its context."""
    meta = job.meta if isinstance(job.meta, dict) else None
    if meta is None:
        return
    carrier = _carrier(job) or {}
    job.meta = {**meta, META_KEY: {**carrier, RETRIED_AT: str(at_ms)}}


def retried_at(job: Job) -> int | None:
    """When SAQ last re-queued the job, if an instrumented worker recorded it."""
    carrier = _carrier(job)
    value = carrier.get(RETRIED_AT) if carrier else None
    if value is None or not value.isdigit():
        return None
    return int(value)


def _carrier(job: Job) -> dict[str, str] | None:
    meta = job.meta
    if not isinstance(meta, dict):
        return None
    carrier = meta.get(META_KEY)
    if carrier is None:
        return None
    if not isinstance(carrier, dict):
        logger.debug("job %s: meta[%r] is not a dict; ignored", job.key, META_KEY)
        return None
    clean = {
        key: value
        for key, value in carrier.items()
        if isinstance(key, str) and isinstance(value, str)
    }
    if sum(len(key) + len(value) for key, value in clean.items()) > _MAX_CARRIER_CHARS:
        logger.debug(
            "job %s: trace context over %d characters; ignored", job.key, _MAX_CARRIER_CHARS
        )
        return None
    return clean
