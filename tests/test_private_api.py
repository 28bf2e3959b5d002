"""An OpenTelemetry API that moved its private names: the package imports and traces.

The instrumentation reads a few private names of the API (the globals that say whether a
provider is set, the proxy meter provider's class) and learns the suppression keys from
the public ``suppress_instrumentation()``. Here a process removes those names after the
API loaded, as a release that moved them would, and only then imports ours.
"""

from __future__ import annotations

import logging
import subprocess
import sys
import textwrap
import uuid

import pytest
import saq.worker
from opentelemetry.sdk.trace import TracerProvider

from opentelemetry.instrumentation.saq import SAQInstrumentor, _quiet

SCRIPT = textwrap.dedent(
    """
    import asyncio, logging, sys

    import opentelemetry.context
    import opentelemetry.metrics
    import opentelemetry.instrumentation.utils
    from opentelemetry.instrumentation.redis import RedisInstrumentor
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

    # The API as a release that moved its private names would have it.
    del opentelemetry.context._SUPPRESS_INSTRUMENTATION_KEY
    del opentelemetry.metrics._internal
    sys.modules["opentelemetry.metrics._internal"] = None

    logging.basicConfig(level=logging.WARNING, format="%(name)s: %(message)s")
    from saq import Worker
    from saq.queue.redis import RedisQueue

    from opentelemetry.instrumentation.saq import SAQInstrumentor

    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    RedisInstrumentor().instrument(tracer_provider=provider)
    SAQInstrumentor().instrument(tracer_provider=provider)

    async def visit(ctx):
        await ctx["worker"].queue.redis.hgetall("visitors")

    async def main(url, name):
        queue = RedisQueue.from_url(url, name=name)
        await queue.connect()
        await queue.redis.set(f"saq:{name}:sweep", 1, ex=60)  # no startup sweep
        worker = Worker(queue, functions=[("visit", visit)], dequeue_timeout=0.05)
        task = asyncio.create_task(worker.start())
        job = await queue.enqueue("visit")
        for _ in range(2000):  # polled: refresh(until_complete=) can miss the finish
            await job.refresh()
            if job.status == "complete":
                break
            await asyncio.sleep(0.01)
        await worker.stop()
        task.cancel()
        await queue.disconnect()
        print("status", getattr(job.status, "value", job.status), flush=True)

    asyncio.run(main(sys.argv[1], sys.argv[2]))
    for span in exporter.get_finished_spans():
        parent = span.parent.span_id if span.parent else None
        print("span", span.name, span.context.span_id, parent, sep="|", flush=True)
    """
)


def test_the_package_imports_instruments_and_traces_when_the_api_moved_its_private_names(
    redis_url: str,
) -> None:
    name = f"moved-{uuid.uuid4().hex[:8]}"
    done = subprocess.run(
        [sys.executable, "-c", SCRIPT, redis_url, name],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert "status complete" in done.stdout
    spans = [line.split("|")[1:] for line in done.stdout.splitlines() if line.startswith("span|")]
    ids = {span_name: span_id for span_name, span_id, _ in spans if span_name.endswith(name)}
    assert set(ids) == {f"send {name}", f"process {name}"}
    # The job's own Redis call inside its attempt; SAQ's machinery still quiet.
    assert [parent for span_name, _, parent in spans if span_name == "HGETALL"] == [
        ids[f"process {name}"]
    ]
    assert not [span for span in spans if span[0] == "BLMOVE"]
    ours = [
        line
        for line in done.stderr.splitlines()
        if line.startswith("opentelemetry.instrumentation.saq")
    ]
    assert len(ours) == 1, done.stderr
    assert "opentelemetry.metrics._internal._METER_PROVIDER" in ours[0]


def test_when_suppression_cannot_be_learnt_saqs_machinery_is_traced_with_one_warning(
    tracer_provider: TracerProvider,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    monkeypatch.setattr(_quiet, "_SUPPRESSED", {})  # an API whose keys we cannot read
    process = saq.worker.Worker.__dict__["process"]
    with caplog.at_level(logging.WARNING, logger="opentelemetry.instrumentation.saq"):
        SAQInstrumentor().instrument(tracer_provider=tracer_provider)

    assert SAQInstrumentor().is_instrumented_by_opentelemetry
    assert saq.worker.Worker.__dict__["process"] is process  # no quiet worker
    warnings = [r for r in caplog.records if r.name.startswith("opentelemetry.instrumentation")]
    assert len(warnings) == 1
    assert "SAQ's own Redis, Postgres and HTTP calls are traced" in warnings[0].getMessage()
