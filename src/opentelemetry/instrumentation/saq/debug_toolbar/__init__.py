"""The "Background Tasks" panel for litestar-debug-toolbar (the ``debug-toolbar`` extra).

::

    DebugToolbarConfig(extra_panels=["opentelemetry.instrumentation.saq.debug_toolbar.SAQPanel"])

Its parts: ``panel/`` (the panel), ``pages/`` (the trace pages and their JSON API),
``receivers/`` (OTLP/HTTP for workers in other processes), and the framework adapters
``litestar`` (``SAQTracePlugin``) and ``starlette`` (``mount_trace_pages``), which serve the
pages and the receivers behind the one guard (``guard``), answering every error through
``error_pages``. ``templating`` renders the templates in ``templates/``; ``tracing`` holds
the TraceStore and attaches it, once, at start-up.
"""

from opentelemetry.instrumentation.saq.debug_toolbar.panel.panel import SAQPanel
from opentelemetry.instrumentation.saq.debug_toolbar.tracing import trace_store

__all__ = ["SAQPanel", "trace_store"]
