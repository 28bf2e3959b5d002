"""litestar-saq's own ``enable_otel=True`` beside SAQInstrumentor, in a fresh interpreter.

    python -m tests.litestar_saq.double_spans REDIS_URL QUEUE ORDER

litestar-saq 0.8 traces with the global tracer provider only, which can be set once per
process. ORDER is ``instrument-first`` (``instrument()``, then the app is built, as with
``opentelemetry-instrument``) or ``app-first`` (``instrument()`` after the app exists).
Prints one JSON object: the warnings we logged (all of them, and those logged before the
first request), the job ids the request returned, and every span.
"""

from __future__ import annotations

import json
import logging
import sys
import time

from litestar.testing import TestClient
from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from opentelemetry.instrumentation.saq import SAQInstrumentor
from tests.litestar_saq.app import hold_sweep_lock, make_app
from tests.litestar_saq.traces import from_sdk


class KeepWarnings(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.messages.append(record.getMessage())


def main(redis_url: str, queue: str, order: str) -> None:
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    trace.set_tracer_provider(provider)
    warnings = KeepWarnings()
    logging.getLogger("opentelemetry.instrumentation.saq").addHandler(warnings)

    instrumentor = SAQInstrumentor()
    if order == "instrument-first":
        instrumentor.instrument()
    app = make_app(
        redis_url, queue, separate_process=False, tracer_provider=provider, enable_otel=True
    )
    if order == "app-first":
        instrumentor.instrument()
    before_request = list(warnings.messages)

    hold_sweep_lock(redis_url, queue)
    with TestClient(app) as client:
        job_ids = client.get("/signup").json()
        deadline = time.monotonic() + 15
        names = (f"process {queue}", f"{queue} process")
        while sum(s.name in names for s in exporter.get_finished_spans()) < 6:
            assert time.monotonic() < deadline, "the attempts' spans did not end"
            time.sleep(0.05)
    spans = [from_sdk(span)._asdict() for span in exporter.get_finished_spans()]
    report = {
        "warnings": warnings.messages,
        "before_request": before_request,
        "job_ids": job_ids,
        "spans": spans,
    }
    print(json.dumps(report))


if __name__ == "__main__":
    main(*sys.argv[1:4])
