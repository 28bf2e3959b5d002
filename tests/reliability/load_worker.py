"""A `saq` worker process for the load test: ``saq tests.reliability.load_worker.settings``.

Exports its spans with OTLP/HTTP to OTEL_EXPORTER_OTLP_ENDPOINT (the test's receiver).
"""

from __future__ import annotations

import os
import typing as t

from opentelemetry import trace
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor
from saq.queue import Queue

from opentelemetry.instrumentation.saq import SAQInstrumentor

provider = TracerProvider(resource=Resource.create({"service.name": f"load-{os.getpid()}"}))
provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter(), max_queue_size=20_000))
trace.set_tracer_provider(provider)
SAQInstrumentor().instrument()
tracer = trace.get_tracer("load")


async def echo(ctx: dict[str, t.Any], *, n: int) -> dict[str, t.Any]:
    """Reports the context the job ran in, as the job itself sees it."""
    attempt = trace.get_current_span().get_span_context()
    with tracer.start_as_current_span("work") as span:
        span.set_attribute("n", n)
    return {"n": n, "trace_id": f"{attempt.trace_id:032x}", "span_id": f"{attempt.span_id:016x}"}


settings = {
    "queue": Queue.from_url(os.environ["SAQ_TEST_REDIS_URL"], name=os.environ["SAQ_TEST_QUEUE"]),
    "functions": [echo],
    "concurrency": 20,
}
