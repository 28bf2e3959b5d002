"""SAQ's HTTP queue: an HttpQueue client, a real aiohttp server running SAQ's HttpProxy in
front of Redis, and a worker on the Redis queue. The client's trace reaches the worker."""

from __future__ import annotations

import typing as t
from collections.abc import AsyncIterator

import pytest
from aiohttp import web
from opentelemetry import baggage, context
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind
from saq.queue.http import HttpProxy, HttpQueue
from saq.queue.redis import RedisQueue

from opentelemetry.instrumentation.saq import SAQInstrumentor
from tests.servers import free_port
from tests.test_metrics import points
from tests.workers import running_worker, wait_for_spans

Ctx = dict[str, t.Any]


@pytest.fixture
def reader() -> InMemoryMetricReader:
    return InMemoryMetricReader()


@pytest.fixture(autouse=True)
def instrument(
    tracer_provider: TracerProvider, reader: InMemoryMetricReader
) -> t.Iterator[SAQInstrumentor]:
    instrumentor = SAQInstrumentor()
    instrumentor.instrument(
        tracer_provider=tracer_provider, meter_provider=MeterProvider(metric_readers=[reader])
    )
    yield instrumentor
    instrumentor.uninstrument()


async def read_baggage(ctx: Ctx) -> str | None:
    value = baggage.get_baggage("tenant")
    return str(value) if value is not None else None


@pytest.fixture
async def client(queue: RedisQueue) -> AsyncIterator[HttpQueue]:
    """An HttpQueue talking to a real HTTP server that proxies to ``queue``."""
    proxy = HttpProxy(queue)

    async def handle(request: web.Request) -> web.Response:
        return web.Response(text=await proxy.process(await request.text()) or "")

    app = web.Application()
    app.router.add_post("/queue", handle)
    runner = web.AppRunner(app)
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    http_queue = HttpQueue(f"http://127.0.0.1:{port}/queue", name=queue.name)
    await http_queue.connect()
    try:
        yield http_queue
    finally:
        await http_queue.disconnect()
        await runner.cleanup()


async def test_a_job_sent_through_the_proxy_joins_the_clients_trace(
    queue: RedisQueue,
    client: HttpQueue,
    exporter: InMemorySpanExporter,
    tracer_provider: TracerProvider,
    reader: InMemoryMetricReader,
) -> None:
    request_tracer = tracer_provider.get_tracer("app")
    token = context.attach(baggage.set_baggage("tenant", "acme"))
    try:
        with request_tracer.start_as_current_span("POST /signup") as request:
            job = await client.enqueue("read_baggage")
    finally:
        context.detach(token)
    assert job is not None

    async with running_worker(queue, [read_baggage]):
        (process,) = await wait_for_spans(exporter, f"process {queue.name}", 1)
        stored = await queue.job(job.key)
    assert stored is not None and stored.result == "acme"  # baggage crossed the proxy too

    trace_id = request.get_span_context().trace_id
    sends = [s for s in exporter.get_finished_spans() if s.kind is SpanKind.PRODUCER]
    by_id = {s.context.span_id: s for s in sends}
    # The client's send span (under the request) and the proxy's (under the client's).
    (on_client,) = [s for s in sends if s.parent and s.parent.span_id == request.context.span_id]
    (on_proxy,) = [s for s in sends if s.parent and s.parent.span_id in by_id]
    assert by_id[on_proxy.parent.span_id] is on_client  # type: ignore[union-attr]
    assert {s.context.trace_id for s in (*sends, process)} == {trace_id}
    # An intermediary does not change the job's creation context: the attempt stays the
    # child of the client's send span.
    assert process.parent is not None and process.parent.span_id == on_client.context.span_id
    # Client and proxy in one process: the message was sent once, not twice.
    (sent,) = points(reader)["messaging.client.sent.messages"]
    assert sent.value == 1
