"""The local trace pages and their JSON API, against real apps with a real worker."""

from __future__ import annotations

import inspect
import typing as t
import uuid

import pytest
from litestar import Litestar, MediaType, get
from litestar.testing import TestClient
from saq.queue import Queue
from saq.queue.redis import RedisQueue
from starlette.testclient import TestClient as StarletteClient

from opentelemetry.instrumentation.saq.debug_toolbar.tracing import trace_store
from tests.debug_toolbar.apps import fastapi_app, in_app_worker, litestar_app
from tests.debug_toolbar.toolbar_api import panel, request_id, wait_for_panel

pytestmark = pytest.mark.usefixtures("instrument")
API = "/_debug_toolbar/saq/api/traces"


def new_queue(redis_url: str, name: str | None = None) -> RedisQueue:
    return RedisQueue.from_url(redis_url, name=name or f"pages-{uuid.uuid4().hex[:8]}")


def wait_for_trace(
    client: t.Any, trace_id: str, done: t.Callable[[dict[str, t.Any]], bool]
) -> dict[str, t.Any]:
    import time

    deadline = time.monotonic() + 15
    while True:
        response = client.get(f"{API}/{trace_id}")
        if response.status_code == 200 and done(response.json()):
            return t.cast(dict[str, t.Any], response.json())
        assert time.monotonic() < deadline, response.text
        time.sleep(0.1)


def kinds(view: dict[str, t.Any], function: str) -> list[tuple[str, int | None, str]]:
    return [
        (row["kind"], row.get("attempt"), row["status"])
        for row in view["rows"]
        if row.get("function") == function
    ]


def test_the_trace_api_draws_request_send_wait_and_every_attempt(redis_url: str) -> None:
    queue = new_queue(redis_url)
    with TestClient(litestar_app(queue)) as client:
        client.get("/signup")
        stats = panel(client, request_id(client, "/signup"))
        view = wait_for_trace(
            client,
            stats["trace_id"],
            lambda v: len(kinds(v, "flaky_report")) == 5 and len(kinds(v, "send_email")) == 5,
        )
        listing = client.get(API).json()["traces"]

    assert stats["trace_page"] == f"/_debug_toolbar/saq/{stats['trace_id']}"
    assert (view["method"], view["path"], view["jobs"]) == ("GET", "/signup", 3)
    request = view["rows"][0]
    assert (request["kind"], request["depth"], request["name"]) == ("request", 0, "GET /signup")
    # Failed, then retried: two attempts, each after its own queue wait, both failed.
    assert kinds(view, "flaky_report") == [
        ("send", None, "ok"),
        ("wait", None, "ok"),
        ("process", 1, "error"),
        ("wait", None, "ok"),
        ("process", 2, "error"),
    ]
    sends = [r for r in view["rows"] if r["kind"] == "send"]
    assert [r["function"] for r in sends] == ["send_email", "flaky_report", "send_email"]
    assert [r["name"] for r in view["rows"] if r.get("pending")] == ["scheduled for later"]
    assert all(row["depth"] >= 1 for row in view["rows"][1:])
    starts = [row["start_ms"] for row in view["rows"] if row.get("function") == "flaky_report"]
    assert starts == sorted(starts)
    assert view["worst_status"] == "failed"
    assert listing[0]["trace_id"] == stats["trace_id"] and listing[0]["path"] == "/signup"


def test_the_trace_api_is_live(redis_url: str) -> None:
    queue = new_queue(redis_url)
    with TestClient(litestar_app(queue)) as client:
        client.get("/slow", params={"seconds": 0.4})
        trace_id = panel(client, request_id(client, "/slow"))["trace_id"]
        at_response = client.get(f"{API}/{trace_id}").json()
        # The queue may say complete a moment before the attempt's span ends and is kept.
        later = wait_for_trace(
            client,
            trace_id,
            lambda v: (
                v["worst_status"] == "complete" and any(r["kind"] == "process" for r in v["rows"])
            ),
        )

    assert at_response["worst_status"] in ("queued", "active")
    assert [r["kind"] for r in later["rows"] if r.get("function") == "slow"] == [
        "send",
        "wait",
        "process",
    ]


HOSTILE = "<img src=x onerror=alert(1)>"


