"""The panel's advice for repeated enqueues, run as docs/toolbar/panel.md writes it, against a real
worker on Redis and on Postgres: the gather of ``queue.enqueue`` returns while its jobs
are still held by the worker, where ``queue.map`` is still waiting for their results."""

from __future__ import annotations

import asyncio
import textwrap
import time
import typing as t
import uuid

import pytest
from saq.job import Job, Status
from saq.queue import Queue

from tests.docs.blocks import block
from tests.workers import running_worker

PAGE = "docs/toolbar/panel.md"
Advised = t.Callable[[Queue, list[str]], t.Awaitable[t.Any]]


def page_gather() -> Advised:
    """The page's one line of advice, as an async function of ``queue`` and ``recipients``."""
    advice = block(PAGE, "python", "jobs = await asyncio.gather(*(queue.enqueue(").source
    (line,) = [line + "\n" for line in advice.splitlines() if "asyncio.gather(" in line]
    source = "async def advised(queue, recipients):\n" + textwrap.indent(line, "    ")
    source += "    return jobs\n"
    scope: dict[str, t.Any] = {"asyncio": asyncio}
    exec(compile(source, PAGE, "exec"), scope)  # our own page
    return t.cast(Advised, scope["advised"])


@pytest.fixture(params=["redis", "postgres"])
def any_queue(request: pytest.FixtureRequest) -> Queue:
    name = "queue" if request.param == "redis" else "pg_queue"
    return t.cast(Queue, request.getfixturevalue(name))


async def statuses(queue: Queue, jobs: list[Job], want: set[Status]) -> list[Status]:
    """The jobs' statuses as their queue holds them, once all are in ``want``."""
    deadline = time.monotonic() + 30
    while True:
        found = [job.status if job else None for job in await queue.jobs(j.key for j in jobs)]
        if all(status in want for status in found):
            return t.cast(list[Status], found)
        assert time.monotonic() < deadline, found
        await asyncio.sleep(0.05)


async def test_the_advised_gather_returns_jobs_without_waiting_for_them_and_map_waits(
    any_queue: Queue,
) -> None:
    advised = page_gather()
    release = asyncio.Event()

    async def send_email(ctx: dict[str, t.Any], *, to: str) -> str:
        await release.wait()  # held until the test has looked
        return f"sent to {to}"

    recipients = [f"user{i}@example.com" for i in range(4)]
    functions = [("send_email", send_email)]
    async with running_worker(any_queue, functions, concurrency=10, poll_interval=0.05):
        jobs = await asyncio.wait_for(advised(any_queue, recipients), 30)
        # Returned with every job enqueued, none finished: the worker still holds them.
        assert [type(job) for job in jobs] == [Job] * 4
        assert [job.kwargs["to"] for job in jobs] == recipients
        held = await statuses(any_queue, jobs, {Status.QUEUED, Status.ACTIVE})
        assert Status.COMPLETE not in held

        key = f"map-{uuid.uuid4().hex[:8]}"
        mapped = asyncio.create_task(
            any_queue.map("send_email", [{"to": "map@example.com", "key": key}])
        )
        # Once map's job is running (and held), map has enqueued it and is waiting for it.
        (map_job,) = await _enqueued(any_queue, key)
        await statuses(any_queue, [*jobs, map_job], {Status.ACTIVE})
        assert not mapped.done()

        release.set()
        assert await asyncio.wait_for(mapped, 30) == ["sent to map@example.com"]
        assert await statuses(any_queue, jobs, {Status.COMPLETE}) == [Status.COMPLETE] * 4


async def _enqueued(queue: Queue, key: str) -> list[Job]:
    deadline = time.monotonic() + 30
    while (job := await queue.job(key)) is None:
        assert time.monotonic() < deadline
        await asyncio.sleep(0.05)
    return [job]
