"""The TraceStore the panel reads, and the one moment the toolbar touches OpenTelemetry.

Serving a request never changes process-wide OpenTelemetry state: ``trace_store()`` only
hands out the store. The store is attached to the provider SAQ spans go to once, by
``attach_store()``, when the toolbar creates its panels, at app start-up
(``DebugToolbarPlugin`` and ``setup_debug_toolbar`` build them with the app; a bare
Starlette middleware at the app's first call, its lifespan start-up). Then too, once per
process, the span and log stores start writing to files (``keep_on_disk``), so that a
reload or a crash of the app's process loses neither (see ``disk_store``).
"""

from __future__ import annotations

import logging
import os
import re
import threading
import weakref
from pathlib import Path

from opentelemetry import trace
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider

from opentelemetry.instrumentation.saq import SAQInstrumentor
from opentelemetry.instrumentation.saq._span_json import encode_span
from opentelemetry.instrumentation.saq.debug_toolbar.panel import job_logs
from opentelemetry.instrumentation.saq.disk_store import DiskStore
from opentelemetry.instrumentation.saq.trace_store import TraceStore

logger = logging.getLogger(__name__)

_lock = threading.Lock()
_store = TraceStore()
_attached: weakref.WeakSet[trace.TracerProvider] = weakref.WeakSet()  # feeding the store
_on_disk: list[DiskStore] = []  # the stores' files, opened once per process

STORE_ENV = "OTEL_PYTHON_SAQ_TOOLBAR_STORE"
"""The folder of the stores' files, or ``memory`` to keep them in memory only."""
DEFAULT_FOLDER = ".saq-toolbar"
"""In the working directory, as ``.pytest_cache`` is; it holds a ``.gitignore`` of ``*``."""
MEMORY_ONLY = "memory"


def trace_store() -> TraceStore:
    """The toolbar's TraceStore (a span processor). Reading it changes nothing: to have it
    see the spans of a provider you set after start-up, add it yourself:
    ``provider.add_span_processor(trace_store())``."""
    return _store


def attach_store(*, install_provider: bool) -> None:
    """Feed the store from the provider SAQ spans go to; called at start-up, when the
    toolbar creates its panels (see ``SAQPanel.install_tracer_provider``).

    When no provider is set yet and ``install_provider`` is true, a global one is
    installed that keeps spans for the toolbar only, and a warning says so: an app that
    sets its own later would be refused, so such an app turns this off.
    """
    provider = SAQInstrumentor().tracer_provider
    with _lock:
        if provider in _attached:
            return
        if isinstance(provider, trace.ProxyTracerProvider) and install_provider:
            local = TracerProvider(resource=Resource.create({"service.name": "saq-debug-toolbar"}))
            trace.set_tracer_provider(local)
            provider = trace.get_tracer_provider()
            if provider is local:
                logger.warning(
                    "No OpenTelemetry SDK TracerProvider is configured: the SAQ debug toolbar "
                    "installed one at start-up that keeps spans in memory for the toolbar only "
                    "(nothing is exported). To set your own later, set your provider before the "
                    "app starts, or turn this off with SAQPanel.install_tracer_provider = False."
                )
        if provider in _attached:
            return
        if isinstance(provider, TracerProvider):
            provider.add_span_processor(_store)
        elif isinstance(provider, trace.ProxyTracerProvider):
            logger.warning(
                "No OpenTelemetry SDK TracerProvider is configured yet: the SAQ panel reads job "
                "states from the queues only until you add its store to the provider you set: "
                "provider.add_span_processor(trace_store())."
            )
        else:
            logger.warning(
                "The tracer provider %r is not the OpenTelemetry SDK's: the SAQ panel cannot "
                "see spans and will read job states from the queues only.",
                provider,
            )
        _attached.add(provider)


def store_folder(setting: str | None) -> Path | None:
    """Where the stores' files go: the panel's ``store_path``, else the environment's
    ``OTEL_PYTHON_SAQ_TOOLBAR_STORE``, else ``.saq-toolbar`` in the working directory;
    None to keep memory only."""
    place = setting or os.environ.get(STORE_ENV) or DEFAULT_FOLDER
    return None if place.strip().lower() == MEMORY_ONLY else Path(place).expanduser().absolute()


def _app_name(provider: object) -> str:
    """The service name of the provider's resource, as a file name: one app, one file."""
    resource = getattr(provider, "resource", None)
    name = str(resource.attributes.get("service.name", "")) if resource is not None else ""
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", name).strip("._") or "app"


def open_disk_stores(folder: Path | None) -> None:
    """Have the span and the log store write to files in ``folder`` (None: memory only),
    once per process; a folder that cannot be made leaves them in memory, with a warning."""
    with _lock:
        if _on_disk or folder is None:
            return
        try:
            if not folder.is_dir():
                # Log lines, tracebacks and span attributes: the user's own, no one else's.
                folder.mkdir(parents=True, mode=0o700)
                (folder / ".gitignore").write_text("# made by the SAQ debug toolbar\n*\n")
        except OSError as error:
            logger.warning(
                "The SAQ toolbar keeps traces in memory only: cannot make %s (%s).", folder, error
            )
            return
        name = _app_name(SAQInstrumentor().tracer_provider)
        logs = job_logs.log_store()
        spans = DiskStore(
            folder / f"{name}.traces.sqlite3",
            encode_span,
            max_traces=_store.max_traces,
            max_bytes=_store.max_bytes,
        )
        lines = DiskStore(
            folder / f"{name}.logs.sqlite3",
            job_logs.encode_line,
            max_traces=logs.max_traces,
            max_bytes=logs.max_bytes,
        )
        for disk in (spans, lines):
            disk.start()
            _on_disk.append(disk)
        _store.keep_on_disk(spans)
        logs.keep_on_disk(lines)


def tracer() -> trace.Tracer:
    from opentelemetry.instrumentation.saq.version import __version__

    return SAQInstrumentor().tracer_provider.get_tracer(
        "opentelemetry.instrumentation.saq.debug_toolbar", __version__
    )
