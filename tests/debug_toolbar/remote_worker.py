"""Settings for a real `saq` worker process, started by the tests as
``python -m saq tests.debug_toolbar.remote_worker.settings``.

The queue comes from SAQ_TEST_REDIS_URL and SAQ_TEST_QUEUE; the worker is instrumented
like a user's would be. Without SAQ_TEST_EXPORT its spans stay in its own process; with
it, the worker sets up the SDK as docs/guides/remote-workers.md does and exports OTLP/HTTP
with the SDK's own exporter to OTEL_EXPORTER_OTLP_TRACES_ENDPOINT (the app's receiver).
"""

from __future__ import annotations

import os

from saq.queue import Queue

from opentelemetry.instrumentation.saq import SAQInstrumentor
from tests.debug_toolbar.apps import FUNCTIONS

if os.environ.get("SAQ_TEST_EXPORT"):
    from opentelemetry import trace
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor

    provider = TracerProvider(resource=Resource.create({"service.name": "remote-worker"}))
    provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))
    trace.set_tracer_provider(provider)

SAQInstrumentor().instrument()

settings = {
    "queue": Queue.from_url(os.environ["SAQ_TEST_REDIS_URL"], name=os.environ["SAQ_TEST_QUEUE"]),
    "functions": FUNCTIONS,
    "concurrency": 4,
}
