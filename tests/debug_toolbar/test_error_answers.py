"""Every route we serve, on both frameworks, answers hostile input with an escaped error.

The routes are read from the apps themselves, so a route added later is walked too: each
path parameter and query parameter holds markup, each route is asked with its own methods
and with others, from a host the toolbar shows itself on and from one it does not, and
with our code failing. No answer may hold the markup as sent; an error answer is a small
HTML page with an HTML content type that names its charset once, or JSON with a JSON
content type on the JSON API and the receivers (``/api/`` and ``/v1/``).
"""

from __future__ import annotations

import collections
import json
import re
import typing as t
import urllib.parse
import uuid

import pytest
from debug_toolbar.starlette import StarletteDebugToolbarConfig
from litestar.testing import TestClient
from saq.queue.redis import RedisQueue
from starlette.applications import Starlette
from starlette.testclient import TestClient as StarletteClient

from opentelemetry.instrumentation.saq.debug_toolbar.pages import views
from opentelemetry.instrumentation.saq.debug_toolbar.pages.trace_view import PAGE_PREFIX
from opentelemetry.instrumentation.saq.debug_toolbar.starlette import mount_trace_pages
from tests.debug_toolbar.apps import fastapi_app, litestar_app

pytestmark = pytest.mark.usefixtures("instrument")

# No slash in the first two: a path parameter cannot hold one (the route would not match).
MARKUP = (
    "<img src=x onerror=alert(document.domain)>",
    '"><svg onload=alert(1)>',
    "</title><script>alert(1)</script>",
)
ALLOWED, ELSEWHERE = "toolbar.test", "elsewhere.test"
OTHER_METHODS = ("GET", "POST", "PUT", "DELETE", "PATCH")
BODIES = {  # what a POST sends: markup as text, as JSON, and as an announced protobuf
    "text/html": MARKUP[0].encode(),
    "application/json": json.dumps({"resourceSpans": [{"x": MARKUP[1]}]}).encode(),
    "application/x-protobuf": MARKUP[2].encode(),
}


class Route(t.NamedTuple):
    path: str
    methods: frozenset[str]


def our_routes(app: t.Any) -> list[Route]:
    """The app's routes under the toolbar's SAQ prefix, with the methods each declares."""
    found = [
        Route(route.path, frozenset(route.methods) - {"HEAD", "OPTIONS"})
        for route in app.routes
        if route.path.startswith(PAGE_PREFIX)
    ]
    assert len(found) >= 5, found  # the pages, their API and the receiver at least
    return found


def hostile(path: str, markup: str) -> str:
    """The route's path with markup in every parameter and in the query string."""
    quoted = urllib.parse.quote(markup, safe="")
    in_path = urllib.parse.quote(markup.replace("/", ""), safe="")
    filled = re.sub(r"\{[^}]+\}", lambda _: in_path, path)
    return f"{filled}?{quoted}={quoted}&trace_id={quoted}&limit={quoted}"


def walk(client: t.Any, routes: list[Route]) -> collections.Counter[int]:
    """Ask every route every way; returns how many answers of each status were checked."""
    checked: collections.Counter[int] = collections.Counter()
    for route in routes:
        for markup in MARKUP:
            url = hostile(route.path, markup)
            for host in (ALLOWED, ELSEWHERE):
                for method in sorted(route.methods | set(OTHER_METHODS)):
                    bodies = BODIES.items() if method in ("POST", "PUT", "PATCH") else [("", b"")]
                    for content_type, body in bodies:
                        headers = {"host": host, "content-type": content_type} | (
                            {} if content_type else {"content-type": "text/plain"}
                        )
                        response = client.request(method, url, content=body, headers=headers)
                        label = f"{method} {url} from {host} ({content_type})"
                        check(response, route, label)
                        # Nothing is there for a host the toolbar does not show itself on.
                        assert host == ALLOWED or response.status_code == 404, label
                        checked[response.status_code] += 1
    return checked


def check(response: t.Any, route: Route, label: str) -> None:
    text = response.content.decode("utf-8", "replace")
    for markup in MARKUP:
        for sent in (markup, markup.replace("/", "")):
            assert sent not in text, f"{label} echoed the markup: {text[:300]}"
            assert sent not in str(response.headers), label
    if response.status_code < 400:
        return
    content_type = response.headers.get("content-type", "")
    # One media type and at most one charset: "text/html; charset=utf-8; charset=utf-8"
    # is what a framework makes of a media type that already named its charset.
    assert content_type.lower().count("charset=") <= 1, (label, content_type)
    if content_type.startswith("text/"):
        assert content_type.lower().count("charset=utf-8") == 1, (label, content_type)
    if "/api/" in route.path or "/v1/" in route.path:
        assert content_type.startswith("application/json"), (label, content_type, text[:200])
        assert isinstance(json.loads(text), dict), label
    else:
        assert content_type.startswith("text/html"), (label, content_type, text[:200])
        assert text.lstrip().lower().startswith("<!doctype html>"), (label, text[:200])
    assert response.headers.get("x-content-type-options") == "nosniff", label


def failing(message: str) -> t.Callable[..., t.Any]:
    def fail(*args: t.Any, **kwargs: t.Any) -> t.Any:
        raise RuntimeError(message)

    return fail


def break_the_pages(monkeypatch: pytest.MonkeyPatch) -> None:
    """Our own code raising, with markup in its message: a 500 must not show it."""
    monkeypatch.setattr(views, "list_html", failing(MARKUP[0]))
    monkeypatch.setattr(views, "traces_json", failing(MARKUP[1]))


def new_queue(redis_url: str) -> RedisQueue:
    return RedisQueue.from_url(redis_url, name=f"xss-{uuid.uuid4().hex[:8]}")


def test_litestar_routes_answer_markup_with_escaped_errors(
    redis_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    app = litestar_app(new_queue(redis_url), worker=False, allowed_hosts=[ALLOWED])
    with TestClient(app) as client:
        working, broken = walk_before_and_after_breaking(client, our_routes(app), monkeypatch)
    assert met_every_answer(working, broken), (working, broken)


def test_fastapi_routes_answer_markup_with_escaped_errors(
    redis_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    app = fastapi_app(new_queue(redis_url), allowed_hosts=[ALLOWED])
    with StarletteClient(app, raise_server_exceptions=False) as client:
        working, broken = walk_before_and_after_breaking(client, our_routes(app), monkeypatch)
    assert met_every_answer(working, broken), (working, broken)


def test_starlette_routes_answer_markup_with_escaped_errors(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    app = Starlette()
    assert mount_trace_pages(app, StarletteDebugToolbarConfig(allowed_hosts=[ALLOWED]))
    with StarletteClient(app, raise_server_exceptions=False) as client:
        working, broken = walk_before_and_after_breaking(client, our_routes(app), monkeypatch)
    assert met_every_answer(working, broken), (working, broken)


Statuses = collections.Counter[int]


def walk_before_and_after_breaking(
    client: t.Any, routes: list[Route], monkeypatch: pytest.MonkeyPatch
) -> tuple[Statuses, Statuses]:
    """Every answer checked (by ``check``), as it works and with our own code raising."""
    working = walk(client, routes)
    break_the_pages(monkeypatch)
    return working, walk(client, routes)


def met_every_answer(working: Statuses, broken: Statuses) -> bool:
    """Whether the walk met every kind of answer it means to check, 500s only once broken."""
    return {200, 404, 405, 415} <= set(working) and 500 in broken and 500 not in working
