"""Each attempt's own story in the app's process: the log lines a job wrote and the
traceback of a failed attempt, under the right attempt, in the panel and on the page."""

from __future__ import annotations

import logging
import typing as t
import uuid
from collections.abc import Iterator

import httpx
import pytest
from debug_toolbar.litestar import DebugToolbarPlugin, LitestarDebugToolbarConfig
from litestar import Litestar, get
from litestar.testing import TestClient
from opentelemetry.sdk.trace import TracerProvider
from saq.queue.redis import RedisQueue

from opentelemetry.instrumentation.saq.debug_toolbar.litestar import SAQTracePlugin
from opentelemetry.instrumentation.saq.debug_toolbar.panel import job_logs
from tests.browser import browser_page, serving
from tests.debug_toolbar.apps import PANEL, in_app_worker
from tests.debug_toolbar.story_jobs import HOSTILE, import_contacts, job_logger, write_invoice
from tests.debug_toolbar.test_trace_pages import wait_for_trace
from tests.debug_toolbar.toolbar_api import request_id, wait_for_panel

pytestmark = pytest.mark.usefixtures("instrument")


def contacts_app(queue: RedisQueue, *, worker: bool = True) -> Litestar:
    @get("/import")
    async def start_import() -> dict[str, bool]:
        await queue.enqueue("import_contacts", source="crm", retries=2)
        return {"ok": True}

    @get("/invoice")
    async def invoice() -> dict[str, bool]:
        await queue.enqueue("write_invoice", order=1001)
        return {"ok": True}

    if worker:
        startup, shutdown = in_app_worker(queue, [import_contacts, write_invoice])
    else:  # a worker in another process runs the job

        async def startup() -> None:
            await queue.connect()

        shutdown = queue.disconnect
    config = LitestarDebugToolbarConfig(extra_panels=[PANEL])
    return Litestar(
        [start_import, invoice],
        plugins=[DebugToolbarPlugin(config), SAQTracePlugin()],
        on_startup=[startup],
        on_shutdown=[shutdown],
    )


@pytest.fixture
def info_logs() -> Iterator[None]:
    """The user's logging configuration lets the job's INFO lines through."""
    job_logger.setLevel(logging.INFO)
    yield
    job_logger.setLevel(logging.NOTSET)


def new_queue(redis_url: str) -> RedisQueue:
    return RedisQueue.from_url(redis_url, name=f"logs-{uuid.uuid4().hex[:8]}")


def finished(stats: dict[str, t.Any]) -> bool:
    return [job["status"] for job in stats["jobs"]] == ["complete"]


def attempt_rows(view: dict[str, t.Any]) -> dict[int, dict[str, t.Any]]:
    return {row["attempt"]: row for row in view["rows"] if row["kind"] == "process"}


def assert_attempts_story(view: dict[str, t.Any]) -> None:
    """Each attempt's lines, its inner span's line and the failed attempt's traceback."""
    first, second = attempt_rows(view)[1], attempt_rows(view)[2]
    assert [(line["level"], line["message"]) for line in first["logs"]] == [
        ("INFO", "importing from crm, attempt 1"),
        ("WARNING", "row 3 has no <b>email</b>"),
        ("ERROR", "lookup failed"),
    ]
    assert [line["message"] for line in second["logs"]] == [
        "importing from crm, attempt 2",
        "row 3 has no <b>email</b>",
    ]
    # SAQ's own lines ("Error processing job" prints the job's arguments) are left out.
    assert {line["logger"] for line in first["logs"]} == {"tests.jobs.contacts"}
    assert first["logs"][1]["span"] == "parse rows"  # written in a span the job started
    assert "KeyError: 'contacts'" in first["logs"][2]["exception"]
    assert (first["log_count"], first["worst_level"]) == (3, "ERROR")
    # The failed attempt's exception, with its stack trace; the retried one has none.
    (event,) = first["events"]
    assert event["name"] == "exception"
    assert event["attributes"]["exception.type"] == "ConnectionError"
    assert "raise ConnectionError(HOSTILE)" in event["stacktrace"]
    assert "in import_contacts" in event["stacktrace"]
    assert second["events"] == []
    # The inner span's own row (one per attempt) lists its own line only.
    inner = [row for row in view["rows"] if row["name"] == "parse rows"]
    assert [[line["message"] for line in row["logs"]] for row in inner] == [
        ["row 3 has no <b>email</b>"]
    ] * 2


@pytest.mark.usefixtures("info_logs")
def test_a_jobs_log_lines_and_traceback_are_under_the_attempt_that_wrote_them(
    redis_url: str,
) -> None:
    with TestClient(contacts_app(new_queue(redis_url))) as client:
        client.get("/import")
        stats = wait_for_panel(client, request_id(client, "/import"), finished)
        view = wait_for_trace(client, stats["trace_id"], lambda v: len(attempt_rows(v)) == 2)

    (job,) = stats["jobs"]
    assert job["logs"] == [
        {"attempt": 1, "count": 3, "worst_level": "ERROR"},
        {"attempt": 2, "count": 2, "worst_level": "WARNING"},
    ]
    assert_attempts_story(view)


