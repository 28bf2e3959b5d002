"""Settings for a real `saq` worker process, started by the tests as
``python -m saq tests.debug_toolbar.remote_worker.settings``.

The queue comes from SAQ_TEST_REDIS_URL and SAQ_TEST_QUEUE; the worker is instrumented
like a user's would be (no exporter: its spans stay in its own process).
"""

from __future__ import annotations

import os

from saq.queue import Queue

from opentelemetry.instrumentation.saq import SAQInstrumentor
from tests.debug_toolbar.apps import FUNCTIONS

SAQInstrumentor().instrument()

settings = {
    "queue": Queue.from_url(os.environ["SAQ_TEST_REDIS_URL"], name=os.environ["SAQ_TEST_QUEUE"]),
    "functions": FUNCTIONS,
    "concurrency": 4,
}
