"""A SAQ worker or producer in a process of its own, its metrics served for Prometheus.

    python -m tests.dashboards.metrics_process worker|producer

Reads REDIS_URL, QUEUE and METRICS_PORT. The metrics go through the SDK's
PrometheusMetricReader (opentelemetry-exporter-prometheus), which translates names and
units as the OpenTelemetry Collector's Prometheus exporter does, so the docker set-up's
dashboard and rules read the same series.

The producer first runs one job of each kind, so that every counter exists before
Prometheus scrapes (a counter first seen at 20 has no increase), says "warm", waits for a
line on stdin, then enqueues the test's plan: finished work first, then a backlog. It
says "enqueued" and keeps serving its counters.
"""

from __future__ import annotations

import asyncio
import os
import sys
import time
import typing as t

from opentelemetry.exporter.prometheus import PrometheusMetricReader
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.resources import Resource
from prometheus_client import start_http_server
from saq import Worker
from saq.queue import Queue

from opentelemetry.instrumentation.saq import SAQInstrumentor

Ctx = dict[str, t.Any]
OK_JOBS = 20
FAILING_JOBS = 10
BLOCKING_JOBS = 6  # two workers of two slots each: four run, two wait
TIMERS = {"schedule": 1, "worker_info": 1, "sweep": 600, "abort": 1}


async def ok(ctx: Ctx) -> None:
    await asyncio.sleep(0.01)


async def fails(ctx: Ctx) -> None:
    raise ValueError("always")


async def blocks(ctx: Ctx) -> None:
    await asyncio.sleep(3600)


def setup(role: str) -> Queue:
    resource = Resource.create({"service.name": f"saq-test-{role}"})
    provider = MeterProvider(metric_readers=[PrometheusMetricReader()], resource=resource)
    start_http_server(int(os.environ["METRICS_PORT"]), addr="127.0.0.1")
    SAQInstrumentor().instrument(meter_provider=provider, queue_health=True)
    return Queue.from_url(os.environ["REDIS_URL"], name=os.environ["QUEUE"])


async def work(queue: Queue) -> None:
    await queue.connect()
    worker = Worker(queue, functions=[ok, fails, blocks], concurrency=2, timers=TIMERS)
    await worker.start()


async def run_to_the_end(queue: Queue, ok_jobs: int, failing_jobs: int) -> None:
    finished = [await queue.enqueue("ok") for _ in range(ok_jobs)]
    finished += [await queue.enqueue("fails", retries=1) for _ in range(failing_jobs)]
    keys = [job.key for job in finished if job is not None]
    while True:
        jobs = await queue.jobs(keys)
        if all(job is not None and job.status in ("complete", "failed") for job in jobs):
            return
        await asyncio.sleep(0.1)


async def produce(queue: Queue) -> None:
    await queue.connect()
    await run_to_the_end(queue, 1, 1)
    print("warm", flush=True)
    await asyncio.get_running_loop().run_in_executor(None, sys.stdin.readline)
    # The backlog only once the finished work is done: SAQ's FIFO would hold it back.
    await run_to_the_end(queue, OK_JOBS, FAILING_JOBS)
    for _ in range(BLOCKING_JOBS):
        await queue.enqueue("blocks", timeout=0)  # SAQ would time it out after 10 s
    await queue.enqueue("ok", scheduled=int(time.time()) + 3600)
    print("enqueued", flush=True)
    await asyncio.Event().wait()  # keep serving the counters


if __name__ == "__main__":
    role = sys.argv[1]
    queue = setup(role)
    asyncio.run(work(queue) if role == "worker" else produce(queue))
