"""A Litestar app that runs SAQ the litestar-saq way: SAQPlugin, SAQConfig, its queues.

The request handler enqueues through the queue litestar-saq injects (``TaskQueues``); the
worker is litestar-saq's own, started by its config (``separate_process=False``: in the
app's event loop) or by its CLI (``separate_process=True``, see ``cli_app.py``). The debug
toolbar shows our panel; Litestar's own OpenTelemetry plugin makes the server span.
"""

from __future__ import annotations

import typing as t

import redis
from debug_toolbar.litestar import DebugToolbarPlugin, LitestarDebugToolbarConfig
from litestar import Litestar, get
from litestar.plugins.opentelemetry import OpenTelemetryConfig, OpenTelemetryPlugin
from opentelemetry.trace import TracerProvider

from litestar_saq import QueueConfig, SAQConfig, SAQPlugin, TaskQueues

PANEL = "opentelemetry.instrumentation.saq.debug_toolbar.SAQPanel"
TIMERS: t.Any = {"schedule": 1, "worker_info": 10, "sweep": 60, "abort": 1}
Ctx = dict[str, t.Any]


async def send_welcome(ctx: Ctx, *, to: str) -> str:
    return f"sent to {to}"


async def sync_crm(ctx: Ctx) -> str:
    if ctx["job"].attempts == 1:
        raise ConnectionError("CRM unreachable")
    return "synced"


def make_app(
    redis_url: str,
    queue_name: str,
    *,
    separate_process: bool,
    tracer_provider: TracerProvider | None = None,
    enable_otel: bool | None = None,
) -> Litestar:
    queue_config = QueueConfig(
        dsn=redis_url,
        name=queue_name,
        tasks=[send_welcome, sync_crm],
        separate_process=separate_process,
        timers=TIMERS,
    )
    saq = SAQPlugin(SAQConfig(queue_configs=[queue_config], enable_otel=enable_otel))

    @get("/signup")
    async def signup(task_queues: TaskQueues) -> dict[str, str]:
        queue = task_queues.get(queue_name)
        welcome = await queue.enqueue("send_welcome", to="ada@example.com")
        crm = await queue.enqueue("sync_crm", retries=2)
        assert welcome is not None and crm is not None
        return {"send_welcome": welcome.id, "sync_crm": crm.id}

    toolbar = LitestarDebugToolbarConfig(extra_panels=[PANEL])
    plugins: list[t.Any] = [saq, DebugToolbarPlugin(toolbar)]
    if tracer_provider is not None:
        plugins.append(OpenTelemetryPlugin(OpenTelemetryConfig(tracer_provider=tracer_provider)))
    return Litestar([signup], plugins=plugins)


def hold_sweep_lock(redis_url: str, queue_name: str) -> None:
    """Keep the worker's startup sweep from aborting a job it has just dequeued.

    SAQ's own race (instrumented or not, see tests/workers.py); tests not about sweeping
    hold the lock.
    """
    client = redis.Redis.from_url(redis_url)
    client.set(f"saq:{queue_name}:sweep", 1, ex=120)
    client.close()
