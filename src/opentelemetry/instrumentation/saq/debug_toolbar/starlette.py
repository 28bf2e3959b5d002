"""Serving the trace pages in a Starlette or FastAPI app: one call after the toolbar's.

::

    config = FastAPIDebugToolbarConfig(extra_panels=[...SAQPanel])
    setup_debug_toolbar(app, config)
    mount_trace_pages(app, config)

Nothing is mounted when the toolbar config is disabled.
"""

from __future__ import annotations

import typing as t

from starlette.responses import HTMLResponse, JSONResponse, PlainTextResponse, Response
from starlette.routing import Route

from opentelemetry.instrumentation.saq.debug_toolbar import otlp_logs, pages, receiver
from opentelemetry.instrumentation.saq.debug_toolbar.guard import toolbar_would_show
from opentelemetry.instrumentation.saq.debug_toolbar.trace_view import PAGE_PREFIX

if t.TYPE_CHECKING:
    from debug_toolbar.core.config import DebugToolbarConfig
    from starlette.applications import Starlette
    from starlette.requests import Request

Endpoint = t.Callable[["Request"], t.Awaitable[Response]]


async def _list(request: Request) -> Response:
    return HTMLResponse(pages.list_html())


async def _detail(request: Request) -> Response:
    html = await pages.trace_html(request.path_params["trace_id"])
    return HTMLResponse(html) if html is not None else HTMLResponse("not found", 404)


async def _traces_api(request: Request) -> Response:
    return JSONResponse(pages.traces_json())


async def _trace_api(request: Request) -> Response:
    view = await pages.trace_json(request.path_params["trace_id"])
    return JSONResponse(view) if view is not None else JSONResponse({"detail": "not found"}, 404)


async def _otlp_traces(request: Request) -> Response:
    answer = await receiver.receive(request.headers, request.stream())
    return Response(answer.body, status_code=answer.status, media_type=answer.media_type)


async def _otlp_logs(request: Request) -> Response:
    answer = await otlp_logs.receive(request.headers, request.stream())
    return Response(answer.body, status_code=answer.status, media_type=answer.media_type)


def _guarded(config: DebugToolbarConfig, endpoint: Endpoint) -> Endpoint:
    """The endpoint, answering 404 where the toolbar would not show itself."""

    async def guarded(request: Request) -> Response:
        if not toolbar_would_show(config, request):
            return PlainTextResponse("Not Found", 404)
        return await endpoint(request)

    return guarded


def trace_routes(config: DebugToolbarConfig) -> list[Route]:
    """The pages, their JSON API and the OTLP receiver, each behind the one guard."""
    routes: list[tuple[str, Endpoint, list[str]]] = [
        (f"{PAGE_PREFIX}/", _list, ["GET"]),
        (receiver.RECEIVER_PATH, _otlp_traces, ["POST"]),
        (receiver.LOGS_RECEIVER_PATH, _otlp_logs, ["POST"]),
        (f"{PAGE_PREFIX}/api/traces", _traces_api, ["GET"]),
        (f"{PAGE_PREFIX}/api/traces/{{trace_id}}", _trace_api, ["GET"]),
        (f"{PAGE_PREFIX}/{{trace_id}}", _detail, ["GET"]),
    ]
    return [Route(path, _guarded(config, endpoint), methods=m) for path, endpoint, m in routes]


def mount_trace_pages(app: Starlette, config: DebugToolbarConfig) -> bool:
    """Add the SAQ trace pages and the OTLP receiver to ``app`` if the toolbar is enabled;
    says whether it did. They answer only where the toolbar would show itself."""
    if not config.enabled:
        return False
    app.router.routes.extend(trace_routes(config))
    return True
