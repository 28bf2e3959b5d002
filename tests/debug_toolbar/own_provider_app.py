"""An app that sets its own TracerProvider in a request handler, after the toolbar served.

Run as a script by test_own_provider.py (the global provider can be set once per process):
``python -m tests.debug_toolbar.own_provider_app litestar|fastapi REDIS_URL QUEUE``.
It hits the panel, the trace pages and the receiver first, then ``/configure`` sets the
app's own provider (adding the toolbar's store, as docs/toolbar/settings.md says), then a second
request's job must show its spans. Prints one JSON line of what it saw.
"""

from __future__ import annotations

import json
import logging
import sys
import typing as t

from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from saq.queue.redis import RedisQueue

from opentelemetry.instrumentation.saq import SAQInstrumentor
from opentelemetry.instrumentation.saq.debug_toolbar import SAQPanel
from opentelemetry.instrumentation.saq.debug_toolbar.tracing import trace_store
from tests.debug_toolbar.apps import in_app_worker
from tests.debug_toolbar.otlp_payloads import PROTOBUF, RECEIVER, protobuf, worker_attempt
from tests.debug_toolbar.toolbar_api import request_id, statuses, wait_for_panel


class OwnProviderPanel(SAQPanel):
    install_tracer_provider = False  # the app sets its own, later


PANEL = f"{__name__.replace('__main__', 'tests.debug_toolbar.own_provider_app')}.OwnProviderPanel"
exported = InMemorySpanExporter()
mine = TracerProvider()
mine.add_span_processor(SimpleSpanProcessor(exported))


def configure() -> dict[str, t.Any]:
    """What an app that configures its SDK lazily does, in a request handler."""
    mine.add_span_processor(trace_store())  # the recipe of docs/toolbar/settings.md
    trace.set_tracer_provider(mine)
    return {"own": trace.get_tracer_provider() is mine}


def litestar(queue: RedisQueue) -> t.Any:
    from debug_toolbar.litestar import DebugToolbarPlugin, LitestarDebugToolbarConfig
    from litestar import Litestar, get

    from opentelemetry.instrumentation.saq.debug_toolbar.litestar import SAQTracePlugin

    @get(["/slow", "/later"])
    async def slow() -> dict[str, bool]:
        await queue.enqueue("slow", seconds=0.01)
        return {"ok": True}

    @get("/configure")
    async def configure_route() -> dict[str, t.Any]:
        return configure()

    startup, shutdown = in_app_worker(queue)
    config = LitestarDebugToolbarConfig(extra_panels=[PANEL])
    return Litestar(
        [slow, configure_route],
        plugins=[DebugToolbarPlugin(config), SAQTracePlugin()],
        on_startup=[startup],
        on_shutdown=[shutdown],
    )


def fastapi(queue: RedisQueue) -> t.Any:
    from debug_toolbar.fastapi import FastAPIDebugToolbarConfig, setup_debug_toolbar
    from fastapi import FastAPI

    from opentelemetry.instrumentation.saq.debug_toolbar.starlette import mount_trace_pages

    startup, shutdown = in_app_worker(queue)
    app = FastAPI(on_startup=[startup], on_shutdown=[shutdown])

    @app.get("/slow")
    @app.get("/later")
    async def slow() -> dict[str, bool]:
        await queue.enqueue("slow", seconds=0.01)
        return {"ok": True}

    @app.get("/configure")
    async def configure_route() -> dict[str, t.Any]:
        return configure()

    config = FastAPIDebugToolbarConfig(extra_panels=[PANEL])
    setup_debug_toolbar(app, config)
    mount_trace_pages(app, config)
    return app


def main() -> None:
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr)
    framework, redis_url, name = sys.argv[1:4]
    SAQInstrumentor().instrument()  # no provider yet: the app sets it later
    queue = RedisQueue.from_url(redis_url, name=name)
    app = litestar(queue) if framework == "litestar" else fastapi(queue)
    if framework == "litestar":
        from litestar.testing import TestClient
    else:
        from starlette.testclient import TestClient  # type: ignore[assignment]
    with TestClient(app) as client:
        # Everything the toolbar serves, before the app configures its SDK.
        client.get("/slow")
        stats = wait_for_panel(
            client, request_id(client, "/slow"), lambda s: statuses(s) == [("slow", "complete")]
        )
        served = [
            client.get("/_debug_toolbar/saq/").status_code,
            client.get("/_debug_toolbar/saq/api/traces").status_code,
            client.get(f"/_debug_toolbar/saq/{stats['trace_id']}").status_code,
            client.post(
                RECEIVER,
                content=protobuf(worker_attempt(stats["trace_id"], "1" * 16, "k")),
                headers=PROTOBUF,
            ).status_code,
        ]
        before = type(trace.get_tracer_provider()).__name__
        configured = client.get("/configure").json()
        # The app's provider now gets SAQ's spans, and the panel sees them through its store.
        client.get("/later")
        later = wait_for_panel(
            client, request_id(client, "/later"), lambda s: statuses(s) == [("slow", "complete")]
        )
        view = client.get(f"/_debug_toolbar/saq/api/traces/{later['trace_id']}")
    print(
        json.dumps(
            {
                "served": served,
                "before": before,
                "configured": configured,
                "exported": sorted({span.name for span in exported.get_finished_spans()}),
                "rows": [row["kind"] for row in view.json()["rows"]] if view.is_success else [],
            }
        )
    )


if __name__ == "__main__":
    main()
