"""A trace page opened while a worker in another process still holds spans follows them in.

The worker exports with the SDK's default schedule (every 5 s), so its queue says
"complete, 2 attempts" before the second attempt's span reaches the app. The page was
frozen at attempt 1 then; it has to keep following until the span arrives.
"""

from __future__ import annotations

import sys
import typing as t
import uuid

import httpx
import pytest
from saq.queue.redis import RedisQueue

from tests.browser import browser_page, serving
from tests.debug_toolbar.apps import litestar_app
from tests.debug_toolbar.test_remote_export import exporting_worker, remote_attempts
from tests.debug_toolbar.test_trace_pages import wait_for_trace
from tests.debug_toolbar.toolbar_api import wait_for_panel

pytestmark = [pytest.mark.usefixtures("instrument"), pytest.mark.slow]

SDK_DEFAULT_EXPORT_DELAY_MS = "5000"
RETRY_DELAY = 6.0  # longer than the export delay: the attempts go out in separate batches


def complete_before_its_last_span(client: httpx.Client) -> tuple[str, dict[str, t.Any]]:
    """A /retry request whose job the queue says is complete while this app holds the
    span of attempt 1 only; a try where attempt 2's span came too fast is made again."""
    tried: set[str] = set()
    for _ in range(4):
        client.get("/retry", params={"delay": RETRY_DELAY})
        requests = client.get("/_debug_toolbar/api/requests").json()
        (rid,) = {
            r["request_id"] for r in requests if r["metadata"].get("path") == "/retry"
        } - tried
        tried.add(rid)
        stats = wait_for_panel(
            client,
            rid,
            lambda s: s["jobs"][0]["status"] == "complete" and s["jobs"][0]["attempts"] == 2,
            timeout=40,
        )
        view = wait_for_trace(client, stats["trace_id"], lambda v: bool(remote_attempts(v)))
        if [attempt for _, attempt, *_ in remote_attempts(view)] == [1]:
            return stats["trace_id"], view
    raise AssertionError("attempt 2's span always arrived with the queue's word")


def test_the_remote_retry_page_gains_attempt_2_by_itself(redis_url: str) -> None:
    name = f"frozen-{uuid.uuid4().hex[:8]}"
    queue = RedisQueue.from_url(redis_url, name=name)
    worker = [sys.executable, "-m", "saq"]
    with (
        serving(litestar_app(queue, worker=False)) as base,
        exporting_worker(
            redis_url,
            name,
            base,
            worker,
            SAQ_TEST_EXPORT="1",
            OTEL_BSP_SCHEDULE_DELAY=SDK_DEFAULT_EXPORT_DELAY_MS,
        ),
        httpx.Client(base_url=base) as client,
        browser_page() as page,
    ):
        trace_id, view = complete_before_its_last_span(client)
        page.goto(f"{base}/_debug_toolbar/saq/{trace_id}")
        awaiting = page.locator("li.row.awaiting").all_inner_texts()
        awaiting_starts = page.eval_on_selector_all(
            "li.row.awaiting", "rows => rows.map(r => parseFloat(r.dataset.startMs))"
        )
        header = page.locator("header").inner_text()
        # Nothing reloads the page from here: it has to follow by itself.
        page.wait_for_selector(
            'li.row[data-kind="process"][data-attempt="2"]', state="attached", timeout=30_000
        )
        page.wait_for_function(
            "() => document.querySelector('[data-saq-fresh]').textContent === 'final as shown'"
        )
        attempts = page.eval_on_selector_all(
            'li.row[data-kind="process"]', "rows => rows.map(r => r.dataset.attempt)"
        )
        awaiting_after = page.locator("li.row.awaiting").count()

    assert view["worst_status"] == "complete"  # the queue's word, before the span came
    if awaiting:  # unless attempt 2's span came between the check and the page load
        assert "attempt 2 · complete, read from the queue" in awaiting[0]
        assert "have not arrived from its worker's process" in awaiting[0]
        assert "Waiting for the spans of 1 attempt" in header
        # Drawn when the queue says it ran: after its retry delay, not right after attempt 1.
        assert awaiting_starts[0] >= RETRY_DELAY * 1000
    assert attempts == ["1", "2"]
    assert awaiting_after == 0
