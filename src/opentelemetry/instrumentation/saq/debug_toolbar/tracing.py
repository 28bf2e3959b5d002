"""The TraceStore the panel reads, and the one moment the toolbar touches OpenTelemetry.

Serving a request never changes process-wide OpenTelemetry state: ``trace_store()`` only
hands out the store. The store is attached to the provider SAQ spans go to once, by
``attach_store()``, when the toolbar creates its panels, at app start-up
(``DebugToolbarPlugin`` and ``setup_debug_toolbar`` build them with the app; a bare
Starlette middleware at the app's first call, its lifespan start-up).
"""

from __future__ import annotations

import logging
import threading
import weakref

from opentelemetry import trace
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider

from opentelemetry.instrumentation.saq import SAQInstrumentor
from opentelemetry.instrumentation.saq.trace_store import TraceStore

logger = logging.getLogger(__name__)

_lock = threading.Lock()
_store = TraceStore()
_attached: weakref.WeakSet[trace.TracerProvider] = weakref.WeakSet()  # feeding the store


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


def tracer() -> trace.Tracer:
    from opentelemetry.instrumentation.saq.version import __version__

    return SAQInstrumentor().tracer_provider.get_tracer(
        "opentelemetry.instrumentation.saq.debug_toolbar", __version__
    )
