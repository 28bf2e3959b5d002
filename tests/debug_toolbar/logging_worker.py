"""Settings for a real `saq` worker process run as the logs recipe of
docs/guides/remote-workers.md says:
``opentelemetry-instrument saq tests.debug_toolbar.logging_worker.settings``, with the
queue from SAQ_TEST_REDIS_URL and SAQ_TEST_QUEUE. No SDK code here: the command line sets
up traces and logs."""

from __future__ import annotations

import logging
import os

from saq.queue import Queue

from tests.debug_toolbar.story_jobs import import_contacts, job_logger

# As the recipe says: `saq` leaves the root logger at WARNING (no -v), so the app's
# loggers set their own level to send their INFO lines.
job_logger.setLevel(logging.INFO)

settings = {
    "queue": Queue.from_url(os.environ["SAQ_TEST_REDIS_URL"], name=os.environ["SAQ_TEST_QUEUE"]),
    "functions": [import_contacts],
    "concurrency": 2,
}
