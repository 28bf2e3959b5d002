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

Those globals, and the proxy meter provider's class, are private names of the API: read
without importing them by name, so that an API that moves one costs this shortcut (one
warning at ``instrument()``), never the import of the package.
"""

from __future__ import annotations

import importlib
import logging
import typing as t

from opentelemetry import metrics, trace

logger = logging.getLogger(__name__)


def _private_metrics_api() -> object | None:
    try:  # where opentelemetry-api 1.x keeps the global meter provider and its stand-in
        return importlib.import_module("opentelemetry.metrics._internal")
    except ImportError:
        return None


_metrics_api = _private_metrics_api()
# The API's stand-in until a global meter provider is set has no public name: without it,
# a proxy is never taken for one (metric points are recorded through it, as with the SDK).
_ProxyMeterProviderType: type = getattr(_metrics_api, "_ProxyMeterProvider", type(None))
_warned = False

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


def warn_if_the_api_moved() -> None:
    """Say once per process which of the API's private names this shortcut could not find."""
    global _warned
    found = {
        "opentelemetry.trace._TRACER_PROVIDER": hasattr(trace, "_TRACER_PROVIDER"),
        "opentelemetry.metrics._internal._METER_PROVIDER": hasattr(_metrics_api, "_METER_PROVIDER"),
        "opentelemetry.metrics._internal._ProxyMeterProvider": (
            _ProxyMeterProviderType is not type(None)
        ),
    }
    missing = [name for name, there in found.items() if not there]
    if missing and not _warned:
        _warned = True
        logger.warning(
            "this opentelemetry-api has no %s: SAQ is instrumented as usual, but while no "
            "SDK is configured its jobs cost more than they would",
            ", ".join(missing),
        )
