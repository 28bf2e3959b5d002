"""Serving the trace pages in a Litestar app: add ``SAQTracePlugin()`` next to the toolbar's.

::

    app = Litestar(
        route_handlers=[...],
        plugins=[DebugToolbarPlugin(config), SAQTracePlugin()],
    )

The pages are mounted only when the app also has an enabled ``DebugToolbarPlugin``: a
production config that disables the toolbar disables them too.
"""

from __future__ import annotations

import logging
import typing as t

from debug_toolbar.litestar import DebugToolbarPlugin
from litestar import MediaType, Response, Router, get
from litestar.exceptions import NotFoundException
from litestar.plugins import InitPluginProtocol

from opentelemetry.instrumentation.saq.debug_toolbar import pages
from opentelemetry.instrumentation.saq.debug_toolbar.trace_view import PAGE_PREFIX

if t.TYPE_CHECKING:
    from litestar.config.app import AppConfig

logger = logging.getLogger(__name__)


@get("/", media_type=MediaType.HTML, include_in_schema=False)
async def trace_list() -> str:
    return pages.list_html()


@get("/{trace_id:str}", media_type=MediaType.HTML, include_in_schema=False)
async def trace_detail(trace_id: str) -> str:
    html = pages.trace_html(trace_id)
    if html is None:
        raise NotFoundException(f"no trace {trace_id} in this process")
    return html


@get("/api/traces", include_in_schema=False)
async def traces_api() -> dict[str, t.Any]:
    return pages.traces_json()


@get("/api/traces/{trace_id:str}", include_in_schema=False)
async def trace_api(trace_id: str) -> Response[dict[str, t.Any]]:
    view = pages.trace_json(trace_id)
    if view is None:
        raise NotFoundException(f"no trace {trace_id} in this process")
    return Response(view)


def trace_router() -> Router:
    return Router(
        path=PAGE_PREFIX,
        route_handlers=[trace_list, trace_detail, traces_api, trace_api],
        include_in_schema=False,
    )


class SAQTracePlugin(InitPluginProtocol):
    """Mounts the SAQ trace pages under ``/_debug_toolbar/saq/`` while the toolbar is on."""

    def on_app_init(self, app_config: AppConfig) -> AppConfig:
        toolbars = [p for p in app_config.plugins if isinstance(p, DebugToolbarPlugin)]
        if not any(toolbar.config.enabled for toolbar in toolbars):
            logger.info("debug toolbar not enabled: SAQ trace pages not mounted")
            return app_config
        app_config.route_handlers = [*app_config.route_handlers, trace_router()]
        return app_config
