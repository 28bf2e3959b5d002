"""jobs.refresh updates what the panel shows all at once, with real queues on a real Redis."""

from __future__ import annotations

import asyncio
import typing as t
import uuid

from saq.job import Status
from saq.queue.redis import RedisQueue

from opentelemetry.instrumentation.saq._capture import EnqueuedJob
from opentelemetry.instrumentation.saq.debug_toolbar.panel import jobs


class HeldQueue(RedisQueue):
    """A real queue whose job read waits until the test lets it go on."""

    held = asyncio.Event()
    reading = asyncio.Event()

    async def jobs(self, job_keys: t.Iterable[str]) -> t.Any:
        self.reading.set()
        await self.held.wait()
        return await super().jobs(job_keys)


async def tracked_job(queue: RedisQueue) -> jobs.TrackedJob:
    job = await queue.enqueue("noop")
    assert job is not None
    await job.finish(Status.COMPLETE)
    enqueued = EnqueuedJob(queue, job, 1, 1, False, None)
    entry = jobs.new_entry(enqueued, None)
    entry["status"] = "queued"
    return jobs.TrackedJob(enqueued, entry)


async def test_no_reader_sees_half_a_refresh(redis_url: str) -> None:
    """Mid-refresh (the second queue still being read), the first queue's job must not show
    its new status yet: the summary the panel shows beside it is only rewritten at the end."""
    HeldQueue.held, HeldQueue.reading = asyncio.Event(), asyncio.Event()
    first = RedisQueue.from_url(redis_url, name=f"refresh-{uuid.uuid4().hex[:8]}")
    second = HeldQueue.from_url(redis_url, name=f"refresh-{uuid.uuid4().hex[:8]}")
    await first.connect()
    await second.connect()
    try:
        tracked = [await tracked_job(first), await tracked_job(second)]
        refresh = asyncio.create_task(jobs.refresh(tracked, None, timeout=5))
        await asyncio.wait_for(HeldQueue.reading.wait(), 5)

        mid_refresh = [item.entry["status"] for item in tracked]
        HeldQueue.held.set()
        await refresh
    finally:
        await first.disconnect()
        await second.disconnect()

    assert mid_refresh == ["queued", "queued"]
    assert [item.entry["status"] for item in tracked] == ["complete", "complete"]
