"""The panel and the trace page follow their jobs by themselves, in a real headless Chromium."""

from __future__ import annotations

import typing as t
import uuid

import httpx
import pytest
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import NonRecordingSpan, SpanKind, set_span_in_context
from saq.queue.redis import RedisQueue

from tests.browser import browser_page, serving
from tests.debug_toolbar.apps import litestar_app
from tests.debug_toolbar.test_trace_pages import kinds, wait_for_trace
from tests.debug_toolbar.toolbar_api import panel, request_id

pytestmark = [pytest.mark.usefixtures("instrument"), pytest.mark.slow]

# Every visible axis label's box; the ones hidden to make room do not count.
_LABEL_BOXES = """() => [...document.querySelectorAll('.ticks > span')]
  .filter(e => getComputedStyle(e).visibility !== 'hidden' && e.textContent.trim())
  .map(e => { const r = e.getBoundingClientRect();
              return {text: e.textContent, left: r.left, right: r.right,
                      top: r.top, bottom: r.bottom}; })"""


def open_docked_panel(page: t.Any, base: str, path: str) -> None:
    page.goto(f"{base}/")
    page.evaluate(
        "() => { localStorage.setItem('debug-toolbar-position', 'bottom');"
        "localStorage.setItem('debug-toolbar-collapsed', 'false'); }"
    )
    page.goto(base + path)
    page.add_style_tag(content="#debug-toolbar * { transition: none !important }")
    page.click('button.toolbar-panel-btn[data-panel-id="SAQPanel"]')


def test_the_open_panel_turns_a_job_complete_without_a_reopen(redis_url: str) -> None:
    queue = RedisQueue.from_url(redis_url, name=f"live-{uuid.uuid4().hex[:8]}")
    with serving(litestar_app(queue)) as base, browser_page() as page:
        open_docked_panel(page, base, "/slow-page?seconds=2")
        job = ".toolbar-details [data-saq-panel] tr.saq-job"
        page.wait_for_selector(job)
        at_first = page.get_attribute(job, "data-status")
        following = page.evaluate(
            "() => document.querySelector('.toolbar-details [data-saq-fresh]')?.textContent"
        )
        # Nothing is clicked again: the open panel has to update itself.
        page.wait_for_selector(f'{job}[data-status="complete"]', timeout=30_000)
        page.wait_for_function(
            "() => document.querySelector('.toolbar-details [data-saq-fresh]')"
            "?.textContent === 'final'"
        )
        summary = page.inner_text(".toolbar-details .saq-summary")

    assert at_first in ("queued", "active")
    assert str(following).startswith("following")
    assert summary == "1 job · 1 complete"


def seconds_ahead(due: str) -> int:
    """'due in 59 min 58 s, at 14:03:12' -> 3598."""
    words = due.removeprefix("due in ").split(",")[0].split()
    units = {"h": 3600, "min": 60, "s": 1}
    return sum(int(n) * units[unit] for n, unit in zip(words[::2], words[1::2], strict=True))


def test_the_docked_panel_counts_a_due_time_down(redis_url: str) -> None:
    queue = RedisQueue.from_url(redis_url, name=f"due-{uuid.uuid4().hex[:8]}")
    due = ".toolbar-details [data-saq-panel] .saq-due"
    with serving(litestar_app(queue, worker=False)) as base, browser_page() as page:
        open_docked_panel(page, base, "/later-page?seconds=1750")
        at_first = page.inner_text(due, timeout=15_000)
        # Nothing is clicked again, and the job's state does not change: no table reload.
        page.wait_for_function(
            "([selector, first]) => document.querySelector(selector).textContent !== first",
            arg=[due, at_first],
            timeout=10_000,
        )
        later = page.inner_text(due)

    assert at_first.startswith("due in 29 min") and later.startswith("due in 29 min"), (
        at_first,
        later,
    )
    assert seconds_ahead(later) < seconds_ahead(at_first)
    assert later.split(", at ")[1] == at_first.split(", at ")[1]  # the same moment


