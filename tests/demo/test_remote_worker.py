"""The demo with its worker in another process, started with the two commands of
docs/getting-started.md:
the worker's spans and its jobs' log lines reach the app's trace pages through the
toolbar's receivers."""

from __future__ import annotations

import os
import shlex
import subprocess
import sys
import time
import typing as t
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.demo.test_end_to_end import _wait_until_serving
from tests.docs.blocks import block
from tests.servers import RedisServer, free_port

ROOT = Path(__file__).resolve().parents[2]


def page_worker_command(base: str, redis_url: str) -> tuple[dict[str, str], list[str]]:
    """The variables and command of the page's "terminal 2" line, for this test's app
    (at ``base``) and Redis."""
    commands = block("docs/getting-started.md", "bash", "# terminal 2")
    assert commands.not_run  # marked: this test runs them
    second = commands.source.split("# terminal 1\n", 1)[1].split("# terminal 2", 1)[0]
    words = shlex.split(second.replace("\\\n", " "))
    variables = dict(word.split("=", 1) for word in words if "=" in word)
    variables = {k: v.replace("http://127.0.0.1:8000", base) for k, v in variables.items()}
    variables["REDIS_URL"] = redis_url
    return variables, [word for word in words if "=" not in word]


@pytest.fixture
def demo_with_a_worker_elsewhere() -> Iterator[str]:
    redis = RedisServer()
    redis.start()
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    env = {k: v for k, v in os.environ.items() if not k.startswith("OTEL_")}
    env["REDIS_URL"] = redis.url
    variables, command = page_worker_command(base, redis.url)
    assert command == [".venv/bin/saq", "examples.demo.worker.settings"]
    procs = [
        subprocess.Popen(
            [sys.executable, "-m", "examples.demo"],
            cwd=ROOT,
            env={**env, "PORT": str(port)},
            stderr=subprocess.DEVNULL,
        ),
        # The page's command, with this venv's `saq`.
        subprocess.Popen(
            [str(Path(sys.executable).parent / "saq"), command[1]],
            cwd=ROOT,
            env={**env, **variables},
            stderr=subprocess.DEVNULL,
        ),
    ]
    try:
        _wait_until_serving(base, procs)
        time.sleep(1)  # the worker's startup sweep (see SAQ's sweep race)
        yield base
    finally:
        for proc in procs:
            proc.terminate()
        for proc in procs:
            proc.wait(20)
        redis.stop()


def _trace_of(client: httpx.Client, path: str) -> str:
    requests = client.get("/_debug_toolbar/api/requests").json()
    (rid,) = [r["request_id"] for r in requests if r["metadata"].get("path") == path]
    stats = client.get(f"/_debug_toolbar/api/requests/{rid}").json()["panel_data"]["SAQPanel"]
    return str(stats["trace_id"])


def _wait_for_view(
    client: httpx.Client, trace_id: str, done: t.Callable[[dict[str, t.Any]], bool]
) -> dict[str, t.Any]:
    deadline = time.monotonic() + 30
    while True:
        view = client.get(f"/_debug_toolbar/saq/api/traces/{trace_id}").json()
        if done(view):
            return t.cast(dict[str, t.Any], view)
        assert time.monotonic() < deadline, [row["name"] for row in view["rows"]]
        time.sleep(0.2)


def _all_exported(view: dict[str, t.Any]) -> bool:
    names = [row["name"] for row in view["rows"]]
    crm = [row for row in view["rows"] if row.get("function") == "sync_crm"]
    attempts = [row for row in crm if row["kind"] == "process"]
    return (
        "smtp send" in names
        and len(attempts) == 2
        and all(row.get("log_count") for row in attempts)  # the lines come on their own
    )


def _lines(row: dict[str, t.Any]) -> list[tuple[str, str]]:
    return [(line["level"], line["message"]) for line in row.get("logs", [])]


@pytest.mark.slow
def test_the_demo_worker_in_another_process_shows_on_the_trace_page(
    demo_with_a_worker_elsewhere: str,
) -> None:
    with httpx.Client(base_url=demo_with_a_worker_elsewhere, timeout=10) as client:
        client.get("/signup")
        trace_id = _trace_of(client, "/signup")
        view = _wait_for_view(client, trace_id, _all_exported)
        # Followed a few seconds more after its last change, for log lines on their way.
        deadline = time.monotonic() + 30
        while 'data-saq-live="0"' not in (
            page := client.get(f"/_debug_toolbar/saq/{trace_id}").text
        ):
            assert time.monotonic() < deadline, "the page still follows the trace"
            time.sleep(0.5)

    attempts = [row for row in view["rows"] if row["kind"] == "process"]
    assert {row["service"] for row in attempts} == {"saq-demo-worker"}
    assert [(r["function"], r["job_status"]) for r in attempts if r["function"] == "sync_crm"] == [
        ("sync_crm", "queued"),
        ("sync_crm", "complete"),
    ]
    # The jobs' INFO lines too: the demo worker sets its jobs' logger level.
    first, second = [r for r in attempts if r["function"] == "sync_crm"]
    assert _lines(first) == [
        ("INFO", "syncing customer 42 with the CRM (attempt 1)"),
        ("WARNING", "the CRM did not answer: the job will retry"),
    ]
    assert _lines(second) == [("INFO", "syncing customer 42 with the CRM (attempt 2)")]
    assert view["rows"][0]["kind"] == "request"
    assert "saq-demo-worker" in view["services"] and "saq-demo-app" in view["services"]
    assert view["worst_status"] == "complete"
    assert "on saq-demo-worker" in page and 'data-saq-live="0"' in page  # all here: final
