"""What an attempt came to, judged once from what SAQ decided.

``Worker.process`` records the outcome on the job before ``_after_process`` runs: COMPLETE;
QUEUED with ``ctx["exception"]`` (it will retry); FAILED; ABORTED; QUEUED with the error
"cancelled" (the worker shut down mid-job). One case leaves the local job ACTIVE: an
abort whose function swallowed the cancellation and returned. SAQ's abort loop records
that job as aborted on the queue's copy, and the worker skips finishing it; so an attempt
that ends still ACTIVE, with no exception and no cancellation of the worker, was aborted.
An abort by SAQ's sweep is not always final: the sweep re-queues a job with attempts
left, so such an attempt ends QUEUED and will retry, as the job does.
"""

from __future__ import annotations

import asyncio
import typing as t

from opentelemetry.instrumentation.saq import _status

if t.TYPE_CHECKING:
    from saq.job import Job


class Outcome(t.NamedTuple):
    status: str  # saq.job.status: SAQ's word for what became of the attempt
    error: str | None  # error.type; None on success
    description: str | None  # the span status description: the error message
    will_retry: bool
    exception: BaseException | None = None  # to record on the span


COMPLETED = Outcome(_status.COMPLETE, None, None, False)


def judge(
    job: Job, exc: BaseException | None, worker_stopping: bool, abort: str | None = None
) -> Outcome:
    """The attempt's outcome, from the job after SAQ handled it.

    ``worker_stopping``: the worker is shutting down. ``abort``: SAQ's abort loop finished
    this attempt as aborted while it ran, for this reason (``""`` when none was given).
    """
    status = _status.word(job.status)
    if status == _status.COMPLETE and exc is None and abort is not None:
        # SAQ 0.20 marks a job whose function swallowed the abort complete, and then its
        # abort loop records it aborted: the abort is what the queue keeps.
        return _aborted(job, abort)
    if status == _status.COMPLETE:
        return COMPLETED
    if status in (_status.ABORTED, _status.ABORTING):
        return _aborted(job, job.error or abort)
    if exc is not None:
        retry = status == _status.QUEUED
        return Outcome(status, error_type(exc), str(exc) or None, retry, exc)
    if status == _status.QUEUED and job.error == _status.CANCELLED:
        return Outcome(status, _status.CANCELLED, "the worker shut down mid-job", True)
    if status == _status.FAILED:
        kind, message = _split_last_line(job.error)
        return Outcome(status, kind or _status.FAILED, message, False)
    if status == _status.ACTIVE:
        if worker_stopping and abort is None:  # stopped before the job's function started
            return Outcome(status, _status.CANCELLED, "the worker shut down", False)
        return _aborted(job, abort)
    return Outcome(status, None, None, False)


def retry_not_written(outcome: Outcome, retry_error: BaseException) -> Outcome:
    """The outcome once SAQ's write of the attempt's retry raised ``retry_error``.

    SAQ sets the job queued before it writes the retry: when that write fails (the queue
    went away), the job may be held queued, still active, or complete (a finish whose reply
    was lost), so what became of it is unknown; the attempt's own error stays its error.
    """
    cause = outcome.exception or retry_error
    kind = outcome.error if outcome.error is not None else error_type(retry_error)
    retry_failure = f"the retry could not be written: {error_type(retry_error)}: {retry_error}"
    description = (
        f"{outcome.description}; {retry_failure}" if outcome.description else retry_failure
    )
    return Outcome(_status.UNKNOWN, kind, description, False, cause)


def _aborted(job: Job, reason: str | None) -> Outcome:
    """An aborted attempt; re-queued when SAQ's sweep aborted it and attempts are left.

    SAQ's sweep aborts a stuck job (past its timeout or heartbeat) with the queue's swept
    error message, waits for the abort, then retries the job if ``retries > attempts``
    and only otherwise finishes it aborted (SAQ 0.20 to 0.26).
    """
    reason = reason or None
    if reason is not None and reason == _swept_message(job) and job.retries > job.attempts:
        return Outcome(_status.QUEUED, _status.ABORTED, reason, True)
    return Outcome(_status.ABORTED, _status.ABORTED, reason, False)


def _swept_message(job: Job) -> str:
    message = getattr(job.queue, "swept_error_message", None)  # SAQ 0.20 has only "swept"
    return message if isinstance(message, str) else _status.SWEPT


def error_type(exc: BaseException) -> str:
    """The exception's class name, qualified by its module unless it is a builtin."""
    if isinstance(exc, asyncio.TimeoutError):
        return "TimeoutError"  # a builtin from Python 3.11; its own class in asyncio before
    cls = type(exc)
    if cls.__module__ == "builtins":
        return cls.__qualname__
    return f"{cls.__module__}.{cls.__qualname__}"


def error_summary(error: object, description: str | None) -> str | None:
    """``"ValueError: the message"`` for people, from a span's error.type and description."""
    if error is None:
        return description
    if not description:
        return str(error)
    return f"{error}: {description}"


def last_line(text: str | None) -> str | None:
    """The last non-blank line of a traceback: the exception and its message."""
    lines = [line.strip() for line in (text or "").splitlines() if line.strip()]
    return lines[-1] if lines else None


def _split_last_line(text: str | None) -> tuple[str | None, str | None]:
    """``("mod.Error", "message")`` from a traceback's last line ``mod.Error: message``."""
    line = last_line(text)
    if line is None:
        return None, None
    kind, sep, message = line.partition(": ")
    if sep and kind.replace(".", "").replace("_", "").isalnum():
        return kind, message or None
    return None, line
