"""The "Background Tasks" panel for litestar-debug-toolbar (the ``debug-toolbar`` extra).

::

    DebugToolbarConfig(extra_panels=["opentelemetry.instrumentation.saq.debug_toolbar.SAQPanel"])
"""

from opentelemetry.instrumentation.saq.debug_toolbar.panel import SAQPanel
from opentelemetry.instrumentation.saq.debug_toolbar.tracing import trace_store

__all__ = ["SAQPanel", "trace_store"]
