"""The queue-health gauges: their names, units and callbacks (``_health`` does the reading).

The callbacks run in the metric reader's thread at each export or scrape; they only look
at the reads ``QueueHealth`` keeps, and never raise into the reader.
"""

from __future__ import annotations

import logging
import typing as t

from opentelemetry.metrics import CallbackOptions, Observation

from opentelemetry.instrumentation.saq import _status
from opentelemetry.instrumentation.saq._attributes import SAQ_JOB_STATE

if t.TYPE_CHECKING:
    from collections.abc import Callable, Iterable

    from opentelemetry.metrics import Meter

    from opentelemetry.instrumentation.saq._health import QueueHealth
    from opentelemetry.instrumentation.saq._queue_snapshot import Snapshot

logger = logging.getLogger(__name__)

SAQ_QUEUE_JOB_COUNT = "saq.queue.job.count"
SAQ_QUEUE_OLDEST_JOB_AGE = "saq.queue.oldest_job.age"
SAQ_QUEUE_WORKER_COUNT = "saq.queue.worker.count"
SAQ_WORKER_SLOT_BUSY = "saq.worker.slot.busy"
SAQ_WORKER_SLOT_MAX = "saq.worker.slot.max"


def register(meter: Meter, current: Callable[[], QueueHealth | None]) -> None:
    """Create the gauges on ``meter``; their callbacks observe ``current()``."""
    for name, observe, unit, description in _GAUGES:
        meter.create_observable_gauge(
            name, [_guarded(current, observe)], unit=unit, description=description
        )


Observe = t.Callable[["QueueHealth"], "Iterable[Observation]"]


def _guarded(
    current: Callable[[], QueueHealth | None], observe: Observe
) -> Callable[[CallbackOptions], Iterable[Observation]]:
    def callback(options: CallbackOptions) -> Iterable[Observation]:
        health = current()
        if health is None:
            return []
        try:
            return list(observe(health))
        except Exception:  # never into the metric reader
            logger.warning("could not observe the queue's health", exc_info=True)
            return []

    return callback


def _jobs(health: QueueHealth) -> Iterable[Observation]:
    for queue in health.live()[1]:
        snapshot = t.cast("Snapshot", queue.snapshot)
        for state, count in (
            (_status.QUEUED, snapshot.queued),
            (_status.ACTIVE, snapshot.active),
            (_status.SCHEDULED, snapshot.scheduled),
        ):
            yield Observation(count, {**queue.attributes, SAQ_JOB_STATE: state})


def _oldest_age(health: QueueHealth) -> Iterable[Observation]:
    for queue in health.live()[1]:
        age = t.cast("Snapshot", queue.snapshot).oldest_age_s
        if age is not None:
            yield Observation(age, queue.attributes)


def _workers_alive(health: QueueHealth) -> Iterable[Observation]:
    for queue in health.live()[1]:
        yield Observation(t.cast("Snapshot", queue.snapshot).workers, queue.attributes)


def _busy_slots(health: QueueHealth) -> Iterable[Observation]:
    for worker, state in health.live()[0]:
        yield Observation(len(worker.job_task_contexts), state.worker_attributes)


def _max_slots(health: QueueHealth) -> Iterable[Observation]:
    for worker, state in health.live()[0]:
        yield Observation(int(worker.concurrency), state.worker_attributes)


# Name, what it observes, unit, description: one row per gauge.
_GAUGES: tuple[tuple[str, Observe, str, str], ...] = (
    (
        SAQ_QUEUE_JOB_COUNT,
        _jobs,
        "{job}",
        "Jobs in the queue by state: queued (ready), active, scheduled (later).",
    ),
    (
        SAQ_QUEUE_OLDEST_JOB_AGE,
        _oldest_age,
        "s",
        "How long the oldest ready job has waited to start (0 when none waits).",
    ),
    (
        SAQ_QUEUE_WORKER_COUNT,
        _workers_alive,
        "{worker}",
        "Workers alive on the queue, as SAQ's worker info says.",
    ),
    (SAQ_WORKER_SLOT_BUSY, _busy_slots, "{slot}", "Jobs this worker is running now."),
    (
        SAQ_WORKER_SLOT_MAX,
        _max_slots,
        "{slot}",
        "Jobs this worker runs at once at most (its concurrency).",
    ),
)
