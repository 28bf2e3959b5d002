"""Settings for demo workers in their own processes::

REDIS_URL=redis://localhost:6379 saq examples.demo.worker.settings
"""

from __future__ import annotations

import os

from saq.queue import Queue

from examples.demo import telemetry
from examples.demo.jobs import FUNCTIONS

QUEUE_NAME = "demo"

telemetry.setup("saq-demo-worker")


def queue_from_env() -> Queue:
    return Queue.from_url(os.environ.get("REDIS_URL", "redis://localhost:6379"), name=QUEUE_NAME)


settings = {
    "queue": queue_from_env(),
    "functions": FUNCTIONS,
    "concurrency": 10,
}
