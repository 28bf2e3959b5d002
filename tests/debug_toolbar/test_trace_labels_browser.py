"""Row labels and log lines on the trace page use the room they have, at 1400 px wide."""

from __future__ import annotations

import uuid

import httpx
import pytest
from saq.queue.redis import RedisQueue

from tests.browser import browser_page, serving
from tests.debug_toolbar.apps import litestar_app
from tests.debug_toolbar.test_trace_pages import kinds, wait_for_trace
from tests.debug_toolbar.toolbar_api import panel, request_id

pytestmark = [pytest.mark.usefixtures("instrument"), pytest.mark.slow]

# Each row's label: its text, whether "…" cuts it, and the room between it and its bar.
_LABELS = """() => [...document.querySelectorAll('li.row')].map(row => {
  const label = row.querySelector('.label'), bar = row.querySelector('.bar');
  const box = label.getBoundingClientRect(), barBox = bar.getBoundingClientRect();
  return {text: label.textContent.replace(/\\s+/g, ' ').trim(),
          cut: label.scrollWidth > label.clientWidth + 1,
          room: barBox.width ? barBox.left - box.right : 0};
})"""


def test_a_label_is_cut_only_where_its_bar_leaves_no_room(redis_url: str) -> None:
    queue = RedisQueue.from_url(redis_url, name=f"labels-{uuid.uuid4().hex[:8]}")
    with serving(litestar_app(queue)) as base, httpx.Client(base_url=base) as client:
        client.get("/signup")
        trace_id = panel(client, request_id(client, "/signup"))["trace_id"]
        wait_for_trace(client, trace_id, lambda v: len(kinds(v, "flaky_report")) == 5)
        with browser_page() as page:
            page.goto(f"{base}/_debug_toolbar/saq/{trace_id}")
            labels = page.evaluate(_LABELS)
            scheduled = page.locator("li.row", has_text="scheduled for later")
            attempt = scheduled.get_attribute("data-attempt")
            scheduled_label = scheduled.locator(".label").inner_text()

    # Attempt 2 of flaky_report ran last: its bar is far right, with room for its label.
    (last,) = [label for label in labels if "attempt 2 · failed" in label["text"]]
    assert not last["cut"], last
    assert [label for label in labels if label["cut"] and label["room"] > 12] == []
    assert all(label["room"] >= 0 for label in labels if label["room"])  # never over a bar
    assert attempt == "1" and "scheduled for later · attempt 1" in scheduled_label


def test_a_long_log_message_is_folded_until_asked_for(redis_url: str) -> None:
    queue = RedisQueue.from_url(redis_url, name=f"noisy-{uuid.uuid4().hex[:8]}")
    with serving(litestar_app(queue)) as base, httpx.Client(base_url=base) as client:
        client.get("/noisy")
        trace_id = panel(client, request_id(client, "/noisy"))["trace_id"]
        wait_for_trace(
            client,
            trace_id,
            lambda v: any(row.get("log_count") == 2 for row in v["rows"]),
        )
        with browser_page() as page:
            page.goto(f"{base}/_debug_toolbar/saq/{trace_id}")
            attempt = page.locator('li.row[data-kind="process"]')
            attempt.locator(".label").click()
            long, short = attempt.locator(".detail .log").all()
            line_height = short.bounding_box()["height"]
            folded_height = long.bounding_box()["height"]
            folded_text = long.inner_text()
            long.get_by_text("show all 4,000 characters").click()
            # The page follows the trace a few seconds after its last change and draws
            # itself once more when it stops: what the reader unfolded stays unfolded.
            page.wait_for_selector('body[data-saq-live="0"]', state="attached", timeout=60_000)
            long = attempt.locator(".detail .log").first
            unfolded_text = long.inner_text()

    assert folded_height <= 4 * line_height  # a few lines, not a wall
    assert "x" * 3_991 not in folded_text and folded_text.rstrip().endswith("characters")
    assert "payload: " + "x" * 3_991 in unfolded_text
