"""The TraceStore the panel reads, attached to the provider SAQ spans go to."""

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
    """The toolbar's TraceStore, attached on first use (so a disabled panel costs nothing).

    It is attached to the provider SAQ spans go to (and again if that provider changes,
    as it does when ``instrument()`` is called again with another one). When the app
    configured no SDK TracerProvider, one is installed globally that only feeds this
    store: the toolbar runs in development, where that is what a user wants.
    """
    provider = SAQInstrumentor().tracer_provider
    if provider in _attached:
        return _store
    with _lock:
        if not isinstance(provider, TracerProvider):
            local = TracerProvider(resource=Resource.create({"service.name": "saq-debug-toolbar"}))
            trace.set_tracer_provider(local)
            provider = trace.get_tracer_provider()
            if provider is local:
                logger.warning(
                    "No OpenTelemetry SDK TracerProvider is configured: the SAQ debug toolbar "
                    "panel installed a local one that keeps spans in memory for the toolbar "
                    "only (nothing is exported)."
                )
        if provider in _attached:
            return _store
        if isinstance(provider, TracerProvider):
            provider.add_span_processor(_store)
        else:
            logger.warning(
                "The tracer provider %r is not the OpenTelemetry SDK's: the SAQ panel cannot "
                "see spans and will read job states from the queues only.",
                provider,
            )
        _attached.add(provider)
        return _store


def tracer() -> trace.Tracer:
    from opentelemetry.instrumentation.saq.version import __version__

    return SAQInstrumentor().tracer_provider.get_tracer(
        "opentelemetry.instrumentation.saq.debug_toolbar", __version__
    )
