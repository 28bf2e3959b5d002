"""OpenTelemetry instrumentation for `SAQ <https://github.com/tobymao/saq>`_.

Every enqueue gets a PRODUCER span ``send {queue}``; every attempt a worker makes gets a
CONSUMER span ``process {queue}`` in the producer's trace. The trace context travels in
``job.meta["opentelemetry"]``, so the trace crosses Redis or Postgres to workers in other
processes and on other machines.

Usage::

    from opentelemetry.instrumentation.saq import SAQInstrumentor

    SAQInstrumentor().instrument()

The options of ``instrument()`` are the keys of :class:`InstrumentOptions`, each documented
there and on the options reference page.
"""

from __future__ import annotations

import logging
import typing as t

from opentelemetry import metrics, trace
from opentelemetry.instrumentation.instrumentor import (  # type: ignore[attr-defined]
    BaseInstrumentor,
)

from opentelemetry.instrumentation.saq import _configured, _health, _hooks, _propagation, _quiet
from opentelemetry.instrumentation.saq._attributes import SCHEMA_URL
from opentelemetry.instrumentation.saq._consumer import Consumer
from opentelemetry.instrumentation.saq._flush import Flush, flush_timeout
from opentelemetry.instrumentation.saq._litestar_saq import warn_if_litestar_saq_otel
from opentelemetry.instrumentation.saq._metrics import Instruments
from opentelemetry.instrumentation.saq._overrides import Overrides
from opentelemetry.instrumentation.saq._patching import patch, queue_classes_defining, restore
from opentelemetry.instrumentation.saq._producer import Producer
from opentelemetry.instrumentation.saq._quiet import Quiet
from opentelemetry.instrumentation.saq.arguments import ArgumentPolicy
from opentelemetry.instrumentation.saq.package import _instruments
from opentelemetry.instrumentation.saq.version import __version__

if t.TYPE_CHECKING:
    from collections.abc import Collection

    from typing_extensions import Unpack

logger = logging.getLogger(__name__)

__all__ = ["META_KEY", "InstrumentOptions", "SAQInstrumentor", "SpanHook", "__version__"]

# Defined where they are used, documented here where they are public (Sphinx reads an
# assignment's docstring only in the module it documents).
META_KEY = _propagation.META_KEY
"""The key of ``job.meta`` that holds the trace context, ``job.meta["opentelemetry"]``.

A flat dict of strings, written just before SAQ saves the job. Your own ``meta`` keys
are kept; the dict is copied, never written into."""

SpanHook: t.TypeAlias = _hooks.SpanHook
"""The type of ``send_hook`` and ``process_hook``, ``hook(span, job)``.

A plain function, or a coroutine function, awaited before the enqueue or the attempt
goes on.

It is called only for spans that record, with the span and SAQ's ``Job``; what it returns
is ignored. A hook that raises is logged as a warning and never breaks the enqueue or the
job; its exception never reaches the code that enqueued or the job function.
"""


