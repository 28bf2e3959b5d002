"""Traces and their log lines outlive the app's process: a ``uvicorn --reload`` after a
saved file, a SIGKILL, and two processes of one app writing to one store.

Each app is a real uvicorn process (restart_app.py) with a real in-app SAQ worker on a
real Redis; the toolbar keeps its history in a file (``FileToolbarStorage``), whose links
must still open after the restart.
"""

from __future__ import annotations

import contextlib
import functools
import os
import signal
import sqlite3
import subprocess
import sys
import time
import typing as t
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest
import redis

from tests.debug_toolbar.toolbar_api import panel
from tests.servers import free_port

# Real uvicorn processes restarted and killed: run once, on one Python (tox.ini).
pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]
API = "/_debug_toolbar/saq/api/traces"
STORE = "saq-debug-toolbar.traces.sqlite3"  # the toolbar's provider names the app


class App:
    """One uvicorn process of restart_app.py."""

    def __init__(self, proc: subprocess.Popen[bytes], base: str, stderr: Path) -> None:
        self.proc, self.base, self.stderr = proc, base, stderr

    def get(self, path: str) -> httpx.Response:
        return httpx.get(f"{self.base}{path}", timeout=10)

    def console(self) -> str:
        return self.stderr.read_text(encoding="utf-8", errors="replace")

    def pid(self) -> int:
        return int(self.get("/pid").json()["pid"])


def environment(redis_url: str, folder: Path) -> dict[str, str]:
    queue = f"restart-{uuid.uuid4().hex[:8]}"
    # Held, so that a worker starting up does not sweep a job another has just dequeued
    # (SAQ's own race): these tests are not about sweeping.
    with redis.Redis.from_url(redis_url) as client:
        client.set(f"saq:{queue}:sweep", 1, ex=300)
    return {
        **os.environ,
        "RESTART_REDIS_URL": redis_url,
        "RESTART_QUEUE": queue,
        "RESTART_HISTORY": str(folder / "history.json"),
        "OTEL_PYTHON_SAQ_TOOLBAR_STORE": str(folder / "store"),
    }


@contextlib.contextmanager
def served(env: dict[str, str], stderr: Path, *options: str) -> Iterator[App]:
    port = free_port()
    command = [sys.executable, "-m", "uvicorn", "--factory", "tests.debug_toolbar.restart_app:app"]
    with stderr.open("ab") as sink:
        proc = subprocess.Popen(
            [*command, "--host", "127.0.0.1", "--port", str(port), *options],
            cwd=ROOT,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=sink,
            start_new_session=True,  # the reloader's child goes with it
        )
    app = App(proc, f"http://127.0.0.1:{port}", stderr)
    try:
        until(lambda: up(app), "the app did not start", app)
        yield app
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGTERM)
            proc.wait(20)


def up(app: App) -> bool:
    assert app.proc.poll() is None, app.console()
    with contextlib.suppress(httpx.HTTPError):
        return app.get("/pid").status_code == 200
    return False


def until(done: t.Callable[[], t.Any], what: str, app: App, timeout: float = 30) -> t.Any:
    deadline = time.monotonic() + timeout
    while not (found := done()):
        assert time.monotonic() < deadline, f"{what}:\n{app.console()}"
        time.sleep(0.1)
    return found


def attempts_shown(app: App, page: str, name: str) -> bool:
    """The trace, read from this app, has its job's attempt complete, with its line."""
    response = app.get(f"{API}/{page.rsplit('/', 1)[1]}")
    if response.status_code != 200:
        return False
    rows = [row for row in response.json()["rows"] if row["kind"] == "process"]
    lines = [line["message"] for row in rows for line in row["logs"]]
    return [row["job_status"] for row in rows] == ["complete"] and lines == [f"GREETED {name}"]


def greeted_trace(app: App, name: str) -> str:
    """Enqueue a greeting; the trace page's path, from the toolbar's history, once the trace
    API shows the job's attempt complete with its line (read from whichever process ran it:
    the panel's own status of a job run elsewhere is not what these tests are about)."""
    assert app.get(f"/greet/{name}").status_code == 200

    def trace_page() -> str | None:
        requests = app.get("/_debug_toolbar/api/requests").json()
        found = [r["request_id"] for r in requests if r["metadata"]["path"] == f"/greet/{name}"]
        return t.cast("str | None", panel(app, found[0])["trace_page"]) if found else None

    page = t.cast(str, until(trace_page, "the request is not in the history", app))
    until(lambda: attempts_shown(app, page, name), "the job's attempt or line is missing", app)
    return page


def logs(app: App, page: str) -> list[str]:
    """The log lines the trace API shows on the trace's attempts."""
    response = app.get(f"{API}/{page.rsplit('/', 1)[1]}")
    if response.status_code != 200:
        return []
    rows = response.json()["rows"]
    return [line["message"] for row in rows if row["kind"] == "process" for line in row["logs"]]


def history_links(app: App) -> dict[str, str]:
    """Each recorded request's path and its panel's trace page link, from the history."""
    links = {}
    for request in app.get("/_debug_toolbar/api/requests").json():
        stats = panel(app, request["request_id"])
        links[request["metadata"]["path"]] = stats["trace_page"]
    return links


