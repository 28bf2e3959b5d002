from __future__ import annotations

import inspect
import os
import typing as t
import uuid
from collections.abc import AsyncIterator, Iterator

import pytest
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from saq.queue.postgres import PostgresQueue
from saq.queue.redis import RedisQueue

from opentelemetry.instrumentation.saq import SAQInstrumentor
from tests.servers import RedisServer, postgres_server

# The toolbar's stores keep to memory in tests unless a test gives them a folder: tests share
# a working directory, and one test's traces must not show on another's pages.
os.environ.setdefault("OTEL_PYTHON_SAQ_TOOLBAR_STORE", "memory")


@pytest.fixture(autouse=True)
def uninstrumented_saq() -> Iterator[None]:
    """Every test starts and ends with SAQ uninstrumented.

    The instrumentor is a process-wide singleton: an app under test that instruments SAQ
    for itself (the demo does) would otherwise turn the next test's instrument() into a
    no-op, and that test's spans would go to another test's provider.
    """
    instrumentor = SAQInstrumentor()
    if instrumentor.is_instrumented_by_opentelemetry:
        instrumentor.uninstrument()
    yield
    if instrumentor.is_instrumented_by_opentelemetry:
        instrumentor.uninstrument()


@pytest.fixture(scope="session")
def redis_server() -> Iterator[RedisServer]:
    server = RedisServer()
    server.start()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def redis_url(redis_server: RedisServer) -> str:
    return redis_server.url


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    with postgres_server() as url:
        yield url


@pytest.fixture
def exporter() -> InMemorySpanExporter:
    return InMemorySpanExporter()


@pytest.fixture
def tracer_provider(exporter: InMemorySpanExporter) -> TracerProvider:
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    return provider


@pytest.fixture
def instrument(tracer_provider: TracerProvider) -> Iterator[SAQInstrumentor]:
    instrumentor = SAQInstrumentor()
    instrumentor.instrument(tracer_provider=tracer_provider)
    yield instrumentor
    instrumentor.uninstrument()


@pytest.fixture
async def queue(redis_url: str) -> AsyncIterator[RedisQueue]:
    # A queue name per test keeps tests apart on the one shared server.
    q = RedisQueue.from_url(redis_url, name=f"test-{uuid.uuid4().hex[:8]}")
    await q.connect()
    yield q
    await q.disconnect()


@pytest.fixture
async def pg_queue(postgres_url: str) -> AsyncIterator[PostgresQueue]:
    options: dict[str, t.Any] = {"min_size": 2, "max_size": 8}
    if "poll_interval" in inspect.signature(PostgresQueue).parameters:  # older SAQ polls here
        options["poll_interval"] = 1
    queue = PostgresQueue.from_url(postgres_url, name=f"pg-{uuid.uuid4().hex[:8]}", **options)
    await queue.connect()
    yield queue
    await queue.disconnect()
