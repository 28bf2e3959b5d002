"""Serving the trace pages in a Starlette or FastAPI app: one call after the toolbar's.

::

    config = FastAPIDebugToolbarConfig(extra_panels=[...SAQPanel])
    setup_debug_toolbar(app, config)
    mount_trace_pages(app, config)

Nothing is mounted when the toolbar config is disabled.
"""

from __future__ import annotations

import typing as t

from starlette.responses import HTMLResponse, JSONResponse, Response
from starlette.routing import Route

from opentelemetry.instrumentation.saq.debug_toolbar import pages
from opentelemetry.instrumentation.saq.debug_toolbar.trace_view import PAGE_PREFIX

if t.TYPE_CHECKING:
    from debug_toolbar.core.config import DebugToolbarConfig
    from starlette.applications import Starlette
    from starlette.requests import Request


async def _list(request: Request) -> Response:
    return HTMLResponse(pages.list_html())


async def _detail(request: Request) -> Response:
    html = pages.trace_html(request.path_params["trace_id"])
    return HTMLResponse(html) if html is not None else HTMLResponse("not found", 404)


async def _traces_api(request: Request) -> Response:
    return JSONResponse(pages.traces_json())


async def _trace_api(request: Request) -> Response:
    view = pages.trace_json(request.path_params["trace_id"])
    return JSONResponse(view) if view is not None else JSONResponse({"detail": "not found"}, 404)


def trace_routes() -> list[Route]:
    return [
        Route(f"{PAGE_PREFIX}/", _list),
        Route(f"{PAGE_PREFIX}/api/traces", _traces_api),
        Route(f"{PAGE_PREFIX}/api/traces/{{trace_id}}", _trace_api),
        Route(f"{PAGE_PREFIX}/{{trace_id}}", _detail),
    ]


def mount_trace_pages(app: Starlette, config: DebugToolbarConfig) -> bool:
    """Add the SAQ trace pages to ``app`` if the toolbar is enabled; says whether it did."""
    if not config.enabled:
        return False
    app.router.routes.extend(trace_routes())
    return True
