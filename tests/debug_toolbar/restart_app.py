"""An app a developer restarts: the toolbar with its history in a file, the panel, SAQ jobs
run by an in-app worker. Served by uvicorn in its own process by test_across_reloads.py
(``--reload``, a SIGKILL, two processes on one store).

Its environment: ``RESTART_REDIS_URL`` and ``RESTART_QUEUE`` (the queue), ``RESTART_HISTORY``
(the toolbar's ``FileToolbarStorage`` file) and ``OTEL_PYTHON_SAQ_TOOLBAR_STORE`` (the
folder of the SAQ stores).
"""

from __future__ import annotations

import logging
import os
import typing as t

from debug_toolbar.litestar import DebugToolbarPlugin, LitestarDebugToolbarConfig
from litestar import Litestar, get
from saq.queue.redis import RedisQueue

from debug_toolbar import FileToolbarStorage
from opentelemetry.instrumentation.saq import SAQInstrumentor
from opentelemetry.instrumentation.saq.debug_toolbar.litestar import SAQTracePlugin
from tests.debug_toolbar.apps import PANEL, in_app_worker

job_logger = logging.getLogger("restart.jobs")


async def greet(ctx: dict[str, t.Any], *, name: str) -> str:
    job_logger.warning("GREETED %s", name)
    return f"hello {name}"


def app() -> Litestar:
    SAQInstrumentor().instrument()
    queue = RedisQueue.from_url(os.environ["RESTART_REDIS_URL"], name=os.environ["RESTART_QUEUE"])
    startup, shutdown = in_app_worker(queue, [greet])

    @get("/greet/{name:str}")
    async def enqueue_greeting(name: str) -> dict[str, bool]:
        await queue.enqueue("greet", name=name)
        return {"ok": True}

    @get("/pid", sync_to_thread=False)
    def pid() -> dict[str, int]:
        return {"pid": os.getpid()}

    config = LitestarDebugToolbarConfig(
        extra_panels=[PANEL],
        exclude_paths=["/_debug_toolbar", "/pid"],
        storage=FileToolbarStorage(os.environ["RESTART_HISTORY"], max_size=200),
    )
    return Litestar(
        [enqueue_greeting, pid],
        plugins=[DebugToolbarPlugin(config), SAQTracePlugin()],
        on_startup=[startup],
        on_shutdown=[shutdown],
    )
