"""Attribute keys, and the span attributes of a SAQ job, in one place.

Keys follow the OpenTelemetry messaging semantic conventions; facts that only SAQ has
go under ``saq.*``. Every module (the trace pages included) imports keys from here.
"""

from __future__ import annotations

import typing as t

from opentelemetry.semconv._incubating.attributes.messaging_attributes import (
    MESSAGING_CLIENT_ID,
    MESSAGING_DESTINATION_NAME,
    MESSAGING_MESSAGE_ID,
    MESSAGING_OPERATION_NAME,
    MESSAGING_OPERATION_TYPE,
    MESSAGING_SYSTEM,
)
from opentelemetry.semconv.attributes.error_attributes import ERROR_TYPE
from opentelemetry.semconv.attributes.server_attributes import SERVER_ADDRESS, SERVER_PORT

if t.TYPE_CHECKING:
    from opentelemetry.util.types import AttributeValue
    from saq.job import Job

__all__ = [
    "CODE_FILE_PATH",
    "CODE_FUNCTION_NAME",
    "CODE_LINE_NUMBER",
    "CRON_KEY_PREFIX",
    "ERROR_TYPE",
    "MESSAGING_CLIENT_ID",
    "MESSAGING_DESTINATION_NAME",
    "MESSAGING_MESSAGE_ID",
    "MESSAGING_OPERATION_NAME",
    "MESSAGING_OPERATION_TYPE",
    "MESSAGING_SYSTEM",
    "MESSAGING_SYSTEM_SAQ",
    "PROCESS",
    "SAQ_JOB_ATTEMPT",
    "SAQ_JOB_CRON",
    "SAQ_JOB_DUPLICATE",
    "SAQ_JOB_FUNCTION",
    "SAQ_JOB_KEY",
    "SAQ_JOB_KWARGS",
    "SAQ_JOB_OTHER_FUNCTION",
    "SAQ_JOB_QUEUE_WAIT_MS",
    "SAQ_JOB_RETRIES",
    "SAQ_JOB_SCHEDULED",
    "SAQ_JOB_STATE",
    "SAQ_JOB_STATUS",
    "SAQ_JOB_TIMEOUT",
    "SAQ_JOB_WILL_RETRY",
    "SCHEMA_URL",
    "SEND",
    "SERVER_ADDRESS",
    "SERVER_PORT",
    "cron_of",
    "job_attributes",
]

# The semantic conventions release whose names we emit: code.* became stable, with
# code.function.name fully qualified, in 1.33.0.
SCHEMA_URL = "https://opentelemetry.io/schemas/1.33.0"

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
SAQ_JOB_KWARGS = "saq.job.kwargs"
# The cron expression of a job a worker's cron schedule enqueued: what started it.
SAQ_JOB_CRON = "saq.job.cron"
# SAQ's key of a unique cron job (``Worker.schedule``, 0.20 to 0.26): "cron:{qualname}".
CRON_KEY_PREFIX = "cron:"
# On metric points, saq.job.function is one of the functions the worker registered (cron
# jobs' included) or this, as the conventions spell a value outside a known set: a job
# naming any other function must not open a time series of its own.
SAQ_JOB_OTHER_FUNCTION = "_OTHER"
# Where a job is, for the queue-health gauges: queued (ready), active, or scheduled.
SAQ_JOB_STATE = "saq.job.state"

# Where the enqueue was called (the conventions' code.* attributes, spelled out because
# older opentelemetry-semantic-conventions releases lack these constants).
CODE_FILE_PATH = "code.file.path"
CODE_LINE_NUMBER = "code.line.number"
CODE_FUNCTION_NAME = "code.function.name"


def job_attributes(job: Job) -> dict[str, AttributeValue]:
    """What the job says about itself (identity, function, limits)."""
    attributes: dict[str, AttributeValue] = {
        MESSAGING_MESSAGE_ID: job.id,
        SAQ_JOB_KEY: job.key,
        SAQ_JOB_FUNCTION: job.function,
    }
    # map() passes timeout=None through to the job; None is not an attribute value.
    if job.retries is not None:
        attributes[SAQ_JOB_RETRIES] = job.retries
    if job.timeout is not None:
        attributes[SAQ_JOB_TIMEOUT] = job.timeout
    if job.scheduled:
        attributes[SAQ_JOB_SCHEDULED] = job.scheduled
    return attributes


def cron_of(worker: t.Any, function: str) -> str | None:
    """The cron expression of the worker's cron job that runs ``function``, if any.

    ``Worker.schedule`` enqueues each ``CronJob`` under its function's ``__qualname__``.
    """
    for cron_job in getattr(worker, "cron_jobs", None) or ():
        if getattr(cron_job.function, "__qualname__", None) == function:
            return str(cron_job.cron)
    return None
