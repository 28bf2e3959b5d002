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
from litestar import MediaType, Request, Response, Router, get, post
from litestar.exceptions import NotFoundException
from litestar.plugins import InitPluginProtocol

from opentelemetry.instrumentation.saq.debug_toolbar import otlp_logs, pages, receiver
from opentelemetry.instrumentation.saq.debug_toolbar.guard import toolbar_would_show
from opentelemetry.instrumentation.saq.debug_toolbar.trace_view import PAGE_PREFIX

if t.TYPE_CHECKING:
    from debug_toolbar.core.config import DebugToolbarConfig
    from litestar.config.app import AppConfig
    from litestar.connection import ASGIConnection
    from litestar.handlers.base import BaseRouteHandler

logger = logging.getLogger(__name__)


@get("/", media_type=MediaType.HTML, include_in_schema=False)
async def trace_list() -> str:
    return pages.list_html()


@get("/{trace_id:str}", media_type=MediaType.HTML, include_in_schema=False)
async def trace_detail(trace_id: str) -> str:
    html = await pages.trace_html(trace_id)
    if html is None:
        raise NotFoundException(f"no trace {trace_id} in this process")
    return html


@get("/api/traces", include_in_schema=False)
async def traces_api() -> dict[str, t.Any]:
    return pages.traces_json()


@get("/api/traces/{trace_id:str}", include_in_schema=False)
async def trace_api(trace_id: str) -> Response[dict[str, t.Any]]:
    view = await pages.trace_json(trace_id)
    if view is None:
        raise NotFoundException(f"no trace {trace_id} in this process")
    return Response(view)


@post("/v1/traces", include_in_schema=False)
async def otlp_traces(request: Request[t.Any, t.Any, t.Any]) -> Response[bytes]:
    answer = await receiver.receive(request.headers, request.stream())
    return Response(answer.body, status_code=answer.status, media_type=answer.media_type)


@post("/v1/logs", include_in_schema=False)
async def otlp_logs_export(request: Request[t.Any, t.Any, t.Any]) -> Response[bytes]:
    answer = await otlp_logs.receive(request.headers, request.stream())
    return Response(answer.body, status_code=answer.status, media_type=answer.media_type)


def trace_router(config: DebugToolbarConfig) -> Router:
    """The pages, their JSON API and the OTLP receivers, behind one guard."""

    def only_where_the_toolbar_shows(
        connection: ASGIConnection[t.Any, t.Any, t.Any, t.Any], _: BaseRouteHandler
    ) -> None:
        request = connection if isinstance(connection, Request) else Request(connection.scope)
        if not toolbar_would_show(config, request):
            raise NotFoundException()

    return Router(
        path=PAGE_PREFIX,
        route_handlers=[
            trace_list,
            trace_detail,
            traces_api,
            trace_api,
            otlp_traces,
            otlp_logs_export,
        ],
        guards=[only_where_the_toolbar_shows],
        include_in_schema=False,
    )


class SAQTracePlugin(InitPluginProtocol):
    """Mounts the SAQ trace pages and the OTLP receiver under ``/_debug_toolbar/saq/``
    while the toolbar is on; they answer only where the toolbar would show itself."""

    def on_app_init(self, app_config: AppConfig) -> AppConfig:
        toolbars = [p for p in app_config.plugins if isinstance(p, DebugToolbarPlugin)]
        enabled = [toolbar.config for toolbar in toolbars if toolbar.config.enabled]
        if not enabled:
            logger.info("debug toolbar not enabled: SAQ trace pages not mounted")
            return app_config
        app_config.route_handlers = [*app_config.route_handlers, trace_router(enabled[0])]
        return app_config
