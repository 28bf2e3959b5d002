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
from functools import partial
from http import HTTPStatus

from debug_toolbar.litestar import DebugToolbarPlugin
from litestar import HttpMethod, MediaType, Request, Response, Router, get, post, route
from litestar.exceptions import HTTPException, MethodNotAllowedException, NotFoundException
from litestar.plugins import InitPluginProtocol

from opentelemetry.instrumentation.saq.debug_toolbar import error_pages
from opentelemetry.instrumentation.saq.debug_toolbar.guard import toolbar_would_show
from opentelemetry.instrumentation.saq.debug_toolbar.pages import job_list, views
from opentelemetry.instrumentation.saq.debug_toolbar.pages.trace_view import PAGE_PREFIX
from opentelemetry.instrumentation.saq.debug_toolbar.panel.panel import close_panels, open_panels
from opentelemetry.instrumentation.saq.debug_toolbar.receivers import otlp_logs, receiver

if t.TYPE_CHECKING:
    from debug_toolbar.core.config import DebugToolbarConfig
    from litestar.config.app import AppConfig
    from litestar.connection import ASGIConnection
    from litestar.handlers.base import BaseRouteHandler
    from litestar.handlers.http_handlers import HTTPRouteHandler

__all__ = ["SAQTracePlugin", "trace_router"]

logger = logging.getLogger(__name__)


@get("/", media_type=MediaType.HTML, include_in_schema=False)
async def trace_list(request: Request[t.Any, t.Any, t.Any]) -> str:
    return _answering_bad_queries(views.list_html, request)


@get("/{trace_id:str}", media_type=MediaType.HTML, include_in_schema=False)
async def trace_detail(trace_id: str) -> str:
    html = await views.trace_html(trace_id)
    if html is None:
        raise NotFoundException(f"No trace {trace_id} in this process.")
    return html


@get("/api/traces", include_in_schema=False)
async def traces_api(request: Request[t.Any, t.Any, t.Any]) -> dict[str, t.Any]:
    return _answering_bad_queries(views.traces_json, request)


Listed = t.TypeVar("Listed")


def _answering_bad_queries(
    listing: t.Callable[[t.Mapping[str, str]], Listed], request: Request[t.Any, t.Any, t.Any]
) -> Listed:
    """The list for the request's query; a query out of bounds is a 400 (escaped)."""
    try:
        return listing(t.cast("t.Mapping[str, str]", request.query_params))
    except job_list.BadQueryError as exc:
        raise HTTPException(status_code=400, detail=str(exc)) from None


@get("/api/traces/{trace_id:str}", include_in_schema=False)
async def trace_api(trace_id: str) -> Response[dict[str, t.Any]]:
    view = await views.trace_json(trace_id)
    if view is None:
        raise NotFoundException(f"No trace {trace_id} in this process.")
    return Response(view)


@get("/api/status/{trace_id:str}", include_in_schema=False)
async def status_api(trace_id: str) -> Response[dict[str, t.Any]]:
    status = views.status_json(trace_id)
    if status is None:
        raise NotFoundException(f"No trace {trace_id} in this process.")
    # Polled: never from a cache.
    return Response(status, headers={"Cache-Control": "no-store"})


# The receivers enforce their own limits, and drain a body up to a cap before answering
# 413 (see receiver.py): Litestar's own limit (10 MB by default) would cut that short.
@post("/v1/traces", include_in_schema=False, request_max_body_size=None)
async def otlp_traces(request: Request[t.Any, t.Any, t.Any]) -> Response[bytes]:
    return _exported(await receiver.receive(request.headers, request.stream()))


@post("/v1/logs", include_in_schema=False, request_max_body_size=None)
async def otlp_logs_export(request: Request[t.Any, t.Any, t.Any]) -> Response[bytes]:
    return _exported(await otlp_logs.receive(request.headers, request.stream()))


def _exported(answer: receiver.Answer) -> Response[bytes]:
    headers = error_pages.HEADERS if answer.status >= 400 else None
    return Response(
        answer.body, status_code=answer.status, media_type=answer.media_type, headers=headers
    )


def trace_router(config: DebugToolbarConfig) -> Router:
    """The pages, their JSON API and the OTLP receivers, behind one guard."""

    def only_where_the_toolbar_shows(
        connection: ASGIConnection[t.Any, t.Any, t.Any, t.Any], _: BaseRouteHandler
    ) -> None:
        request = connection if isinstance(connection, Request) else Request(connection.scope)
        if not toolbar_would_show(config, request):
            raise NotFoundException()

    handlers = [
        trace_list,
        trace_detail,
        traces_api,
        trace_api,
        status_api,
        otlp_traces,
        otlp_logs_export,
    ]
    return Router(
        path=PAGE_PREFIX,
        route_handlers=[*handlers, *_refusing_other_methods(handlers)],
        guards=[only_where_the_toolbar_shows],
        exception_handlers={Exception: _error, **{s.value: _error for s in HTTPStatus if s >= 400}},
        include_in_schema=False,
    )


def _error(request: Request[t.Any, t.Any, t.Any], exc: Exception) -> Response[bytes]:
    """Every error of our routes as an escaped page (or JSON on the API and the receiver),
    whatever the app's own error handlers are: Litestar's default sends its JSON body with
    the handler's media type, text/html on the pages, and echoes the request unescaped."""
    status = exc.status_code if isinstance(exc, HTTPException) else 500
    if isinstance(exc, HTTPException) and status < 500:
        message, headers = exc.detail, exc.headers or {}
    else:
        logger.warning("the SAQ trace pages failed on %s", request.url.path, exc_info=exc)
        message, headers = "See the application log.", {}
    answer = error_pages.answer(request.url.path, status, message)
    headers = {**headers, **error_pages.HEADERS}
    return Response(answer.body, status_code=status, media_type=answer.media_type, headers=headers)


def _refusing_other_methods(handlers: list[HTTPRouteHandler]) -> list[HTTPRouteHandler]:
    """A handler per path for the methods it does not serve, raising 405 inside our router:
    Litestar answers a wrong method before any router's exception handler would run."""
    served: dict[str, set[str]] = {}
    for handler in handlers:
        for path in handler.paths:
            served.setdefault(path, set()).update(handler.http_methods)
    refusers = []
    for path, methods in served.items():
        others = [m for m in HttpMethod if m not in methods and m != HttpMethod.OPTIONS]
        refuse = _refuse(", ".join(sorted(methods)))
        refusers.append(route(path, http_method=others, include_in_schema=False)(refuse))
    return refusers


def _refuse(allow: str) -> t.Callable[[], t.Awaitable[None]]:
    async def refuse() -> None:
        raise MethodNotAllowedException(headers={"Allow": allow})

    return refuse


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
        # The panels' log capture lasts while the app runs: the app's own shutdown hooks
        # (an in-app worker stopping) run first and are still captured.
        opening = [partial(open_panels, config) for config in enabled]
        closing = [partial(close_panels, config) for config in enabled]
        app_config.on_startup = [*app_config.on_startup, *opening]
        app_config.on_shutdown = [*app_config.on_shutdown, *closing]
        return app_config
