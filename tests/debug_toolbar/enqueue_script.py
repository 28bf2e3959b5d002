"""A script that enqueues one job and exits, as a developer's shell or cron script would:
``python -m tests.debug_toolbar.enqueue_script FUNCTION KEY``.

Instrumented as the README says, with an SDK provider that exports nowhere: the job
carries the script's trace, whose only spans the app ever sees are the worker's.
The queue comes from SAQ_TEST_REDIS_URL and SAQ_TEST_QUEUE.
"""

from __future__ import annotations

import asyncio
import os
import sys

from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider
from saq.queue import Queue

from opentelemetry.instrumentation.saq import SAQInstrumentor


async def main(function: str, key: str) -> None:
    queue = Queue.from_url(os.environ["SAQ_TEST_REDIS_URL"], name=os.environ["SAQ_TEST_QUEUE"])
    await queue.connect()
    try:
        await queue.enqueue(function, key=key, retries=2)
    finally:
        await queue.disconnect()


if __name__ == "__main__":
    trace.set_tracer_provider(TracerProvider())
    SAQInstrumentor().instrument()
    asyncio.run(main(sys.argv[1], sys.argv[2]))
