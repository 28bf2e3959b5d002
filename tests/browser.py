"""Pages checked in a real headless Chromium (Debian's, installed by .ci/run)."""

from __future__ import annotations

import contextlib
import shutil
import threading
import time
import typing as t
from collections.abc import Iterator

import uvicorn

from tests.servers import free_port

CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def chromium_path() -> str:
    for name in ("chromium", "chromium-browser"):
        path = shutil.which(name)
        if path:
            return path
    raise RuntimeError("chromium is not installed: run .ci/run or apt-get install chromium")


@contextlib.contextmanager
def serving(app: t.Any) -> Iterator[str]:
    """Serve an ASGI app with uvicorn on a free port, in a thread; yields its base URL."""
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 15
    while not server.started:
        if time.monotonic() > deadline:
            raise RuntimeError("uvicorn did not start")
        time.sleep(0.05)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(15)


@contextlib.contextmanager
def browser_page(device_scale_factor: float = 1) -> Iterator[t.Any]:
    """A page in headless Chromium; ``device_scale_factor=2`` draws it as a HiDPI screen would."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=chromium_path(), args=CHROMIUM_ARGS)
        try:
            yield browser.new_page(
                viewport={"width": 1400, "height": 900}, device_scale_factor=device_scale_factor
            )
        finally:
            browser.close()
