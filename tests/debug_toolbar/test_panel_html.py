"""The panel's table on the toolbar's request page, and the generic table it falls back to."""

from __future__ import annotations

import typing as t
import uuid

import pytest
from debug_toolbar.litestar.middleware import DebugToolbarMiddleware
from debug_toolbar.litestar.routes import handlers
from litestar.testing import TestClient
from saq.queue.redis import RedisQueue

from opentelemetry.instrumentation.saq.debug_toolbar.panel import renderer
from tests.debug_toolbar.apps import litestar_app
from tests.debug_toolbar.panel_html import generic_keys, rows, saq_section
from tests.debug_toolbar.test_panel import settled
from tests.debug_toolbar.toolbar_api import panel, request_id, statuses, wait_for_panel

pytestmark = pytest.mark.usefixtures("instrument")

HOSTILE_ERROR = "ConnectionError: &lt;script&gt;alert(&#39;report&#39;)&lt;/script&gt; server gone"


def new_queue(redis_url: str) -> RedisQueue:
    return RedisQueue.from_url(redis_url, name=f"html-{uuid.uuid4().hex[:8]}")


def test_the_request_page_shows_one_row_per_job_with_every_failed_attempt(
    redis_url: str,
) -> None:
    with TestClient(litestar_app(new_queue(redis_url))) as client:
        client.get("/signup")
        rid = request_id(client, "/signup")
        stats = wait_for_panel(client, rid, settled)
        page = client.get(f"/_debug_toolbar/{rid}").text

    section = saq_section(page)
    email, report, later = rows(section)
    assert [(row.status, row.function) for row in (email, report, later)] == [
        ("complete", "send_email"),
        ("failed", "flaky_report"),
        ("queued", "send_email"),
    ]
    assert "1 attempt" in email.cells and email.attempts == []
    # Both attempts of the job that failed twice, escaped by the template engine.
    assert report.attempts == [(1, HOSTILE_ERROR), (2, HOSTILE_ERROR)]
    assert "<script>alert('report')</script>" not in page
    assert "tok-123-secret" not in page
    assert f'<a class="saq-trace-link" href="/_debug_toolbar/saq/{stats["trace_id"]}"' in section
    assert "3 jobs · 1 complete · 1 failed · 1 queued" in section
    assert "Queue: html-" in section and "│ Failed: 1" in section
    assert '<code class="saq-id">send_email</code>' in email.cells


def test_a_job_that_failed_once_then_succeeded_keeps_its_first_error(redis_url: str) -> None:
    with TestClient(litestar_app(new_queue(redis_url))) as client:
        client.get("/retry")
        rid = request_id(client, "/retry")
        stats = wait_for_panel(client, rid, lambda s: statuses(s) == [("flaky_once", "complete")])
        page = client.get(f"/_debug_toolbar/{rid}").text

    (job,) = stats["jobs"]
    assert job["attempts"] == 2 and job["error"] is None
    assert job["errors"] == [{"attempt": 1, "error": "ValueError: first try <b>lost</b>"}]
    assert job["badge"].endswith("2 attempts · attempt 1: ValueError: first try <b>lost</b>")
    (row,) = rows(saq_section(page))
    assert row.status == "complete" and "2 attempts" in row.cells
    assert row.attempts == [(1, "ValueError: first try &lt;b&gt;lost&lt;/b&gt;")]


def test_map_jobs_are_told_apart_by_the_argument_that_differs(redis_url: str) -> None:
    with TestClient(litestar_app(new_queue(redis_url))) as client:
        client.get("/map")
        rid = request_id(client, "/map")
        stats = panel(client, rid)
        page = client.get(f"/_debug_toolbar/{rid}").text

    shown = sorted(job["argument"] for job in stats["jobs"])
    assert shown == [f"to=user{i}@example.com" for i in (1, 2, 3)]
    assert [row.status for row in rows(saq_section(page))] == ["complete"] * 3
    assert "to=user2@example.<wbr>com" in saq_section(page)
    assert "tok-map-secret" not in page


@pytest.fixture
def toolbar_that_ignores_renderers(monkeypatch: pytest.MonkeyPatch) -> None:
    """The toolbar as a future version might be: a request page with no per-panel renderers."""
    generic = handlers._render_panel_content
    monkeypatch.setattr(handlers, "_PANEL_RENDERERS", {})
    monkeypatch.setattr(
        handlers, "_render_panel_content", lambda stats, panel_id="": generic(stats, "")
    )
    unhooked = getattr(DebugToolbarMiddleware._render_toolbar, "__wrapped__", None)
    if unhooked is not None:
        monkeypatch.setattr(DebugToolbarMiddleware, "_render_toolbar", unhooked)


@pytest.mark.usefixtures("toolbar_that_ignores_renderers")
def test_the_generic_table_shows_the_stats_in_reading_order_when_renderers_change(
    redis_url: str,
) -> None:
    assert renderer.install() is False
    with TestClient(litestar_app(new_queue(redis_url))) as client:
        client.get("/signup")
        rid = request_id(client, "/signup")
        wait_for_panel(client, rid, settled)
        page = client.get(f"/_debug_toolbar/{rid}").text
        injected = client.get("/page").text

    section = saq_section(page)
    assert "data-saq-panel" not in section and rows(section) == []
    keys = generic_keys(section)
    assert keys[:5] == ["summary", "tasks", "trace_page", "queues", "trace_id"]
    assert keys[-1] == "jobs"
    # Still escaped, by the toolbar this time.
    assert "<script>alert('report')</script>" not in page
    assert "&lt;script&gt;alert(&#x27;report&#x27;)&lt;/script&gt;" in section
    assert "tok-123-secret" not in page
    assert "saqPanelHooked" not in injected  # the dock keeps its generic table too


def test_the_dock_gets_the_script_that_shows_the_table(redis_url: str) -> None:
    assert renderer.install() is True
    with TestClient(litestar_app(new_queue(redis_url), worker=False)) as client:
        injected = client.get("/page").text
    assert injected.count("saqPanelHooked") == 2  # the check and the flag, once
    assert '<div id="debug-toolbar"' in injected and "&lt;" not in injected
    assert injected.index("toolbar.js") < injected.index("saqPanelHooked")


def test_the_panel_renders_odd_stats_without_failing() -> None:
    odd: dict[str, t.Any] = {"summary": None, "jobs": [{"attempts": "x"}, "junk"], "notes": 3}
    html = renderer.render_panel(odd)
    assert "data-saq-panel" in html and "0 jobs" not in html
    assert 'data-status="unknown" data-function="?"' in html
    assert renderer.render_panel({"trace_page": "//evil.example/x"}).count("saq-trace-link") == 0