def test_hostile_names_and_errors_are_shown_as_text(redis_url: str) -> None:
    queue = new_queue(redis_url, name=f"q{HOSTILE}")

    async def hostile(ctx: dict[str, t.Any]) -> None:
        raise RuntimeError(f"boom {HOSTILE}")

    hostile.__qualname__ = f"job{HOSTILE}"

    @get("/hostile", media_type=MediaType.HTML)
    async def handler() -> str:
        await queue.enqueue(f"job{HOSTILE}")
        return "<html><body>ok</body></html>"

    from debug_toolbar.litestar import DebugToolbarPlugin, LitestarDebugToolbarConfig

    from opentelemetry.instrumentation.saq.debug_toolbar.litestar import SAQTracePlugin
    from tests.debug_toolbar.apps import PANEL

    startup, shutdown = in_app_worker(queue, functions=[hostile])
    app = Litestar(
        [handler],
        plugins=[
            DebugToolbarPlugin(LitestarDebugToolbarConfig(extra_panels=[PANEL])),
            SAQTracePlugin(),
        ],
        on_startup=[startup],
        on_shutdown=[shutdown],
    )
    with TestClient(app) as client:
        client.get("/hostile")
        rid = request_id(client, "/hostile")
        stats = wait_for_panel(client, rid, lambda s: s["jobs"][0]["status"] != "queued")
        trace_page = client.get(stats["trace_page"]).text
        list_page = client.get("/_debug_toolbar/saq/").text
        toolbar_page = client.get(f"/_debug_toolbar/{rid}").text

    for page in (trace_page, list_page, toolbar_page):
        assert HOSTILE not in page
    assert "&lt;img src=x onerror=alert(1)&gt;" in trace_page


def test_the_pages_are_not_served_when_the_toolbar_is_disabled(redis_url: str) -> None:
    with TestClient(litestar_app(new_queue(redis_url), worker=False, enabled=False)) as client:
        assert client.get("/_debug_toolbar/saq/").status_code == 404
        assert client.get(API).status_code == 404
    with StarletteClient(fastapi_app(new_queue(redis_url), enabled=False)) as client:
        assert client.get("/_debug_toolbar/saq/").status_code == 404
        assert client.get(API).status_code == 404


def test_fastapi_serves_the_pages_after_one_call(redis_url: str) -> None:
    with StarletteClient(fastapi_app(new_queue(redis_url))) as client:
        client.get("/signup")
        trace_id = panel(client, request_id(client, "/signup"))["trace_id"]
        page = client.get(f"/_debug_toolbar/saq/{trace_id}")
        listing = client.get("/_debug_toolbar/saq/")
        unknown = client.get(f"{API}/{'0' * 32}")
        malformed = client.get("/_debug_toolbar/saq/not-a-trace")
    assert page.status_code == 200 and "send_email" in page.text
    assert trace_id in listing.text
    assert unknown.status_code == 404 and malformed.status_code == 404


def test_the_list_page_says_when_a_requests_jobs_retried(redis_url: str) -> None:
    with TestClient(litestar_app(new_queue(redis_url))) as client:
        client.get("/retry")
        trace_id = panel(client, request_id(client, "/retry"))["trace_id"]
        wait_for_trace(client, trace_id, lambda v: v["worst_status"] == "complete")
        traces = client.get(API).json()["traces"]
        page = client.get("/_debug_toolbar/saq/").text
        trace_page = client.get(f"/_debug_toolbar/saq/{trace_id}").text

    (listed,) = [trace for trace in traces if trace["trace_id"] == trace_id]
    assert (listed["worst_status"], listed["retries"]) == ("complete", 1)
    rows = page.split("<tr ")[1:]
    (line,) = [line for line in rows if line.startswith('class="trace"') and trace_id in line]
    assert '<span class="badge complete">complete</span> <span class="retries">· 1 retry' in line
    assert "· 1 retry ·" in trace_page


def test_a_request_that_awaited_map_jobs_says_why_its_bar_is_long(redis_url: str) -> None:
    with TestClient(litestar_app(new_queue(redis_url))) as client:
        client.get("/map")
        trace_id = panel(client, request_id(client, "/map"))["trace_id"]
        wait_for_trace(client, trace_id, lambda v: len(kinds(v, "send_email")) == 9)
        page = client.get(f"/_debug_toolbar/saq/{trace_id}").text

    (request_row,) = [row for row in page.split("<li ")[1:] if 'data-kind="request"' in row]
    if "poll_interval" not in inspect.signature(Queue.map).parameters:
        # Older SAQ (0.20) waits for map's jobs by notification, not by polling: the bar
        # is not long, and nothing needs explaining.
        assert 'class="hint"' not in page
        return
    assert 'class="hint"' in request_row
    # SAQ 0.26's map sleeps poll_interval after each check, the last one included.
    assert (
        "check job status every poll_interval (0.5 s by default) and wait one interval more "
        "after the last result" in request_row
    )
    assert page.count('class="hint"') == 1  # only the request, never a job


def test_the_list_page_says_how_many_traces_the_store_evicted(
    redis_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    with TestClient(litestar_app(new_queue(redis_url), worker=False)) as client:
        client.get("/page")  # the store is attached to the provider on the panel's first run
        store = trace_store()
        monkeypatch.setattr(store, "max_traces", 1)
        before = store.evicted_traces
        client.get("/page")
        client.get("/page")
        listing = client.get(API).json()
        page = client.get("/_debug_toolbar/saq/").text

    evicted = listing["store"]["evicted_traces"]
    assert evicted >= before + 2 and evicted == store.evicted_traces
    assert listing["store"]["max_bytes"] == store.max_bytes
    assert f"{evicted} older traces evicted from the span store" in page
    assert "(its bounds: 1 trace, 64 MiB)" in page
