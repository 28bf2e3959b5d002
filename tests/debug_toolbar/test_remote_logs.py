"""A worker in another OS process, started by the logs recipe of
docs/guides/remote-workers.md as written, sends
its jobs' log lines to the app: each lands under the attempt that wrote it."""

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
from tests.debug_toolbar.test_job_logs import (
    assert_attempts_story,
    attempt_rows,
    contacts_app,
    finished,
)
from tests.debug_toolbar.test_panel_elsewhere import _wait_for_first_sweep
from tests.debug_toolbar.test_trace_pages import wait_for_trace
from tests.debug_toolbar.toolbar_api import panel, request_id, wait_for_panel
from tests.docs.blocks import block

pytestmark = [pytest.mark.usefixtures("instrument"), pytest.mark.slow]
ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent


def page_recipe(base: str) -> tuple[dict[str, str], list[str]]:
    """The environment and command of the logs recipe, read from its page (its app at
    127.0.0.1:8000 is this test's app at ``base``)."""
    recipe = block("docs/guides/remote-workers.md", "bash", "opentelemetry-instrument saq")
    assert recipe.not_run  # marked: this test runs it
    environment, command = recipe.command()
    environment = {k: v.replace("http://127.0.0.1:8000", base) for k, v in environment.items()}
    return environment, command


@contextlib.contextmanager
def recipe_worker(redis_url: str, queue: str, base: str, **env: str) -> Iterator[None]:
    recipe, command = page_recipe(base)
    assert command == ["opentelemetry-instrument", "saq", "myapp.worker.settings"]
    environment = {
        **os.environ,
        **recipe,
        "SAQ_TEST_REDIS_URL": redis_url,
        "SAQ_TEST_QUEUE": queue,
        # Export soon after each job, for a short test (the SDK's defaults are 5 s and 1 s).
        "OTEL_BSP_SCHEDULE_DELAY": "100",
        "OTEL_BLRP_SCHEDULE_DELAY": "100",
        **env,
    }
    # The page's command, with this venv's scripts and the tests' settings module.
    proc = subprocess.Popen(
        [
            str(BIN / command[0]),
            str(BIN / command[1]),
            "tests.debug_toolbar.logging_worker.settings",
        ],
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


def story_arrived(view: dict[str, t.Any]) -> bool:
    attempts = attempt_rows(view)
    return (
        len(attempts) == 2
        and attempts[1].get("log_count") == 3
        and attempts[2].get("log_count") == 2
        and len([row for row in view["rows"] if row["name"] == "parse rows"]) == 2
    )


def test_a_remote_jobs_logs_and_traceback_appear_under_the_right_attempt(redis_url: str) -> None:
    name = f"remote-logs-{uuid.uuid4().hex[:8]}"
    queue = RedisQueue.from_url(redis_url, name=name)

    with (
        serving(contacts_app(queue, worker=False)) as base,
        recipe_worker(redis_url, name, base),
        httpx.Client(base_url=base) as client,
    ):
        client.get("/import")
        rid = request_id(client, "/import")
        stats = wait_for_panel(client, rid, finished, timeout=30)
        view = wait_for_trace(client, stats["trace_id"], story_arrived)
        # The panel counts them too, once they have arrived (after the queue said "complete").
        stats = panel(client, rid)
        with browser_page() as page:
            page.goto(f"{base}/_debug_toolbar/saq/{stats['trace_id']}")
            first = page.locator('li.row[data-kind="process"][data-attempt="1"]')
            first.locator(".label").click()
            first.locator(".detail").wait_for(state="visible")
            stacktrace = first.locator(".detail .stacktrace").inner_text()
            logs = first.locator(".detail .log").all_inner_texts()

    assert_attempts_story(view)
    assert stats["jobs"][0]["logs"] == [
        {"attempt": 1, "count": 3, "worst_level": "ERROR"},
        {"attempt": 2, "count": 2, "worst_level": "WARNING"},
    ]
    assert {row["service"] for row in attempt_rows(view).values()} == {"myapp-worker"}
    assert "ConnectionError: <script>alert('contacts')</script> upstream gone" in stacktrace
    assert len(logs) == 3 and "lookup failed" in logs[2] and "KeyError" in logs[2]
