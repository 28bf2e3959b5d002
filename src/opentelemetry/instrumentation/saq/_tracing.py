"""Whether any span we start could be recorded: the API-only fast path.

With the OpenTelemetry API alone (no SDK configured) every span is a no-op, yet building
its attributes, links and context costs a job several microseconds: most of what the
instrumentation costs an app that installed it before configuring tracing, or never
did. So each enqueue and attempt asks this first, and skips the span work when no span
can record. Metrics do not depend on it: a meter provider may be set without a tracer
provider.
"""

from __future__ import annotations

from opentelemetry import trace

# What the global provider is until an SDK (or another implementation) is configured.
_NO_SDK = (trace.ProxyTracerProvider, trace.NoOpTracerProvider)


class SpansRecordable:
    """``check()`` is True once spans could record; cheap enough to call per job."""

    __slots__ = ("_explicit", "_on")

    def __init__(self, tracer_provider: trace.TracerProvider | None) -> None:
        self._explicit = tracer_provider is not None
        # A provider given to instrument() is used as is (an SDK provider decides per
        # span whether to record; sampling is not ours to second-guess).
        self._on = self._explicit and not isinstance(tracer_provider, _NO_SDK)

    def check(self) -> bool:
        if self._on:
            return True
        if self._explicit:
            return False
        if isinstance(trace.get_tracer_provider(), _NO_SDK):
            return False
        # The global provider can be set only once: from now on it stays configured.
        self._on = True
        return True
