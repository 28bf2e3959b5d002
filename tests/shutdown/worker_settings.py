"""Settings for real `saq` worker processes that are stopped by SIGTERM right after their
last job: ``python -m saq tests.shutdown.worker_settings.settings [--workers 2]``.

Set up as a user's would be: the SDK with its default ``BatchSpanProcessor`` (which holds
spans up to 5 s before exporting) and the OTLP/HTTP exporter to
OTEL_EXPORTER_OTLP_TRACES_ENDPOINT. Each process imports this module itself (SAQ starts
the extra workers before it reads the settings), so each has a provider of its own.
"""

from __future__ import annotations

import asyncio
import os
import typing as t

from opentelemetry import trace
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor
from saq.queue import Queue

from opentelemetry.instrumentation.saq import SAQInstrumentor

provider = TracerProvider(resource=Resource.create({"service.name": f"worker-{os.getpid()}"}))
provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))
trace.set_tracer_provider(provider)
SAQInstrumentor().instrument()


async def hand_off(ctx: dict[str, t.Any], *, number: int) -> int:
    """Enqueue a follow-up job: its send span is made (and buffered) in this process."""
    await ctx["job"].get_queue().enqueue("follow_up", key=f"follow-up-{number}")
    await asyncio.sleep(0.05)  # long enough that every worker process gets jobs
    return os.getpid()


async def follow_up(ctx: dict[str, t.Any]) -> int:
    await asyncio.sleep(0.05)
    return os.getpid()


settings = {
    "queue": Queue.from_url(os.environ["SAQ_TEST_REDIS_URL"], name=os.environ["SAQ_TEST_QUEUE"]),
    "functions": [hand_off, follow_up],
    "concurrency": 2,
}
