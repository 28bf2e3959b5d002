"""The benchmark's floor emits the spans ours emits, so comparing their costs is fair.

benchmarks/floor.py hand-writes the least an instrumentation can do; if it drifted from
what ours records (fewer attributes, no parent), the benchmark would flatter the floor.
"""

from __future__ import annotations

import sys
import typing as t
from pathlib import Path

from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from saq.queue.redis import RedisQueue

from opentelemetry.instrumentation.saq import SAQInstrumentor
from tests.workers import running_worker, wait_for_spans

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
from floor import Floor

Ctx = dict[str, t.Any]


async def noop(ctx: Ctx, *, n: int) -> int:
    return n


Shape = tuple[str, str, frozenset[str], bool]


async def shapes(queue: RedisQueue, instrument: t.Callable[[TracerProvider], t.Any]) -> set[Shape]:
    """(name, kind, attribute keys, child of the send span) of one job's spans."""
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    uninstrument = instrument(provider)
    try:
        await queue.enqueue("noop", n=1)
        async with running_worker(queue, [noop]):
            await wait_for_spans(exporter, f"process {queue.name}", 1)
    finally:
        uninstrument()
    spans = exporter.get_finished_spans()
    send_ids = {s.context.span_id for s in spans if s.name.startswith("send")}
    return {
        (
            s.name.replace(queue.name, "{queue}"),
            s.kind.name,
            frozenset(s.attributes or {}),
            s.parent is not None and s.parent.span_id in send_ids,
        )
        for s in spans
    }


def ours(provider: TracerProvider) -> t.Callable[[], None]:
    instrumentor = SAQInstrumentor()
    instrumentor.instrument(tracer_provider=provider)
    return instrumentor.uninstrument


def floor(provider: TracerProvider) -> t.Callable[[], None]:
    instrumentation = Floor(provider)
    instrumentation.instrument()
    return instrumentation.uninstrument


async def test_the_floor_emits_the_same_spans_as_ours(queue: RedisQueue) -> None:
    expected = await shapes(queue, ours)
    assert {name for name, *_ in expected} == {"send {queue}", "process {queue}"}
    assert await shapes(queue, floor) == expected
