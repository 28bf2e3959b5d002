"""Serving the trace pages in a Starlette or FastAPI app: one call after the toolbar's.

::

    config = FastAPIDebugToolbarConfig(extra_panels=[...SAQPanel])
    setup_debug_toolbar(app, config)
    mount_trace_pages(app, config)

Nothing is mounted when the toolbar config is disabled.
"""

from __future__ import annotations

import contextlib
import logging
import typing as t

from starlette.exceptions import HTTPException
from starlette.responses import HTMLResponse, JSONResponse, Response
from starlette.routing import Route, request_response

from opentelemetry.instrumentation.saq.debug_toolbar import error_pages
from opentelemetry.instrumentation.saq.debug_toolbar.guard import toolbar_would_show
from opentelemetry.instrumentation.saq.debug_toolbar.pages import job_list, views
from opentelemetry.instrumentation.saq.debug_toolbar.pages.trace_view import PAGE_PREFIX
from opentelemetry.instrumentation.saq.debug_toolbar.panel.panel import close_panels, open_panels
from opentelemetry.instrumentation.saq.debug_toolbar.receivers import otlp_logs, receiver

if t.TYPE_CHECKING:
    from collections.abc import AsyncIterator

    from debug_toolbar.core.config import DebugToolbarConfig
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.types import Receive, Scope, Send

__all__ = ["mount_trace_pages", "trace_routes"]

logger = logging.getLogger(__name__)
Endpoint = t.Callable[["Request"], t.Awaitable[Response]]


async def _list(request: Request) -> Response:
    return HTMLResponse(_answering_bad_queries(views.list_html, request))


Listed = t.TypeVar("Listed")


def _answering_bad_queries(
    listing: t.Callable[[t.Mapping[str, str]], Listed], request: Request
) -> Listed:
    """The list for the request's query; a query out of bounds is a 400 (escaped)."""
    try:
        return listing(request.query_params)
    except job_list.BadQueryError as exc:
        raise HTTPException(400, str(exc)) from None


async def _detail(request: Request) -> Response:
    trace_id = request.path_params["trace_id"]
    html = await views.trace_html(trace_id)
    if html is None:
        raise HTTPException(404, f"No trace {trace_id} in this process.")
    return HTMLResponse(html)


async def _traces_api(request: Request) -> Response:
    return JSONResponse(_answering_bad_queries(views.traces_json, request))


async def _trace_api(request: Request) -> Response:
    trace_id = request.path_params["trace_id"]
    view = await views.trace_json(trace_id)
    if view is None:
        raise HTTPException(404, f"No trace {trace_id} in this process.")
    return JSONResponse(view)


async def _status_api(request: Request) -> Response:
    trace_id = request.path_params["trace_id"]
    status = views.status_json(trace_id)
    if status is None:
        raise HTTPException(404, f"No trace {trace_id} in this process.")
    # Polled: never from a cache.
    return JSONResponse(status, headers={"Cache-Control": "no-store"})


async def _otlp_traces(request: Request) -> Response:
    return _exported(await receiver.receive(request.headers, request.stream()))


async def _otlp_logs(request: Request) -> Response:
    return _exported(await otlp_logs.receive(request.headers, request.stream()))


def _exported(answer: receiver.Answer) -> Response:
    headers = error_pages.HEADERS if answer.status >= 400 else None
    return Response(answer.body, answer.status, headers, answer.media_type)


def _guarded(config: DebugToolbarConfig, endpoint: Endpoint) -> Endpoint:
    """The endpoint, answering 404 where the toolbar would not show itself, and every
    error as an escaped page of ours (JSON on the API and the receiver)."""

    async def guarded(request: Request) -> Response:
        try:
            if not toolbar_would_show(config, request):
                raise HTTPException(404)
            return await endpoint(request)
        except HTTPException as exc:
            return _error(request.url.path, exc.status_code, exc.detail, exc.headers)
        except Exception:
            logger.warning("the SAQ trace pages failed on %s", request.url.path, exc_info=True)
            return _error(request.url.path, 500, "See the application log.")

    return guarded


def _error(
    path: str, status: int, message: str, headers: t.Mapping[str, str] | None = None
) -> Response:
    answer = error_pages.answer(path, status, message)
    headers = {**(headers or {}), **error_pages.HEADERS}
    return Response(answer.body, status, headers, answer.media_type)


class _Route(Route):
    """A guarded route that answers a wrong method with our 405 page too (Starlette's own
    is plain text, or whatever the app's handler of HTTPException makes of it)."""

    def __init__(
        self, path: str, endpoint: Endpoint, methods: list[str], config: DebugToolbarConfig
    ) -> None:
        super().__init__(path, _guarded(config, endpoint), methods=methods)
        self._refuse = request_response(_guarded(config, _not_allowed(self.methods or set())))

    async def handle(self, scope: Scope, receive: Receive, send: Send) -> None:
        if self.methods and scope["method"] not in self.methods:
            await self._refuse(scope, receive, send)
        else:
            await super().handle(scope, receive, send)


def _not_allowed(methods: t.Collection[str]) -> Endpoint:
    async def refuse(request: Request) -> Response:
        raise HTTPException(405, headers={"Allow": ", ".join(sorted(methods))})

    return refuse


def trace_routes(config: DebugToolbarConfig) -> list[Route]:
    """The pages, their JSON API and the OTLP receiver, each behind the one guard."""
    routes: list[tuple[str, Endpoint, list[str]]] = [
        (f"{PAGE_PREFIX}/", _list, ["GET"]),
        (receiver.RECEIVER_PATH, _otlp_traces, ["POST"]),
        (receiver.LOGS_RECEIVER_PATH, _otlp_logs, ["POST"]),
        (f"{PAGE_PREFIX}/api/traces", _traces_api, ["GET"]),
        (f"{PAGE_PREFIX}/api/traces/{{trace_id}}", _trace_api, ["GET"]),
        (f"{PAGE_PREFIX}/api/status/{{trace_id}}", _status_api, ["GET"]),
        (f"{PAGE_PREFIX}/{{trace_id}}", _detail, ["GET"]),
    ]
    return [_Route(path, endpoint, m, config) for path, endpoint, m in routes]


def mount_trace_pages(app: Starlette, config: DebugToolbarConfig) -> bool:
    """Add the SAQ trace pages and the OTLP receiver to ``app`` if the toolbar is enabled;
    says whether it did. They answer only where the toolbar would show itself."""
    if not config.enabled:
        return False
    app.router.routes.extend(trace_routes(config))
    _panels_open_while_running(app, config)
    return True


def _panels_open_while_running(app: Starlette, config: DebugToolbarConfig) -> None:
    """The panels' log capture lasts while the app runs: around the app's own lifespan,
    so that its shutdown (an in-app worker stopping) is still captured."""
    inner = app.router.lifespan_context

    @contextlib.asynccontextmanager
    async def lifespan(app: t.Any) -> AsyncIterator[t.Any]:
        open_panels(config)
        try:
            async with inner(app) as state:
                yield state
        finally:
            close_panels(config)

    app.router.lifespan_context = lifespan