class InstrumentOptions(t.TypedDict, total=False):
    """The keyword arguments of ``SAQInstrumentor().instrument()``, all optional.

    Typed, so editors and mypy check them.
    """

    tracer_provider: trace.TracerProvider
    """Where spans go, by default the global tracer provider. The API's proxy provider (what
    ``trace.get_tracer_provider()`` returns before the SDK is set) follows the global
    provider once it is set."""

    meter_provider: metrics.MeterProvider
    """Where metrics go, by default the global meter provider. With none configured, no
    metric work is done at all."""

    use_links: bool
    """When True, each attempt starts a trace of its own, linked to the producer's send span,
    instead of being its child (and linked). Default False."""

    record_caller: bool
    """When True, every send span carries ``code.file.path``, ``code.line.number`` and
    ``code.function.name`` of the code that enqueued the job. Default False (the debug
    toolbar panel records them for the requests it watches regardless)."""

    record_arguments: bool
    """When True, send spans carry ``saq.job.kwargs``, the job's arguments as JSON, with
    secret-looking keys redacted and long values cut (``ArgumentPolicy()``). Default False:
    arguments can hold secrets, and are never read unless you opt in."""

    argument_policy: ArgumentPolicy
    """How ``saq.job.kwargs`` is rendered, with the words that mark a key as secret and the
    length limits. Giving one implies ``record_arguments=True``. Default none: nothing is
    recorded."""

    send_hook: SpanHook
    """``hook(span, job)``, called for every recording send span once the job exists, before
    its context is written into the job: add your own attributes. Default: none."""

    process_hook: SpanHook
    """``hook(span, job)``, called for every recording process span when the attempt starts,
    before SAQ's ``before_process`` hooks. Default: none."""

    queue_health: bool
    """When True, workers report their queue's health as gauges (jobs by state, the oldest
    ready job's age, workers alive, busy slots against concurrency), reading the queue once
    per SAQ's ``worker_info`` timer, never on a job's path. Default False: nothing is read."""

    enable_internal_instrumentation: bool
    """When True, other instrumentations (Redis, psycopg, aiohttp-client) trace every call
    SAQ's own machinery makes (schedule, sweep, stats, abort polling, dequeue). Default False:
    that machinery runs with instrumentation suppressed; the user's code never does."""

    internal_instrumentation_in_jobs: bool
    """When False, SAQ's own calls inside a send or process span (the enqueue script, the
    status writes after the job ran) are suppressed too. Default True: they are traced as
    the span's children."""

    flush_timeout: float
    """Seconds a stopping worker waits for the tracer and meter providers to export what
    they buffer; 0 turns the flush off. Default 5. A bad value is logged and 5 used."""

    skip_dep_check: bool
    """An option of ``BaseInstrumentor``'s own. When True, instrument whatever SAQ version is
    installed, without checking it against the supported range. Default False."""


