"""A worker that says things outside its jobs, for the workers page's tests: in the app's
process (``workers_app``) or in its own (``settings``, run as the README's logs recipe
runs a worker, with the queue from SAQ_TEST_REDIS_URL and SAQ_TEST_QUEUE)."""

from __future__ import annotations

import asyncio
import logging
import os
import typing as t

from debug_toolbar.litestar import DebugToolbarPlugin, LitestarDebugToolbarConfig
from litestar import Litestar, get
from saq import Worker
from saq.queue import Queue

from opentelemetry.instrumentation.saq.debug_toolbar.litestar import SAQTracePlugin

PANEL = "opentelemetry.instrumentation.saq.debug_toolbar.SAQPanel"
Ctx = dict[str, t.Any]
worker_logger = logging.getLogger("tests.crew")
START_UP_LINE = "warming up <b>caches</b> before the first job"
CRASH = "cleanup <script>alert('crew')</script> crashed"
SECRET = "hunter2-do-not-keep"


async def warm_up(ctx: Ctx) -> None:
    worker_logger.warning(START_UP_LINE)


async def guarded(ctx: Ctx, *, password: str) -> None:
    return None


async def tidy(ctx: Ctx) -> None:
    return None


async def slow(ctx: Ctx, *, seconds: float) -> None:
    await asyncio.sleep(seconds)


async def refuse_guarded(ctx: Ctx) -> None:
    # A before-process hook that raises: SAQ logs "Error processing job" with the job's
    # arguments, outside the attempt.
    if ctx["job"].function == "guarded":
        raise PermissionError("guarded jobs are refused")


async def crash_after_tidy(ctx: Ctx) -> None:
    # An after-process hook that raises between jobs: "Failed to run after process hook".
    if ctx["job"].function == "tidy":
        raise RuntimeError(CRASH)


FUNCTIONS = [guarded, tidy, slow]
HOOKS: dict[str, t.Any] = {
    "startup": warm_up,
    "before_process": refuse_guarded,
    "after_process": crash_after_tidy,
}


def workers_app(
    queue: Queue, *, worker_id: str | None = None, concurrency: int = 2, stuck_job: bool = False
) -> Litestar:
    """A Litestar app with the toolbar, the SAQ pages and (with ``worker_id``) a worker.

    ``stuck_job``: before the worker starts, a job with a password argument sits in the
    active list while still queued, as a worker that died mid-dequeue leaves it; the
    worker's first sweep then logs it ("Sweeping job ...", with its arguments at DEBUG).
    """
    tasks: list[asyncio.Task[None]] = []
    worker = None
    if worker_id is not None:
        worker = Worker(queue, FUNCTIONS, id=worker_id, concurrency=concurrency, **HOOKS)
        worker.SIGNALS = []  # served outside the main thread

    @get("/enqueue/{function:str}")
    async def enqueue(function: str, count: int = 1, delay: int = 0) -> dict[str, int]:
        for _ in range(count):
            kwargs: dict[str, t.Any] = {"seconds": 30} if function == "slow" else {}
            if function == "guarded":
                kwargs["password"] = SECRET
            await queue.enqueue(function, scheduled=_later(delay), **kwargs)
        return {"enqueued": count}

    async def startup() -> None:
        await queue.connect()
        redis = t.cast(t.Any, queue)
        if stuck_job:
            await queue.enqueue("guarded", password=SECRET)
            await redis.redis.lmove(redis._queued, redis._active)
        elif worker is not None:
            # SAQ's startup sweep may abort a job dequeued but not yet active (SAQ's race).
            await redis.redis.set(f"saq:{queue.name}:sweep", 1, ex=60)
        if worker is not None:
            tasks.append(asyncio.create_task(worker.start()))

    async def shutdown() -> None:
        if worker is not None:
            await worker.stop()
        for task in tasks:
            task.cancel()
        await queue.disconnect()

    config = LitestarDebugToolbarConfig(extra_panels=[PANEL])
    return Litestar(
        [enqueue],
        plugins=[DebugToolbarPlugin(config), SAQTracePlugin()],
        on_startup=[startup],
        on_shutdown=[shutdown],
    )


def _later(delay: int) -> int:
    import time

    return int(time.time()) + delay if delay else 0


if os.environ.get("SAQ_TEST_QUEUE"):
    settings = {
        "queue": Queue.from_url(
            os.environ["SAQ_TEST_REDIS_URL"], name=os.environ["SAQ_TEST_QUEUE"]
        ),
        "functions": FUNCTIONS,
        "concurrency": 2,
        **HOOKS,
    }
