"""The Background Tasks panel in real Litestar and FastAPI apps, with a real Redis."""

from __future__ import annotations

import concurrent.futures
import typing as t
import uuid

import pytest
from litestar.testing import TestClient as LitestarClient
from saq.queue.redis import RedisQueue
from starlette.testclient import TestClient as StarletteClient

from opentelemetry.instrumentation.saq import SAQInstrumentor
from tests.debug_toolbar.apps import fastapi_app, litestar_app
from tests.debug_toolbar.toolbar_api import panel, request_id, statuses, wait_for_panel

pytestmark = pytest.mark.usefixtures("instrument")

SIGNUP_FINAL = [("send_email", "complete"), ("flaky_report", "failed"), ("send_email", "queued")]


def new_queue(redis_url: str) -> RedisQueue:
    return RedisQueue.from_url(redis_url, name=f"panel-{uuid.uuid4().hex[:8]}")


def settled(stats: dict[str, t.Any]) -> bool:
    return statuses(stats) == SIGNUP_FINAL


def assert_signup_panel(stats: dict[str, t.Any], queue: RedisQueue) -> None:
    assert stats["summary"] == "3 jobs · 1 complete · 1 failed · 1 queued"
    email, report, later = stats["jobs"]
    assert email["queue"] == later["queue"] == report["queue"] == queue.name
    assert (
        email["attempts"] == 1
        and isinstance(email["run_ms"], int)
        and isinstance(email["queue_ms"], int)
    )
    assert email["badge"].startswith("✓ send_email · complete · waited ")
    assert email["badge"].endswith(" · 1 attempt")
    assert report["attempts"] == 2
    assert report["error"] == "ConnectionError: <script>alert('report')</script> server gone"
    assert report["badge"].startswith("✗ flaky_report · failed")
    assert later["attempts"] == 0 and later["run_ms"] is None and later["error"] is None
    # Arguments are shown, secrets redacted; the caller is the app's handler.
    assert email["arguments"] == {"to": "ada@example.com", "api_token": "[redacted]"}
    assert email["enqueued_at"].startswith("tests/debug_toolbar/apps.py:")
    assert email["enqueued_at"].endswith(" in tests.debug_toolbar.apps.enqueue_signup")
    trace_ids = {job["trace_id"] for job in stats["jobs"]}
    assert trace_ids == {stats["trace_id"]}


def test_litestar_request_shows_its_jobs_with_their_final_statuses(redis_url: str) -> None:
    queue = new_queue(redis_url)
    with LitestarClient(litestar_app(queue)) as client:
        assert client.get("/signup").json() == {"ok": True}
        rid = request_id(client, "/signup")
        stats = wait_for_panel(client, rid, settled)
    assert_signup_panel(stats, queue)


def test_fastapi_request_shows_its_jobs_with_their_final_statuses(redis_url: str) -> None:
    queue = new_queue(redis_url)
    with StarletteClient(fastapi_app(queue)) as client:
        assert client.get("/signup").json() == {"ok": True}
        rid = request_id(client, "/signup")
        stats = wait_for_panel(client, rid, settled)
    assert_signup_panel(stats, queue)


def test_a_job_that_finishes_after_the_response_shows_its_final_status_later(
    redis_url: str,
) -> None:
    queue = new_queue(redis_url)
    with LitestarClient(litestar_app(queue)) as client:
        client.get("/slow", params={"seconds": 0.5})
        rid = request_id(client, "/slow")
        at_response = panel(client, rid)
        later = wait_for_panel(client, rid, lambda s: statuses(s) == [("slow", "complete")])
    assert statuses(at_response)[0][1] in ("queued", "active")
    assert later["summary"] == "1 job · 1 complete"


def test_concurrent_requests_never_see_each_others_jobs(redis_url: str) -> None:
    queue = new_queue(redis_url)
    with LitestarClient(litestar_app(queue)) as client:
        with concurrent.futures.ThreadPoolExecutor(2) as pool:
            list(pool.map(lambda tag: client.get(f"/tagged/{tag}"), ["alice", "bob"]))
        panels = {
            tag: panel(client, request_id(client, f"/tagged/{tag}")) for tag in ("alice", "bob")
        }

    for tag, stats in panels.items():
        recipients = [job["arguments"]["to"] for job in stats["jobs"]]
        assert recipients == [f"{tag}@example.com", f"{tag}-2@example.com"]
    assert panels["alice"]["trace_id"] != panels["bob"]["trace_id"]


def test_the_request_span_groups_jobs_when_no_tracing_middleware_runs(
    redis_url: str, exporter: t.Any
) -> None:
    queue = new_queue(redis_url)
    with LitestarClient(litestar_app(queue, worker=False)) as client:
        client.get("/tagged/carol")
        stats = panel(client, request_id(client, "/tagged/carol"))

    spans = exporter.get_finished_spans()
    (request,) = [s for s in spans if s.name == "GET /tagged/carol"]
    sends = [s for s in spans if s.name == f"send {queue.name}"]
    assert len(sends) == 2
    assert all(s.parent is not None and s.parent.span_id == request.context.span_id for s in sends)
    assert stats["trace_id"] == f"{request.context.trace_id:032x}"
    # The panel always records where the job was enqueued, as code.* attributes.
    assert all((s.attributes or {})["code.function.name"].endswith("tagged") for s in sends)
    assert all("saq.job.kwargs" not in (s.attributes or {}) for s in sends)


def test_a_disabled_toolbar_adds_no_work_to_requests_or_enqueues(
    redis_url: str, exporter: t.Any
) -> None:
    queue = new_queue(redis_url)
    with LitestarClient(litestar_app(queue, worker=False, enabled=False)) as client:
        client.get("/tagged/dave")
        assert client.get("/_debug_toolbar/api/requests").status_code == 404

    sends = [s for s in exporter.get_finished_spans() if s.name == f"send {queue.name}"]
    assert len(sends) == 2
    # No listener ran: no caller lookup, and no request span of the panel's.
    assert all("code.function.name" not in (s.attributes or {}) for s in sends)
    assert all(s.parent is None for s in sends)


def test_the_panel_notes_when_saq_is_not_instrumented(
    redis_url: str, instrument: SAQInstrumentor
) -> None:
    instrument.uninstrument()
    queue = new_queue(redis_url)
    try:
        with LitestarClient(litestar_app(queue, worker=False)) as client:
            client.get("/tagged/erin")
            stats = panel(client, request_id(client, "/tagged/erin"))
    finally:
        instrument.instrument()
    assert stats["jobs"] == []
    assert any("not instrumented" in note for note in stats["notes"])
