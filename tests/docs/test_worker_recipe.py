"""The worker recipe of docs/guides/remote-workers.md, run as written: its settings
module (with the queue and functions it leaves to you filled in) and its command line
with its variables, in a real `saq` process of its own. The worker's spans and its
job's INFO line reach the app."""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import textwrap
import typing as t
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from debug_toolbar.litestar import DebugToolbarPlugin, LitestarDebugToolbarConfig
from litestar import Litestar, get
from saq.queue.redis import RedisQueue

from opentelemetry.instrumentation.saq.debug_toolbar.litestar import SAQTracePlugin
from tests.browser import serving
from tests.debug_toolbar.apps import PANEL
from tests.debug_toolbar.test_panel_elsewhere import _wait_for_first_sweep
from tests.debug_toolbar.test_trace_pages import wait_for_trace
from tests.debug_toolbar.toolbar_api import request_id, wait_for_panel
from tests.docs.blocks import block

pytestmark = [pytest.mark.usefixtures("instrument"), pytest.mark.slow]
PAGE = "docs/guides/remote-workers.md"
BIN = Path(sys.executable).parent
PLACEHOLDER = 'settings = {"queue": queue, "functions": [...]}'

# The user's jobs, in their own package: their logger is "myapp.jobs", under "myapp".
JOBS = """
import logging
import os

from saq.queue import Queue

logger = logging.getLogger(__name__)
queue = Queue.from_url(os.environ["RECIPE_REDIS_URL"], name=os.environ["RECIPE_QUEUE"])


async def sync_customer(ctx, *, customer_id):
    logger.info("syncing customer %d", customer_id)
    logger.debug("not sent: below the level the recipe sets")
    return "synced"
"""


def page_recipe() -> tuple[str, dict[str, str], list[str]]:
    """The settings module, the variables and the command of the page's worker recipe."""
    settings = block(PAGE, "python", "# myapp/worker.py")
    command = block(PAGE, "bash", "\nsaq myapp.worker.settings")
    assert settings.not_run and command.not_run  # marked: this test runs them
    variables, words = command.command()
    return settings.source, variables, words


@pytest.fixture
def recipe_package(tmp_path: Path) -> Path:
    """``myapp/`` as the page lays it out, the queue and functions filled in."""
    settings, _, _ = page_recipe()
    assert settings.rstrip().endswith(PLACEHOLDER)
    filled = "from myapp.jobs import queue, sync_customer\n\n"
    filled += 'settings = {"queue": queue, "functions": [sync_customer]}\n'
    package = tmp_path / "myapp"
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "jobs.py").write_text(textwrap.dedent(JOBS))
    (package / "worker.py").write_text(settings.replace(PLACEHOLDER, filled))
    return tmp_path


def sync_app(queue: RedisQueue) -> Litestar:
    @get("/sync")
    async def sync() -> dict[str, bool]:
        await queue.enqueue("sync_customer", customer_id=42)
        return {"ok": True}

    async def startup() -> None:
        await queue.connect()

    config = LitestarDebugToolbarConfig(extra_panels=[PANEL])
    return Litestar(
        [sync],
        plugins=[DebugToolbarPlugin(config), SAQTracePlugin()],
        on_startup=[startup],
        on_shutdown=[queue.disconnect],
    )


@contextlib.contextmanager
def recipe_worker(directory: Path, base: str, redis_url: str, queue: str) -> Iterator[None]:
    _, variables, command = page_recipe()
    assert command == ["saq", "myapp.worker.settings"]
    environment = {k: v for k, v in os.environ.items() if not k.startswith("OTEL_")}
    environment.update(
        {k: v.replace("http://127.0.0.1:8000", base) for k, v in variables.items()},
        RECIPE_REDIS_URL=redis_url,
        RECIPE_QUEUE=queue,
        # Export soon after the job, for a short test (the SDK's defaults are 5 s and 1 s).
        OTEL_BSP_SCHEDULE_DELAY="100",
        OTEL_BLRP_SCHEDULE_DELAY="100",
    )
    # The page's command, with this venv's `saq`, run where `myapp/` is (saq adds the
    # working directory to the module path).
    with (directory / "worker.log").open("wb") as log:
        proc = subprocess.Popen(
            [str(BIN / command[0]), command[1]],
            cwd=directory,
            env=environment,
            stdout=log,
            stderr=log,
        )
    try:
        _wait_for_first_sweep(redis_url, queue, proc)
        yield
    finally:
        proc.terminate()
        proc.wait(15)


def attempt_logs(view: dict[str, t.Any]) -> list[tuple[str, str, str]]:
    return [
        (line["level"], line["logger"], line["message"])
        for row in view["rows"]
        if row["kind"] == "process"
        for line in row.get("logs", [])
    ]


def test_the_worker_recipe_sends_spans_and_info_lines_to_the_app(
    redis_url: str, recipe_package: Path
) -> None:
    name = f"recipe-{uuid.uuid4().hex[:8]}"
    queue = RedisQueue.from_url(redis_url, name=name)
    with (
        serving(sync_app(queue)) as base,
        recipe_worker(recipe_package, base, redis_url, name),
        httpx.Client(base_url=base) as client,
    ):
        client.get("/sync")
        rid = request_id(client, "/sync")
        stats = wait_for_panel(
            client, rid, lambda s: s["jobs"][0]["status"] == "complete", timeout=30
        )
        view = wait_for_trace(client, stats["trace_id"], lambda v: bool(attempt_logs(v)))
    log = (recipe_package / "worker.log").read_text(errors="replace")

    (attempt,) = [row for row in view["rows"] if row["kind"] == "process"]
    assert (attempt["service"], attempt["job_status"]) == ("myapp-worker", "complete")
    assert attempt_logs(view) == [("INFO", "myapp.jobs", "syncing customer 42")]
    # The handler sits beside saq's console handler: the line is printed too.
    assert "syncing customer 42" in log
