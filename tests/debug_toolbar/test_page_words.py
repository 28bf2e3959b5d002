"""What the panel and the trace page say of a job: when it is due, which of map's jobs it
is, its status mark, and the panel's one name."""

from __future__ import annotations

import re
import time
import uuid

import pytest
from litestar.testing import TestClient
from saq.queue.redis import RedisQueue

from tests.browser import browser_page, serving
from tests.debug_toolbar.apps import litestar_app
from tests.debug_toolbar.panel_html import rows, saq_section
from tests.debug_toolbar.test_trace_pages import wait_for_trace
from tests.debug_toolbar.toolbar_api import panel, request_id, wait_for_panel

pytestmark = pytest.mark.usefixtures("instrument")
_DUE = re.compile(r"due in (\d+) (?:min \d+ s|s|h \d+ min), at \d\d:\d\d:\d\d")


def new_queue(redis_url: str) -> RedisQueue:
    return RedisQueue.from_url(redis_url, name=f"words-{uuid.uuid4().hex[:8]}")


def test_a_scheduled_job_says_when_it_is_due_in_the_panel_and_on_the_page(
    redis_url: str,
) -> None:
    with TestClient(litestar_app(new_queue(redis_url))) as client:
        client.get("/signup")  # one job is due in an hour
        rid = request_id(client, "/signup")
        stats = panel(client, rid)
        section = saq_section(client.get(f"/_debug_toolbar/{rid}").text)
        page = client.get(stats["trace_page"]).text

    scheduled = [job for job in stats["jobs"] if job["scheduled"]]
    assert len(scheduled) == 1 and scheduled[0]["scheduled"] > time.time() + 3000
    later = [row for row in rows(section) if "due in" in row.cells]
    assert len(later) == 1 and _DUE.search(later[0].cells)
    assert "due in 59 min" in later[0].cells or "due in 1 h 0 min" in later[0].cells
    due_on_page = re.findall(r'<small class="due" data-due="\d+">([^<]*)</small>', page)
    assert len(due_on_page) == 1 and _DUE.fullmatch(due_on_page[0])


def test_maps_jobs_show_their_argument_on_the_page_in_the_panels_order(
    redis_url: str,
) -> None:
    with TestClient(litestar_app(new_queue(redis_url))) as client:
        client.get("/map")
        rid = request_id(client, "/map")
        stats = wait_for_panel(
            client, rid, lambda s: all(j["status"] == "complete" for j in s["jobs"])
        )
        wait_for_trace(
            client,
            stats["trace_id"],
            lambda v: sum(row["kind"] == "process" for row in v["rows"]) == 3,
        )
        page = client.get(stats["trace_page"]).text

    in_panel = [job["argument"] for job in stats["jobs"]]
    sends = re.findall(
        r'<li class="row kind-send[^>]*>\s*<span class="label"[^>]*>.*?'
        r'<small class="argument">([^<]*)</small>',
        page,
        re.S,
    )
    assert sorted(in_panel) == [f"to=user{i}@example.com" for i in (1, 2, 3)]
    assert sends == in_panel
    assert "tok-map-secret" not in page


@pytest.mark.slow
def test_status_marks_are_drawn_and_the_request_page_says_background_tasks(
    redis_url: str,
) -> None:
    with serving(litestar_app(new_queue(redis_url))) as base, browser_page() as page:
        page.goto(f"{base}/page")
        rid = page.get_attribute("#debug-toolbar", "data-request-id")
        page.goto(f"{base}/_debug_toolbar/{rid}")
        title = page.inner_text("#panel-SAQPanel .panel-title")
        badges = page.eval_on_selector_all(
            "#panel-SAQPanel .saq-badge",
            "bs => bs.map(b => [b.textContent.trim(), b.querySelectorAll('svg path, svg circle')"
            ".length])",
        )

    assert title == "Background Tasks"
    assert badges and all(marks >= 1 for _, marks in badges)
    # Words only: no glyph a font may lack (⏳, ⏸) stands in for the mark.
    assert all(text.isascii() for text, _ in badges), badges


def test_the_plain_text_lines_use_marks_common_fonts_have() -> None:
    """The generic table and the MCP server get text: its marks must exist in DejaVu Sans."""
    from opentelemetry.instrumentation.saq.debug_toolbar.panel.jobs import ICONS

    assert "⏳" not in ICONS.values() and "⏸" not in ICONS.values()
    assert set("".join(ICONS.values())) <= set("✓✗⊘▶‖·?")
