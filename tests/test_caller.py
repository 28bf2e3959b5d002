"""Where the user's code called SAQ: on send spans (record_caller) and in the panel."""

from __future__ import annotations

import asyncio
import typing as t
from collections.abc import Iterator

import pytest
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from saq.queue.redis import RedisQueue

from opentelemetry.instrumentation.saq import SAQInstrumentor
from tests.workers import running_worker

Ctx = dict[str, t.Any]


async def double(ctx: Ctx, *, n: int) -> int:
    return n * 2


@pytest.fixture
def recording_callers(tracer_provider: TracerProvider) -> Iterator[None]:
    instrumentor = SAQInstrumentor()
    instrumentor.instrument(tracer_provider=tracer_provider, record_caller=True)
    yield
    instrumentor.uninstrument()


def callers(exporter: InMemorySpanExporter) -> list[object]:
    return [(s.attributes or {}).get("code.function.name") for s in exporter.get_finished_spans()]


async def report_handler(queue: RedisQueue) -> list[t.Any]:
    return await queue.map("double", [{"n": 1}, {"n": 2}, {"n": 3}], timeout=10)


async def single_handler(queue: RedisQueue) -> t.Any:
    return await queue.apply("double", n=21, timeout=10)


@pytest.mark.usefixtures("recording_callers")
async def test_map_and_apply_jobs_point_at_the_code_that_called_them(
    queue: RedisQueue, exporter: InMemorySpanExporter
) -> None:
    async with running_worker(queue, [double]):
        assert await report_handler(queue) == [2, 4, 6]
        assert await single_handler(queue) == 42
    sends = [s for s in exporter.get_finished_spans() if s.name.startswith("send")]
    assert sorted(str((s.attributes or {})["code.function.name"]) for s in sends) == [
        "tests.test_caller.report_handler",
        "tests.test_caller.report_handler",
        "tests.test_caller.report_handler",
        "tests.test_caller.single_handler",
    ]
    assert {str((s.attributes or {})["code.file.path"]) for s in sends} == {__file__}


@pytest.mark.usefixtures("recording_callers")
async def test_an_enqueue_in_a_task_of_its_own_says_its_caller_is_unknown(
    queue: RedisQueue, exporter: InMemorySpanExporter
) -> None:
    # gather() wraps each enqueue in a task whose stack ends at the event loop: the
    # caller is not known, and whatever runs the loop (a server, pytest) is not it.
    await asyncio.gather(*(queue.enqueue("double", n=n) for n in range(3)))
    assert callers(exporter) == [None, None, None]
