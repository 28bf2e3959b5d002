"""The pages, the JSON API and the receiver answer only where the toolbar would show itself."""

from __future__ import annotations

import typing as t
import uuid

import pytest
from litestar.testing import TestClient
from saq.queue.redis import RedisQueue
from starlette.testclient import TestClient as StarletteClient

from tests.debug_toolbar.apps import fastapi_app, litestar_app
from tests.debug_toolbar.otlp_payloads import PROTOBUF, RECEIVER, protobuf, worker_attempt
from tests.debug_toolbar.test_receiver import request_trace

pytestmark = pytest.mark.usefixtures("instrument")
ALLOWED = {"host": "toolbar.test"}


def new_queue(redis_url: str) -> RedisQueue:
    return RedisQueue.from_url(redis_url, name=f"guard-{uuid.uuid4().hex[:8]}")


def answers(client: t.Any, trace_id: str, body: bytes, headers: dict[str, str]) -> list[int]:
    return [
        client.get("/_debug_toolbar/saq/", headers=headers).status_code,
        client.get(f"/_debug_toolbar/saq/{trace_id}", headers=headers).status_code,
        client.get("/_debug_toolbar/saq/api/traces", headers=headers).status_code,
        client.get(f"/_debug_toolbar/saq/api/traces/{trace_id}", headers=headers).status_code,
        client.get(f"/_debug_toolbar/saq/api/status/{trace_id}", headers=headers).status_code,
        client.post(RECEIVER, content=body, headers={**PROTOBUF, **headers}).status_code,
        client.get("/_debug_toolbar/saq/workers", headers=headers).status_code,
        client.get("/_debug_toolbar/saq/api/workers", headers=headers).status_code,
    ]


def test_litestar_answers_404_to_a_host_the_toolbar_does_not_allow(redis_url: str) -> None:
    app = litestar_app(new_queue(redis_url), worker=False, allowed_hosts=["toolbar.test"])
    with TestClient(app) as client:
        trace_id, send_id, key = request_trace_as(client, ALLOWED)
        body = protobuf(worker_attempt(trace_id, send_id, key))
        refused = answers(client, trace_id, body, {"host": "elsewhere.test"})
        view = client.get(f"/_debug_toolbar/saq/api/traces/{trace_id}", headers=ALLOWED).json()
        served = answers(client, trace_id, body, ALLOWED)

    assert refused == [404] * 8
    # The refused export was not taken in: the worker's attempt arrived only once allowed.
    assert "process remote" not in [row["name"] for row in view["rows"]]
    assert served == [200] * 8


def test_fastapi_answers_404_where_the_show_toolbar_callback_says_no(redis_url: str) -> None:
    app = fastapi_app(
        new_queue(redis_url), show_toolbar_callback=lambda request: "x-dev" in request.headers
    )
    dev = {"x-dev": "1"}
    with StarletteClient(app) as client:
        client.get("/signup", headers=dev)
        trace_id = request_trace_as(client, dev, path="/signup")[0]
        body = protobuf(worker_attempt(trace_id, "3" * 16, "k"))
        refused = answers(client, trace_id, body, {})
        served = answers(client, trace_id, body, dev)

    assert refused == [404] * 8
    assert served == [200] * 8


def test_a_failing_show_toolbar_callback_answers_404(redis_url: str) -> None:
    def broken(request: t.Any) -> bool:
        raise RuntimeError("callback bug")

    app = litestar_app(new_queue(redis_url), worker=False, show_toolbar_callback=broken)
    with TestClient(app) as client:
        assert client.get("/_debug_toolbar/saq/").status_code == 404
        refused = client.post(RECEIVER, content=b"", headers=PROTOBUF)
    assert refused.status_code == 404


def request_trace_as(
    client: t.Any, headers: dict[str, str], path: str = "/page"
) -> tuple[str, str, str]:
    class Allowed:
        def get(self, url: str, **kwargs: t.Any) -> t.Any:
            return client.get(url, headers=headers, **kwargs)

    if path == "/page":
        return request_trace(Allowed())
    from tests.debug_toolbar.toolbar_api import panel, request_id

    stats = panel(Allowed(), request_id(Allowed(), path))
    view = Allowed().get(f"/_debug_toolbar/saq/api/traces/{stats['trace_id']}").json()
    send = next(row for row in view["rows"] if row["kind"] == "send")
    return stats["trace_id"], send["id"], send["job_key"]
