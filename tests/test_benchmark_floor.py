"""The benchmark's floor emits the spans and carrier ours emits, so comparing costs is fair.

benchmarks/floor.py hand-writes the least an instrumentation can do; if it drifted from
what ours records (fewer attributes, no parent, no link, no carrier when unsampled), the
benchmark would flatter the floor.
"""

from __future__ import annotations

import sys
import typing as t
from pathlib import Path

from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.sdk.trace.sampling import ALWAYS_OFF, ParentBased
from opentelemetry.semconv._incubating.attributes.messaging_attributes import (
    MESSAGING_DESTINATION_NAME,
    MESSAGING_OPERATION_NAME,
    MESSAGING_OPERATION_TYPE,
    MESSAGING_SYSTEM,
)
from opentelemetry.semconv.attributes.server_attributes import SERVER_ADDRESS, SERVER_PORT
from saq.queue.redis import RedisQueue

from opentelemetry.instrumentation.saq import META_KEY, SAQInstrumentor
from opentelemetry.instrumentation.saq._attributes import SAQ_JOB_STATUS
from tests.workers import running_worker, wait_for_spans

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
from floor import Floor

Ctx = dict[str, t.Any]
Instrument = t.Callable[[TracerProvider], t.Callable[[], None]]

# Attributes whose values are the same for both, whatever the job and worker.
SAME_VALUES = (
    MESSAGING_SYSTEM,
    MESSAGING_OPERATION_TYPE,
    MESSAGING_OPERATION_NAME,
    MESSAGING_DESTINATION_NAME,
    SERVER_ADDRESS,
    SERVER_PORT,
    SAQ_JOB_STATUS,
)


async def noop(ctx: Ctx, *, n: int) -> int:
    return n


Shape = tuple[str, str, frozenset[str], frozenset[tuple[str, t.Any]], bool, bool, bool]


async def shapes(queue: RedisQueue, instrument: Instrument) -> set[Shape]:
    """What one job's spans are: name, kind, attribute keys, the values that do not vary,
    whether messaging.client.id is the worker id, child of and linked to the send span."""
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
    shapes = set()
    for span in spans:
        attributes = dict(span.attributes or {})
        shapes.add(
            (
                span.name.replace(queue.name, "{queue}"),
                span.kind.name,
                frozenset(attributes),
                frozenset((key, attributes.get(key)) for key in SAME_VALUES),
                span.parent is not None and span.parent.span_id in send_ids,
                any(link.context.span_id in send_ids for link in span.links),
            )
        )
    return shapes


async def unsampled_carrier(queue: RedisQueue, instrument: Instrument) -> tuple[set[str], bool]:
    """The carrier an enqueue writes when the sampler says no: its keys, and whether its
    trace flags say sampled (the worker follows the parent's decision)."""
    provider = TracerProvider(sampler=ParentBased(ALWAYS_OFF))
    uninstrument = instrument(provider)
    try:
        job = await queue.enqueue("noop", n=1)
    finally:
        uninstrument()
    assert job is not None
    stored = await queue.job(job.key)
    assert stored is not None
    carrier = stored.meta[META_KEY]
    flags = int(carrier["traceparent"].rsplit("-", 1)[-1], 16)
    return set(carrier), bool(flags & 0x01)


def ours(provider: TracerProvider) -> t.Callable[[], None]:
    instrumentor = SAQInstrumentor()
    instrumentor.instrument(tracer_provider=provider)
    return t.cast(t.Callable[[], None], instrumentor.uninstrument)


def floor(provider: TracerProvider) -> t.Callable[[], None]:
    instrumentation = Floor(provider)
    instrumentation.instrument()
    return instrumentation.uninstrument


async def test_the_floor_emits_the_same_spans_as_ours(queue: RedisQueue) -> None:
    expected = await shapes(queue, ours)
    assert {name for name, *_ in expected} == {"send {queue}", "process {queue}"}
    assert await shapes(queue, floor) == expected


async def test_the_floor_carries_the_same_unsampled_context_as_ours(queue: RedisQueue) -> None:
    expected = await unsampled_carrier(queue, ours)
    assert expected == ({"traceparent"}, False)
    assert await unsampled_carrier(queue, floor) == expected