def test_the_toolbars_request_page_counts_a_due_time_down(redis_url: str) -> None:
    queue = RedisQueue.from_url(redis_url, name=f"due-page-{uuid.uuid4().hex[:8]}")
    due = "#panel-SAQPanel [data-saq-panel] .saq-due"
    with (
        serving(litestar_app(queue, worker=False)) as base,
        httpx.Client(base_url=base) as client,
        browser_page() as page,
    ):
        client.get("/later-page", params={"seconds": 1750})
        page.goto(f"{base}/_debug_toolbar/{request_id(client, '/later-page')}")
        at_first = page.inner_text(due)
        page.wait_for_function(
            "([selector, first]) => document.querySelector(selector).textContent !== first",
            arg=[due, at_first],
            timeout=10_000,
        )
        later = page.inner_text(due)

    assert seconds_ahead(later) < seconds_ahead(at_first), (at_first, later)


def test_the_trace_list_says_when_a_queued_job_is_due(redis_url: str) -> None:
    queue = RedisQueue.from_url(redis_url, name=f"due-list-{uuid.uuid4().hex[:8]}")
    with (
        serving(litestar_app(queue, worker=False)) as base,
        httpx.Client(base_url=base) as client,
        browser_page() as page,
    ):
        client.get("/later-page", params={"seconds": 1750})
        trace_id = panel(client, request_id(client, "/later-page"))["trace_id"]
        page.goto(f"{base}/_debug_toolbar/saq/")
        row = page.locator(f'tr[data-trace-id="{trace_id}"]')
        status = row.locator("td").nth(3)
        at_first = status.inner_text()
        page.wait_for_function(
            "([selector, first]) => document.querySelector(selector).textContent.trim() !== first",
            arg=[f'tr[data-trace-id="{trace_id}"] td:nth-child(4)', at_first],
            timeout=10_000,
        )
        later = status.inner_text()

    assert at_first.startswith("queued due in 29 min"), at_first
    due_at_first, due_later = at_first.removeprefix("queued "), later.removeprefix("queued ")
    assert seconds_ahead(due_later) < seconds_ahead(due_at_first)


def axis_overlaps(page: t.Any) -> list[tuple[str, str]]:
    boxes = page.evaluate(_LABEL_BOXES)
    return [
        (a["text"], b["text"])
        for i, a in enumerate(boxes)
        for b in boxes[i + 1 :]
        if a["left"] < b["right"]
        and b["left"] < a["right"]
        and a["top"] < b["bottom"]
        and b["top"] < a["bottom"]
    ]


@pytest.mark.parametrize("width", [800, 1440])
def test_no_two_axis_labels_overlap(redis_url: str, width: int) -> None:
    queue = RedisQueue.from_url(redis_url, name=f"axis-{uuid.uuid4().hex[:8]}")
    with serving(litestar_app(queue)) as base, httpx.Client(base_url=base) as client:
        # A retry after a delay long beside the busy time even on a loaded machine (a band
        # between the attempts), and a job due in an hour
        # (a band up to now): short busy stretches between bands, where labels crowd.
        client.get("/retry", params={"delay": 2.0})
        client.get("/signup")
        traces = {
            path: panel(client, request_id(client, path))["trace_id"]
            for path in ("/retry", "/signup")
        }
        wait_for_trace(client, traces["/retry"], lambda v: len(kinds(v, "flaky_once")) == 5)
        wait_for_trace(client, traces["/signup"], lambda v: len(kinds(v, "flaky_report")) == 5)

        found = {}
        with browser_page() as page:
            page.set_viewport_size({"width": width, "height": 900})
            for path, trace_id in traces.items():
                page.goto(f"{base}/_debug_toolbar/saq/{trace_id}")
                shown = page.evaluate(_LABEL_BOXES)
                found[path] = (axis_overlaps(page), [box["text"] for box in shown])

    for path, (overlaps, shown) in found.items():
        assert overlaps == [], (path, width)
        assert "0 ms" in shown and any(text.endswith(" idle") for text in shown), path


_CUT_LABELS = """() => [...document.querySelectorAll('li.row .label')]
  .filter(e => e.scrollWidth > e.clientWidth + 1).map(e => e.textContent.trim())"""


