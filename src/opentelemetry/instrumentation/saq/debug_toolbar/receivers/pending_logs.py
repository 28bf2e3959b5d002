"""Log lines that arrived before their trace: held a short while, apart from the LogStore.

A worker elsewhere exports its log lines every second and its spans every five
(``OTEL_BLRP_SCHEDULE_DELAY``, ``OTEL_BSP_SCHEDULE_DELAY``). For a trace the app's own
requests started that does not matter: the trace is here before the worker dequeues the
job. A trace no request of the app started (a remote cron tick, a job a script enqueued)
exists here only once the trace receiver has its SAQ spans, so its first lines come
before it. The logs receiver holds those lines here, and the trace receiver moves them
into the LogStore when the trace's spans arrive (``release``).

Anyone who can post to the receiver can post lines of made-up traces, so this area is
separate from the LogStore (it cannot push the app's lines out) and bounded: in bytes, as
the LogStore measures a line (``job_logs.line_bytes``), and in age. A line waits at most
``DEFAULT_MAX_AGE_S`` seconds from its arrival, longer than the span exporter's delay and
its retries; when its trace never comes it is dropped, and so are the oldest lines when
the bytes are full. Both are counted.
"""

from __future__ import annotations

import threading
import time
import typing as t
from collections import deque

from opentelemetry.instrumentation.saq.debug_toolbar.panel import job_logs

if t.TYPE_CHECKING:
    from collections.abc import Callable, Iterable

DEFAULT_MAX_BYTES = 4 * 1024 * 1024
"""The default bound on the memory the waiting lines hold, in bytes."""
DEFAULT_MAX_AGE_S = 30.0
"""How long a line waits for its trace by default: the SDK's span exporter sends every
5 s and retries a failed export for up to 10 s more."""
# A waiting line's entry (a tuple of four, its arrival time and its slot in the queue) and
# a waiting trace's entry in the count by trace, measured with tracemalloc (CPython 3.11).
_ENTRY_BYTES = 120
_TRACE_BYTES = 100


class PendingLines:
    """Lines of traces not held yet, in the order they arrived, within ``max_bytes`` bytes
    and ``max_age_s`` seconds; thread-safe, as exports are decoded in worker threads."""

    def __init__(
        self,
        max_bytes: int = DEFAULT_MAX_BYTES,
        max_age_s: float = DEFAULT_MAX_AGE_S,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.max_bytes = max_bytes
        self.max_age_s = max_age_s
        self.clock = clock
        self._lines: deque[tuple[float, int, job_logs.LogLine, int]] = deque()
        self._per_trace: dict[int, int] = {}  # how many lines each trace has waiting
        self._lock = threading.Lock()
        self.held_bytes = 0
        """The memory the waiting lines hold, in bytes (see ``job_logs.line_bytes``)."""
        self.expired_lines = 0
        """Lines dropped because their trace did not arrive in time."""
        self.dropped_lines = 0
        """Lines dropped to stay within ``max_bytes`` (the oldest first)."""
        self.moved_lines = 0
        """Lines handed to the LogStore once their trace arrived."""

    def hold(self, lines: Iterable[job_logs.LogLine]) -> tuple[int, int]:
        """Hold ``lines`` until their trace arrives: (how many of them are held, how many
        waiting lines were dropped on the way: aged out, or pushed out by newer ones to
        stay within ``max_bytes``). A line larger than the whole bound is not held."""
        sized = [(line, job_logs.line_bytes(line) + _ENTRY_BYTES) for line in lines]
        held = 0
        with self._lock:
            now = self.clock()
            gone = self._expire(now)
            for line, size in sized:
                cost = size + (0 if line.trace_id in self._per_trace else _TRACE_BYTES)
                if cost > self.max_bytes:
                    self.dropped_lines += 1
                    continue
                self._lines.append((now, line.trace_id, line, size))
                self._per_trace[line.trace_id] = self._per_trace.get(line.trace_id, 0) + 1
                self.held_bytes += cost
                held += 1
                # The oldest go first; never this line, which fits on its own.
                while self.held_bytes > self.max_bytes:
                    self._pop_oldest()
                    self.dropped_lines += 1
                    gone += 1
        return held, gone

    def waiting(self, trace_ids: Iterable[int]) -> set[int]:
        """Those of ``trace_ids`` that have lines waiting."""
        with self._lock:
            return {trace_id for trace_id in trace_ids if trace_id in self._per_trace}

    def release(self, trace_ids: Iterable[int], into: job_logs.LogStore) -> tuple[int, int]:
        """Move the waiting lines of ``trace_ids`` (traces now held) into ``into``, oldest
        first: (how many it kept, how many were dropped: aged out, or not kept by it)."""
        wanted = set(trace_ids)
        with self._lock:
            expired = self._expire(self.clock())
            wanted &= self._per_trace.keys()
            if not wanted:
                return 0, expired
            moving = [entry for entry in self._lines if entry[1] in wanted]
            self._lines = deque(entry for entry in self._lines if entry[1] not in wanted)
            for trace_id in wanted:
                del self._per_trace[trace_id]
            self.held_bytes -= sum(size for *_, size in moving) + _TRACE_BYTES * len(wanted)
            self.moved_lines += len(moving)
        # Outside the lock: the LogStore takes its own, and may write to its disk store.
        kept = sum(1 for *_, line, _ in moving if into.add(line))
        return kept, expired + len(moving) - kept

    def __len__(self) -> int:
        with self._lock:
            return len(self._lines)

    def clear(self) -> None:
        """Forget every waiting line."""
        with self._lock:
            self._lines.clear()
            self._per_trace.clear()
            self.held_bytes = 0

    def _expire(self, now: float) -> int:
        gone = 0
        while self._lines and now - self._lines[0][0] > self.max_age_s:
            self._pop_oldest()
            gone += 1
        self.expired_lines += gone
        return gone

    def _pop_oldest(self) -> None:
        _, trace_id, _, size = self._lines.popleft()
        self.held_bytes -= size
        left = self._per_trace[trace_id] - 1
        if left:
            self._per_trace[trace_id] = left
        else:
            del self._per_trace[trace_id]
            self.held_bytes -= _TRACE_BYTES


_pending = PendingLines()


def pending_lines() -> PendingLines:
    """The process's one area of lines waiting for their trace (the logs receiver's)."""
    return _pending
