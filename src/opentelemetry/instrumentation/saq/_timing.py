"""When an attempt could start and when it did: facts the worker side and the panel share.

SAQ stamps ``queued`` and ``started`` in whole epoch milliseconds and ``scheduled`` in
epoch seconds. A retry does not go through enqueue, and SAQ's Redis queue keeps its
retry delay only in a sorted-set score, so the moment a retry became due is recorded in
the job's carrier when SAQ draws the delay (see ``_propagation.RETRY_DUE``).
"""

from __future__ import annotations

import typing as t
from time import time_ns

from opentelemetry.instrumentation.saq import _propagation

if t.TYPE_CHECKING:
    from saq.job import Job

_MS = 1_000_000  # nanoseconds


def now_ms() -> int:
    return time_ns() // _MS


def ready_at_ms(job: Job) -> int | None:
    """When the job's current (or next) attempt could start, in epoch milliseconds.

    A first attempt: the later of its enqueue and its scheduled time. A retry: when its
    retry delay (and backoff) ran out. None when a retry was not recorded by an
    instrumented worker.
    """
    # SAQ resets `started` when it re-queues a job for a retry: attempts made and no
    # attempt running means the next one is a retry, as does a second attempt running;
    # unless those attempts were made before the job (the same Job object) was enqueued.
    made_before = job.attempts - 1 if job.started > 0 else job.attempts
    if made_before > 0 and _propagation.enqueued_after(job) != made_before:
        return _propagation.retry_due(job)
    return max(job.queued, job.scheduled * 1000)


def queue_wait_ms(job: Job) -> int | None:
    """Milliseconds the running attempt waited to start once it could have.

    None before the attempt started or when its ready time is unknown. Clamped at zero
    against clock skew between machines.
    """
    if job.started <= 0:
        return None
    ready = ready_at_ms(job)
    if ready is None:
        return None
    return max(0, job.started - ready)


def attempt_start_ns(job: Job, now_ns: int) -> int:
    """When the attempt began, never before the send that enqueued it.

    The worker stamps ``job.started`` (whole milliseconds) as it takes the job, so the
    attempt really began somewhere in that millisecond: its last nanosecond, or now if
    that is earlier, is the first moment known to be after the job was written, so a
    child never starts before its parent on a waterfall.
    """
    started = job.started
    if started <= 0:
        return now_ns
    latest = started * _MS + _MS - 1
    return latest if latest < now_ns else now_ns