def written(folder: Path, page: str) -> bool:
    """Whether the trace and its job's line are in the store's files (read as SQLite)."""
    trace_id = page.rsplit("/", 1)[1]
    spans = folder / "store" / STORE
    lines = folder / "store" / STORE.replace("traces", "logs")
    if not spans.exists() or not lines.exists():
        return False
    with contextlib.closing(sqlite3.connect(spans)) as db:
        kept = db.execute("SELECT COUNT(*) FROM rows WHERE trace_id = ?", (trace_id,)).fetchone()
    with contextlib.closing(sqlite3.connect(lines)) as db:
        said = db.execute("SELECT COUNT(*) FROM rows WHERE trace_id = ?", (trace_id,)).fetchone()
    return kept[0] >= 3 and said[0] >= 1  # request, send, process; the job's line


def assert_shown_after_restart(app: App, name: str, page: str) -> None:
    """The history's link still opens the trace page, with the job and its line."""
    assert history_links(app)[f"/greet/{name}"] == page
    html = app.get(page)
    assert html.status_code == 200, html.text
    assert "greet" in html.text
    assert f"GREETED {name}" in logs(app, page)


def test_a_reload_after_a_saved_file_keeps_the_traces_and_their_lines(
    redis_url: str, tmp_path: Path
) -> None:
    watched = tmp_path / "watched"
    watched.mkdir()
    source = watched / "views.py"
    source.write_text("# saved by the developer\n")
    env = environment(redis_url, tmp_path)
    options = ("--reload", "--reload-dir", str(watched), "--reload-delay", "0.1")
    with served(env, tmp_path / "stderr.txt", *options) as app:
        page = greeted_trace(app, "before-reload")
        first = app.pid()
        time.sleep(0.3)  # the reloader compares modification times: let the clock move
        source.write_text("# saved again\n")
        until(lambda: up(app) and app.pid() != first, "the app did not reload", app)

        assert_shown_after_restart(app, "before-reload", page)
        # The restarted app goes on: its own traces join the earlier ones.
        later = greeted_trace(app, "after-reload")
        traces = app.get(API).json()["traces"]
        ids = [trace["trace_id"] for trace in traces]
        assert page.rsplit("/", 1)[1] in ids and later.rsplit("/", 1)[1] in ids


def test_a_killed_app_restarted_shows_what_it_had_written(redis_url: str, tmp_path: Path) -> None:
    env = environment(redis_url, tmp_path)
    with served(env, tmp_path / "stderr.txt") as app:
        page = greeted_trace(app, "before-kill")
        until(lambda: written(tmp_path, page), "the trace never reached the store", app)
        os.killpg(app.proc.pid, signal.SIGKILL)
        app.proc.wait(20)
    with served(env, tmp_path / "stderr.txt") as app:
        assert_shown_after_restart(app, "before-kill", page)
        assert "Traceback" not in app.console()


def test_two_processes_of_one_app_share_one_store(redis_url: str, tmp_path: Path) -> None:
    env = environment(redis_url, tmp_path)
    second_env = env | {"RESTART_HISTORY": str(tmp_path / "second-history.json")}
    with (
        served(env, tmp_path / "first.txt") as first,
        served(second_env, tmp_path / "second.txt") as second,
    ):
        names = {
            f"{app_name}-{i}": app
            for i in range(4)
            for app_name, app in (("first", first), ("second", second))
        }
        with ThreadPoolExecutor(4) as pool:  # both write at once
            pages = dict(zip(names, pool.map(greeted_trace, names.values(), names), strict=True))
        # Either process's worker may have run a job: each process shows every trace,
        # with its attempt and its line, whichever process wrote them.
        for app in (first, second):
            for name, page in pages.items():
                until(functools.partial(attempts_shown, app, page, name), name, app)
            listed = {trace["trace_id"] for trace in app.get(API).json()["traces"]}
            assert {page.rsplit("/", 1)[1] for page in pages.values()} <= listed
        for app in (first, second):
            assert "SAQ toolbar's store" not in app.console()
            assert "Traceback" not in app.console()


def test_a_corrupted_store_is_replaced_with_a_warning(redis_url: str, tmp_path: Path) -> None:
    folder = tmp_path / "store"
    folder.mkdir()
    for name in (STORE, STORE.replace("traces", "logs")):
        (folder / name).write_bytes(b"not a database, a half-written file\n" * 200)
    env = environment(redis_url, tmp_path)
    with served(env, tmp_path / "stderr.txt") as app:
        page = greeted_trace(app, "on-a-fresh-store")
        until(lambda: written(tmp_path, page), "the trace never reached the store", app)
        console = app.console()
    for name in (STORE, STORE.replace("traces", "logs")):
        assert console.count(f"{folder / name} could not be used") == 1, console
        with contextlib.closing(sqlite3.connect(folder / name)) as db:
            assert db.execute("PRAGMA quick_check").fetchall() == [("ok",)]
    assert "Traceback" not in console
