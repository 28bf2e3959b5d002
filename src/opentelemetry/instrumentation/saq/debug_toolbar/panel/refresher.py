"""Following unfinished jobs after the response: one refresher per app, bounded work.

A request whose jobs are still queued or running when its response goes out is handed
to the app's one ``Refresher``. Each tick it reads every followed job with one read per
queue (``jobs.refresh`` batches by queue: SAQ's ``queue.jobs``), updates the stats the
toolbar stored, and stops following a request once its jobs are final or its watch
window is over. It follows at most ``max_requests`` requests (the oldest is dropped
first, and counted) and its task ends when nothing is left to follow, so an idle app
does no work at all.

The trace pages ask it too: for a job with no spans in this process, the page shows the
state of the very entry the panel shows (refreshed with the same queue lookup), so the
page and the panel never disagree.
"""

from __future__ import annotations

import asyncio
import logging
import time
import typing as t
import weakref
from collections import OrderedDict

from opentelemetry.instrumentation.saq.debug_toolbar.panel import jobs
from opentelemetry.instrumentation.saq.debug_toolbar.tracing import trace_store

if t.TYPE_CHECKING:
    from debug_toolbar.core.storage import ToolbarStorage

logger = logging.getLogger(__name__)

_refreshers: weakref.WeakSet[Refresher] = weakref.WeakSet()
# The watch window of the app's panel, set when the panel is built: the trace pages use
# it for traces no request followed (a subclass's setting, not the base class's).
_panel_watch_seconds: float | None = None


def set_watch_seconds(seconds: float) -> None:
    """Called by the panel when the toolbar builds it (the last one built wins)."""
    global _panel_watch_seconds
    try:
        _panel_watch_seconds = float(seconds)
    except (TypeError, ValueError):
        logger.warning("SAQPanel.watch_seconds is not a number: %r; using the default", seconds)


def watch_seconds(default: float) -> float:
    """The panel's watch window, or ``default`` when no panel was built in this process."""
    return default if _panel_watch_seconds is None else _panel_watch_seconds


class Followed:
    """One request's jobs, and the stats dict the toolbar stored for it."""

    __slots__ = ("checked_at", "deadline", "request_id", "stats", "trace_id", "tracked")

    def __init__(
        self,
        request_id: t.Any,
        trace_id: int | None,
        stats: dict[str, t.Any],
        tracked: list[jobs.TrackedJob],
        deadline: float,
    ) -> None:
        self.request_id = request_id
        self.trace_id = trace_id
        self.stats = stats
        self.tracked = tracked
        self.deadline = deadline
        self.checked_at = time.time()
        """When the jobs were last read (epoch seconds): how fresh the panel is."""

    @property
    def watched(self) -> bool:
        """Whether the watch window is still open (it ends ``watch_seconds`` after the
        response, final or not)."""
        return time.monotonic() <= self.deadline

    @property
    def final(self) -> bool:
        return all(item.entry["status"] in jobs.TERMINAL for item in self.tracked)


