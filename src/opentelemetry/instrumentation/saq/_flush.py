"""Spans of finished attempts survive the worker's shutdown.

``saq settings --workers N`` starts N-1 workers with ``multiprocessing``, whose children
leave through ``os._exit``: the ``atexit`` handler where the SDK flushes its
``BatchSpanProcessor`` never runs there, and every buffered span is lost. So when a worker
stops (``Worker.stop`` returns, once its last attempt has ended), the tracer and meter
providers the instrumentation uses are flushed, in every process.

``force_flush`` blocks: it runs in a daemon thread of its own, never on the event loop and
never holding up the interpreter's exit, and the stop waits for it at most
``flush_timeout`` seconds. A flush that fails or runs out of time is logged, never raised.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import threading
import time
import typing as t

from opentelemetry import metrics, trace

if t.TYPE_CHECKING:
    from collections.abc import Awaitable, Callable

logger = logging.getLogger(__name__)

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
    ) -> None:
        self._tracer_provider = tracer_provider  # None: the global one, when the worker stops
        self._meter_provider = meter_provider
        self._timeout = timeout

    def wrap_stop(self, stop: Callable[..., Awaitable[None]]) -> Callable[..., Awaitable[None]]:
        async def flushing_stop(worker: t.Any, *args: t.Any, **kwargs: t.Any) -> None:
            try:
                await stop(worker, *args, **kwargs)
            finally:
                await self.flush()

        return flushing_stop

    async def flush(self) -> None:
        """Flush the providers in a thread; wait at most the timeout; never raise."""
        try:
            providers = self._providers()
            if not providers or self._timeout <= 0:
                return
            loop = asyncio.get_running_loop()
            done = loop.create_future()
            thread = threading.Thread(
                target=_flush_all,
                args=(providers, self._timeout, loop, done),
                name="saq-otel-flush",
                daemon=True,
            )
            thread.start()
            await asyncio.wait_for(done, self._timeout)
        except asyncio.TimeoutError:
            logger.warning(
                "the tracer and meter providers did not flush within %ss; "
                "spans and metrics still buffered may be lost",
                self._timeout,
            )
        except Exception:
            logger.warning("could not flush the tracer and meter providers", exc_info=True)

    def _providers(self) -> list[t.Any]:
        tracer_provider = self._tracer_provider or trace.get_tracer_provider()
        meter_provider = self._meter_provider or metrics.get_meter_provider()
        return [
            provider
            for provider in (tracer_provider, meter_provider)
            if callable(getattr(provider, "force_flush", None))
        ]


def _flush_all(
    providers: list[t.Any],
    timeout: float,
    loop: asyncio.AbstractEventLoop,
    done: asyncio.Future[None],
) -> None:
    """In the flush thread: each provider gets what is left of the one timeout."""
    deadline = time.monotonic() + timeout
    for provider in providers:
        remaining_ms = max(0, int((deadline - time.monotonic()) * 1000))
        try:
            if provider.force_flush(timeout_millis=remaining_ms) is False:
                logger.warning("%s did not flush in time", type(provider).__name__)
        except Exception:
            logger.warning("%s failed to flush", type(provider).__name__, exc_info=True)
    with contextlib.suppress(RuntimeError):  # the loop is closed: nobody waits any more
        loop.call_soon_threadsafe(_settle, done)


def _settle(done: asyncio.Future[None]) -> None:
    if not done.done():  # not given up on by wait_for
        done.set_result(None)
