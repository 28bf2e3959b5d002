"""An app that never configures logging, with the toolbar, the panel and an in-app worker:
served by uvicorn in its own process by test_guest_logging.py.

Python prints such an app's warnings and errors through ``logging.lastResort``, and a
``logging.basicConfig()`` call configures the root logger later: the toolbar must leave
both as they are. Paths under ``/plain`` are left out of the toolbar (the toolbar's own
logging panel holds a root handler while it serves a request).
"""

from __future__ import annotations

import logging
import os
import typing as t

from debug_toolbar.fastapi import FastAPIDebugToolbarConfig, setup_debug_toolbar
from debug_toolbar.litestar import DebugToolbarPlugin, LitestarDebugToolbarConfig
from fastapi import FastAPI
from litestar import Litestar, get
from litestar.logging.config import LoggingConfig
from saq.queue.redis import RedisQueue

from opentelemetry.instrumentation.saq import SAQInstrumentor
from opentelemetry.instrumentation.saq.debug_toolbar.litestar import SAQTracePlugin
from opentelemetry.instrumentation.saq.debug_toolbar.starlette import mount_trace_pages
from tests.debug_toolbar.apps import PANEL, in_app_worker

app_logger = logging.getLogger("guest.app")
job_logger = logging.getLogger("guest.jobs")
TOOLBAR = {"extra_panels": [PANEL], "exclude_paths": ["/_debug_toolbar", "/plain"]}


async def chatty(ctx: dict[str, t.Any]) -> str:
    job_logger.warning("JOB-LINE written by the job")
    return "ok"


async def broken(ctx: dict[str, t.Any]) -> None:
    raise RuntimeError("JOB-BROKE")


def _queue() -> RedisQueue:
    return RedisQueue.from_url(os.environ["GUEST_REDIS_URL"], name=os.environ["GUEST_QUEUE"])


def shout(word: str) -> dict[str, bool]:
    app_logger.error("APP-ERROR %s", word)
    return {"ok": True}


def configure() -> dict[str, bool]:
    logging.basicConfig(format="CONFIGURED %(levelname)s %(message)s")
    app_logger.error("AFTER-BASIC")
    return {"ok": True}


def fastapi_app() -> FastAPI:
    SAQInstrumentor().instrument()
    queue = _queue()
    startup, shutdown = in_app_worker(queue, [chatty, broken])
    app = FastAPI(on_startup=[startup], on_shutdown=[shutdown])

    @app.get("/job")
    async def job() -> dict[str, bool]:
        await queue.enqueue("chatty")
        return {"ok": True}

    @app.get("/fail")
    async def fail() -> dict[str, bool]:
        await queue.enqueue("broken")
        return {"ok": True}

    app.get("/plain/shout")(shout)
    app.get("/plain/configure")(configure)
    config = FastAPIDebugToolbarConfig(**TOOLBAR)
    setup_debug_toolbar(app, config)
    mount_trace_pages(app, config)
    return app


def litestar_app() -> Litestar:
    SAQInstrumentor().instrument()
    queue = _queue()
    startup, shutdown = in_app_worker(queue, [chatty, broken])

    @get("/job")
    async def job() -> dict[str, bool]:
        await queue.enqueue("chatty")
        return {"ok": True}

    @get("/fail")
    async def fail() -> dict[str, bool]:
        await queue.enqueue("broken")
        return {"ok": True}

    plain = [get(f"/plain/{f.__name__}", sync_to_thread=False)(f) for f in (shout, configure)]
    return Litestar(
        [job, fail, *plain],
        plugins=[DebugToolbarPlugin(LitestarDebugToolbarConfig(**TOOLBAR)), SAQTracePlugin()],
        logging_config=LoggingConfig(configure_root_logger=False),
        on_startup=[startup],
        on_shutdown=[shutdown],
    )
