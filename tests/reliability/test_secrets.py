"""Secrets in job arguments: never on exported spans unless asked, redacted when shown."""

from __future__ import annotations

import json
import typing as t
import uuid

import pytest
from litestar import Litestar, MediaType, get
from litestar.testing import TestClient
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from saq.queue.redis import RedisQueue

from opentelemetry.instrumentation.saq import SAQInstrumentor
from opentelemetry.instrumentation.saq.arguments import ArgumentPolicy
from opentelemetry.instrumentation.saq.debug_toolbar import SAQPanel
from tests.debug_toolbar.apps import in_app_worker
from tests.debug_toolbar.toolbar_api import request_id, wait_for_panel
from tests.workers import finished, running_worker

SECRET = "s3cr3t-VALUE"
ARGUMENTS = {
    "password": SECRET,
    "api_key": SECRET,
    "headers": {"Authorization": f"Bearer {SECRET}", "Cookie": SECRET},
    "refresh_token": SECRET,
    "client_secret": SECRET,
    "note": "hello",
    "body": "x" * 5000,
}


async def charge(ctx: dict[str, t.Any], **kwargs: t.Any) -> str:
    return "charged"


def everything_exported(exporter: InMemorySpanExporter) -> str:
    """Every attribute and event of every finished span, as text."""
    return json.dumps(
        [
            {
                "attributes": dict(span.attributes or {}),
                "events": [dict(event.attributes or {}) for event in span.events],
            }
            for span in exporter.get_finished_spans()
        ],
        default=str,
    )


async def test_arguments_never_go_on_spans_by_default(
    queue: RedisQueue, exporter: InMemorySpanExporter, instrument: SAQInstrumentor
) -> None:
    job = await queue.enqueue("charge", **ARGUMENTS)
    assert job is not None
    async with running_worker(queue, [charge]):
        await finished(job, 10)
    exported = everything_exported(exporter)
    assert job.result == "charged" and "send " in json.dumps(
        [s.name for s in exporter.get_finished_spans()]
    )
    assert SECRET not in exported
    assert "hello" not in exported  # no argument at all, secret or not
    assert "saq.job.kwargs" not in exported


async def test_the_opt_in_records_arguments_redacted_and_cut(
    queue: RedisQueue, exporter: InMemorySpanExporter, tracer_provider: TracerProvider
) -> None:
    instrumentor = SAQInstrumentor()
    instrumentor.instrument(tracer_provider=tracer_provider, record_arguments=True)
    try:
        await queue.enqueue("charge", **ARGUMENTS)
    finally:
        instrumentor.uninstrument()
    (send,) = exporter.get_finished_spans()
    recorded = json.loads(str((send.attributes or {})["saq.job.kwargs"]))
    assert SECRET not in everything_exported(exporter)
    assert recorded["password"] == recorded["api_key"] == "[redacted]"
    assert recorded["refresh_token"] == recorded["client_secret"] == "[redacted]"
    assert recorded["headers"] == {"Authorization": "[redacted]", "Cookie": "[redacted]"}
    assert recorded["note"] == "hello"
    assert len(recorded["body"]) == 200 and recorded["body"].endswith("…")


async def test_the_secret_words_are_configurable(
    queue: RedisQueue, exporter: InMemorySpanExporter, tracer_provider: TracerProvider
) -> None:
    instrumentor = SAQInstrumentor()
    policy = ArgumentPolicy(secret_words=("note",), max_length=10)
    instrumentor.instrument(tracer_provider=tracer_provider, argument_policy=policy)
    try:
        await queue.enqueue("charge", note="private", amount=12)
    finally:
        instrumentor.uninstrument()
    (send,) = exporter.get_finished_spans()
    assert json.loads(str((send.attributes or {})["saq.job.kwargs"])) == {
        "amount": 12,
        "note": "[redacted]",
    }


def secret_app(queue: RedisQueue, panel_class: str) -> Litestar:
    from debug_toolbar.litestar import DebugToolbarPlugin, LitestarDebugToolbarConfig

    from opentelemetry.instrumentation.saq.debug_toolbar.litestar import SAQTracePlugin

    @get("/pay", media_type=MediaType.HTML)
    async def pay() -> str:
        await queue.enqueue("charge", **ARGUMENTS)
        return "<html><body>paid</body></html>"

    startup, shutdown = in_app_worker(queue, functions=[charge])
    config = LitestarDebugToolbarConfig(extra_panels=[panel_class])
    return Litestar(
        [pay],
        plugins=[DebugToolbarPlugin(config), SAQTracePlugin()],
        on_startup=[startup],
        on_shutdown=[shutdown],
    )


class NoArgumentsPanel(SAQPanel):
    show_arguments = False


@pytest.mark.usefixtures("instrument")
@pytest.mark.parametrize(
    "panel_class",
    [
        "opentelemetry.instrumentation.saq.debug_toolbar.SAQPanel",
        f"{__name__}.NoArgumentsPanel",
    ],
    ids=["shown-redacted", "hidden"],
)
def test_a_secret_never_reaches_the_panel_or_the_pages(redis_url: str, panel_class: str) -> None:
    queue = RedisQueue.from_url(redis_url, name=f"secrets-{uuid.uuid4().hex[:8]}")
    with TestClient(secret_app(queue, panel_class)) as client:
        page_with_toolbar = client.get("/pay").text
        rid = request_id(client, "/pay")
        stats = wait_for_panel(client, rid, lambda s: s["jobs"][0]["status"] == "complete")
        surfaces = {
            "page": page_with_toolbar,
            "panel json": client.get(f"/_debug_toolbar/api/requests/{rid}").text,
            "toolbar page": client.get(f"/_debug_toolbar/{rid}").text,
            "trace page": client.get(stats["trace_page"]).text,
            "trace json": client.get(f"/_debug_toolbar/saq/api/traces/{stats['trace_id']}").text,
        }
    for surface, text in surfaces.items():
        assert SECRET not in text, surface
    (job,) = stats["jobs"]
    if panel_class.endswith("NoArgumentsPanel"):
        assert "arguments" not in job
    else:
        assert job["arguments"]["password"] == "[redacted]"
        assert job["arguments"]["note"] == "hello"
