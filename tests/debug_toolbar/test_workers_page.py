"""The workers page: each queue's depth and workers, and what workers said outside their
jobs, in this process and from a worker elsewhere, checked in a real headless Chromium."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import subprocess
import time
import typing as t
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest
from saq.job import Job
from saq.queue import Queue
from saq.queue.redis import RedisQueue

from tests.browser import browser_page, serving
from tests.debug_toolbar.apps import fastapi_app
from tests.debug_toolbar.test_panel_elsewhere import _wait_for_first_sweep
from tests.debug_toolbar.test_remote_logs import BIN, ROOT, page_recipe
from tests.debug_toolbar.workers_apps import CRASH, SECRET, START_UP_LINE, workers_app
from tests.servers import RedisServer

pytestmark = [pytest.mark.usefixtures("instrument"), pytest.mark.slow]
PAGE = "/_debug_toolbar/saq/workers"


@pytest.fixture
def saq_debug_logs() -> Iterator[None]:
    """SAQ's own loggers at DEBUG (``saq -vv``): its lines then print jobs' arguments."""
    saq = logging.getLogger("saq")
    level = saq.level
    saq.setLevel(logging.DEBUG)
    yield
    saq.setLevel(level)


@pytest.mark.usefixtures("saq_debug_logs")
def test_a_workers_start_up_line_and_its_crashes_between_jobs_appear_while_the_page_is_open(
    redis_url: str,
) -> None:
    name = f"<b>crew</b>-{uuid.uuid4().hex[:8]}"
    worker_id = f"<i>w</i>-{uuid.uuid4().hex[:8]}"
    queue = RedisQueue.from_url(redis_url, name=name)
    app = workers_app(queue, worker_id=worker_id, stuck_job=True)
    with serving(app) as base, browser_page() as page:
        page.goto(base + PAGE)
        said = f'ul.lines li[data-source="worker {worker_id}"]'
        page.locator(said, has_text="warming up").wait_for()
        sweep = page.locator(said, has_text="Sweeping job")
        sweep.wait_for(timeout=20_000)
        # A crash after the page was drawn: the open page has to poll it in.
        httpx.get(f"{base}/enqueue/tidy").raise_for_status()
        crash = page.locator(said, has_text="Failed to run after process hook")
        crash.wait_for(timeout=20_000)
        page.locator(f'tr[data-worker-id="{worker_id}"]').wait_for(timeout=20_000)
        start_up_text = page.locator(said, has_text="warming up").inner_text()
        saq_start = page.locator(said, has_text="Worker starting").inner_text()
        sweep_text = sweep.inner_text()
        crash_text = crash.inner_text()
        queue_cell = page.locator(f'tr[data-queue="{name}"] td').first.inner_text()
        worker_cell = page.locator(f'tr[data-worker-id="{worker_id}"] td').first.inner_text()
        injected = page.locator("main b, main i, main script").count()
        html = page.content()

    assert "INFO · saq Worker starting: RedisQueue<" in saq_start  # SAQ's own line
    assert START_UP_LINE in start_up_text
    assert f"worker {worker_id} · queue {name}" in start_up_text
    assert "RuntimeError: " + CRASH in crash_text and "Traceback" in crash_text
    # SAQ's sweep printed the stuck job with its arguments: only its function stays.
    assert "Sweeping job Job<function: guarded, arguments not kept>" in sweep_text
    assert SECRET not in html
    # Names from user code are text, never markup.
    assert queue_cell.replace("\u200b", "") == name
    assert worker_cell.startswith(worker_id)
    assert injected == 0


def counts_on_page(page: t.Any, name: str) -> dict[str, int]:
    row = page.locator(f'tr[data-queue="{name}"]')
    return {
        kind: int(row.locator(f'td[data-count="{kind}"]').inner_text())
        for kind in ("queued", "active", "scheduled", "workers")
    }


def test_queue_depths_and_workers_are_what_queue_info_says(redis_url: str) -> None:
    name = f"depth-{uuid.uuid4().hex[:8]}"
    worker_id = f"busy-{uuid.uuid4().hex[:8]}"
    queue = RedisQueue.from_url(redis_url, name=name)
    app = workers_app(queue, worker_id=worker_id, concurrency=2)
    with serving(app) as base, browser_page() as page:
        # Two long jobs fill the worker's two slots; three wait; two are due in an hour.
        httpx.get(f"{base}/enqueue/slow", params={"count": 2}).raise_for_status()
        api = f"{base}/_debug_toolbar/saq/api/workers"
        wait_for_json(api, lambda view: _queue(view, name).get("active") == 2)
        httpx.get(f"{base}/enqueue/slow", params={"count": 3}).raise_for_status()
        httpx.get(f"{base}/enqueue/slow", params={"count": 2, "delay": 3600}).raise_for_status()
        page.goto(base + PAGE)
        shown = counts_on_page(page, name)
        worker_row = page.locator(f'tr[data-worker-id="{worker_id}"]').inner_text()
        info = read_info(redis_url, name)

    assert shown == {
        "queued": info["queued"],
        "active": info["active"],
        "scheduled": info["scheduled"],
        "workers": len(info["workers"]),
    }
    assert shown == {"queued": 3, "active": 2, "scheduled": 2, "workers": 1}
    assert list(info["workers"]) == [worker_id]
    assert "2 / 2" in worker_row and "this process" in worker_row


def _queue(view: dict[str, t.Any], name: str) -> dict[str, t.Any]:
    return next((queue for queue in view["queues"] if queue["name"] == name), {})


def wait_for_json(url: str, condition: t.Callable[[dict[str, t.Any]], bool]) -> dict[str, t.Any]:
    deadline = time.monotonic() + 20
    while True:
        view = httpx.get(url).json()
        if condition(view):
            return t.cast(dict[str, t.Any], view)
        assert time.monotonic() < deadline, view
        time.sleep(0.1)


def read_info(url: str, name: str) -> t.Any:
    """``Queue.info()`` from a queue of its own (in a thread: Playwright's loop runs here)."""

    async def read() -> t.Any:
        queue = Queue.from_url(url, name=name)
        await queue.connect()
        try:
            return await queue.info()
        finally:
            await queue.disconnect()

    with ThreadPoolExecutor(1) as pool:
        return pool.submit(asyncio.run, read()).result()


def test_postgres_queue_depths_are_what_queue_info_says(postgres_url: str) -> None:
    name = f"pg-depth-{uuid.uuid4().hex[:8]}"
    queue = Queue.from_url(postgres_url, name=name)
    with serving(workers_app(queue)) as base, browser_page() as page:
        # No worker: three jobs wait, two are due in an hour.
        httpx.get(f"{base}/enqueue/tidy", params={"count": 3}).raise_for_status()
        httpx.get(f"{base}/enqueue/tidy", params={"count": 2, "delay": 3600}).raise_for_status()
        page.goto(base + PAGE)
        shown = counts_on_page(page, name)
        broker = page.locator(f'tr[data-queue="{name}"] td').nth(1).inner_text()
        info = read_info(postgres_url, name)

    assert shown == {
        "queued": info["queued"],
        "active": info["active"],
        "scheduled": info["scheduled"],
        "workers": len(info["workers"]),
    }
    assert shown == {"queued": 3, "active": 0, "scheduled": 2, "workers": 0}
    assert broker.startswith("Postgres ")


def test_a_broker_that_does_not_answer_is_said_so_within_the_read_timeout() -> None:
    # Its own Redis, stopped (SIGSTOP) while the page reads it: a broker that hangs.
    server = RedisServer()
    server.start()
    try:
        name = f"<i>hung</i>-{uuid.uuid4().hex[:8]}"
        queue = RedisQueue.from_url(server.url, name=name)
        with serving(fastapi_app(queue)) as base, browser_page() as page:
            httpx.get(f"{base}/signup").raise_for_status()  # the app now knows the queue
            server.signal(signal.SIGSTOP)
            try:
                response = page.goto(base + PAGE)
                row = page.locator(f'tr[data-queue="{name}"]').inner_text()
                api = httpx.get(f"{base}/_debug_toolbar/saq/api/workers", timeout=30)
            finally:
                server.signal(signal.SIGCONT)
    finally:
        server.stop()

    assert response is not None and response.status == 200
    assert row.replace("\u200b", "").startswith(name)
    assert "could not read: no answer within 2 s" in row
    assert api.status_code == 200
    assert _queue(api.json(), name) == {
        "name": name,
        "broker": f"Redis 127.0.0.1:{server.port}",
        "read": False,
        "error": "could not read: no answer within 2 s",
    }


@contextlib.contextmanager
def remote_worker(redis_url: str, name: str, base: str) -> Iterator[None]:
    """``opentelemetry-instrument saq ...`` as the logs recipe of
    docs/guides/remote-workers.md runs a worker, exporting to the app at ``base``, on the
    queue ``name``."""
    recipe, command = page_recipe(base)
    environment = {
        **os.environ,
        **recipe,
        "OTEL_RESOURCE_ATTRIBUTES": "service.instance.id=<b>box</b>-1",
        "SAQ_TEST_REDIS_URL": redis_url,
        "SAQ_TEST_QUEUE": name,
        "OTEL_BSP_SCHEDULE_DELAY": "100",
        "OTEL_BLRP_SCHEDULE_DELAY": "100",
    }
    proc = subprocess.Popen(
        [str(BIN / command[0]), str(BIN / command[1]), "tests.debug_toolbar.workers_apps.settings"],
        cwd=ROOT,
        env=environment,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        _wait_for_first_sweep(redis_url, name, proc)
        yield
    finally:
        proc.terminate()
        proc.wait(15)


def test_a_remote_workers_start_up_line_and_crash_between_jobs_arrive_through_the_receiver(
    redis_url: str,
) -> None:
    name = f"remote-crew-{uuid.uuid4().hex[:8]}"
    queue = RedisQueue.from_url(redis_url, name=name)
    source = "myapp-worker · instance <b>box</b>-1"
    with (
        serving(workers_app(queue)) as base,
        remote_worker(redis_url, name, base),
        browser_page() as page,
    ):
        page.goto(base + PAGE)
        said = f'ul.lines li[data-source="{source}"]'  # this worker's lines, not earlier ones
        line = page.locator(said, has_text="warming up")
        line.wait_for(timeout=20_000)
        httpx.get(f"{base}/enqueue/tidy").raise_for_status()
        crash = page.locator(said, has_text="Failed to run after process hook")
        crash.wait_for(timeout=20_000)
        start_up_text, crash_text = line.inner_text(), crash.inner_text()
        # A long job: the remote worker's busy slot is read from the queue's active jobs
        # (SAQ 0.20 does not record which worker runs a job: no count there).
        httpx.get(f"{base}/enqueue/slow").raise_for_status()
        busy = "1 / not known" if hasattr(Job(function="f"), "worker_id") else name
        row = page.locator("table.workers tbody tr", has_text=busy)
        row.wait_for(timeout=20_000)
        worker_row = row.inner_text()
        injected = page.locator("main b, main script").count()

    assert START_UP_LINE in start_up_text and source in start_up_text
    assert source in crash_text
    assert "RuntimeError: " + CRASH in crash_text and "Traceback" in crash_text
    # SAQ lists the remote worker: its last write is estimated, its slots are not known.
    assert name in worker_row and "about" in worker_row and "this process" not in worker_row
    assert injected == 0
