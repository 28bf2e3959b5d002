"""Settings for demo workers in their own processes::

    REDIS_URL=redis://localhost:6379 saq examples.demo.worker.settings

To see their spans and their jobs' log lines on the demo app's trace pages, export them
to the app's receivers::

    REDIS_URL=redis://localhost:6379 \
    OTEL_EXPORTER_OTLP_TRACES_ENDPOINT=http://127.0.0.1:8000/_debug_toolbar/saq/v1/traces \
    OTEL_EXPORTER_OTLP_LOGS_ENDPOINT=http://127.0.0.1:8000/_debug_toolbar/saq/v1/logs \
    OTEL_BSP_SCHEDULE_DELAY=500 saq examples.demo.worker.settings
"""

from __future__ import annotations

import logging
import os

from saq.queue import Queue

from examples.demo import telemetry
from examples.demo.jobs import FUNCTIONS, logger

QUEUE_NAME = "demo"

telemetry.setup("saq-demo-worker", export_logs=True)
# `saq` leaves the root logger at WARNING (no -v): the jobs' INFO lines need their own level.
logger.setLevel(logging.INFO)


def queue_from_env() -> Queue:
    return Queue.from_url(os.environ.get("REDIS_URL", "redis://localhost:6379"), name=QUEUE_NAME)


settings = {
    "queue": queue_from_env(),
    "functions": FUNCTIONS,
    "concurrency": 10,
}
