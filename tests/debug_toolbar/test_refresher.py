"""Following unfinished jobs after the response: one refresher per app, bounded, batched."""

from __future__ import annotations

import asyncio
import json
import time
import typing as t
import uuid
from pathlib import Path

import pytest
from debug_toolbar.core.storage import FileToolbarStorage
from debug_toolbar.litestar import DebugToolbarPlugin
from litestar import Litestar
from litestar.testing import TestClient
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind
from saq.queue.redis import RedisQueue

from opentelemetry.instrumentation.saq.debug_toolbar import SAQPanel
from opentelemetry.instrumentation.saq.debug_toolbar.panel.refresher import Refresher
from tests.debug_toolbar.apps import litestar_app
from tests.debug_toolbar.toolbar_api import panel, request_id, wait_for_panel

pytestmark = pytest.mark.usefixtures("instrument")


class FollowTen(SAQPanel):
    max_followed_requests = 10
    watch_interval = 0.2


class WatchBriefly(SAQPanel):
    watch_seconds = 1.0
    watch_interval = 0.2


def wait_until(condition: t.Callable[[], bool], timeout: float = 15) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.05)


def new_queue(redis_url: str) -> RedisQueue:
    return RedisQueue.from_url(redis_url, name=f"follow-{uuid.uuid4().hex[:8]}")


def the_refresher(app: Litestar) -> Refresher:
    (plugin,) = [p for p in app.plugins if isinstance(p, DebugToolbarPlugin)]
    assert plugin.toolbar is not None
    (saq_panel,) = [p for p in plugin.toolbar.panels if isinstance(p, SAQPanel)]
    return saq_panel.refresher()


def count_reads(queue: RedisQueue) -> list[int]:
    """Counts the real queue's batched job reads (the refresher's one round trip)."""
    calls = [0]
    read = queue.jobs

    async def counted(keys: t.Any) -> t.Any:
        calls[0] += 1
        return await read(keys)

    queue.jobs = counted  # type: ignore[method-assign]
    return calls


def test_many_followed_requests_cost_one_read_per_queue_per_tick(redis_url: str) -> None:
    queue = new_queue(redis_url)
    app = litestar_app(queue, worker=False, panel=FollowTen)
    reads = count_reads(queue)
    with TestClient(app) as client:
        for _ in range(30):  # each enqueues a job no worker runs: unfinished for good
            client.get("/page")
        refresher = the_refresher(app)
        before = (reads[0], refresher.ticks)
        wait_until(lambda: refresher.ticks >= before[1] + 4)
        after = (reads[0], refresher.ticks)

    assert refresher.following == 10  # the documented bound
    assert refresher.dropped_requests == 20  # the oldest dropped first, and counted
    ticks = after[1] - before[1]
    # One read of the queue per tick, whatever the number of requests (30 pollers would
    # have read it 10 times a tick); a tick may be mid-read at either snapshot.
    assert ticks - 1 <= after[0] - before[0] <= ticks + 1


def test_the_refresher_stops_when_nothing_is_left_to_follow(redis_url: str) -> None:
    app = litestar_app(new_queue(redis_url), panel=FollowTen)
    with TestClient(app) as client:
        client.get("/slow", params={"seconds": 0.3})
        rid = request_id(client, "/slow")
        wait_for_panel(client, rid, lambda s: s["jobs"][0]["status"] == "complete")
        refresher = the_refresher(app)
        wait_until(lambda: not refresher.following)
        ticks = refresher.ticks
        time.sleep(0.5)  # an idle app: no tick at all
        assert refresher.ticks == ticks
        assert refresher._task is not None and refresher._task.done()


def test_a_page_stops_following_after_the_watch_window(redis_url: str) -> None:
    with TestClient(litestar_app(new_queue(redis_url), worker=False, panel=WatchBriefly)) as c:
        c.get("/page")
        trace_id = panel(c, request_id(c, "/page"))["trace_id"]
        at_first = c.get(f"/_debug_toolbar/saq/{trace_id}").text
        status_at_first = c.get(f"/_debug_toolbar/saq/api/status/{trace_id}").json()
        time.sleep(1.2)  # past the panel's watch window, the job still queued
        later = c.get(f"/_debug_toolbar/saq/{trace_id}").text
        status_later = c.get(f"/_debug_toolbar/saq/api/status/{trace_id}").json()
        view = c.get(f"/_debug_toolbar/saq/api/traces/{trace_id}").json()

    assert 'data-saq-live="1"' in at_first and status_at_first["live"] is True
    assert status_at_first["following"] is True
    assert view["worst_status"] == "queued" and view["live"] is False
    assert 'data-saq-live="0"' in later
    assert "no longer followed (the watch window is over)" in later  # not "final"
    assert status_later["live"] is False and status_later["following"] is False


def test_a_subclass_watch_window_ends_a_trace_no_request_followed(
    redis_url: str, exporter: InMemorySpanExporter
) -> None:
    # A job enqueued outside any request (a script, another process): no refresher knows
    # its trace, so the trace's age against the panel's watch_seconds decides.
    queue = new_queue(redis_url)

    async def enqueue_outside_a_request() -> None:
        outside = RedisQueue.from_url(redis_url, name=queue.name)
        await outside.connect()
        try:  # due in an hour: unfinished for as long as the test runs
            await outside.enqueue("send_email", to="x@example.com", scheduled=time.time() + 3600)
        finally:
            await outside.disconnect()

    with TestClient(litestar_app(queue, worker=False, panel=WatchBriefly)) as c:
        asyncio.run(enqueue_outside_a_request())
        (send,) = [s for s in exporter.get_finished_spans() if s.kind is SpanKind.PRODUCER]
        assert send.context is not None
        status_url = f"/_debug_toolbar/saq/api/status/{send.context.trace_id:032x}"
        # The base class's 300 s would keep it live for the whole test.
        wait_until(lambda: c.get(status_url).json()["live"] is False)
        status = c.get(status_url).json()

    # The page's version: the jobs' digest, then its spans (the send) and log lines.
    assert status["following"] is False and status["version"]["page"].endswith("-1-0")


# Once, on one Python (slow): under CI's load it has twice ended with the job still queued
# in the file beside a queue line saying complete; to be found, not hidden (closing note).
@pytest.mark.slow
def test_updates_after_the_response_reach_a_file_storage(redis_url: str, tmp_path: Path) -> None:
    path = tmp_path / "toolbar.json"
    app = litestar_app(
        new_queue(redis_url), panel=FollowTen, storage=FileToolbarStorage(path, max_size=10)
    )

    def stored() -> list[tuple[str, t.Any]]:
        # The toolbar rewrites the file in place: a read may catch it half written.
        for _ in range(50):
            try:
                records = json.loads(path.read_text())
                break
            except json.JSONDecodeError:
                time.sleep(0.02)
        else:
            raise AssertionError(f"{path} never held whole JSON")
        return [
            (r["data"]["metadata"]["path"], r["data"]["panel_data"].get("SAQPanel"))
            for r in records
        ]

    with TestClient(app) as client:
        client.get("/slow", params={"seconds": 0.5})
        client.get("/page")
        at_response = dict(stored())["/slow"]["jobs"][0]["status"]
        deadline = time.monotonic() + 15
        while dict(stored())["/slow"]["jobs"][0]["status"] != "complete":
            assert time.monotonic() < deadline, stored()
            time.sleep(0.1)
        order = [path for path, _ in stored()]

    assert at_response in ("queued", "active")
    assert dict(stored())["/slow"]["summary"] == "1 job · 1 complete"
    assert order == ["/slow", "/page"]  # the history keeps its order
