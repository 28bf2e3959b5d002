"""Span attributes of a SAQ job, built in one place.

Keys follow the OpenTelemetry messaging semantic conventions; facts that only SAQ has
go under ``saq.*``.
"""

from __future__ import annotations

import asyncio
import typing as t

from opentelemetry.semconv._incubating.attributes.messaging_attributes import (
    MESSAGING_DESTINATION_NAME,
    MESSAGING_MESSAGE_ID,
    MESSAGING_OPERATION_NAME,
    MESSAGING_OPERATION_TYPE,
    MESSAGING_SYSTEM,
)
from opentelemetry.semconv.attributes.error_attributes import ERROR_TYPE

if t.TYPE_CHECKING:
    from opentelemetry.util.types import AttributeValue
    from saq.job import Job

__all__ = [
    "CODE_FILE_PATH",
    "CODE_FUNCTION_NAME",
    "CODE_LINE_NUMBER",
    "ERROR_TYPE",
    "PROCESS",
    "SAQ_JOB_ATTEMPT",
    "SAQ_JOB_DUPLICATE",
    "SAQ_JOB_KWARGS",
    "SAQ_JOB_QUEUE_WAIT_MS",
    "SAQ_JOB_STATUS",
    "SAQ_JOB_WILL_RETRY",
    "SAQ_WORKER_ID",
    "SEND",
    "error_description",
    "error_type",
    "job_attributes",
    "last_line",
    "operation_attributes",
    "span_name",
]

MESSAGING_SYSTEM_SAQ = "saq"
SEND = "send"
PROCESS = "process"

SAQ_JOB_KEY = "saq.job.key"
SAQ_JOB_FUNCTION = "saq.job.function"
SAQ_JOB_RETRIES = "saq.job.retries"
SAQ_JOB_TIMEOUT = "saq.job.timeout"
SAQ_JOB_SCHEDULED = "saq.job.scheduled"
SAQ_JOB_DUPLICATE = "saq.job.duplicate"
SAQ_JOB_ATTEMPT = "saq.job.attempt"
SAQ_JOB_STATUS = "saq.job.status"
SAQ_JOB_WILL_RETRY = "saq.job.will_retry"
SAQ_JOB_QUEUE_WAIT_MS = "saq.job.queue_wait_ms"
SAQ_WORKER_ID = "saq.worker.id"
SAQ_JOB_KWARGS = "saq.job.kwargs"

# Where the enqueue was called (the semantic conventions' code.* attributes, spelled out
# because older opentelemetry-semantic-conventions releases lack these constants).
CODE_FILE_PATH = "code.file.path"
CODE_LINE_NUMBER = "code.line.number"
CODE_FUNCTION_NAME = "code.function.name"

# Per (operation, queue name): the attributes every span of that kind shares. Built once,
# because a dict per enqueue is measurable next to a Redis round trip on loopback.
_OPERATION_ATTRIBUTES: dict[tuple[str, str], dict[str, AttributeValue]] = {}


def operation_attributes(operation: str, queue_name: str) -> dict[str, AttributeValue]:
    """The attributes shared by every ``operation`` on one queue (do not mutate)."""
    key = (operation, queue_name)
    attributes = _OPERATION_ATTRIBUTES.get(key)
    if attributes is None:
        attributes = {
            MESSAGING_SYSTEM: MESSAGING_SYSTEM_SAQ,
            MESSAGING_OPERATION_TYPE: operation,
            MESSAGING_OPERATION_NAME: operation,
            MESSAGING_DESTINATION_NAME: queue_name,
        }
        _OPERATION_ATTRIBUTES[key] = attributes
    return attributes


def job_attributes(
    job: Job, base: t.Mapping[str, AttributeValue] | None = None
) -> dict[str, AttributeValue]:
    """What the job says about itself (identity, function, limits), added to ``base``."""
    attributes: dict[str, AttributeValue] = dict(base) if base else {}
    attributes[MESSAGING_MESSAGE_ID] = job.id
    attributes[SAQ_JOB_KEY] = job.key
    attributes[SAQ_JOB_FUNCTION] = job.function
    # map() passes timeout=None through to the job; None is not an attribute value.
    if job.retries is not None:
        attributes[SAQ_JOB_RETRIES] = job.retries
    if job.timeout is not None:
        attributes[SAQ_JOB_TIMEOUT] = job.timeout
    if job.scheduled:
        attributes[SAQ_JOB_SCHEDULED] = job.scheduled
    return attributes


def span_name(operation: str, queue_name: str) -> str:
    """``"{operation} {queue}"``, built once per queue."""
    key = (operation, queue_name)
    name = _SPAN_NAMES.get(key)
    if name is None:
        name = _SPAN_NAMES[key] = f"{operation} {queue_name}"
    return name


_SPAN_NAMES: dict[tuple[str, str], str] = {}


def error_description(exc: BaseException) -> str:
    """``"ValueError: the message"``, or the class name alone when there is no message."""
    name, message = type(exc).__name__, str(exc)
    return f"{name}: {message}" if message else name


def last_line(text: str | None) -> str | None:
    """The last non-blank line of a traceback: the exception and its message."""
    lines = [line.strip() for line in (text or "").splitlines() if line.strip()]
    return lines[-1] if lines else None


def error_type(exc: BaseException) -> str:
    """The exception's class name, qualified by its module unless it is a builtin."""
    cls = type(exc)
    if cls.__module__ == "builtins" or cls is asyncio.TimeoutError:
        # Before 3.11 a job's timeout raises asyncio's own TimeoutError class; since then
        # it is the builtin. One word on every Python.
        return cls.__qualname__
    return f"{cls.__module__}.{cls.__qualname__}"
