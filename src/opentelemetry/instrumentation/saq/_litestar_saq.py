"""A warning for users of litestar-saq who turn on its own OpenTelemetry option as well.

litestar-saq 0.8's ``SAQConfig(enable_otel=True)`` gives its workers a before-process hook
that starts a CONSUMER span ``{queue} process`` of its own. Beside this instrumentation
that is a second span for every attempt (a child of ours, since ours is current by then),
and the trace context it looks for in ``job.meta["_otel_context"]`` is never written.
Nothing breaks, so we only say so, once per ``instrument()``, as early as it is known:

- at ``instrument()``, when litestar-saq's workers were already built with the option on
  (litestar-saq then holds its tracer in ``litestar_saq.instrumentation._tracer``);
- otherwise when they are built later: litestar-saq asks its ``get_tracer()`` for a tracer
  only when the option is on, so ``instrument()`` wraps it (``uninstrument()`` restores it).
"""

from __future__ import annotations

import importlib.util
import logging
import typing as t

from opentelemetry.instrumentation.saq._patching import Args, Kwargs, Patch, patch

logger = logging.getLogger(__name__)

DOUBLE_SPANS_WARNING = (
    "litestar-saq's own OpenTelemetry option (SAQConfig(enable_otel=True)) is on beside "
    "SAQInstrumentor: every job attempt gets a second CONSUMER span, litestar-saq's "
    "'{queue} process' inside ours 'process {queue}'. Leave enable_otel off: "
    "SAQInstrumentor already traces litestar-saq's enqueues and workers."
)


def warn_if_litestar_saq_otel() -> list[Patch]:
    """Warn if litestar-saq's own tracing is on, now or once it is turned on.

    Called by ``SAQInstrumentor.instrument()``; returns the patches for ``uninstrument()``
    to restore (none when litestar-saq is not installed).
    """
    try:
        if importlib.util.find_spec("litestar_saq") is None:
            return []
        from litestar_saq import instrumentation
    except Exception:  # a broken litestar-saq is not ours to report
        return []
    warned = False

    def warn_once() -> None:
        nonlocal warned
        if not warned:
            warned = True
            logger.warning(DOUBLE_SPANS_WARNING)

    if getattr(instrumentation, "_tracer", None) is not None:
        warn_once()
    if not callable(instrumentation.__dict__.get("get_tracer")):
        return []

    def get_tracer_and_warn(
        get_tracer: t.Callable[..., t.Any], instance: None, args: Args, kwargs: Kwargs
    ) -> t.Any:
        warn_once()
        return get_tracer(*args, **kwargs)

    return [patch(instrumentation, "get_tracer", get_tracer_and_warn)]
