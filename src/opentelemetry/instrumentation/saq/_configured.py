"""Whether spans and metric points could record at all: each job asks, cheaply.

With the OpenTelemetry API alone (no SDK configured) every span and metric point is a
no-op, yet building attributes, links and contexts costs a job several microseconds:
most of what the instrumentation costs an app that installed it before configuring
telemetry, or never did. A provider given to ``instrument()`` is settled at once; the
global one is looked at per job only until it is set, which happens once, and then cached.

Looking at it must cost less than the work it saves: ``get_tracer_provider()`` and
``get_meter_provider()`` look up an environment variable on every call until a provider
is set (some 50 bytecodes). So while none is set we read the API's own "is a global
provider set" global, the one its proxy tracers and meters read on every call, and fall
back to the public getters if a future API renames it (a test pins both paths).
"""

from __future__ import annotations

import typing as t

from opentelemetry import metrics, trace
from opentelemetry.metrics import _internal as _metrics_api

try:  # the API's stand-in until a global meter provider is set has no public name
    from opentelemetry.metrics._internal import _ProxyMeterProvider as _ProxyMeterProviderType
except ImportError:  # pragma: no cover - a future API: never taken for a proxy
    _ProxyMeterProviderType = type(None)  # type: ignore[assignment,misc]

_UNKNOWN = object()


def _global_set(module: object, name: str) -> t.Callable[[], bool] | None:
    """A cheap "has the global provider been set?", or None where the API has no such global."""
    if getattr(module, name, _UNKNOWN) is _UNKNOWN:
        return None
    return lambda: getattr(module, name) is not None


class Configured:
    """``check()`` is True once the provider could record; cheap enough to call per job."""

    __slots__ = ("_get_global", "_is_set", "_noop", "_proxy", "_state")

    def __init__(
        self,
        given: object | None,
        get_global: t.Callable[[], object],
        proxy: type,
        noop: type,
        is_set: t.Callable[[], bool] | None = None,
    ) -> None:
        self._get_global = get_global
        self._is_set = is_set
        self._proxy = proxy
        self._noop = noop
        # None: follow the global provider. A proxy passed explicitly (the contrib idiom
        # `tracer_provider=trace.get_tracer_provider()` before the SDK is set) is the
        # global one too: the tracers it hands out follow the global provider.
        self._state: bool | None = None
        if given is not None and not isinstance(given, proxy):
            self._state = not isinstance(given, noop)

    def check(self) -> bool:
        state = self._state
        if state is not None:
            return state
        is_set = self._is_set
        if is_set is not None and not is_set():
            return False  # not configured yet
        provider = self._get_global()
        if isinstance(provider, self._proxy):
            return False  # not configured yet
        # The global provider can be set only once: from now on the answer stays.
        self._state = not isinstance(provider, self._noop)
        return self._state


def spans(tracer_provider: trace.TracerProvider | None) -> Configured:
    return Configured(
        tracer_provider,
        trace.get_tracer_provider,
        trace.ProxyTracerProvider,
        trace.NoOpTracerProvider,
        _global_set(trace, "_TRACER_PROVIDER"),
    )


def meters(meter_provider: metrics.MeterProvider | None) -> Configured:
    return Configured(
        meter_provider,
        metrics.get_meter_provider,
        _ProxyMeterProviderType,
        metrics.NoOpMeterProvider,
        _global_set(_metrics_api, "_METER_PROVIDER"),
    )
