"""A worker in another OS process exports real OTLP/HTTP to the app; the page shows it all.

The app is served by uvicorn; the worker is `saq` in its own process, set up as the
worker recipe of docs/guides/remote-workers.md says, exporting with the SDK's own
exporter to the app's receiver.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import typing as t
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from saq.queue.redis import RedisQueue

from tests.browser import browser_page, serving
from tests.debug_toolbar.apps import litestar_app
from tests.debug_toolbar.test_panel import SIGNUP_FINAL
from tests.debug_toolbar.test_panel_elsewhere import _wait_for_first_sweep
from tests.debug_toolbar.test_trace_pages import wait_for_trace
from tests.debug_toolbar.toolbar_api import request_id, statuses, wait_for_panel
from tests.docs.blocks import block

pytestmark = pytest.mark.usefixtures("instrument")
ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent


@contextlib.contextmanager
def exporting_worker(
    redis_url: str, queue: str, base: str, command: list[str], **env: str
) -> Iterator[None]:
    environment = {
        **os.environ,
        "SAQ_TEST_REDIS_URL": redis_url,
        "SAQ_TEST_QUEUE": queue,
        "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": f"{base}/_debug_toolbar/saq/v1/traces",
        "OTEL_BSP_SCHEDULE_DELAY": "100",  # export soon after each job, for a short test
        **env,
    }
    proc = subprocess.Popen(
        [*command, "tests.debug_toolbar.remote_worker.settings"],
        cwd=ROOT,
        env=environment,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        _wait_for_first_sweep(redis_url, queue, proc)
        yield
    finally:
        proc.terminate()
        proc.wait(15)


def remote_attempts(view: dict[str, t.Any]) -> list[tuple[str, int, str, str]]:
    return [
        (row["function"], row["attempt"], row["job_status"], row["service"])
        for row in view["rows"]
        if row["kind"] == "process"
    ]


def signup_exported(view: dict[str, t.Any]) -> bool:
    names = [row["name"] for row in view["rows"]]
    return len(remote_attempts(view)) == 3 and "render email" in names


def test_the_trace_page_shows_a_remote_workers_spans_under_the_request(redis_url: str) -> None:
    name = f"export-{uuid.uuid4().hex[:8]}"
    queue = RedisQueue.from_url(redis_url, name=name)
    worker = [sys.executable, "-m", "saq"]
    with (
        serving(litestar_app(queue, worker=False)) as base,
        exporting_worker(redis_url, name, base, worker, SAQ_TEST_EXPORT="1"),
        httpx.Client(base_url=base) as client,
    ):
        client.get("/signup")
        rid = request_id(client, "/signup")
        stats = wait_for_panel(client, rid, lambda s: statuses(s) == SIGNUP_FINAL, timeout=30)
        trace_id = stats["trace_id"]
        view = wait_for_trace(client, trace_id, signup_exported)

        with browser_page() as page:
            page.goto(f"{base}/_debug_toolbar/saq/{trace_id}")
            attempts = page.locator('li.row[data-kind="process"]')
            drawn = [
                (
                    attempts.nth(i).get_attribute("data-function"),
                    attempts.nth(i).get_attribute("data-attempt"),
                    attempts.nth(i).get_attribute("data-service"),
                )
                for i in range(attempts.count())
            ]
            child = page.locator("li.row", has_text="render email")
            child_depth = child.get_attribute("style")
            email_depth = page.locator(
                'li.row[data-kind="process"][data-function="send_email"]'
            ).get_attribute("style")
            header = page.locator("header p").inner_text()
            live = page.get_attribute("body", "data-saq-live")

    assert sorted(drawn) == [
        ("flaky_report", "1", "remote-worker"),
        ("flaky_report", "2", "remote-worker"),
        ("send_email", "1", "remote-worker"),
    ]
    assert child_depth is not None and email_depth is not None
    assert _depth(child_depth) == _depth(email_depth) + 1  # the job's span, under its attempt
    assert view["rows"][0]["kind"] == "request" and view["rows"][0]["name"] == "GET /signup"
    # The page and the panel tell the same story.
    assert sorted(remote_attempts(view)) == [
        ("flaky_report", 1, "queued", "remote-worker"),
        ("flaky_report", 2, "failed", "remote-worker"),
        ("send_email", 1, "complete", "remote-worker"),
    ]
    assert view["worst_status"] == "failed" and "worst status failed" in header
    assert "remote-worker" in header
    assert live == "1"  # one job is scheduled for an hour from now: still on its way


def _depth(style: str) -> int:
    return int(style.split("--depth:")[1].split(";")[0])


def test_the_opentelemetry_instrument_command_exports_to_the_app(redis_url: str) -> None:
    """The command line of docs/guides/opentelemetry-instrument.md, as written: no SDK code
    in the worker at all (its settings module is the tests')."""
    name = f"instrument-{uuid.uuid4().hex[:8]}"
    queue = RedisQueue.from_url(redis_url, name=name)
    page = block("docs/guides/opentelemetry-instrument.md", "bash", "opentelemetry-instrument")
    recipe, words = page.command()
    assert page.not_run and words == ["opentelemetry-instrument", "saq", "myapp.worker.settings"]
    command = [str(BIN / words[0]), str(BIN / words[1])]
    with (
        serving(litestar_app(queue, worker=False)) as base,
        exporting_worker(redis_url, name, base, command, **recipe),
        httpx.Client(base_url=base) as client,
    ):
        client.get("/slow", params={"seconds": 0.01})
        stats = wait_for_panel(
            client, request_id(client, "/slow"), lambda s: s["jobs"][0]["status"] == "complete"
        )
        view = wait_for_trace(client, stats["trace_id"], lambda v: bool(remote_attempts(v)))

    assert remote_attempts(view) == [("slow", 1, "complete", recipe["OTEL_SERVICE_NAME"])]
