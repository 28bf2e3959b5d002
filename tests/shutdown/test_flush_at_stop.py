"""Spans of finished attempts survive a worker's shutdown, in every process SAQ starts.

Real `saq` processes export OTLP/HTTP through the SDK's default BatchSpanProcessor to a
real receiver and get SIGTERM (to the whole process group, as a deploy sends it) right
after their last job completed, while the spans are still buffered.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
import typing as t
import uuid
from pathlib import Path

import pytest
from saq.job import Status
from saq.queue.redis import RedisQueue

from tests.otlp_receiver import otlp_receiver

ROOT = Path(__file__).resolve().parents[2]
JOBS = 30


@pytest.mark.slow
@pytest.mark.parametrize("workers", [1, 2])
async def test_every_finished_attempt_is_exported_when_the_workers_get_sigterm(
    redis_url: str, workers: int
) -> None:
    name = f"shutdown-{uuid.uuid4().hex[:8]}"
    queue = RedisQueue.from_url(redis_url, name=name)
    await queue.connect()
    with otlp_receiver() as (endpoint, receiver):
        environment = {
            **os.environ,
            "SAQ_TEST_REDIS_URL": redis_url,
            "SAQ_TEST_QUEUE": name,
            "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": f"{endpoint}/v1/traces",
        }
        command = [sys.executable, "-m", "saq", "tests.shutdown.worker_settings.settings"]
        if workers > 1:
            command += ["--workers", str(workers)]
        # Its own process group: SIGTERM goes to every worker process, as a deploy sends it.
        proc = subprocess.Popen(  # noqa: ASYNC220 (starting it does not wait for it)
            command, cwd=ROOT, env=environment, start_new_session=True
        )
        try:
            await wait_for_workers(queue, workers, proc)
            for number in range(JOBS):
                await queue.enqueue("hand_off", key=f"hand-off-{number}", number=number)
            keys = [f"{kind}-{n}" for kind in ("hand-off", "follow-up") for n in range(JOBS)]
            jobs = await wait_for_completion(queue, keys)
            os.killpg(proc.pid, signal.SIGTERM)  # right after the last job completed
            assert await asyncio.to_thread(proc.wait, 60) == 0
        finally:
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
            await queue.disconnect()
        spans = receiver.snapshot()

    # Every process did some of the work (else the test would prove nothing about them).
    assert len({job.result for job in jobs}) == workers
    processed = sorted(
        span.attributes["messaging.message.id"] for span in spans if span.name == f"process {name}"
    )
    assert processed == sorted(job.id for job in jobs)  # one per completed attempt
    sent = [span for span in spans if span.name == f"send {name}"]
    assert len(sent) == JOBS  # every follow-up enqueued in a worker process
    assert len({span.service for span in spans}) == workers


async def wait_for_workers(queue: RedisQueue, count: int, proc: subprocess.Popen[bytes]) -> None:
    """Until every worker process has started (written its stats) and swept once."""

    async def registered() -> bool:
        info = await queue.info()
        swept = await queue.redis.exists(f"saq:{queue.name}:sweep")
        return len(info.get("workers", {})) >= count and bool(swept)

    deadline = time.monotonic() + 60
    while not await registered():
        assert proc.poll() is None, "a worker process exited"
        assert time.monotonic() < deadline, "the worker processes did not start"
        await asyncio.sleep(0.05)


async def wait_for_completion(queue: RedisQueue, keys: list[str]) -> list[t.Any]:
    done: list[t.Any] = []

    async def all_complete() -> bool:
        found = await queue.jobs(keys)
        done[:] = [job for job in found if job is not None and job.status == Status.COMPLETE]
        return len(done) == len(keys)

    deadline = time.monotonic() + 60
    while not await all_complete():
        assert time.monotonic() < deadline, f"{len(done)} of {len(keys)} jobs complete"
        await asyncio.sleep(0.02)
    return done
