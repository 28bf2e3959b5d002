"""An open trace page shows the log lines a worker elsewhere sends after its spans.

A worker's spans and its log lines leave on two schedules. Whenever the span exporter's
turn comes first after an attempt ended (about one retry in ten with the SDK's defaults,
spans every 5 s and logs every 1 s), the app holds the attempt's span, and the queue says
the job is complete, before the lines the attempt wrote arrive. Here the worker of the
README's logs recipe sends its spans at once and its lines every 5 s, so they come last.
"""

from __future__ import annotations

import typing as t
import uuid

import httpx
import pytest
from saq.queue.redis import RedisQueue

from tests.browser import browser_page, serving
from tests.debug_toolbar.test_job_logs import attempt_rows, contacts_app, finished
from tests.debug_toolbar.test_remote_logs import recipe_worker
from tests.debug_toolbar.test_trace_pages import wait_for_trace
from tests.debug_toolbar.toolbar_api import wait_for_panel

pytestmark = [pytest.mark.usefixtures("instrument"), pytest.mark.slow]

LOGS_INTERVAL_MS = "5000"
ALL_LINES = 5  # 3 in the failed first attempt, 2 in the second
FRESH = "document.querySelector('[data-saq-fresh]').textContent"
SHOWN = """() => [...document.querySelectorAll('li.row[data-kind="process"] .logmark')]
  .reduce((sum, mark) => sum + parseInt(mark.dataset.logCount), 0)"""


def lines_here(view: dict[str, t.Any]) -> int:
    return sum(int(row.get("log_count") or 0) for row in attempt_rows(view).values())


def spans_before_lines(client: httpx.Client) -> str:
    """A trace whose job the queue says is complete, whose two attempts' spans are here
    and not all of whose log lines are; a try whose lines came first is made again."""
    tried: set[str] = set()
    for _ in range(4):
        client.get("/import")
        requests = client.get("/_debug_toolbar/api/requests").json()
        (rid,) = {
            r["request_id"] for r in requests if r["metadata"].get("path") == "/import"
        } - tried
        tried.add(rid)
        stats = wait_for_panel(client, rid, finished, timeout=30)
        view = wait_for_trace(client, stats["trace_id"], lambda v: len(attempt_rows(v)) == 2)
        if lines_here(view) < ALL_LINES:
            return str(stats["trace_id"])
    raise AssertionError("the log lines always arrived with the spans")


def test_log_lines_sent_after_their_spans_reach_the_open_page(
    redis_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # One environment for the app and its worker, as the recipe's users have.
    monkeypatch.setenv("OTEL_BLRP_SCHEDULE_DELAY", LOGS_INTERVAL_MS)
    name = f"late-logs-{uuid.uuid4().hex[:8]}"
    queue = RedisQueue.from_url(redis_url, name=name)
    with (
        serving(contacts_app(queue, worker=False)) as base,
        recipe_worker(redis_url, name, base, OTEL_BLRP_SCHEDULE_DELAY=LOGS_INTERVAL_MS),
        httpx.Client(base_url=base) as client,
        browser_page() as page,
    ):
        trace_id = spans_before_lines(client)
        page.goto(f"{base}/_debug_toolbar/saq/{trace_id}")
        shown_at_first = page.evaluate(SHOWN)
        # Nothing reloads the page from here: it has to follow by itself.
        page.wait_for_function(f"{SHOWN} === {ALL_LINES}", timeout=20_000)
        page.wait_for_function(f"() => {FRESH} === 'final as shown'", timeout=30_000)
        first = page.locator('li.row[data-kind="process"][data-attempt="1"]')
        first.locator(".label").click()
        logs = first.locator(".detail .log").all_inner_texts()

    assert shown_at_first < ALL_LINES  # the spans came first
    assert len(logs) == 3 and "lookup failed" in logs[2]
