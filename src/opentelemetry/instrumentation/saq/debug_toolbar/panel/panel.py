"""SAQPanel: the "Background Tasks" panel of litestar-debug-toolbar.

Add it next to the toolbar's panels and instrument SAQ; that is all::

    SAQInstrumentor().instrument()
    DebugToolbarConfig(extra_panels=["opentelemetry.instrumentation.saq.debug_toolbar.SAQPanel"])

Settings are class attributes; subclass to change them::

    class MyPanel(SAQPanel):
        show_arguments = False
"""

from __future__ import annotations

import logging
import threading
import time
import typing as t
import weakref
from collections import OrderedDict

from debug_toolbar.core.panel import Panel
from opentelemetry import trace
from opentelemetry.trace import SpanKind

from opentelemetry.instrumentation.saq import SAQInstrumentor, _capture
from opentelemetry.instrumentation.saq.arguments import ArgumentPolicy
from opentelemetry.instrumentation.saq.debug_toolbar.pages.trace_view import page_path
from opentelemetry.instrumentation.saq.debug_toolbar.panel import enqueues, job_logs, jobs, renderer
from opentelemetry.instrumentation.saq.debug_toolbar.panel.refresher import (
    Refresher,
    set_watch_seconds,
)
from opentelemetry.instrumentation.saq.debug_toolbar.tracing import (
    attach_store,
    trace_store,
    tracer,
)

if t.TYPE_CHECKING:
    from debug_toolbar.core.config import DebugToolbarConfig
    from debug_toolbar.core.context import RequestContext
    from debug_toolbar.core.toolbar import DebugToolbar
    from opentelemetry.context import Context
    from opentelemetry.trace import Span

logger = logging.getLogger(__name__)

_panels: weakref.WeakSet[SAQPanel] = weakref.WeakSet()  # for the adapters' shutdown

# Requests whose response never came (a crash between the hooks) must not pile up.
_MAX_OPEN_REQUESTS = 1000


class RequestJobs:
    """The enqueues of one request, told to us by the producer (see ``_capture``)."""

    def __init__(self, started_ns: int) -> None:
        self.started_ns = started_ns
        self.enqueued: list[_capture.EnqueuedJob] = []
        self.request_span: Span | None = None
        self.closed = False
        self._lock = threading.Lock()  # sync handlers enqueue from threads too

    def __call__(self, enqueued: _capture.EnqueuedJob) -> None:
        if not self.closed:
            self.enqueued.append(enqueued)

    def parent(self) -> Context | None:
        """A span for the request, started the first time a job needs one.

        Used only when no tracing middleware made a server span current, so that the
        request's jobs still share one trace id.
        """
        if self.closed:
            return None
        with self._lock:
            if self.request_span is None:
                self.request_span = tracer().start_span(
                    "HTTP request", kind=SpanKind.SERVER, start_time=self.started_ns
                )
        return trace.set_span_in_context(self.request_span)

    def close(self, metadata: dict[str, t.Any]) -> None:
        self.closed = True
        if self.request_span is None:
            return
        try:
            method, path = metadata.get("method"), metadata.get("path")
            if method and path:
                self.request_span.update_name(f"{method} {path}")
                self.request_span.set_attributes({"http.request.method": method, "url.path": path})
            self.request_span.end()
        except Exception:
            logger.warning("could not end the request span", exc_info=True)


