"""One attempt in flight, and which attempt an abort belongs to.

A worker process may run attempts of many queues, and two attempts of one job key at once
(SAQ 0.26.4 re-queues a job whose stuck attempt outlives its sweep). What SAQ's abort loop
finishes belongs to one of them alone, and to none once it has ended: the attempts in
flight are registered by queue, key and start time, and an abort that finds none of them
is dropped, never kept for a later job with the same key.
"""

from __future__ import annotations

import typing as t

if t.TYPE_CHECKING:
    from contextvars import Token

    from opentelemetry.context import Context
    from opentelemetry.trace import Span
    from saq.job import Job

    from opentelemetry.instrumentation.saq._queues import QueueFacts

# Which attempt: its queue (the object), the job's key, and when it started (epoch ms, as
# the worker stored it). SAQ's abort loop hands finish_abort a copy of the job read from
# that queue, normally the attempt's own record; but an abort writes the aborting client's
# copy of the job, whose start time (and attempt count) may be stale.
AttemptId = tuple[int, str, int]

# Attempts whose _after_process never ran (their worker task was destroyed) are dropped
# from the registry beyond this many, oldest first.
MAX_IN_FLIGHT = 4096


class Attempt:
    """One attempt in flight, from its start in _before_process to its end."""

    __slots__ = (
        "abort",
        "facts",
        "function",
        "id",
        "retry_error",
        "span",
        "started_ns",
        "token",
    )

    def __init__(
        self,
        span: Span | None,  # None when no span could record (no SDK) or it failed to start
        token: Token[Context],
        facts: QueueFacts,
        started_ns: int,
        attempt_id: AttemptId,
        function: str,  # saq.job.function on its metric points: registered, or _OTHER
    ) -> None:
        self.span = span
        self.token = token
        self.facts = facts
        self.started_ns = started_ns
        self.id = attempt_id
        self.function = function
        # SAQ's abort loop finished this attempt as aborted, with this reason ("" if none).
        self.abort: str | None = None
        # SAQ set the job queued for a retry, and then writing the retry raised this.
        self.retry_error: BaseException | None = None


InFlight = dict[AttemptId, Attempt]


def aborting(in_flight: InFlight, queue: object, job: Job) -> Attempt | None:
    """The attempt in flight that SAQ's abort loop is finishing as aborted, if any.

    The one that started when the queue's copy of the job says; else, as SAQ's abort loop
    finds a task by key (a later attempt of a key replacing an earlier one), the latest
    attempt of that key on that queue.
    """
    attempt = in_flight.get((id(queue), job.key, job.started))
    if attempt is not None:
        return attempt
    same_key = [
        candidate
        for (queue_id, key, _), candidate in in_flight.items()
        if queue_id == id(queue) and key == job.key
    ]
    return max(same_key, key=lambda candidate: candidate.id[2], default=None)
