"""The app as litestar-saq's CLI loads it in a worker process of its own:

    litestar --app tests.litestar_saq.cli_app:app workers run

Set up as a user's worker process would be: a real SDK provider exporting OTLP/HTTP
(to OTEL_EXPORTER_OTLP_ENDPOINT, the test's receiver) and SAQ instrumented at import.
The queue comes from SAQ_TEST_REDIS_URL and SAQ_TEST_QUEUE.
"""

from __future__ import annotations

import os

from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor

from opentelemetry.instrumentation.saq import SAQInstrumentor
from tests.litestar_saq.app import make_app

provider = TracerProvider()
# Simple, not batched: each span leaves as it ends, so stopping the worker loses none.
provider.add_span_processor(SimpleSpanProcessor(OTLPSpanExporter()))
SAQInstrumentor().instrument(tracer_provider=provider)

app = make_app(
    os.environ["SAQ_TEST_REDIS_URL"],
    os.environ["SAQ_TEST_QUEUE"],
    separate_process=True,
)