class Refresher:
    """Follows the unfinished jobs of recent requests (see the module docstring)."""

    def __init__(
        self,
        *,
        panel_id: str,
        storage: ToolbarStorage | None,
        interval: float,
        watch_seconds: float,
        lookup_timeout: float,
        max_requests: int,
    ) -> None:
        self.panel_id = panel_id
        self.storage = storage
        self.interval = interval
        self.watch_seconds = watch_seconds
        self.lookup_timeout = lookup_timeout
        self.max_requests = max_requests
        self.dropped_requests = 0
        """Requests no longer followed because newer ones took their place."""
        self.ticks = 0
        """Refresh rounds run (each one reads each queue once)."""
        self._followed: OrderedDict[t.Any, Followed] = OrderedDict()
        # Recent requests by trace, followed or not: what the trace pages look up.
        self._by_trace: OrderedDict[int, Followed] = OrderedDict()
        self._task: asyncio.Task[None] | None = None
        _refreshers.add(self)

    def remember(
        self,
        request_id: t.Any,
        trace_id: int | None,
        stats: dict[str, t.Any],
        tracked: list[jobs.TrackedJob],
    ) -> Followed:
        """Record a request's jobs for the trace pages; follow them if unfinished."""
        followed = Followed(
            request_id, trace_id, stats, tracked, time.monotonic() + self.watch_seconds
        )
        if trace_id is not None:
            self._by_trace[trace_id] = followed
            self._by_trace.move_to_end(trace_id)
            while len(self._by_trace) > self.max_requests:
                self._by_trace.popitem(last=False)
        if followed.final:
            return followed
        self._followed[request_id] = followed
        while len(self._followed) > self.max_requests:
            self._followed.popitem(last=False)
            self.dropped_requests += 1
        if self._task is None or self._task.done():
            self._task = asyncio.get_running_loop().create_task(self._run())
        return followed

    @property
    def following(self) -> int:
        return len(self._followed)

    def follows(self, followed: Followed) -> bool:
        """Whether its jobs are still read each tick (unfinished, watched, not dropped)."""
        return self._followed.get(followed.request_id) is followed and not followed.final

    def of_trace(self, trace_id: int) -> Followed | None:
        return self._by_trace.get(trace_id)

    async def refresh_trace(self, trace_id: int) -> Followed | None:
        """Bring a trace's jobs up to date now (for a page), as a tick would."""
        followed = self._by_trace.get(trace_id)
        if followed is not None and not followed.final:
            await self._refresh([followed])
        return followed

    async def _run(self) -> None:
        try:
            while self._followed:
                await asyncio.sleep(self.interval)
                now = time.monotonic()
                for request_id, followed in list(self._followed.items()):
                    if followed.final or now > followed.deadline:
                        del self._followed[request_id]
                if self._followed:
                    await self._refresh(list(self._followed.values()))
                    self.ticks += 1
        except Exception:
            logger.warning("stopped refreshing the jobs of followed requests", exc_info=True)
            self._followed.clear()

    async def _refresh(self, requests: list[Followed]) -> None:
        tracked = [item for followed in requests for item in followed.tracked]
        # One call for all: jobs.refresh reads each queue once, whatever the requests.
        notes = await jobs.refresh(tracked, trace_store(), self.lookup_timeout)
        checked_at = time.time()
        for followed in requests:
            followed.checked_at = checked_at
            queues = {item.entry["queue"] for item in followed.tracked}
            jobs.describe(
                followed.stats, followed.tracked, [notes[q] for q in sorted(queues) if q in notes]
            )
            self._store(followed)
        save = getattr(self.storage, "_save", None)  # FileToolbarStorage's own writer
        # Written whenever a followed request was refreshed: a storage that holds the very
        # dict updated in place (its cache) has the update in memory, not yet in its file.
        if callable(save):
            try:
                save()
            except Exception:
                logger.warning("could not save refreshed jobs to the storage", exc_info=True)

    def _store(self, followed: Followed) -> bool:
        """Make the update reach the toolbar's storage; says whether a copy was written.

        The in-memory storage holds the very dict updated in place. A storage that hands
        out copies (``FileToolbarStorage`` reads its JSON file back) gets the new stats
        written into its record, without moving the request in the history.
        """
        if self.storage is None:
            return False
        try:
            record = self.storage.get(followed.request_id)
            panel_data = record.get("panel_data") if record is not None else None
            if not isinstance(panel_data, dict) or panel_data.get(self.panel_id) is followed.stats:
                return False
            panel_data[self.panel_id] = dict(followed.stats)
            return True
        except Exception:
            logger.warning("could not write refreshed jobs to the toolbar storage", exc_info=True)
            return False


def for_trace(trace_id: int) -> Refresher | None:
    """The refresher that knows the request of this trace, if any."""
    for refresher in list(_refreshers):
        if refresher.of_trace(trace_id) is not None:
            return refresher
    return None
