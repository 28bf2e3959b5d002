"""Load: 2,000 jobs over 4 worker processes with concurrency 20, every context kept apart."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from saq.job import Status
from saq.queue.redis import RedisQueue

from opentelemetry.instrumentation.saq import SAQInstrumentor
from tests.otlp_receiver import otlp_receiver

pytestmark = pytest.mark.slow
ROOT = Path(__file__).resolve().parents[2]
JOBS, WORKERS = 2000, 4
CONSUMER = 5


async def test_every_attempt_has_one_span_under_its_own_producer(
    redis_url: str,
    exporter: InMemorySpanExporter,
    tracer_provider: TracerProvider,
    instrument: SAQInstrumentor,
) -> None:
    name = f"load-{uuid.uuid4().hex[:8]}"
    queue = RedisQueue.from_url(redis_url, name=name)
    await queue.connect()
    tracer = tracer_provider.get_tracer("load-test")

    async def produce(n: int) -> tuple[str, str]:
        # Each job from its own request: 2,000 distinct traces.
        with tracer.start_as_current_span(f"request {n}"):
            job = await queue.enqueue("echo", n=n)
        assert job is not None
        return job.key, n

    # SAQ's sweep races with a dequeue and may run a job twice (SAQ's own race, with or
    # without us); a worker process that starts slowly on a busy machine sweeps after the
    # jobs are in. Not what this test is about: hold the sweep lock, as running_worker does.
    await queue.redis.set(f"saq:{name}:sweep", 1, ex=300)
    with otlp_receiver() as (endpoint, receiver):
        env = {
            **os.environ,
            "SAQ_TEST_REDIS_URL": redis_url,
            "SAQ_TEST_QUEUE": name,
            "OTEL_EXPORTER_OTLP_ENDPOINT": endpoint,
            "OTEL_BSP_SCHEDULE_DELAY": "200",
        }
        workers = [
            subprocess.Popen(  # noqa: ASYNC220 (starting, not waiting)
                [sys.executable, "-m", "saq", "tests.reliability.load_worker.settings"],
                cwd=ROOT,
                env=env,
                stderr=subprocess.DEVNULL,
            )
            for _ in range(WORKERS)
        ]
        try:
            keys: dict[str, int] = {}
            for start in range(0, JOBS, 200):
                for key, n in await asyncio.gather(
                    *(produce(n) for n in range(start, start + 200))
                ):
                    keys[key] = n
            deadline = time.monotonic() + 120
            while True:
                jobs = await queue.jobs(list(keys))
                done = sum(1 for job in jobs if job and job.status == Status.COMPLETE)
                consumed = [s for s in receiver.snapshot() if s.kind == CONSUMER]
                if done == JOBS and len(consumed) >= JOBS:
                    break
                assert time.monotonic() < deadline, f"{done} jobs done, {len(consumed)} spans"
                await asyncio.sleep(0.2)
            await asyncio.sleep(0.5)  # anything extra would arrive now
        finally:
            for worker in workers:
                worker.terminate()
            for worker in workers:
                worker.wait(30)
            await queue.disconnect()
        received = receiver.snapshot()

    sends = {
        (s.attributes or {})["saq.job.key"]: s
        for s in exporter.get_finished_spans()
        if s.name == f"send {name}"
    }
    processes = [s for s in received if s.kind == CONSUMER]
    works = {s.parent_span_id: s for s in received if s.name == "work"}
    assert len(sends) == JOBS
    # Exactly one span per attempt, each under the send span of its own job.
    assert len(processes) == JOBS
    assert len({p.attributes["saq.job.key"] for p in processes}) == JOBS
    for process in processes:
        send = sends[process.attributes["saq.job.key"]]
        assert process.parent_span_id == f"{send.context.span_id:016x}"
        assert process.trace_id == f"{send.context.trace_id:032x}"
        assert works[process.span_id].trace_id == process.trace_id
    # What each job saw as its current span was its own attempt: no context leaked.
    by_key = {p.attributes["saq.job.key"]: p for p in processes}
    for job in jobs:
        assert job is not None
        seen = job.result
        assert seen["n"] == keys[job.key]
        assert (seen["trace_id"], seen["span_id"]) == (
            by_key[job.key].trace_id,
            by_key[job.key].span_id,
        )
    assert len({p.service for p in processes}) > 1  # the work really was spread out
