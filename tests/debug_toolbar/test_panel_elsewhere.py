"""Jobs run by a worker in another process, and queues that are slow or gone."""

from __future__ import annotations

import os
import subprocess
import sys
import typing as t
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from litestar import Litestar, get
from litestar.testing import TestClient
from saq.queue.redis import RedisQueue

from tests.debug_toolbar.apps import PANEL, litestar_app
from tests.debug_toolbar.panel_html import rows, saq_section
from tests.debug_toolbar.test_panel import SIGNUP_FINAL, assert_signup_panel
from tests.debug_toolbar.toolbar_api import panel, request_id, statuses, wait_for_panel
from tests.servers import RedisServer

pytestmark = pytest.mark.usefixtures("instrument")
ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def worker_process(redis_url: str) -> Iterator[str]:
    """A real `saq` worker in its own OS process; yields its queue name."""
    name = f"remote-{uuid.uuid4().hex[:8]}"
    env = {**os.environ, "SAQ_TEST_REDIS_URL": redis_url, "SAQ_TEST_QUEUE": name}
    proc = subprocess.Popen(
        [sys.executable, "-m", "saq", "tests.debug_toolbar.remote_worker.settings"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        _wait_for_first_sweep(redis_url, name, proc)
        yield name
    finally:
        proc.terminate()
        proc.wait(15)


def _wait_for_first_sweep(redis_url: str, name: str, proc: subprocess.Popen[bytes]) -> None:
    """Wait until the worker has run its startup sweep.

    SAQ's first sweep aborts a job that a worker has dequeued but not yet marked active
    (a race inside SAQ, uninstrumented too); jobs enqueued after it are safe.
    """
    import time

    import redis

    client = redis.Redis.from_url(redis_url)
    deadline = time.monotonic() + 60
    while not client.exists(f"saq:{name}:sweep"):
        assert proc.poll() is None, "the worker process exited"
        assert time.monotonic() < deadline, "the worker process did not start"
        time.sleep(0.05)
    client.close()


@pytest.mark.slow
def test_jobs_of_a_worker_in_another_process_are_read_from_their_queue(
    redis_url: str, worker_process: str
) -> None:
    queue = RedisQueue.from_url(redis_url, name=worker_process)
    with TestClient(litestar_app(queue, worker=False)) as client:
        client.get("/signup")
        rid = request_id(client, "/signup")
        stats = wait_for_panel(client, rid, lambda s: statuses(s) == SIGNUP_FINAL, timeout=30)
    assert_signup_panel(stats, queue)


def back_in_queue(stats: dict[str, t.Any]) -> bool:
    return statuses(stats) == [("flaky_once", "queued")] and stats["jobs"][0]["attempts"] == 1


def test_a_remote_job_waiting_for_its_retry_shows_the_failed_attempts_error(
    redis_url: str, worker_process: str
) -> None:
    queue = RedisQueue.from_url(redis_url, name=worker_process)
    with TestClient(litestar_app(queue, worker=False)) as client:
        client.get("/retry", params={"delay": 3600})
        rid = request_id(client, "/retry")
        stats = wait_for_panel(client, rid, back_in_queue, timeout=30)
        page = client.get(f"/_debug_toolbar/{rid}").text

    (job,) = stats["jobs"]
    assert (job["status"], job["error"]) == ("queued", None)
    assert job["errors"] == [{"attempt": 1, "error": "ValueError: first try <b>lost</b>"}]
    (row,) = rows(saq_section(page))
    assert row.status == "queued" and "1 attempt" in row.cells
    assert row.attempts == [(1, "ValueError: first try &lt;b&gt;lost&lt;/b&gt;")]


def test_the_trace_pages_tell_the_panels_story_of_jobs_run_elsewhere(
    redis_url: str, worker_process: str
) -> None:
    """The worker exports nothing: the pages read the jobs' states as the panel does."""
    queue = RedisQueue.from_url(redis_url, name=worker_process)
    with TestClient(litestar_app(queue, worker=False)) as client:
        client.get("/signup")
        rid = request_id(client, "/signup")
        stats = wait_for_panel(client, rid, lambda s: statuses(s) == SIGNUP_FINAL, timeout=30)
        view = client.get(f"/_debug_toolbar/saq/api/traces/{stats['trace_id']}").json()
        traces = client.get("/_debug_toolbar/saq/api/traces").json()["traces"]
        (listed,) = [item for item in traces if item["trace_id"] == stats["trace_id"]]
        page = client.get(stats["trace_page"]).text

    assert view["worst_status"] == listed["worst_status"] == "failed"
    rows = [
        (r.get("function"), r["name"], r["status"], bool(r.get("pending"))) for r in view["rows"]
    ]
    assert [row for row in rows if row[1].endswith("no spans from its worker yet")] == [
        ("send_email", "complete · read from the queue, no spans from its worker yet", "ok", False),
        (
            "flaky_report",
            "failed · read from the queue, no spans from its worker yet",
            "error",
            False,
        ),
    ]
    assert [row[1] for row in rows if row[3]] == ["scheduled for later"]
    assert "complete · read from the queue" in page


def stopping_app(queue: RedisQueue, server: RedisServer) -> Litestar:
    @get("/enqueue-then-redis-dies")
    async def handler() -> dict[str, bool]:
        await queue.enqueue("send_email", to="x@example.com")
        server.stop()
        return {"ok": True}

    async def connect() -> None:
        await queue.connect()

    from debug_toolbar.litestar import DebugToolbarPlugin, LitestarDebugToolbarConfig

    config = LitestarDebugToolbarConfig(extra_panels=[PANEL])
    return Litestar([handler], plugins=[DebugToolbarPlugin(config)], on_startup=[connect])


def test_redis_stopped_mid_request_still_renders_the_panel() -> None:
    server = RedisServer()
    server.start()
    queue = RedisQueue.from_url(server.url, name="doomed")
    try:
        with TestClient(stopping_app(queue, server)) as client:
            assert client.get("/enqueue-then-redis-dies").json() == {"ok": True}
            rid = request_id(client, "/enqueue-then-redis-dies")
            stats = panel(client, rid)
            page = client.get(f"/_debug_toolbar/{rid}")
    finally:
        server.stop()

    assert statuses(stats) == [("send_email", "unknown")]
    assert stats["summary"] == "1 job · 1 unknown"
    (note,) = stats["notes"]
    assert "queue 'doomed' could not be read" in note
    assert page.status_code == 200
    assert 'data-status="unknown" data-function="send_email"' in page.text


def test_a_slow_redis_times_out_the_lookup_and_the_panel_catches_up_later(
    redis_url: str,
) -> None:
    import redis

    queue = RedisQueue.from_url(redis_url, name=f"slow-{uuid.uuid4().hex[:8]}")
    sleeper = redis.Redis.from_url(redis_url)

    @get("/enqueue-then-redis-sleeps")
    async def handler() -> dict[str, bool]:
        await queue.enqueue("send_email", to="x@example.com")
        # Redis holds every client's commands for 1.5 s: a slow server.
        sleeper.execute_command("CLIENT", "PAUSE", "1500", "ALL")
        return {"ok": True}

    async def connect() -> None:
        await queue.connect()

    from debug_toolbar.litestar import DebugToolbarPlugin, LitestarDebugToolbarConfig

    app = Litestar(
        [handler],
        plugins=[DebugToolbarPlugin(LitestarDebugToolbarConfig(extra_panels=[PANEL]))],
        on_startup=[connect],
    )
    with TestClient(app) as client:
        client.get("/enqueue-then-redis-sleeps")
        rid = request_id(client, "/enqueue-then-redis-sleeps")
        at_response = panel(client, rid)
        later = wait_for_panel(client, rid, lambda s: statuses(s) == [("send_email", "queued")])

    assert statuses(at_response) == [("send_email", "unknown")]
    assert "TimeoutError" in at_response["notes"][0]
    assert "notes" not in later