@pytest.mark.usefixtures("info_logs")
def test_a_sync_jobs_lines_are_under_its_attempt_too(redis_url: str) -> None:
    with TestClient(contacts_app(new_queue(redis_url))) as client:
        client.get("/invoice")
        stats = wait_for_panel(client, request_id(client, "/invoice"), finished)
        view = wait_for_trace(client, stats["trace_id"], lambda v: len(attempt_rows(v)) == 1)

    assert stats["jobs"][0]["logs"] == [{"attempt": 1, "count": 1, "worst_level": "WARNING"}]
    assert [line["message"] for line in attempt_rows(view)[1]["logs"]] == [
        "order 1001 has no billing address: invoice left blank"
    ]


@pytest.mark.slow
@pytest.mark.usefixtures("info_logs")
def test_a_click_on_an_attempt_opens_its_story_escaped(redis_url: str) -> None:
    queue = new_queue(redis_url)
    with serving(contacts_app(queue)) as base, httpx.Client(base_url=base) as client:
        client.get("/import")
        stats = wait_for_panel(client, request_id(client, "/import"), finished)
        wait_for_trace(client, stats["trace_id"], lambda v: len(attempt_rows(v)) == 2)
        with browser_page() as page:
            page.goto(f"{base}/_debug_toolbar/saq/{stats['trace_id']}")
            first = page.locator('li.row[data-kind="process"][data-attempt="1"]')
            hidden_before = first.locator(".detail").is_hidden()
            mark = first.locator(".logmark").inner_text()
            first.locator(".label").click()
            pane = first.locator(".detail")
            pane.wait_for(state="visible")
            stacktrace = pane.locator(".stacktrace").inner_text()
            logs = pane.locator(".log").all_inner_texts()
            text = pane.inner_text()
            injected = page.locator(".detail script, .detail b:text('email')").count()
            second_hidden = page.locator(
                'li.row[data-kind="process"][data-attempt="2"] .detail'
            ).is_hidden()
            # Open panes stay open when the page reloads itself.
            page.reload()
            still_open = page.locator(
                'li.row[data-kind="process"][data-attempt="1"] .detail'
            ).is_visible()

    assert hidden_before and second_hidden and still_open
    assert mark == "3 log lines · ERROR"
    assert "Traceback (most recent call last)" in stacktrace
    assert f"ConnectionError: {HOSTILE}" in stacktrace
    assert "importing from crm, attempt 1" in logs[0]
    assert "row 3 has no <b>email</b>" in logs[1] and "in parse rows" in logs[1]
    assert "lookup failed" in logs[2] and "KeyError: 'contacts'" in logs[2]
    assert "saq.job.status" in text  # the span's attributes
    assert injected == 0  # hostile text shown as text, never as markup


def test_records_without_a_current_span_are_not_kept_and_bad_ones_never_raise() -> None:
    store = job_logs.LogStore()
    logger = logging.getLogger("tests.jobs.handler")

    def record(message: str, *args: t.Any) -> logging.LogRecord:
        return logger.makeRecord(logger.name, logging.WARNING, __file__, 1, message, args, None)

    assert not job_logs.keep(record("no span here"), store)
    tracer = TracerProvider().get_tracer("tests")
    with tracer.start_as_current_span("job") as span:
        job_logs.keep(record("bad %d arguments", "not a number"), store)
        job_logs.keep(record("fine %s", "line"), store)
    trace_id = span.get_span_context().trace_id

    lines = store.lines(trace_id)
    assert [line.message for line in lines] == [
        "'bad %d arguments' % ('not a number',)",
        "fine line",
    ]
    assert len(store._traces) == 1  # the line with no span went nowhere


def test_the_log_store_is_bounded() -> None:
    store = job_logs.LogStore(max_traces=2, max_lines_per_trace=3)
    for trace_id in (1, 2, 3):
        for n in range(5):
            store.add(job_logs.LogLine(trace_id, 7, n, "INFO", 20, "x", f"line {n}"))
    assert store.lines(1) == []
    assert [line.message for line in store.lines(3)] == ["line 0", "line 1", "line 2"]
    assert store.dropped_lines == 6  # two lines over in each trace
    assert store.lines(3)[0].as_dict()["span_id"] == "0000000000000007"


def test_the_log_store_is_bounded_by_the_bytes_it_holds_too() -> None:
    # A line of 2,000 characters holds about 2.8 KB with its trace: four fit in 12,000.
    store = job_logs.LogStore(max_bytes=12_000)
    for trace_id in range(1, 11):
        store.add(job_logs.LogLine(trace_id, 7, 0, "INFO", 20, "x", "y" * 2_000))
    kept = [trace_id for trace_id in range(1, 11) if store.lines(trace_id)]
    assert kept == [7, 8, 9, 10]  # the oldest went first
    assert not store.add(job_logs.LogLine(11, 7, 0, "INFO", 20, "x", "y" * 20_000))
    assert [trace_id for trace_id in range(1, 12) if store.lines(trace_id)] == [7, 8, 9, 10]
