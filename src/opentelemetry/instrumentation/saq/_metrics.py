"""Metric instruments: the messaging semantic conventions, plus queue wait.

Attribute sets are small and fixed (system, operation name and type, queue, broker
address and port, and on failures ``error.type``; process points also carry
``saq.job.status``, and process and queue-wait points ``saq.job.function``, bounded by the
functions the worker registered): no job id or key, which would make every job its own
time series. Each set is built once per queue, function and outcome (see ``_queues``).
"""

from __future__ import annotations

import typing as t

from opentelemetry.semconv._incubating.metrics.messaging_metrics import (
    MESSAGING_CLIENT_CONSUMED_MESSAGES,
    MESSAGING_CLIENT_OPERATION_DURATION,
    MESSAGING_CLIENT_SENT_MESSAGES,
    MESSAGING_PROCESS_DURATION,
)

from opentelemetry.instrumentation.saq._attributes import (
    ERROR_TYPE,
    SAQ_JOB_FUNCTION,
    SAQ_JOB_OTHER_FUNCTION,
    SAQ_JOB_STATUS,
)

if t.TYPE_CHECKING:
    from opentelemetry.metrics import Meter
    from opentelemetry.util.types import AttributeValue

    from opentelemetry.instrumentation.saq._queues import QueueFacts

    Attributes = dict[str, AttributeValue]

SAQ_JOB_QUEUE_WAIT = "saq.job.queue.wait"

# The buckets the messaging semantic conventions recommend for operation durations.
DURATION_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1, 2.5, 5, 7.5, 10)

# Queue wait spans far more than a broker call: milliseconds on an idle queue, minutes
# or hours behind a backlog. The duration buckets stop at 10 s, where a backlog only
# starts to hurt, so these continue up to an hour.
QUEUE_WAIT_BUCKETS = (
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10,
    30, 60, 120, 300, 600, 1800, 3600,
)  # fmt: skip


class Instruments:
    """The instruments of one meter."""

    def __init__(self, meter: Meter) -> None:
        self.sent_messages = meter.create_counter(
            MESSAGING_CLIENT_SENT_MESSAGES,
            unit="{message}",
            description="Number of jobs SAQ was asked to enqueue (failures carry error.type).",
        )
        self.operation_duration = meter.create_histogram(
            MESSAGING_CLIENT_OPERATION_DURATION,
            unit="s",
            description="Duration of each enqueue call.",
            explicit_bucket_boundaries_advisory=list(DURATION_BUCKETS),
        )
        self.consumed_messages = meter.create_counter(
            MESSAGING_CLIENT_CONSUMED_MESSAGES,
            unit="{message}",
            description="Number of job attempts a worker started.",
        )
        self.process_duration = meter.create_histogram(
            MESSAGING_PROCESS_DURATION,
            unit="s",
            description="Duration of each job attempt, from its start to its outcome.",
            explicit_bucket_boundaries_advisory=list(DURATION_BUCKETS),
        )
        self.queue_wait = meter.create_histogram(
            SAQ_JOB_QUEUE_WAIT,
            unit="s",
            description="Time a job waited to start: from enqueue, scheduled time or retry due.",
            explicit_bucket_boundaries_advisory=list(QUEUE_WAIT_BUCKETS),
        )

    def record_send(
        self, facts: QueueFacts, seconds: float, error: str | None, count: bool
    ) -> None:
        """One enqueue call; ``count``: it handed SAQ a message (not a duplicate, not proxied)."""
        attributes = facts.send if error is None else send_error_attributes(facts, error)
        if count or error is not None:
            self.sent_messages.add(1, attributes)
        self.operation_duration.record(seconds, attributes)

    def record_start(self, facts: QueueFacts, function: str, wait_seconds: float | None) -> None:
        """An attempt started; ``function``: a registered function's name, or _OTHER."""
        self.consumed_messages.add(1, facts.process)
        if wait_seconds is not None:
            self.queue_wait.record(wait_seconds, function_attributes(facts, function))

    def record_outcome(
        self, facts: QueueFacts, function: str, seconds: float, status: str, error: str | None
    ) -> None:
        self.process_duration.record(seconds, outcome_attributes(facts, function, status, error))


def registered_function(worker: t.Any, job: t.Any) -> str:
    """The job's function name if the worker registered it (cron jobs' too), else _OTHER.

    A job names its function as a string anyone can write: only the worker's own set keeps
    the metric's attribute values bounded.
    """
    try:
        function: str = job.function
        return function if function in worker.functions else SAQ_JOB_OTHER_FUNCTION
    except Exception:  # a worker without SAQ's functions dict, an unhashable name
        return SAQ_JOB_OTHER_FUNCTION


def send_error_attributes(facts: QueueFacts, error: str) -> Attributes:
    attributes = facts.send_errors.get(error)
    if attributes is None:  # a handful of error types per queue: build each set once
        attributes = facts.send_errors[error] = {**facts.send, ERROR_TYPE: error}
    return attributes


def function_attributes(facts: QueueFacts, function: str) -> Attributes:
    attributes = facts.functions.get(function)
    if attributes is None:
        attributes = facts.functions[function] = {**facts.process, SAQ_JOB_FUNCTION: function}
    return attributes


def outcome_attributes(
    facts: QueueFacts, function: str, status: str, error: str | None
) -> Attributes:
    key = (function, status, error)
    attributes = facts.outcomes.get(key)
    if attributes is None:
        attributes = {**function_attributes(facts, function), SAQ_JOB_STATUS: status}
        if error is not None:
            attributes[ERROR_TYPE] = error
        facts.outcomes[key] = attributes
    return attributes
