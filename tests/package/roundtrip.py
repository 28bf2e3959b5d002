"""Run in a fresh venv holding only the built wheel and its dependencies (check_wheel.py).

``python -I roundtrip.py REDIS_URL``: loads the instrumentor through its entry point,
enqueues a job, lets a real SAQ worker run it, and checks the spans form one trace;
then imports the debug toolbar panel. Only what is installed can be imported here.
"""

from __future__ import annotations

import asyncio
import sys
import time
import uuid
from importlib.metadata import entry_points
from pathlib import Path

from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from saq import Queue, Worker

import opentelemetry.instrumentation.saq as installed

QUEUE = f"wheel-{uuid.uuid4().hex[:8]}"


async def double(ctx: dict[str, object], *, n: int) -> int:
    return n * 2


async def round_trip(redis_url: str) -> int:
    queue = Queue.from_url(redis_url, name=QUEUE)
    await queue.connect()
    # The worker's startup sweep can abort a job dequeued but not yet active (SAQ's own
    # race); hold the sweep lock, as the tests do.
    await queue.redis.set(f"saq:{QUEUE}:sweep", 1, ex=60)  # type: ignore[attr-defined]
    worker = Worker(queue, functions=[double])
    task = asyncio.create_task(worker.start())
    try:
        result = await queue.apply("double", n=21, timeout=10)
    finally:
        await worker.stop()
        task.cancel()
        await queue.disconnect()
    return int(result)


def main(redis_url: str) -> None:
    site_packages = Path(sys.prefix).resolve()
    assert Path(installed.__file__).resolve().is_relative_to(site_packages), installed.__file__

    (entry_point,) = [
        ep for ep in entry_points(group="opentelemetry_instrumentor") if ep.name == "saq"
    ]
    instrumentor_class = entry_point.load()
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    instrumentor_class().instrument(tracer_provider=provider)

    assert asyncio.run(round_trip(redis_url)) == 42
    deadline = time.monotonic() + 10
    while len(exporter.get_finished_spans()) < 2 and time.monotonic() < deadline:
        time.sleep(0.05)
    spans = {span.name: span for span in exporter.get_finished_spans()}
    send, process = spans[f"send {QUEUE}"], spans[f"process {QUEUE}"]
    assert send.context is not None and process.parent is not None
    assert process.context is not None
    assert process.context.trace_id == send.context.trace_id
    assert process.parent.span_id == send.context.span_id
    assert (process.attributes or {})["saq.job.status"] == "complete"

    from debug_toolbar.core.panel import Panel

    from opentelemetry.instrumentation.saq.debug_toolbar import SAQPanel

    assert issubclass(SAQPanel, Panel)
    print(f"round trip from the wheel at {Path(installed.__file__).parent}: send -> process, ok")


if __name__ == "__main__":
    main(sys.argv[1])
