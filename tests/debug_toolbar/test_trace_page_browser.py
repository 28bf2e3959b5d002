"""The trace page in a real headless Chromium: bars drawn in time order."""

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


def test_a_failed_then_retried_job_is_drawn_in_time_order(redis_url: str) -> None:
    queue = RedisQueue.from_url(redis_url, name=f"browser-{uuid.uuid4().hex[:8]}")
    with serving(litestar_app(queue)) as base, httpx.Client(base_url=base) as client:
        client.get("/signup")
        trace_id = panel(client, request_id(client, "/signup"))["trace_id"]
        wait_for_trace(client, trace_id, lambda v: len(kinds(v, "flaky_report")) == 5)

        with browser_page() as page:
            page.goto(f"{base}/_debug_toolbar/saq/{trace_id}")
            rows = page.locator('li.row[data-function="flaky_report"]')
            drawn = [
                (
                    rows.nth(i).get_attribute("data-kind"),
                    rows.nth(i).get_attribute("data-attempt"),
                    rows.nth(i).get_attribute("data-status"),
                    rows.nth(i).locator(".bar").bounding_box(),
                )
                for i in range(rows.count())
            ]
            error_colour = page.evaluate(
                "getComputedStyle(document.querySelector("
                "'li.row.status-error .bar')).backgroundColor"
            )
            ok_colour = page.evaluate(
                "getComputedStyle(document.querySelector('li.row.kind-send .bar')).backgroundColor"
            )
            title = page.title()

    assert [(kind, attempt, status) for kind, attempt, status, _ in drawn] == [
        ("send", "", "ok"),
        ("wait", "", "ok"),
        ("process", "1", "error"),
        ("wait", "", "ok"),
        ("process", "2", "error"),
    ]
    lefts = [box["x"] for *_, box in drawn if box is not None]
    assert len(lefts) == 5
    assert lefts == sorted(lefts)  # each step starts no earlier than the one before
    assert lefts[0] < lefts[2] < lefts[4]  # and the attempts visibly later than the send
    assert all(box is not None and box["width"] >= 1 for *_, box in drawn)
    assert error_colour != ok_colour  # failed attempts are marked
    assert title == "SAQ trace GET /signup"


def test_markup_in_a_trace_id_is_shown_as_text_and_runs_nothing(redis_url: str) -> None:
    """The URL of issue 18: on today's main, Litestar's JSON 404 went out as text/html."""
    queue = RedisQueue.from_url(redis_url, name=f"browser-{uuid.uuid4().hex[:8]}")
    markup = "<img src=x onerror=alert(document.domain)>"
    dialogs: list[str] = []
    with serving(litestar_app(queue, worker=False)) as base, browser_page() as page:
        page.on("dialog", lambda dialog: (dialogs.append(dialog.message), dialog.dismiss()))
        response = page.goto(
            f"{base}/_debug_toolbar/saq/%3Cimg%20src%3Dx%20onerror%3Dalert(document.domain)%3E",
            wait_until="networkidle",  # the image's request has failed by then
        )
        images = page.locator("img").count()
        shown = page.locator("body").inner_text()

    assert response is not None and response.status == 404
    assert response.headers["content-type"].startswith("text/html")
    assert dialogs == [] and images == 0
    assert markup in shown  # the id is shown, as text
