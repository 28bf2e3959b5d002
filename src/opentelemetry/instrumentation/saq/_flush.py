"""Spans of finished attempts survive the worker's shutdown.

``saq settings --workers N`` starts N-1 workers with ``multiprocessing``, whose children
leave through ``os._exit``: the ``atexit`` handler where the SDK flushes its
``BatchSpanProcessor`` never runs there, and every buffered span is lost. So when a worker
stops (``Worker.stop`` returns, once its last attempt has ended), the tracer and meter
providers the instrumentation uses are flushed, in every process.

``force_flush`` blocks: it runs in a daemon thread of its own, never on the event loop and
never holding up the interpreter's exit, and the stop waits for it at most
``flush_timeout`` seconds. A flush that fails or runs out of time is logged, never raised.
A provider that refuses at once (the SDK's tracer provider does once shut down, as the
app's own shutdown hook may have done before the worker's stop returns) holds nothing left
to export: that is no warning.

Only the stop call that stopped the worker flushes: ``Worker.stop`` is called more than
once per shutdown (by whoever stops the worker, then by ``Worker.start`` on its way out),
and each flush may wait ``flush_timeout``. A stop that is cancelled starts its flush but
does not wait for it: the cancellation goes on at once.

This is the one wrapper of ``Worker.stop``: what else the instrumentation must end for a
stopping worker (its queue-health read) is ended here too, before the flush, so that
nothing of ours is still running while the providers export.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import threading
import time
import typing as t
import weakref

from opentelemetry import metrics, trace

if t.TYPE_CHECKING:
    from opentelemetry.instrumentation.saq._patching import Args, Kwargs, Method, Wrapper

logger = logging.getLogger(__name__)

EndWorker = t.Callable[[t.Any, bool], t.Awaitable[None]]

# Seconds a stopping worker waits for the providers to export what they buffer.
DEFAULT_FLUSH_TIMEOUT = 5.0


def flush_timeout(value: object) -> float:
    """The ``flush_timeout`` option: seconds, at least 0; a bad value is logged and the
    default used (``instrument()`` never raises into the user's code)."""
    if value is None:
        return DEFAULT_FLUSH_TIMEOUT
    try:
        seconds = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        seconds = math.nan
    if not 0 <= seconds < math.inf:
        logger.warning(
            "flush_timeout=%r is not a number of seconds: using %s", value, DEFAULT_FLUSH_TIMEOUT
        )
        return DEFAULT_FLUSH_TIMEOUT
    return seconds


class Flush:
    """Flushes the providers SAQ's spans and metrics go to when a worker stops."""

    def __init__(
        self,
        tracer_provider: trace.TracerProvider | None,
        meter_provider: metrics.MeterProvider | None,
        timeout: float = DEFAULT_FLUSH_TIMEOUT,
        end_worker: EndWorker | None = None,
    ) -> None:
        # Ends what else of ours runs for a stopping worker: (worker, wait) -> never raises.
        self._end_worker = end_worker
        self._tracer_provider = tracer_provider  # None: the global one, when the worker stops
        self._meter_provider = meter_provider
        self._timeout = timeout
        # Each worker and the ``event`` of the run whose stop has flushed already.
        self._flushed: weakref.WeakKeyDictionary[t.Any, t.Any] = weakref.WeakKeyDictionary()

    def wrap_stop(self) -> Wrapper:
        """The wrapper of ``Worker.stop``."""

        async def flushing_stop(stop: Method, worker: t.Any, args: Args, kwargs: Kwargs) -> None:
            stopper = self._stops_on_entry(worker)
            cancelled = False
            try:
                await stop(*args, **kwargs)
            except asyncio.CancelledError:
                cancelled = True
                raise
            finally:
                if self._end_worker is not None:
                    await self._end_worker(worker, not cancelled)
                if stopper or self._stopped_by_this_call(worker):
                    if cancelled:
                        self._start_flush()
                    else:
                        await self.flush()

        return flushing_stop

    def _stops_on_entry(self, worker: t.Any) -> bool:
        # SAQ 0.26 guards its stop (a lock, then ``_stopped``): a call after the first returns
        # at once, so which call stopped the worker is known only when it returns. Older SAQ
        # stops again on every call: the first call of a run is the one that stops it.
        return "_stopped" not in _attributes(worker) and self._claim(worker)

    def _stopped_by_this_call(self, worker: t.Any) -> bool:
        # Under SAQ 0.26's lock the call that stopped the worker returns first: the calls
        # waiting for the lock resume only after it has.
        return _attributes(worker).get("_stopped") is True and self._claim(worker)

    def _claim(self, worker: t.Any) -> bool:
        """True once per run of ``worker`` (``Worker.start`` makes a new ``event``)."""
        try:
            run = getattr(worker, "event", None)
            if worker in self._flushed and self._flushed[worker] is run:
                return False
            self._flushed[worker] = run
        except Exception:  # a worker we cannot keep track of: flush, as on every stop
            logger.debug("cannot tell whether this stop flushed already", exc_info=True)
        return True

    async def flush(self) -> None:
        """Flush the providers in a thread; wait at most the timeout; never raise."""
        try:
            done = self._start()
            if done is not None:
                await asyncio.wait_for(done, self._timeout)
        except asyncio.TimeoutError:
            logger.warning(
                "the tracer and meter providers did not flush within %ss; "
                "spans and metrics still buffered may be lost",
                self._timeout,
            )
        except Exception:
            logger.warning("could not flush the tracer and meter providers", exc_info=True)

    def _start_flush(self) -> None:
        """Flush the providers in a thread, waiting for nothing; never raise."""
        try:
            self._start()
        except Exception:
            logger.warning("could not flush the tracer and meter providers", exc_info=True)

    def _start(self) -> asyncio.Future[None] | None:
        """The flush thread started; its future is settled when it is done (None: no flush)."""
        providers = self._providers()
        if not providers or self._timeout <= 0:
            return None
        loop = asyncio.get_running_loop()
        done = loop.create_future()
        thread = threading.Thread(
            target=_flush_all,
            args=(providers, self._timeout, loop, done),
            name="saq-otel-flush",
            daemon=True,
        )
        thread.start()
        return done

    def _providers(self) -> list[t.Any]:
        tracer_provider = self._tracer_provider or trace.get_tracer_provider()
        meter_provider = self._meter_provider or metrics.get_meter_provider()
        return [
            provider
            for provider in (tracer_provider, meter_provider)
            if callable(getattr(provider, "force_flush", None))
        ]


def _attributes(worker: t.Any) -> dict[str, t.Any]:
    attributes = getattr(worker, "__dict__", None)
    return attributes if isinstance(attributes, dict) else {}


def _flush_all(
    providers: list[t.Any],
    timeout: float,
    loop: asyncio.AbstractEventLoop,
    done: asyncio.Future[None],
) -> None:
    """In the flush thread: each provider gets what is left of the one timeout."""
    deadline = time.monotonic() + timeout
    for provider in providers:
        started = time.monotonic()
        remaining_ms = max(0, int((deadline - started) * 1000))
        try:
            flushed = provider.force_flush(timeout_millis=remaining_ms)
        except Exception:
            logger.warning("%s failed to flush", type(provider).__name__, exc_info=True)
            continue
        if flushed is not False:
            continue
        if (time.monotonic() - started) * 1000 < remaining_ms / 2:
            # Refused, not late: the SDK's answer once the provider is shut down, which the
            # app's own shutdown hook may have done already. It has nothing left to export.
            logger.debug("%s refused to flush: shut down already", type(provider).__name__)
        else:
            logger.warning("%s did not flush in time", type(provider).__name__)
    with contextlib.suppress(RuntimeError):  # the loop is closed: nobody waits any more
        loop.call_soon_threadsafe(_settle, done)


def _settle(done: asyncio.Future[None]) -> None:
    if not done.done():  # not given up on by wait_for
        done.set_result(None)