class SAQPanel(Panel):
    """Every job the request enqueued, and what became of it: the toolbar's "Background
    Tasks" panel.

    Its settings are class attributes: set them on a subclass and list that subclass in
    ``extra_panels``. Serving a request never changes the app's tracer provider or where its
    log lines go, and a failure of ours never breaks the request: it is logged, and the
    panel says so.
    """

    panel_id = "SAQPanel"
    title = "Background Tasks"
    nav_title = "Background Tasks"
    has_content = True

    show_arguments: t.ClassVar[bool] = True
    """Show job arguments (redacted and truncated by ``argument_policy``)."""
    argument_policy: t.ClassVar[ArgumentPolicy] = ArgumentPolicy()
    """How the arguments are shown, secret-looking keys redacted and long values cut."""
    lookup_timeout: t.ClassVar[float] = 0.25
    """Seconds to wait for a queue when reading the state of jobs run elsewhere."""
    watch_seconds: t.ClassVar[float] = 300.0
    """After the response, keep refreshing unfinished jobs for this long."""
    watch_interval: t.ClassVar[float] = 0.5
    """Seconds between two reads of the followed jobs (one read per queue)."""
    max_followed_requests: t.ClassVar[int] = 200
    """Requests followed at once after their response; the oldest is dropped first."""
    install_tracer_provider: t.ClassVar[bool] = True
    """With no TracerProvider set when the toolbar starts, install one that keeps spans for
    the toolbar only. Turn off if the app sets its own later (then add ``trace_store()``
    to it); serving a request never changes the provider either way."""
    repeat_threshold: t.ClassVar[int] = 5
    """A function enqueued this many times one after another in a request (each call
    awaited before the next) gets a note: ``asyncio.gather`` of the enqueues sends them
    concurrently, still without waiting for the jobs (``queue.map`` would wait for them)."""
    capture_logs: t.ClassVar[bool] = True
    """Keep the log records written while a job runs in this process, under its attempt."""

    # Weakly referenced: the log capture lasts no longer than its panel.
    __slots__ = ("__weakref__", "_open", "_pending", "_refresher")

    def __init__(self, toolbar: DebugToolbar) -> None:
        super().__init__(toolbar)
        # One panel serves all concurrent requests: state is keyed by request id.
        self._open: OrderedDict[t.Any, RequestJobs] = OrderedDict()
        self._pending: dict[t.Any, tuple[str | None, list[jobs.TrackedJob]]] = {}
        self._refresher: Refresher | None = None  # one per app, made on first use
        set_watch_seconds(self.watch_seconds)  # for traces no request followed
        try:
            # The toolbar makes its panels at start-up: the one moment we touch OpenTelemetry.
            attach_store(install_provider=self.install_tracer_provider)
        except Exception:
            logger.warning("the SAQ panel could not attach its span store", exc_info=True)
        _panels.add(self)
        self.open()
        try:
            renderer.install()
        except Exception:  # the generic table is a fine panel too
            logger.debug("the SAQ panel keeps the toolbar's generic table", exc_info=True)

    def open(self) -> None:
        """Start keeping the log lines of jobs run in this process (``capture_logs``); done
        when the toolbar makes its panels, and again at each start-up of the app."""
        if self.capture_logs:
            try:
                job_logs.capture(self)
            except Exception:
                logger.warning("the SAQ panel could not capture job logs", exc_info=True)

    def close(self) -> None:
        """Stop keeping log lines for this panel, at the app's shutdown: the last panel to
        close leaves ``logging`` as it found it. ``SAQTracePlugin`` and
        ``mount_trace_pages`` call it; an app without them may call it itself."""
        try:
            job_logs.release(self)
        except Exception:  # never into the app's shutdown
            logger.warning("the SAQ panel could not stop capturing job logs", exc_info=True)

    # The toolbar calls these hooks outside any try on some response paths: an error here
    # would break the user's response, so each one logs and carries on instead.
    async def process_request(self, context: RequestContext) -> None:
        try:
            self._start(context)
        except Exception:
            logger.warning("the SAQ panel could not watch this request", exc_info=True)

    async def generate_stats(self, context: RequestContext) -> dict[str, t.Any]:
        try:
            return await self._stats(context)
        except Exception:
            logger.warning("the SAQ panel could not describe this request", exc_info=True)
            return {"summary": "the SAQ panel failed: see the application log", "jobs": []}

    async def process_response(self, context: RequestContext) -> None:
        try:
            self._follow(context)
        except Exception:
            logger.warning("the SAQ panel could not follow this request's jobs", exc_info=True)

    def generate_server_timing(self, context: RequestContext) -> dict[str, float]:
        """The request's enqueue time, as the toolbar's SQL panel gives its queries'."""
        try:
            stats = self.get_stats(context)
            seconds = stats.get("enqueue_time") if stats else None
            if isinstance(seconds, (int, float)) and stats.get("enqueue_count"):
                return {"saq": float(seconds)}
        except Exception:
            logger.warning("the SAQ panel could not add to Server-Timing", exc_info=True)
        return {}

    def _start(self, context: RequestContext) -> None:
        request = RequestJobs(time.time_ns())
        self._open[context.request_id] = request
        while len(self._open) > _MAX_OPEN_REQUESTS:
            _, stale = self._open.popitem(last=False)
            stale.close({})
        # Set in the request's own context: concurrent requests never see each other's jobs.
        _capture.listen(request)

    async def _stats(self, context: RequestContext) -> dict[str, t.Any]:
        request = self._open.pop(context.request_id, None)
        if request is None:
            return {"summary": "no jobs", "trace_id": None, "jobs": []}
        request.close(context.metadata)
        arguments = self.argument_policy if self.show_arguments else None
        tracked = [jobs.TrackedJob(e, jobs.new_entry(e, arguments)) for e in request.enqueued]
        entries = [item.entry for item in tracked]
        jobs.distinguish(entries)
        notes = await jobs.refresh(tracked, trace_store(), self.lookup_timeout)
        trace_id = _trace_id(request)
        stats: dict[str, t.Any] = {
            "trace_page": page_path(trace_id) if trace_id and entries else None,
            "trace_id": trace_id,
            "jobs": entries,
        }
        said = list(notes.values())
        if not SAQInstrumentor().is_instrumented_by_opentelemetry:
            said.append("SAQ is not instrumented: call SAQInstrumentor().instrument() at startup")
        cost = enqueues.analyse(tracked, self.repeat_threshold)
        stats.update(cost)
        issues = enqueues.notes(cost)
        if issues:
            stats["issues"] = issues
        jobs.describe(stats, tracked, said)
        # Kept for process_response, which hands the stored dict to the refresher.
        self._pending[context.request_id] = (trace_id, tracked)
        return stats

    def _follow(self, context: RequestContext) -> None:
        trace_id, tracked = self._pending.pop(context.request_id, (None, []))
        if not tracked:
            return
        # The toolbar stores this very dict (its storage copies shallowly), so updating it
        # in place makes a job that finishes after the response show up when opened later.
        stats = context.get_panel_data(self.get_panel_id())
        self.refresher().remember(
            context.request_id, int(trace_id, 16) if trace_id else None, stats, tracked
        )

    def refresher(self) -> Refresher:
        """The app's one refresher of unfinished jobs (one panel serves the whole app)."""
        if self._refresher is None:
            self._refresher = Refresher(
                panel_id=self.get_panel_id(),
                storage=getattr(self._toolbar, "storage", None),
                interval=self.watch_interval,
                watch_seconds=self.watch_seconds,
                lookup_timeout=self.lookup_timeout,
                max_requests=self.max_followed_requests,
            )
        return self._refresher

    def get_nav_subtitle(self) -> str:
        return "jobs this request enqueued"


def open_panels(config: DebugToolbarConfig) -> None:
    """``open()`` the live SAQ panels of the toolbars made with ``config`` (app start-up)."""
    for panel in _panels_of(config):
        panel.open()


def close_panels(config: DebugToolbarConfig) -> None:
    """``close()`` the live SAQ panels of the toolbars made with ``config`` (app shutdown)."""
    for panel in _panels_of(config):
        panel.close()


def _panels_of(config: DebugToolbarConfig) -> list[SAQPanel]:
    return [panel for panel in list(_panels) if panel._toolbar.config is config]


def _trace_id(request: RequestJobs) -> str | None:
    if request.enqueued:
        return f"{request.enqueued[0].trace_id:032x}"
    span_context = trace.get_current_span().get_span_context()
    return f"{span_context.trace_id:032x}" if span_context.is_valid else None
