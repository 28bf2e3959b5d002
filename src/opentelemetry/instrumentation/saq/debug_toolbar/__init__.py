"""The "Background Tasks" panel for litestar-debug-toolbar (the ``debug-toolbar`` extra).

::

    DebugToolbarConfig(extra_panels=["opentelemetry.instrumentation.saq.debug_toolbar.SAQPanel"])
"""

from opentelemetry.instrumentation.saq.debug_toolbar.panel import SAQPanel

__all__ = ["SAQPanel"]
