"""Metric instruments: the messaging semantic conventions, plus queue wait.

Attribute sets are small and fixed (system, operation, queue, and on failures
``error.type``; process points also carry ``saq.job.status``): no job id, key or
function, which would make every job its own time series.
"""

from __future__ import annotations

import threading
import typing as t

from opentelemetry.metrics import CallbackOptions, Observation
from opentelemetry.semconv._incubating.attributes.messaging_attributes import (
    MESSAGING_DESTINATION_NAME,
    MESSAGING_OPERATION_NAME,
    MESSAGING_SYSTEM,
)
from opentelemetry.semconv._incubating.metrics.messaging_metrics import (
    MESSAGING_CLIENT_CONSUMED_MESSAGES,
    MESSAGING_CLIENT_OPERATION_DURATION,
    MESSAGING_CLIENT_SENT_MESSAGES,
    MESSAGING_PROCESS_DURATION,
)
from opentelemetry.semconv.attributes.error_attributes import ERROR_TYPE

from opentelemetry.instrumentation.saq._attributes import (
    MESSAGING_SYSTEM_SAQ,
    PROCESS,
    SAQ_JOB_STATUS,
    SEND,
)

if t.TYPE_CHECKING:
    from opentelemetry.metrics import Meter
    from opentelemetry.util.types import AttributeValue

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
    """The instruments of one meter, and the attribute sets they are recorded with."""

    def __init__(self, meter: Meter) -> None:
        # The two counters are observed, not added to: the SDK spends as long on one
        # synchronous add as on a histogram record, and on the enqueue path that shows
        # (benchmarks/). Exported, they are the same monotonic sums.
        self._sent = _Tally()
        self._consumed = _Tally()
        self.sent_messages = meter.create_observable_counter(
            MESSAGING_CLIENT_SENT_MESSAGES,
            callbacks=[self._sent.observe],
            unit="{message}",
            description="Number of jobs SAQ was asked to enqueue (failures carry error.type).",
        )
        self.operation_duration = meter.create_histogram(
            MESSAGING_CLIENT_OPERATION_DURATION,
            unit="s",
            description="Duration of each enqueue call.",
            explicit_bucket_boundaries_advisory=list(DURATION_BUCKETS),
        )
        self.consumed_messages = meter.create_observable_counter(
            MESSAGING_CLIENT_CONSUMED_MESSAGES,
            callbacks=[self._consumed.observe],
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
            description="Time a job waited to start: from enqueue, scheduled time or retry.",
            explicit_bucket_boundaries_advisory=list(QUEUE_WAIT_BUCKETS),
        )
        self._base: dict[tuple[str, str], Attributes] = {}
        self._outcomes: dict[tuple[str, str, str | None], Attributes] = {}

    def base(self, operation: str, queue_name: str) -> Attributes:
        """The attributes every point of ``operation`` on that queue carries (do not mutate)."""
        key = (operation, queue_name)
        attributes = self._base.get(key)
        if attributes is None:
            attributes = self._base[key] = {
                MESSAGING_SYSTEM: MESSAGING_SYSTEM_SAQ,
                MESSAGING_OPERATION_NAME: operation,
                MESSAGING_DESTINATION_NAME: queue_name,
            }
        return attributes

    def record_send(self, queue_name: str, seconds: float, error: str | None, sent: bool) -> None:
        attributes = self.base(SEND, queue_name)
        if error is not None:
            attributes = {**attributes, ERROR_TYPE: error}
        if sent or error is not None:
            self._sent.add((queue_name, error), attributes)
        self.operation_duration.record(seconds, attributes)

    def record_start(self, queue_name: str, wait_seconds: float | None) -> None:
        attributes = self.base(PROCESS, queue_name)
        self._consumed.add((queue_name, None), attributes)
        if wait_seconds is not None:
            self.queue_wait.record(wait_seconds, attributes)

    def record_outcome(
        self, queue_name: str, seconds: float, status: str, error: str | None
    ) -> None:
        key = (queue_name, status, error)
        attributes = self._outcomes.get(key)
        if attributes is None:  # a handful of sets per queue: build each once
            attributes = {**self.base(PROCESS, queue_name), SAQ_JOB_STATUS: status}
            if error is not None:
                attributes[ERROR_TYPE] = error
            self._outcomes[key] = attributes
        self.process_duration.record(seconds, attributes)


class _Tally:
    """Counts per attribute set, read by an observable counter's callback."""

    def __init__(self) -> None:
        self._counts: dict[tuple[str, str | None], list[t.Any]] = {}
        self._lock = threading.Lock()  # enqueues also happen in threads

    def add(self, key: tuple[str, str | None], attributes: Attributes) -> None:
        """Count one for ``attributes``, which ``key`` (queue, error type) identifies."""
        with self._lock:
            entry = self._counts.get(key)
            if entry is None:
                self._counts[key] = [1, attributes]
            else:
                entry[0] += 1

    def observe(self, options: CallbackOptions) -> list[Observation]:
        with self._lock:
            return [Observation(count, attributes) for count, attributes in self._counts.values()]