class SAQInstrumentor(BaseInstrumentor):  # type: ignore[misc]
    """Traces SAQ enqueues and job attempts, and records their metrics.

    Call ``instrument()`` once per process, in the app and in every worker's process.
    It never raises into your code and never changes what SAQ does: if our code fails, it
    logs a warning on the ``opentelemetry.instrumentation.saq`` logger and SAQ carries on
    as if uninstrumented. It never records job arguments unless asked to.

    Example::

        SAQInstrumentor().instrument(tracer_provider=provider)
    """

    def instrumentation_dependencies(self) -> Collection[str]:
        """The SAQ versions supported, as requirement strings (``saq >= ...``)."""
        return _instruments

    def instrument(self, **kwargs: Unpack[InstrumentOptions]) -> None:
        """Instrument SAQ; the keyword arguments are :class:`InstrumentOptions`.

        Instrumenting twice does nothing the second time (a warning is logged). If SAQ
        cannot be patched, it is left as it was, a warning is logged, and a later call may
        try again.
        """
        self._failed = False
        super().instrument(**kwargs)
        if self._failed:
            # BaseInstrumentor marks us instrumented once _instrument returns, even when it
            # put SAQ back as it was: a later instrument() must be able to try again, and
            # the panel must say that SAQ is not instrumented.
            self._is_instrumented_by_opentelemetry = False

    def uninstrument(self, **kwargs: t.Any) -> None:
        """Put back every SAQ function it wrapped (the original objects) and stop the
        queue-health reads."""
        super().uninstrument(**kwargs)

    @property
    def tracer_provider(self) -> trace.TracerProvider:
        """The provider SAQ spans go to, the one given to instrument() or the global one."""
        provider: trace.TracerProvider | None = getattr(self, "_tracer_provider", None)
        return provider if provider is not None else trace.get_tracer_provider()

    def _instrument(self, **kwargs: t.Any) -> None:
        options = t.cast(InstrumentOptions, kwargs)
        tracer_provider = options.get("tracer_provider")
        meter_provider = options.get("meter_provider")
        if isinstance(tracer_provider, trace.ProxyTracerProvider):
            tracer_provider = None  # the global provider, whenever it is set
        self._tracer_provider = tracer_provider
        tracer = trace.get_tracer(
            __name__, __version__, tracer_provider=tracer_provider, schema_url=SCHEMA_URL
        )
        meter = metrics.get_meter(
            __name__, __version__, meter_provider=meter_provider, schema_url=SCHEMA_URL
        )
        instruments = Instruments(meter)
        _configured.warn_if_the_api_moved()
        spans = _configured.spans(tracer_provider)
        meters = _configured.meters(meter_provider)
        arguments = options.get("argument_policy")
        if arguments is None and options.get("record_arguments"):
            arguments = ArgumentPolicy()
        producer = Producer(
            tracer,
            instruments,
            spans,
            meters,
            record_caller=bool(options.get("record_caller", False)),
            arguments=arguments,
            send_hook=options.get("send_hook"),
        )
        consumer = Consumer(
            tracer,
            instruments,
            spans,
            meters,
            use_links=bool(options.get("use_links", False)),
            process_hook=options.get("process_hook"),
        )
        # Imported here: `opentelemetry-instrument` loads this module before checking that
        # SAQ is installed at all.
        from saq.job import Job
        from saq.queue.base import Queue
        from saq.worker import Worker

        # SAQ's machinery out of other instrumentations' sight (see _quiet): some patches
        # go under our wrappers, some over them.
        quiet = None
        if not options.get("enable_internal_instrumentation", False) and _quiet.available():
            quiet = Quiet(in_jobs=bool(options.get("internal_instrumentation_in_jobs", True)))
        timeout = flush_timeout(options.get("flush_timeout"))
        self._health: _health.QueueHealth | None = None
        self._patches = []
        try:
            self._patches += quiet.patches_under_ours() if quiet is not None else []
            self._patches += [
                patch(Queue, "enqueue", producer.wrap_enqueue()),
                patch(Queue, "_before_enqueue", producer.wrap_before_enqueue()),
                patch(Queue, "map", producer.wrap_map()),
                patch(Queue, "retry", consumer.wrap_retry()),
                patch(Queue, "finish_abort", consumer.wrap_finish_abort()),
                patch(Job, "next_retry_delay", consumer.wrap_retry_delay()),
                patch(Worker, "schedule", producer.wrap_schedule()),
                patch(Worker, "_before_process", consumer.wrap_before_process()),
                patch(Worker, "_after_process", consumer.wrap_after_process()),
            ]
            try:
                from saq.queue.http import HttpProxy
            except Exception:  # saq[http] (aiohttp) is not installed: nothing to proxy
                pass
            else:
                self._patches.append(patch(HttpProxy, "process", producer.wrap_proxy_process()))
            # SAQ's Redis and HTTP queues override finish_abort and reach Queue's only after a
            # round trip of their own: the abort must be noted as the abort loop calls it, before
            # the attempt that swallowed it ends (see Consumer.wrap_finish_abort).
            finish_abort = consumer.wrap_finish_abort()
            for owner in _queues_overriding("finish_abort"):
                self._patches.append(patch(owner, "finish_abort", finish_abort))
            self._patches += warn_if_litestar_saq_otel()
            if options.get("queue_health"):
                self._health = _health.start(meter, meters.check)
                self._patches.append(patch(Worker, "worker_info", self._health.wrap_worker_info()))
            if quiet is not None:
                self._patches += quiet.patches_over_ours()
            # Once Worker's hooks are wrapped: the same wrappers on subclasses' overrides.
            overrides = Overrides(Worker, self._patches)
            self._patches.append(patch(Worker, "__init__", overrides.covering_init))
            overrides.cover_existing()
            end_read = self._health.end_read if self._health is not None else None
            flush = Flush(tracer_provider, meter_provider, timeout, end_read)
            self._patches.append(patch(Worker, "stop", flush.wrap_stop()))
        except Exception:
            # SAQ as it was, rather than half-patched for good: uninstrument() would not
            # undo what an instrument() that raised left behind.
            logger.warning("could not instrument SAQ: it runs uninstrumented", exc_info=True)
            self._uninstrument()
            self._failed = True

    def _uninstrument(self, **kwargs: t.Any) -> None:
        restore(getattr(self, "_patches", ()))
        self._patches = []
        health: _health.QueueHealth | None = getattr(self, "_health", None)
        if health is not None:
            _health.stop(health)
            self._health = None


def _queues_overriding(name: str) -> list[type]:
    """SAQ's Redis and HTTP queue classes that define ``name`` themselves."""
    return [
        owner
        for owner in queue_classes_defining(name)
        if owner.__name__ in ("RedisQueue", "HttpQueue")
    ]
