"""The list page shows every job, whatever started it, and finds a job by what a developer
remembers of it: its key, its function and status, words of its error.

Real processes: the app served by uvicorn, an in-app worker with a cron job, a script that
enqueues and exits, a `saq` worker in its own process exporting to the app's receiver;
pages read in headless Chromium.
"""

from __future__ import annotations

import logging
import os
import subprocess
import sys
import time
import typing as t
import uuid

import httpx
import pytest
from litestar.testing import TestClient
from saq import CronJob
from saq.queue.redis import RedisQueue

from tests.browser import browser_page, serving
from tests.debug_toolbar.apps import Ctx, litestar_app
from tests.debug_toolbar.test_panel import SIGNUP_FINAL
from tests.debug_toolbar.test_remote_export import ROOT, exporting_worker
from tests.debug_toolbar.toolbar_api import request_id, statuses, wait_for_panel

pytestmark = [pytest.mark.usefixtures("instrument"), pytest.mark.slow]
LIST = "/_debug_toolbar/saq/"
API = "/_debug_toolbar/saq/api/traces"
EVERY_SECOND = "* * * * * *"  # croniter's sixth field: seconds


async def tick(ctx: Ctx) -> None:
    logging.getLogger("tests.cron_jobs").warning("tick checked the inbox")


def wait_for_jobs(
    client: httpx.Client | TestClient[t.Any],
    params: dict[str, str],
    done: t.Callable[[list[dict[str, t.Any]]], bool],
    timeout: float = 30,
) -> list[dict[str, t.Any]]:
    """The listed jobs that answer ``params``, once ``done`` says they are what we wait for."""
    deadline = time.monotonic() + timeout
    while True:
        listing = client.get(API, params=params).json()
        jobs = [job for trace in listing["traces"] for job in trace["listed_jobs"]]
        if done(jobs):
            return jobs
        assert time.monotonic() < deadline, listing
        time.sleep(0.2)


def rows(page: t.Any) -> list[dict[str, str]]:
    """The job rows the browser shows: their data attributes and their cells' text."""
    return t.cast(
        list[dict[str, str]],
        page.eval_on_selector_all(
            "tr.job",
            """rows => rows.map(r => ({...r.dataset,
                cells: [...r.cells].map(c => c.innerText.trim())}))""",
        ),
    )


def test_a_cron_jobs_ticks_are_listed_with_their_logs(redis_url: str) -> None:
    queue = RedisQueue.from_url(redis_url, name=f"cron-{uuid.uuid4().hex[:8]}")
    cron = CronJob(tick, cron=EVERY_SECOND)
    with (
        serving(litestar_app(queue, cron_jobs=[cron])) as base,
        httpx.Client(base_url=base) as client,
        browser_page() as page,
    ):
        # No request starts them: each tick is a trace of its own.
        wait_for_jobs(
            client,
            {"origin": "cron"},
            lambda jobs: sum(job["status"] == "complete" and job["logs"] for job in jobs) >= 2,
        )
        page.goto(f"{base}{LIST}")
        shown = rows(page)
        page.select_option("select[name=origin]", "cron")
        page.click("form.filters button[type=submit]")
        page.wait_for_url("**origin=cron**")
        filtered = rows(page)

    ticks = [row for row in shown if row["function"] == "tick" and row["status"] == "complete"]
    assert len(ticks) >= 2
    for row in ticks:
        _, started_by, function, queue_name, status, attempts, *_, error_logs, _ = row["cells"]
        assert started_by == f"cron `{EVERY_SECOND}`" and row["origin"] == "cron"
        assert (function, queue_name, status, attempts) == ("tick", queue.name, "complete", "1")
        assert row["jobKey"] == "cron:tick"
        assert error_logs == "1 log line (WARNING): tick checked the inbox"
    # Each tick is its own trace, listed under the cron expression that started it.
    assert len({row["cells"][-1] for row in ticks}) == len(ticks)
    assert filtered and {row["origin"] for row in filtered} == {"cron"}


def test_a_job_a_script_enqueued_and_a_remote_worker_ran_is_listed_with_its_attempts(
    redis_url: str,
) -> None:
    name = f"script-{uuid.uuid4().hex[:8]}"
    key = f"nightly-import-{uuid.uuid4().hex[:8]}"
    queue = RedisQueue.from_url(redis_url, name=name)
    with (
        serving(litestar_app(queue, worker=False)) as base,
        exporting_worker(redis_url, name, base, [sys.executable, "-m", "saq"], SAQ_TEST_EXPORT="1"),
        httpx.Client(base_url=base) as client,
        browser_page() as page,
    ):
        env = {**os.environ, "SAQ_TEST_REDIS_URL": redis_url, "SAQ_TEST_QUEUE": name}
        subprocess.run(
            [sys.executable, "-m", "tests.debug_toolbar.enqueue_script", "flaky_once", key],
            cwd=ROOT,
            env=env,
            check=True,
            timeout=60,
        )
        (job,) = wait_for_jobs(
            client, {"q": key}, lambda jobs: [j["attempts"] for j in jobs] == [2]
        )
        page.goto(f"{base}{LIST}?q={key}")
        (shown,) = rows(page)
        page.click(f'tr.job[data-job-key="{key}"] a')
        attempts = page.eval_on_selector_all(
            'li.row[data-kind="process"]', "rows => rows.map(r => r.dataset.attempt)"
        )

    assert (job["function"], job["queue"], job["status"]) == ("flaky_once", name, "complete")
    assert (job["origin"], job["started_by"]) == ("outside", "outside a request")
    assert "first try <b>lost</b>" in (job["error"] or "")  # attempt 1's error
    _, started_by, function, queue_name, status, tries, *_ = shown["cells"]
    assert (started_by, function, queue_name, status, tries) == (
        "outside a request",
        "flaky_once",
        name,
        "complete",
        "2",
    )
    assert attempts == ["1", "2"]  # the trace page it links to draws both attempts


