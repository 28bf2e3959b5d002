"""The error answers of everything the SAQ toolbar serves, for both web frameworks.

Every error (404, 400, 405, 413, a 500 from our own code, whatever the framework raises
for our routes) is answered here, never by the framework's default: Litestar would send
its JSON error body with the handler's media type, so an HTML page's 404 went out as
``text/html`` holding the request's path unescaped (a reflected XSS). The pages get a
small HTML page, rendered by the autoescaping template engine; the JSON API and the
receivers get JSON with a JSON content type, with ``<``, ``>`` and ``&`` written as
``\\u003c`` and so on, so that no answer ever holds markup sent by a request.
"""

from __future__ import annotations

import http
import json
import typing as t

from opentelemetry.instrumentation.saq.debug_toolbar.pages.trace_view import PAGE_PREFIX
from opentelemetry.instrumentation.saq.debug_toolbar.templating import render

HTML = "text/html"
"""Both frameworks add ``; charset=utf-8`` to a ``text/`` media type (Litestar even to one
that names its charset already, which made ``charset=utf-8; charset=utf-8``)."""
JSON = "application/json"
HEADERS = {"x-content-type-options": "nosniff", "cache-control": "no-store"}
"""Sent with every error answer: a browser must not sniff a JSON error into HTML."""

_JSON_PARTS = ("/api/", "/v1/")  # the JSON API and the OTLP receivers, under PAGE_PREFIX
_UNSAFE = str.maketrans({"<": "\\u003c", ">": "\\u003e", "&": "\\u0026"})


class ErrorAnswer(t.NamedTuple):
    status: int
    body: bytes
    media_type: str


def answers_json(path: str) -> bool:
    """Whether the route at ``path`` (the request's path) answers its errors in JSON."""
    _, prefix, rest = path.partition(PAGE_PREFIX)
    return bool(prefix) and rest.startswith(_JSON_PARTS)


def answer(path: str, status: int, message: str = "") -> ErrorAnswer:
    """The error answer for a request to ``path``: HTML for the pages, JSON elsewhere.

    ``message`` may hold anything the request sent: it is escaped here.
    """
    message = "" if message == _phrase(status) else message  # frameworks' default detail
    if answers_json(path):
        return ErrorAnswer(status, json_body(status, message), JSON)
    return ErrorAnswer(status, html_page(status, message).encode(), HTML)


def html_page(status: int, message: str = "") -> str:
    return render("error.html", status=status, phrase=_phrase(status), message=message)


def json_body(status: int, message: str = "") -> bytes:
    """``{"code": ..., "message": ...}``, the shape of the ``google.rpc.Status`` the OTLP
    specification asks a receiver for (``code`` is the HTTP status here)."""
    text = json.dumps({"code": status, "message": message or _phrase(status)})
    return text.translate(_UNSAFE).encode()


def _phrase(status: int) -> str:
    try:
        return http.HTTPStatus(status).phrase
    except ValueError:
        return "Error"
