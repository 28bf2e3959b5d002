"""Real Litestar and FastAPI apps with the debug toolbar, the panel and SAQ jobs."""

from __future__ import annotations

import asyncio
import logging
import time
import typing as t

from debug_toolbar.fastapi import FastAPIDebugToolbarConfig, setup_debug_toolbar
from debug_toolbar.litestar import DebugToolbarPlugin, LitestarDebugToolbarConfig
from fastapi import FastAPI
from litestar import Litestar, MediaType, get
from opentelemetry import trace
from saq import CronJob, Worker
from saq.queue import Queue

from opentelemetry.instrumentation.saq.debug_toolbar.litestar import SAQTracePlugin
from opentelemetry.instrumentation.saq.debug_toolbar.starlette import mount_trace_pages

PANEL = "opentelemetry.instrumentation.saq.debug_toolbar.SAQPanel"
Ctx = dict[str, t.Any]


async def send_email(ctx: Ctx, *, to: str, api_token: str = "") -> str:
    # A span the job starts: it must show up under the job's attempt, wherever it ran.
    with trace.get_tracer("tests.jobs").start_as_current_span("render email"):
        await asyncio.sleep(0.01)
    return f"sent to {to}"


async def flaky_report(ctx: Ctx) -> None:
    raise ConnectionError("<script>alert('report')</script> server gone")


async def slow(ctx: Ctx, *, seconds: float) -> None:
    await asyncio.sleep(seconds)


async def flaky_once(ctx: Ctx) -> str:
    if ctx["job"].attempts == 1:
        raise ValueError("first try <b>lost</b>")
    return "ok"


async def noisy_report(ctx: Ctx) -> None:
    # One warning of 4,000 characters (a dumped payload), and a short one after it.
    logging.getLogger("tests.jobs.noisy").warning("payload: %s", "x" * 3_991)
    logging.getLogger("tests.jobs.noisy").warning("report sent anyway")


async def welcome(ctx: Ctx, *, to: str) -> None:
    """A job that enqueues another: the email it sends is its child, not the request's."""
    await ctx["worker"].queue.enqueue("send_email", to=to)


FUNCTIONS = [send_email, flaky_report, slow, flaky_once, noisy_report, welcome]


async def enqueue_signup(queue: Queue) -> None:
    await queue.enqueue("send_email", to="ada@example.com", api_token="tok-123-secret")
    await queue.enqueue("flaky_report", retries=2)
    # Due in an hour: still queued when the page is read.
    await queue.enqueue("send_email", to="later@example.com", scheduled=int(time.time()) + 3600)


def in_app_worker(
    queue: Queue, functions: list[t.Any] | None = None, cron_jobs: list[CronJob] | None = None
) -> tuple[t.Callable[[], t.Awaitable[None]], t.Callable[[], t.Awaitable[None]]]:
    """Startup and shutdown hooks that run a real SAQ worker in the app's event loop."""
    worker = Worker(
        queue,
        functions=functions or FUNCTIONS,
        cron_jobs=cron_jobs,
        timers={"schedule": 1, "worker_info": 10, "sweep": 60, "abort": 1},
    )
    worker.SIGNALS = []  # the test client runs the app outside the main thread
    tasks: list[asyncio.Task[None]] = []

    async def startup() -> None:
        await queue.connect()
        tasks.append(asyncio.create_task(worker.start()))

    async def shutdown() -> None:
        await worker.stop()
        for task in tasks:
            task.cancel()
        await queue.disconnect()

    return startup, shutdown


def litestar_app(
    queue: Queue,
    *,
    worker: bool = True,
    enabled: bool = True,
    panel: t.Any = PANEL,
    trace_pages: bool = True,
    cron_jobs: list[CronJob] | None = None,
    **toolbar: t.Any,
) -> Litestar:
    @get("/signup")
    async def signup() -> dict[str, bool]:
        await enqueue_signup(queue)
        return {"ok": True}

    @get("/page", media_type=MediaType.HTML)
    async def page() -> str:
        await queue.enqueue("send_email", to="page@example.com")
        return "<html><body><h1>page</h1></body></html>"

    @get("/slow-page", media_type=MediaType.HTML)
    async def slow_page(seconds: float = 2.0) -> str:
        await queue.enqueue("slow", seconds=seconds)
        return "<html><body><h1>slow page</h1></body></html>"

    @get("/later-page", media_type=MediaType.HTML)
    async def later_page(seconds: int = 3600) -> str:
        await queue.enqueue(
            "send_email", to="later@example.com", scheduled=int(time.time()) + seconds
        )
        return "<html><body><h1>later page</h1></body></html>"

    @get("/noisy")
    async def noisy() -> dict[str, bool]:
        await queue.enqueue("noisy_report")
        return {"ok": True}

    @get("/slow")
    async def slow_job(seconds: float = 0.3) -> dict[str, bool]:
        await queue.enqueue("slow", seconds=seconds)
        return {"ok": True}

    @get("/tagged/{tag:str}")
    async def tagged(tag: str) -> dict[str, str]:
        await asyncio.sleep(0.05)  # overlap with the concurrent request
        await queue.enqueue("send_email", to=f"{tag}@example.com")
        await asyncio.sleep(0.05)
        await queue.enqueue("send_email", to=f"{tag}-2@example.com")
        return {"tag": tag}

    @get("/retry")
    async def retry(delay: float = 0.0) -> dict[str, bool]:
        await queue.enqueue("flaky_once", retries=2, retry_delay=delay)
        return {"ok": True}

    @get("/welcome")
    async def welcome_route() -> dict[str, bool]:
        await queue.enqueue("welcome", to="new@example.com")
        return {"ok": True}

    @get("/map")
    async def fan_out() -> dict[str, bool]:
        # The same token on every job: the addresses tell them apart, the token stays hidden.
        kwargs = [{"to": f"user{i}@example.com", "api_token": "tok-map-secret"} for i in (1, 2, 3)]
        await queue.map("send_email", kwargs, timeout=15)
        return {"ok": True}

    async def connect() -> None:
        await queue.connect()

    startup, shutdown = (
        in_app_worker(queue, cron_jobs=cron_jobs) if worker else (connect, queue.disconnect)
    )
    config = LitestarDebugToolbarConfig(enabled=enabled, extra_panels=[panel], **toolbar)
    plugins: list[t.Any] = [DebugToolbarPlugin(config)]
    if trace_pages:
        plugins.append(SAQTracePlugin())
    return Litestar(
        [
            signup,
            page,
            slow_page,
            later_page,
            noisy,
            slow_job,
            tagged,
            retry,
            fan_out,
            welcome_route,
        ],
        plugins=plugins,
        on_startup=[startup],
        on_shutdown=[shutdown],
    )


def fastapi_app(queue: Queue, *, enabled: bool = True, **toolbar: t.Any) -> FastAPI:
    startup, shutdown = in_app_worker(queue)
    app = FastAPI(on_startup=[startup], on_shutdown=[shutdown])

    @app.get("/signup")
    async def signup() -> dict[str, bool]:
        await enqueue_signup(queue)
        return {"ok": True}

    config = FastAPIDebugToolbarConfig(extra_panels=[PANEL], enabled=enabled, **toolbar)
    setup_debug_toolbar(app, config)
    mount_trace_pages(app, config)
    return app
