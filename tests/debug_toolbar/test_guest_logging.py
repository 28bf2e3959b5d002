"""The panel keeps a job's log lines without changing where the app's own lines go.

An app that never configures logging (uvicorn with FastAPI; Litestar with
``configure_root_logger=False``) prints its warnings and errors through Python's last
resort, and may call ``logging.basicConfig()`` later: after toolbar requests, both still
work, and the job's lines are still on its attempt.
"""

from __future__ import annotations

import contextlib
import gc
import logging
import os
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from litestar.testing import TestClient
from opentelemetry.sdk.trace import TracerProvider

from opentelemetry.instrumentation.saq.debug_toolbar.panel import job_logs
from tests.debug_toolbar.test_job_logs import attempt_rows, contacts_app, finished, new_queue
from tests.debug_toolbar.test_trace_pages import wait_for_trace
from tests.debug_toolbar.toolbar_api import request_id, statuses, wait_for_panel
from tests.servers import free_port

ROOT = Path(__file__).resolve().parents[2]


class Console:
    """The stderr of an app served by uvicorn in its own process."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def text(self) -> str:
        return self.path.read_text(encoding="utf-8", errors="replace")

    def wait_for(self, needle: str, timeout: float = 15) -> None:
        deadline = time.monotonic() + timeout
        while needle not in self.text():
            if time.monotonic() > deadline:
                raise AssertionError(f"{needle!r} never reached the console:\n{self.text()}")
            time.sleep(0.1)


@contextlib.contextmanager
def served(framework: str, redis_url: str, stderr: Path) -> Iterator[str]:
    port = free_port()
    environment = {
        **os.environ,
        "GUEST_REDIS_URL": redis_url,
        "GUEST_QUEUE": f"guest-{uuid.uuid4().hex[:8]}",
    }
    command = [
        sys.executable,
        "-m",
        "uvicorn",
        "--factory",
        f"tests.debug_toolbar.guest_app:{framework}_app",
    ]
    with stderr.open("wb") as sink:
        proc = subprocess.Popen(
            [*command, "--host", "127.0.0.1", "--port", str(port), "--log-level", "warning"],
            cwd=ROOT,
            env=environment,
            stdout=subprocess.DEVNULL,
            stderr=sink,
        )
    try:
        base = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 30
        while True:
            assert proc.poll() is None, stderr.read_text()
            with contextlib.suppress(httpx.HTTPError):
                httpx.get(f"{base}/plain/unknown", timeout=1)
                break
            assert time.monotonic() < deadline, "the app did not start"
            time.sleep(0.1)
        yield base
    finally:
        proc.terminate()
        proc.wait(20)


@pytest.mark.slow
@pytest.mark.parametrize("framework", ["fastapi", "litestar"])
def test_the_apps_errors_still_reach_its_console_after_toolbar_requests(
    framework: str, redis_url: str, tmp_path: Path
) -> None:
    console = Console(tmp_path / "stderr.txt")
    with served(framework, redis_url, console.path) as base, httpx.Client(base_url=base) as client:
        client.get("/job")
        stats = wait_for_panel(client, request_id(client, "/job"), finished)
        view = wait_for_trace(client, stats["trace_id"], lambda v: bool(attempt_rows(v)))
        # The job's own warning: kept on its attempt, and printed as before.
        console.wait_for("JOB-LINE written by the job")
        client.get("/plain/shout", params={"word": "after-the-toolbar"})
        console.wait_for("APP-ERROR after-the-toolbar")
        client.get("/fail")
        wait_for_panel(
            client, request_id(client, "/fail"), lambda s: statuses(s) == [("broken", "failed")]
        )
        console.wait_for("Error processing job")  # SAQ's traceback, with the job's error
        console.wait_for("RuntimeError: JOB-BROKE")
        # basicConfig still configures the root logger: its format is on the next error.
        client.get("/plain/configure")
        console.wait_for("CONFIGURED ERROR AFTER-BASIC")

    assert [line["message"] for line in attempt_rows(view)[1]["logs"]] == [
        "JOB-LINE written by the job"
    ]
    assert stats["jobs"][0]["logs"] == [{"attempt": 1, "count": 1, "worst_level": "WARNING"}]


@pytest.mark.usefixtures("instrument")
def test_the_capture_adds_no_handler_and_goes_when_the_app_stops(redis_url: str) -> None:
    gc.collect()  # the panels of earlier tests' apps, gone with their apps
    root = logging.getLogger()
    # logging's own method (an app of an earlier test may still hold the capture on,
    # until the collector finds it).
    hooked = job_logs._hook
    original = hooked[1] if hooked else logging.Logger.__dict__["callHandlers"]
    assert original.__module__ == "logging"
    job_logger = logging.getLogger("tests.jobs.contacts")
    with TestClient(contacts_app(new_queue(redis_url))) as client:
        handlers = list(root.handlers)  # as the app (Litestar's logging config) set them
        client.get("/invoice")
        stats = wait_for_panel(client, request_id(client, "/invoice"), finished)
        assert root.handlers == handlers  # the app's, and no more
        capturing = job_logs.capturing()
    assert stats["jobs"][0]["logs"] == [{"attempt": 1, "count": 1, "worst_level": "WARNING"}]
    assert capturing
    # Gone with the app: logging is as it was, and a line in a span is no longer kept.
    gc.collect()
    assert logging.Logger.__dict__["callHandlers"] is original
    assert not job_logs.capturing()
    with TracerProvider().get_tracer("tests").start_as_current_span("after") as span:
        job_logger.warning("written after the app stopped")
    assert job_logs.log_store().lines(span.get_span_context().trace_id) == []
