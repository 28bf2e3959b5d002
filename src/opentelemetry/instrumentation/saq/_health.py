"""Queue-health gauges: how many jobs wait, how late the next one starts, who is working.

Opt-in: ``instrument(queue_health=True)``. A worker reads its queue once per SAQ's
``worker_info`` timer (10 s by default), right after SAQ has written the worker's own
info: the clock SAQ already runs, off every job's path. The read runs in a task of its
own with a timeout, so a slow broker delays neither SAQ's write nor any job; two workers
of one process on one queue share a read. The gauges' callbacks run in the metric
reader's thread (an export, a Prometheus scrape) and only look at the last read.

Every worker reports its queue's gauges: the values are the queue's, not the worker's, so
a dashboard takes ``max`` per queue (a gauge is not additive), and any live worker keeps
the series alive. Busy slots and concurrency are the worker's own, with its id.

A read is only as good as its age. When SAQ's own ``worker_info`` write fails (the broker
is down), no read of ours starts: that tick drops the queue's gauges as a failed read does,
rather than repeat the last depth. A read older than the next read's latest end (one
interval, then that read's timeout) is dropped too: a write that hangs takes no read with it.

The read task is not one of SAQ's ``worker.tasks``: when the worker stops, its read under
way is cancelled (SAQ disconnects the queue right after the stop), and no read starts once
the worker is stopping.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import typing as t
import weakref
from time import time_ns

from opentelemetry.instrumentation.utils import suppress_instrumentation

from opentelemetry.instrumentation.saq import _health_gauges, _queue_snapshot, _queues
from opentelemetry.instrumentation.saq._attributes import (
    MESSAGING_CLIENT_ID,
    MESSAGING_DESTINATION_NAME,
)

if t.TYPE_CHECKING:
    from collections.abc import Callable

    from opentelemetry.metrics import Meter
    from opentelemetry.util.types import AttributeValue

    from opentelemetry.instrumentation.saq._patching import Args, Kwargs, Method, Wrapper
    from opentelemetry.instrumentation.saq._queue_snapshot import Snapshot

    Attributes = dict[str, AttributeValue]

logger = logging.getLogger(__name__)

_DEFAULT_INTERVAL = 10.0  # SAQ's default worker_info timer, seconds
_MIN_TIMEOUT = 1.0  # seconds a read may take, however short the interval
_NS = 1_000_000_000
_STOP_WAIT = 1.0  # seconds a stopping worker waits for its cancelled read to end


class _WorkerState:
    """One worker as the gauges see it: its own attributes, its read under way."""

    __slots__ = ("queue", "reading", "worker", "worker_attributes")

    def __init__(self, worker: t.Any, queue: _QueueState) -> None:
        self.worker = weakref.ref(worker)
        self.queue = queue
        self.worker_attributes: Attributes = {
            **queue.attributes,
            MESSAGING_CLIENT_ID: str(worker.id),
        }
        self.reading: asyncio.Task[None] | None = None


class _QueueState:
    """One queue of this process: its gauges' attributes and its last read.

    The snapshot is replaced whole, never mutated: the reader's thread may read it any time.
    """

    __slots__ = ("attributes", "failing", "interval", "snapshot", "stale_ns", "started_ns")

    def __init__(self, attributes: Attributes, interval: float) -> None:
        self.attributes = attributes
        self.interval = interval
        self.snapshot: Snapshot | None = None
        self.started_ns = 0  # when this process last started reading the queue
        self.failing = False  # warned once for this failing streak
        self.stale_ns = 0  # the read_ns of the last read warned about as too old

    def timeout(self) -> float:
        """How long one read may take: the interval, so that reads never pile up."""
        return max(self.interval, _MIN_TIMEOUT)

    def failed(self, name: str, reason: str) -> None:
        """A read that failed or could not start: drop the last one, warn once a streak."""
        self.snapshot = None  # a vanished series, not a stale number
        if not self.failing:
            logger.warning("could not read the health of queue %s: %s", name, reason, exc_info=True)
        self.failing = True


class QueueHealth:
    """Reads queues from their workers and hands the reads to the gauges.

    ``recording()`` says whether a meter provider would record the gauges: until one is
    configured (API only), no queue is read.
    """

    def __init__(self, recording: Callable[[], bool]) -> None:
        self._recording = recording
        self._lock = threading.Lock()  # the reader's thread copies what the loop changes
        self._workers: dict[int, _WorkerState] = {}
        self._queues: dict[tuple[t.Any, ...], _QueueState] = {}

    def wrap_worker_info(self) -> Wrapper:
        """The wrapper of ``Worker.worker_info``."""

        async def traced_worker_info(
            worker_info: Method, worker: t.Any, args: Args, kwargs: Kwargs
        ) -> t.Any:
            try:
                info = await worker_info(*args, **kwargs)
            except Exception:
                self._write_failed(worker)
                raise  # SAQ's upkeep logs it and carries on, as without us
            self._start_read(worker)
            return info

        return traced_worker_info

    async def end_read(self, worker: t.Any, wait: bool) -> None:
        """Cancel a stopping worker's read under way (``Flush`` calls this once SAQ's stop
        returned); wait briefly, unless the stop was cancelled (its cancellation is not
        held up); never raise."""
        try:
            state = self._workers.get(id(worker))
            if state is None or state.worker() is not worker:
                return
            reading = state.reading
            if reading is None or reading.done():
                return
            reading.cancel()
            if wait:
                await asyncio.wait({reading}, timeout=_STOP_WAIT)
        except Exception:
            logger.warning(
                "could not end the queue-health read of a stopping worker", exc_info=True
            )

    def _start_read(self, worker: t.Any) -> None:
        try:
            if not self._recording() or _stopped(worker):
                return  # a stopping worker's queue disconnects soon: no read to leave behind
            state = self._state(worker)
            queue = state.queue
            now_ns = time_ns()
            if state.reading is not None and not state.reading.done():
                return  # the last read is still under way: never two at once
            if now_ns - queue.started_ns < queue.interval * _NS / 2:
                return  # another worker of this process read the queue just now
            queue.started_ns = now_ns
            state.reading = asyncio.get_running_loop().create_task(self._read(state, worker.queue))
        except Exception:
            logger.warning("could not start reading the queue's health", exc_info=True)

    def _write_failed(self, worker: t.Any) -> None:
        # Called inside SAQ's except: exc_info is SAQ's error, which the warning shows.
        try:
            if self._recording() and not _stopped(worker):
                self._state(worker).queue.failed(
                    worker.queue.name, "SAQ could not write the worker's info"
                )
        except Exception:
            logger.warning("could not record a failed queue-health tick", exc_info=True)

    def _state(self, worker: t.Any) -> _WorkerState:
        state = self._workers.get(id(worker))
        if state is not None and state.worker() is worker:
            return state
        attributes = dict(_queues.facts(worker.queue).queue)
        interval = float(getattr(worker, "timers", {}).get("worker_info", _DEFAULT_INTERVAL))
        key = tuple(sorted(attributes.items()))
        with self._lock:
            queue = self._queues.get(key)
            if queue is None:
                queue = self._queues[key] = _QueueState(attributes, interval)
            queue.interval = min(queue.interval, interval)
            state = self._workers[id(worker)] = _WorkerState(worker, queue)
        return state

    async def _read(self, state: _WorkerState, queue: t.Any) -> None:
        try:
            # The gauges' own reads are not the app's operations: no Redis or SQL spans.
            with suppress_instrumentation():
                timeout = state.queue.timeout()
                snapshot = await asyncio.wait_for(_queue_snapshot.read(queue), timeout)
        except Exception:
            state.queue.failed(queue.name, "the read failed")
        else:
            state.queue.snapshot = snapshot
            state.queue.failing = False

    def live(self) -> tuple[list[tuple[t.Any, _WorkerState]], list[_QueueState]]:
        """Running workers, and the queues they read (with a fresh read)."""
        now_ns = time_ns()
        with self._lock:
            states = list(self._workers.items())
        workers = []
        queues: dict[int, _QueueState] = {}
        for key, state in states:
            worker = state.worker()
            if worker is None or _stopped(worker):
                with self._lock:
                    self._workers.pop(key, None)
                continue
            workers.append((worker, state))
            queue = state.queue
            snapshot = queue.snapshot
            if snapshot is None:
                continue
            # The next read starts one interval after this one and may take its timeout.
            if now_ns - snapshot.read_ns < (queue.interval + queue.timeout()) * _NS:
                queues[id(queue)] = queue
            elif queue.stale_ns != snapshot.read_ns:  # once per read, from this thread only
                queue.stale_ns = snapshot.read_ns
                logger.warning(
                    "the last read of queue %s is %.0f s old: SAQ's worker_info tick did"
                    " not come; its gauges are dropped until the next read",
                    queue.attributes.get(MESSAGING_DESTINATION_NAME),
                    (now_ns - snapshot.read_ns) / _NS,
                )
        return workers, list(queues.values())

    def close(self) -> None:
        with self._lock:
            self._workers.clear()
            self._queues.clear()


# The gauges a meter keeps can be registered only once (the SDK ignores a second
# registration of a name), so their callbacks read whichever QueueHealth is current.
_current: QueueHealth | None = None
_registered: weakref.WeakSet[t.Any] = weakref.WeakSet()


def start(meter: Meter, recording: Callable[[], bool]) -> QueueHealth:
    """The QueueHealth of this instrument(), its gauges registered on ``meter``."""
    global _current
    _current = QueueHealth(recording)
    if meter not in _registered:
        _health_gauges.register(meter, _current_health)
        _registered.add(meter)
    return _current


def _current_health() -> QueueHealth | None:
    return _current


def stop(health: QueueHealth) -> None:
    global _current
    health.close()
    if _current is health:
        _current = None


def _stopped(worker: t.Any) -> bool:
    event = getattr(worker, "event", None)
    return bool(event is not None and event.is_set())