def test_the_list_finds_a_failed_job_by_key_by_function_and_status_and_by_its_error(
    redis_url: str,
) -> None:
    queue = RedisQueue.from_url(redis_url, name=f"find-{uuid.uuid4().hex[:8]}")
    with (
        serving(litestar_app(queue)) as base,
        httpx.Client(base_url=base) as client,
        browser_page() as page,
    ):
        client.get("/signup")  # send_email completes, flaky_report fails twice
        client.get("/page")  # another send_email
        stats = wait_for_panel(
            client,
            request_id(client, "/signup"),
            lambda s: statuses(s) == SIGNUP_FINAL,
            timeout=30,
        )
        (failed,) = [job for job in stats["jobs"] if job["function"] == "flaky_report"]
        alerts: list[str] = []
        page.on("dialog", lambda dialog: alerts.append(dialog.message))
        found: dict[str, list[dict[str, str]]] = {}
        for label, query in (
            ("key", f"q={failed['key']}"),
            ("function and status", "function=flaky_report&status=failed"),
            ("failures", "status=failures"),
            ("error", "q=SERVER+GONE"),
        ):
            page.goto(f"{base}{LIST}?{query}")
            found[label] = rows(page)
        page.goto(f"{base}{LIST}")
        page.select_option("select[name=function]", "flaky_report")
        page.select_option("select[name=status]", "failed")
        page.click("form.filters button[type=submit]")
        page.wait_for_url("**status=failed**")
        by_form = rows(page)
        page.goto(f"{base}{LIST}")
        everything = rows(page)

    for label, listed in {**found, "the form": by_form}.items():
        assert [(row["function"], row["status"]) for row in listed] == [
            ("flaky_report", "failed")
        ], label
        assert listed[0]["jobKey"] == failed["key"], label
    error_cell = found["error"][0]["cells"][-2]
    assert "ConnectionError: <script>alert('report')</script> server gone" in error_cell
    assert not alerts
    assert {row["function"] for row in everything} >= {"send_email", "flaky_report"}
    # The request's jobs stay grouped under it.
    assert {row["cells"][1] for row in everything} >= {"GET /signup", "GET /page"}


def test_a_job_another_job_enqueued_says_which_and_stays_in_the_requests_group(
    redis_url: str,
) -> None:
    queue = RedisQueue.from_url(redis_url, name=f"child-{uuid.uuid4().hex[:8]}")
    with TestClient(litestar_app(queue)) as client:
        client.get("/welcome")
        jobs = wait_for_jobs(
            client,
            {"queue": queue.name},
            lambda jobs: [job["status"] for job in jobs] == ["complete", "complete"],
        )
        by_job = client.get(API, params={"origin": "job"}).json()["traces"]

    welcome, email = jobs
    assert (welcome["function"], welcome["origin"]) == ("welcome", "request")
    assert welcome["started_by"] == "GET /welcome"
    assert (email["function"], email["origin"], email["started_by"]) == (
        "send_email",
        "job",
        "job `welcome`",
    )
    assert email["trace_id"] == welcome["trace_id"]  # grouped under the request
    listed = [job["function"] for trace in by_job for job in trace["listed_jobs"]]
    assert "send_email" in listed and "welcome" not in listed


@pytest.mark.parametrize(
    ("query", "message"),
    [
        ("status=finished", "status must be one of"),
        ("origin=%3Cscript%3E", "origin must be one of"),
        (f"q={'x' * 201}", "q is longer than 200 characters"),
        ("limit=0", "limit must be a whole number"),
        ("limit=99999999999999999999", "limit must be a whole number"),
        ("limit=%C2%B2", "limit must be a whole number"),  # "²": a digit int() refuses
    ],
)
def test_a_query_out_of_bounds_is_answered_400_on_the_page_and_the_api(
    redis_url: str, query: str, message: str
) -> None:
    queue = RedisQueue.from_url(redis_url, name=f"bad-{uuid.uuid4().hex[:8]}")
    with TestClient(litestar_app(queue, worker=False)) as client:
        page = client.get(f"{LIST}?{query}")
        api = client.get(f"{API}?{query}")

    assert page.status_code == api.status_code == 400
    assert page.headers["content-type"].startswith("text/html") and message in page.text
    assert "<script>" not in page.text
    assert api.headers["content-type"].startswith("application/json")
    assert message in api.json()["message"]
