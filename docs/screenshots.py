"""Take the README's screenshots from a real page of the demo app, in headless Chromium.

python docs/screenshots.py      # writes docs/panel.png and docs/trace-page.png
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from examples.demo.app import QUEUE_NAME, create_app  # noqa: E402
from examples.demo.embedded_redis import EmbeddedRedis  # noqa: E402
from saq.queue import Queue  # noqa: E402

from tests.browser import browser_page, serving  # noqa: E402


def main() -> None:
    redis = EmbeddedRedis()
    redis.start()
    try:
        app = create_app(Queue.from_url(redis.url, name=QUEUE_NAME), in_process_worker=True)
        with serving(app) as base, browser_page() as page:
            httpx.get(f"{base}/gallery", timeout=30)
            httpx.get(f"{base}/invoice")
            time.sleep(1)
            # The toolbar docked at the bottom, tall enough to read the panel.
            page.add_init_script(
                "localStorage.setItem('debug-toolbar-position', 'bottom');"
                "localStorage.setItem('debug-toolbar-size', '640');"
            )
            page.goto(f"{base}/everything")
            time.sleep(2.5)  # the CRM sync's retry runs 0.5 s after its first failure
            page.click('button.toolbar-panel-btn[data-panel-id="SAQPanel"]')
            page.wait_for_selector(".toolbar-details.expanded")
            time.sleep(0.5)
            page.screenshot(path=str(ROOT / "docs" / "panel.png"), full_page=False)

            httpx.get(f"{base}/signup")
            time.sleep(2)
            traces = httpx.get(f"{base}/_debug_toolbar/saq/api/traces").json()["traces"]
            signup = next(t for t in traces if t["path"] == "/signup")
            page.goto(base + signup["page"])
            page.wait_for_selector("li.row")
            page.screenshot(path=str(ROOT / "docs" / "trace-page.png"), full_page=True)
    finally:
        redis.stop()


if __name__ == "__main__":
    main()
