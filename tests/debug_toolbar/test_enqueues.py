"""Duplicate and repeated enqueues, enqueue cost and Server-Timing, as the SQL panel does
for queries: a real Litestar app with the toolbar and a real Redis."""

from __future__ import annotations

import asyncio
import json
import time
import uuid

import httpx
import pytest
from debug_toolbar.litestar import DebugToolbarPlugin, LitestarDebugToolbarConfig
from litestar import Litestar, MediaType, get
from litestar.testing import TestClient
from saq.queue.redis import RedisQueue

from opentelemetry.instrumentation.saq.debug_toolbar import SAQPanel
from opentelemetry.instrumentation.saq.debug_toolbar.panel.jobs import CALLER_UNKNOWN
from tests.browser import browser_page, serving
from tests.debug_toolbar.apps import in_app_worker
from tests.debug_toolbar.panel_html import saq_section
from tests.debug_toolbar.toolbar_api import panel, request_id

pytestmark = pytest.mark.usefixtures("instrument")


class QuietPanel(SAQPanel):
    """Arguments not shown: duplicates must still be found, and no value may leak."""

    show_arguments = False


QUIET_PANEL = f"{__name__}.QuietPanel"
PANEL = "opentelemetry.instrumentation.saq.debug_toolbar.SAQPanel"


def enqueue_app(queue: RedisQueue, panel_path: str = PANEL) -> Litestar:
    @get("/one-by-one")
    async def one_by_one() -> dict[str, bool]:
        for user in range(5):
            await queue.enqueue("send_email", to=f"user{user}@example.com", api_token="tok-secret")
        # The same call again: a duplicate (its key differs, so SAQ enqueues it again).
        await queue.enqueue("send_email", to="user0@example.com", api_token="tok-secret")
        await queue.enqueue(
            "report", scheduled=int(time.time()) + 3600, timeout=30, retries=3, day="monday"
        )
        return {"ok": True}

    @get("/mapped")
    async def mapped() -> dict[str, bool]:
        kwargs = [{"to": f"user{i}@example.com"} for i in range(6)]
        await queue.map("send_email", kwargs, timeout=15)
        return {"ok": True}

    @get("/gathered")
    async def gathered() -> dict[str, bool]:
        # The note's advice, followed: concurrent enqueues are not "one after another".
        recipients = [f"u{i}@example.com" for i in range(6)]
        await asyncio.gather(*(queue.enqueue("send_email", to=to) for to in recipients))
        return {"ok": True}

    @get("/few", media_type=MediaType.HTML)
    async def few() -> str:
        await queue.enqueue("send_email", to="a@example.com")
        await queue.enqueue("send_email", to="b@example.com")
        return "<html><body><h1>few</h1></body></html>"

    @get("/none")
    async def none() -> dict[str, bool]:
        return {"ok": True}

    config = LitestarDebugToolbarConfig(extra_panels=[panel_path])
    startup, shutdown = in_app_worker(queue)  # queue.map waits for its jobs' results
    return Litestar(
        [one_by_one, mapped, gathered, few, none],
        plugins=[DebugToolbarPlugin(config)],
        on_startup=[startup],
        on_shutdown=[shutdown],
    )


def new_queue(redis_url: str) -> RedisQueue:
    return RedisQueue.from_url(redis_url, name=f"enqueues-{uuid.uuid4().hex[:8]}")


