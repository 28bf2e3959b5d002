"""Take the documentation's screenshots from real pages of the demo app, in headless Chromium.

    python docs/screenshots.py      # writes docs/panel-right.png, panel-bottom.png, trace-page.png

tests/docs/test_screenshots.py runs ``take()`` into a temporary directory and checks what
each picture shows, so a change that breaks them fails a test instead of going unnoticed.
Every wait is for a state (the jobs settled, the table loaded), never for a time.

Each picture is taken at the size the site shows it, so its text is not scaled down: no
wider than furo's content column (``COLUMN`` CSS px), drawn at ``SCALE`` device pixels per
CSS pixel for HiDPI screens; the pages declare ``:width:`` as the file's width / ``SCALE``.
"""

from __future__ import annotations

import sys
import time
import typing as t
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from examples.demo.app import QUEUE_NAME, create_app  # noqa: E402
from examples.demo.embedded_redis import EmbeddedRedis  # noqa: E402
from saq.queue import Queue  # noqa: E402

from tests.browser import browser_page, serving  # noqa: E402

# What the /everything request's jobs come to: the CRM sync succeeds on its retry, the
# invoice fails, the reminder waits 30 s.
SETTLED = "4 jobs · 2 complete · 1 failed · 1 queued"
# furo's article column: 46em at its 16-px root font, 736 CSS px in Chromium at any window
# from 1000 to 1400 px wide (measured on the built site's toolbar/panel.html).
COLUMN = 736
SCALE = 2
# dock: (file, window width, window height, dock size). Each picture is the dock itself (the
# panel is what it is about), in a window tall enough that the panel shows all four jobs
# without scrolling; the bottom dock's window is as wide as the column (its table's width).
DOCKS = {
    "right": ("panel-right.png", 1000, 1350, 400),
    "bottom": ("panel-bottom.png", COLUMN, 1900, 1130),
}

# Read in the page: what a reader of the picture would check by eye.
_PANEL_FACTS = """() => {
  const details = document.querySelector('#debug-toolbar .toolbar-details');
  const panel = details.querySelector('[data-saq-panel]');
  const ids = [...panel.querySelectorAll('code.saq-id')];
  const head = panel.querySelector('thead');
  return {
    rows: panel.querySelectorAll('tr.saq-job').length,
    failed_attempts: panel.querySelectorAll('.saq-attempt').length,
    link: panel.querySelector('a.saq-trace-link')?.getAttribute('href') ?? null,
    header_shown: getComputedStyle(head).display !== 'none',
    broken_ids: ids.filter(e => e.getClientRects().length > 1).map(e => e.textContent),
    page_scrolls_sideways: document.scrollingElement.scrollWidth > window.innerWidth,
    panel_scrolls_sideways: details.scrollWidth > details.clientWidth,
    panel_scrolls_down: details.scrollHeight > details.clientHeight,
    width: Math.round(details.getBoundingClientRect().width),
  };
}"""

_TRACE_FACTS = """() => ({
  rows: document.querySelectorAll('li.row').length,
  first_tick: document.querySelector('.ticks .tick')?.textContent ?? null,
  gaps: [...document.querySelectorAll('.ticks .gap')].map(e => e.textContent),
  request_spans: document.querySelectorAll('li.kind-request-span').length,
  job_spans: document.querySelectorAll('li.kind-job-span').length,
  page_scrolls_sideways: document.scrollingElement.scrollWidth > window.innerWidth,
})"""


def take(out: Path) -> dict[str, dict[str, t.Any]]:
    """Write the three screenshots into ``out``; returns what each one shows."""
    facts: dict[str, dict[str, t.Any]] = {}
    redis = EmbeddedRedis()
    redis.start()
    try:
        app = create_app(Queue.from_url(redis.url, name=QUEUE_NAME), in_process_worker=True)
        with serving(app) as base, browser_page(device_scale_factor=SCALE) as page:
            for dock, (name, width, height, size) in DOCKS.items():
                page.set_viewport_size({"width": width, "height": height})
                page.goto(f"{base}/")  # the toolbar reads its dock from localStorage on load
                page.evaluate(
                    "([dock, size]) => { localStorage.setItem('debug-toolbar-position', dock);"
                    "localStorage.setItem('debug-toolbar-size', size);"
                    "localStorage.setItem('debug-toolbar-collapsed', 'false'); }",
                    [dock, str(size)],
                )
                page.goto(f"{base}/everything")
                request_id = page.get_attribute("#debug-toolbar", "data-request-id")
                stats = _wait_for_panel(base, str(request_id))
                # The toolbar fades its panel in; a picture mid-fade would be half there.
                page.add_style_tag(content="#debug-toolbar * { transition: none !important }")
                page.click('button.toolbar-panel-btn[data-panel-id="SAQPanel"]')
                page.wait_for_selector(".toolbar-details.expanded [data-saq-panel]")
                facts[name] = page.evaluate(_PANEL_FACTS)
                page.locator("#debug-toolbar").screenshot(path=str(out / name))

            _wait_for_trace(base, stats["trace_id"])
            # A short window: the full-page picture is as tall as the trace's rows, no taller.
            page.set_viewport_size({"width": COLUMN, "height": 300})
            page.goto(base + stats["trace_page"])
            page.wait_for_selector("li.row")
            facts["trace-page.png"] = page.evaluate(_TRACE_FACTS)
            page.screenshot(path=str(out / "trace-page.png"), full_page=True)
    finally:
        redis.stop()
    return facts


def _wait_for_panel(base: str, request_id: str) -> dict[str, t.Any]:
    deadline = time.monotonic() + 30
    while True:
        data = httpx.get(f"{base}/_debug_toolbar/api/requests/{request_id}").json()
        stats: dict[str, t.Any] = data["panel_data"]["SAQPanel"]
        if stats["summary"] == SETTLED:
            return stats
        if time.monotonic() > deadline:
            raise RuntimeError(f"the demo's jobs did not settle: {stats['summary']}")
        time.sleep(0.1)


def _wait_for_trace(base: str, trace_id: str) -> None:
    """Until the trace holds both CRM attempts and the invoice's failure."""
    deadline = time.monotonic() + 30
    while True:
        view = httpx.get(f"{base}/_debug_toolbar/saq/api/traces/{trace_id}").json()
        attempts = [row for row in view["rows"] if row["kind"] == "process"]
        if len(attempts) >= 4:
            return
        if time.monotonic() > deadline:
            raise RuntimeError("the trace did not fill in")
        time.sleep(0.1)


if __name__ == "__main__":
    for name, shown in take(ROOT / "docs").items():
        print(name, shown)