def test_a_cut_row_label_shows_its_whole_text_on_click(redis_url: str) -> None:
    queue = RedisQueue.from_url(redis_url, name=f"label-{uuid.uuid4().hex[:8]}")
    with serving(litestar_app(queue)) as base, httpx.Client(base_url=base) as client:
        client.get("/signup")
        trace_id = panel(client, request_id(client, "/signup"))["trace_id"]
        wait_for_trace(client, trace_id, lambda v: len(kinds(v, "flaky_report")) == 5)
        with browser_page() as page:
            page.set_viewport_size({"width": 800, "height": 900})
            page.goto(f"{base}/_debug_toolbar/saq/{trace_id}")
            cut = page.evaluate(_CUT_LABELS)
            label = page.locator("li.row .label", has_text=cut[0]).first
            height = label.bounding_box()["height"]
            label.click()
            opened_height = label.bounding_box()["height"]
            still_cut = page.evaluate(_CUT_LABELS)

    assert cut  # at 800 px long labels (an attempt with its service) are cut with "…"
    assert cut[0] not in still_cut
    assert opened_height > height  # its whole text, wrapped


_ROW_STATE = """() => [...document.querySelectorAll('li.row')].map(row => ({
  key: row.dataset.rowKey, id: row.dataset.id || null, kind: row.dataset.kind,
  pane: !row.querySelector('.detail').hidden,
  label: row.querySelector('.label').classList.contains('open')}))"""


def test_open_panes_and_whole_labels_survive_a_live_redraw(
    redis_url: str, tracer_provider: TracerProvider, exporter: InMemorySpanExporter
) -> None:
    # No worker: the job stays queued, so the page follows it; a span arriving in the
    # trace changes the page's version, and the page redraws itself.
    queue = RedisQueue.from_url(redis_url, name=f"pane-{uuid.uuid4().hex[:8]}")
    with serving(litestar_app(queue, worker=False)) as base, httpx.Client(base_url=base) as client:
        client.get("/page")
        trace_id = panel(client, request_id(client, "/page"))["trace_id"]
        with browser_page() as page:
            page.set_viewport_size({"width": 800, "height": 900})
            page.goto(f"{base}/_debug_toolbar/saq/{trace_id}")
            live = page.evaluate("() => document.body.dataset.saqLive")
            send = page.locator('li.row[data-kind="send"]')
            no_id = page.locator("li.row:not([data-id])").first
            # One click on a row, on its label or its bar: its pane and its whole label.
            send.locator(".label").click()
            no_id.locator(".track").click()
            before = page.evaluate(_ROW_STATE)
            version = page.evaluate("() => document.body.dataset.saqVersion")

            # Drawn above the rows opened (it starts just before the send, under the
            # request): a row's place changes, its key must not.
            (sent,) = [
                span
                for span in exporter.get_finished_spans()
                if span.kind is SpanKind.PRODUCER and span.context.trace_id == int(trace_id, 16)
            ]
            assert sent.parent is not None and sent.start_time is not None
            context = set_span_in_context(NonRecordingSpan(sent.parent))
            tracer = tracer_provider.get_tracer("tests")
            tracer.start_span("late span", context=context, start_time=sent.start_time - 1).end()
            page.wait_for_function(
                "v => document.body.dataset.saqVersion !== v", arg=version, timeout=30_000
            )
            page.wait_for_selector("li.row .label:text('late span')")
            after = page.evaluate(_ROW_STATE)
            if send.locator(".detail").is_visible():  # a click in a pane leaves it open
                send.locator(".detail strong").click()
            pane_kept = send.locator(".detail").is_visible()

    assert live == "1"
    drawn = [row["kind"] for row in after]
    assert drawn.index("span") < drawn.index("send")  # the opened rows moved down
    opened = [(row["key"], row["kind"], row["id"] is None) for row in before if row["pane"]]
    assert len(opened) == 2
    assert any(no_id for _, _, no_id in opened)  # a row with no span id is kept too
    for row in before:
        assert row["label"] == row["pane"]  # one state per row
    still = {row["key"]: (row["pane"], row["label"]) for row in after}
    for key, _, _ in opened:
        assert still[key] == (True, True), key
    assert sum(pane for pane, _ in still.values()) == 2  # nothing else opened
    assert pane_kept
