"""The words for what became of a job, defined once.

SAQ's own status words (``saq.job.Status`` values), spelled out here so that importing
the instrumentation never imports SAQ, plus the outcome words SAQ has no status for.
Spans (``saq.job.status``), metrics, the panel and the trace pages all use these.
"""

from __future__ import annotations

NEW = "new"
DEFERRED = "deferred"
QUEUED = "queued"
ACTIVE = "active"
ABORTING = "aborting"
ABORTED = "aborted"
FAILED = "failed"
COMPLETE = "complete"

UNKNOWN = "unknown"  # what became of it could not be told (our own failure, logged)

# error.type of an attempt that ended without an exception of its own.
CANCELLED = "cancelled"  # the worker shut down mid-job; SAQ's error text for it too
SWEPT = "swept"  # SAQ's error text for a stuck job its sweep aborted (0.26: the default)

FINAL = frozenset((COMPLETE, FAILED, ABORTED))
"""Statuses after which nothing more happens to the job."""

UNSUCCESSFUL = frozenset((FAILED, ABORTED))
"""Final statuses that carry an error."""

SCHEDULED = "scheduled"
"""Where the queue-health gauges count a job queued for later (a delay, a retry's backoff)."""

RETRYING = "retrying"
"""What the trace pages call a job waiting on its retry (SAQ says queued)."""
"""Statuses of a job that has not started its (next) attempt."""


def word(status: object) -> str:
    """SAQ's status (an enum of strings, or a plain string from a queue) as a word."""
    value = getattr(status, "value", status)
    return value if isinstance(value, str) else str(value)
