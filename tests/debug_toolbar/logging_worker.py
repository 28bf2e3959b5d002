"""Settings for a real `saq` worker process run as the README's logs recipe says:
``opentelemetry-instrument saq tests.debug_toolbar.logging_worker.settings``, with the
queue from SAQ_TEST_REDIS_URL and SAQ_TEST_QUEUE. No SDK code here: the command line sets
up traces and logs."""

from __future__ import annotations

import logging
import os

from saq.queue import Queue

from tests.debug_toolbar.story_jobs import import_contacts, job_logger

# As the recipe says: under opentelemetry-instrument the root logger already has the
# SDK's handler, so `saq -v` does not lower its level; the app's loggers set their own.
job_logger.setLevel(logging.INFO)

settings = {
    "queue": Queue.from_url(os.environ["SAQ_TEST_REDIS_URL"], name=os.environ["SAQ_TEST_QUEUE"]),
    "functions": [import_contacts],
    "concurrency": 2,
}