def test_five_single_enqueues_get_a_note_and_a_repeated_call_counts_as_a_duplicate(
    redis_url: str,
) -> None:
    with TestClient(enqueue_app(new_queue(redis_url), QUIET_PANEL)) as client:
        response = client.get("/one-by-one")
        stats = panel(client, request_id(client, "/one-by-one"))
        page = client.get(f"/_debug_toolbar/{request_id(client, '/one-by-one')}").text

    assert stats["duplicate_count"] == 1
    assert stats["duplicates"] == [
        {"function": "send_email", "queue": stats["jobs"][0]["queue"], "count": 2}
    ]
    assert [job["is_duplicate"] for job in stats["jobs"]] == [False] * 5 + [True, False]
    (group,) = stats["repeated_groups"]
    assert (group["function"], group["count"]) == ("send_email", 6)
    assert group["total_duration_ms"] > 0
    # The loop's line, then the line of the call made again.
    assert len(group["origins"]) == 2
    assert all(o.startswith("tests/debug_toolbar/test_enqueues.py:") for o in group["origins"])
    assert stats["repeated_count"] == 1 and stats["repeat_threshold"] == 5
    assert stats["has_issues"] is True
    (note,) = [line for line in stats["issues"] if "6 times" in line]
    # The advice keeps the calls' meaning: concurrent enqueues that wait for no job.
    assert "6 times one after another" in note
    assert "await asyncio.gather(*(queue.enqueue('send_email', ...) for ...))" in note
    assert "returns without waiting for the jobs to run" in note
    assert "queue.map would also wait for every job's result" in note
    assert "queue.map('send_email'" not in note and "in one call" not in note
    assert note == group["suggestion"]
    assert [job["is_repeated"] for job in stats["jobs"]] == [True] * 6 + [False]
    # Compared without being recorded: no argument value anywhere in the stats or the page.
    assert "tok-secret" not in json.dumps(stats) and "user0@" not in json.dumps(stats)
    assert "tok-secret" not in page and "user0@" not in page
    assert "same call again" in saq_section(page)
    assert "asyncio.gather(*(queue.enqueue(&#39;send_email&#39;, ...) for ...))" in page
    # Enqueue cost: each job's and the request's, and what each job was given.
    assert all(job["enqueue_ms"] > 0 for job in stats["jobs"])
    total = sum(job["enqueue_ms"] for job in stats["jobs"])
    assert stats["enqueue_count"] == 7 and stats["scheduled_count"] == 1
    assert stats["enqueue_time_ms"] == pytest.approx(total, abs=0.01)
    report = stats["jobs"][-1]
    assert (report["timeout"], report["max_attempts"]) == (30, 3)
    assert report["scheduled_at"] > time.time() + 3000
    assert "timeout 30 s · up to 3 attempts" in page
    # Server-Timing, through the toolbar's own hook, for a JSON response too.
    timing = response.headers["server-timing"]
    entry = next(part for part in timing.split(", ") if part.startswith("saq;"))
    assert entry.endswith('desc="Background Tasks"')
    assert float(entry.split("dur=")[1].split(";")[0]) == pytest.approx(
        stats["enqueue_time"] * 1000, abs=0.01
    )


def test_map_gathered_enqueues_and_a_few_calls_are_not_flagged(redis_url: str) -> None:
    with TestClient(enqueue_app(new_queue(redis_url))) as client:
        client.get("/mapped")
        client.get("/gathered")
        client.get("/few")
        none = client.get("/none")
        mapped = panel(client, request_id(client, "/mapped"))
        gathered = panel(client, request_id(client, "/gathered"))
        few = panel(client, request_id(client, "/few"))

    assert mapped["enqueue_count"] == 6 and mapped["repeated_groups"] == []
    assert gathered["enqueue_count"] == 6 and gathered["repeated_groups"] == []
    assert "issues" not in gathered and not any(job["is_repeated"] for job in gathered["jobs"])
    # As docs/toolbar/panel.md says: each call of a gather runs in a task of its own.
    assert {job["enqueued_at"] for job in gathered["jobs"]} == {CALLER_UNKNOWN}
    assert mapped["has_issues"] is False and "issues" not in mapped
    assert few["duplicate_count"] == 0 and few["has_issues"] is False
    assert "saq;" not in none.headers.get("server-timing", "")


@pytest.mark.slow
def test_the_note_and_the_server_timing_entry_reach_the_browser(redis_url: str) -> None:
    with serving(enqueue_app(new_queue(redis_url))) as base, httpx.Client(base_url=base) as client:
        client.get("/one-by-one")
        rid = request_id(client, "/one-by-one")
        with browser_page() as page:
            response = page.goto(f"{base}/few")
            assert response is not None
            timing = response.headers.get("server-timing", "")
            page.goto(f"{base}/_debug_toolbar/{rid}")
            issues = page.locator(".saq-issues li").all_inner_texts()
            tags = page.locator(".saq-same-call").count()

    assert "saq;dur=" in timing
    assert len(issues) == 2
    assert "send_email enqueued 2 times with the same arguments" in issues[0]
    assert "send_email enqueued 6 times one after another" in issues[1]
    assert "asyncio.gather(*(queue.enqueue('send_email', ...) for ...))" in issues[1]
    assert tags == 1


def test_fastapi_responses_carry_the_enqueue_time_too(redis_url: str) -> None:
    from starlette.testclient import TestClient as StarletteClient

    from tests.debug_toolbar.apps import fastapi_app

    with StarletteClient(fastapi_app(new_queue(redis_url))) as client:
        timing = client.get("/signup").headers.get("server-timing", "")
    assert "saq;dur=" in timing and 'desc="Background Tasks"' in timing
