"""TraceStore: finished spans by trace id, bounded, thread-safe."""

from __future__ import annotations

import threading

import pytest
from opentelemetry import trace
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider

from opentelemetry.instrumentation.saq._memory import TRACE_BYTES, part_bytes
from opentelemetry.instrumentation.saq.trace_store import TraceStore, estimated_bytes


def provider_with(store: TraceStore) -> TracerProvider:
    provider = TracerProvider()
    provider.add_span_processor(store)
    return provider


def test_spans_are_found_by_their_trace_id() -> None:
    store = TraceStore()
    tracer = provider_with(store).get_tracer("t")
    with tracer.start_as_current_span("request") as request, tracer.start_as_current_span("send"):
        pass
    with tracer.start_as_current_span("other"):
        pass

    trace_id = request.get_span_context().trace_id
    assert [span.name for span in store.get_trace(trace_id)] == ["send", "request"]
    assert trace_id in store and len(store) == 2
    assert store.get_trace(12345) == []


def test_the_oldest_trace_is_evicted_first_and_counted() -> None:
    store = TraceStore(max_traces=2)
    tracer = provider_with(store).get_tracer("t")
    ids = []
    for name in ("a", "b", "c"):
        with tracer.start_as_current_span(name) as span:
            ids.append(span.get_span_context().trace_id)

    assert store.trace_ids() == ids[1:]
    assert (store.evicted_traces, store.evicted_spans) == (1, 1)


def test_a_late_span_keeps_its_trace_alive() -> None:
    store = TraceStore(max_traces=2)
    tracer = provider_with(store).get_tracer("t")
    with tracer.start_as_current_span("request") as request:
        pass
    with tracer.start_as_current_span("b") as b:
        pass
    # A job of the first request finishes later: that trace becomes the freshest...
    request_context = trace.set_span_in_context(trace.NonRecordingSpan(request.get_span_context()))
    tracer.start_span("process", context=request_context).end()
    with tracer.start_as_current_span("c"):
        pass

    # ...so the next new trace evicts "b", not the request.
    assert request.get_span_context().trace_id in store
    assert b.get_span_context().trace_id not in store
    assert [s.name for s in store.get_trace(request.get_span_context().trace_id)] == [
        "request",
        "process",
    ]


def test_spans_beyond_the_per_trace_bound_are_dropped_and_counted() -> None:
    store = TraceStore(max_spans_per_trace=3)
    tracer = provider_with(store).get_tracer("t")
    with tracer.start_as_current_span("root") as root:
        for _ in range(5):
            tracer.start_span("child").end()

    assert len(store.get_trace(root.get_span_context().trace_id)) == 3
    assert store.dropped_spans == 3  # two children and the root did not fit


def test_concurrent_span_ends_from_threads_lose_nothing() -> None:
    store = TraceStore(max_traces=100_000, max_spans_per_trace=100_000)
    tracer = provider_with(store).get_tracer("t")

    def end_spans() -> None:
        for _ in range(500):
            tracer.start_span("s").end()

    threads = [threading.Thread(target=end_spans) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sum(len(store.get_trace(t)) for t in store.trace_ids()) == 4000


def test_bounds_must_be_positive() -> None:
    with pytest.raises(ValueError, match="at least 1"):
        TraceStore(max_traces=0)


def test_shutdown_clears_the_store() -> None:
    store = TraceStore()
    provider = provider_with(store)
    provider.get_tracer("t").start_span("s").end()
    assert store.force_flush() is True
    provider.shutdown()
    assert len(store) == 0


def test_received_spans_join_known_traces_once_within_the_bounds() -> None:
    store = TraceStore(max_spans_per_trace=3)
    local = provider_with(store).get_tracer("local")
    with local.start_as_current_span("request") as request:
        pass
    trace_id = request.get_span_context().trace_id
    elsewhere = TraceStore()
    remote = provider_with(elsewhere).get_tracer("remote")
    parent = trace.set_span_in_context(request)
    for name in ("a", "b", "c"):
        with remote.start_as_current_span(name, context=parent):
            pass
    with remote.start_as_current_span("unrelated") as unrelated:
        pass
    received = [*elsewhere.get_trace(trace_id), *elsewhere.get_trace(unrelated.context.trace_id)]

    assert store.add_received(received) == 2  # unrelated trace left out, "c" over the bound
    assert store.add_received(received) == 0  # repeats are kept once
    assert [span.name for span in store.get_trace(trace_id)] == ["request", "a", "b"]
    assert unrelated.get_span_context().trace_id not in store
    assert store.dropped_spans == 2  # "c", each time it came


def test_the_memory_bound_evicts_the_oldest_traces_and_counts_them(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Ten traces of one 100 KB span each in a store of about 512 KiB: the newest stay."""
    store = TraceStore(max_bytes=512 * 1024)
    tracer = provider_with(store).get_tracer("t")
    ids = []
    for index in range(10):
        with tracer.start_as_current_span(f"job {index}", attributes={"body": "x" * 100_000}) as s:
            ids.append(s.get_span_context().trace_id)

    assert store.trace_ids() == ids[-5:]  # 5 x ~103 KB fit in 512 KiB, a sixth does not
    assert (store.evicted_traces, store.evicted_spans) == (5, 5)
    assert 500_000 < store.estimated_bytes <= store.max_bytes
    stats = store.stats()
    assert (stats["traces"], stats["evicted_traces"], stats["max_bytes"]) == (5, 5, 512 * 1024)
    full = [r for r in caplog.records if "TraceStore is full" in r.getMessage()]
    assert len(full) == 1  # logged once, not per eviction


def test_a_span_larger_than_the_whole_bound_is_dropped_not_kept() -> None:
    store = TraceStore(max_bytes=64 * 1024)
    tracer = provider_with(store).get_tracer("t")
    with tracer.start_as_current_span("small") as small:
        pass
    with tracer.start_as_current_span("huge", attributes={"body": "x" * 100_000}) as huge:
        pass

    assert huge.get_span_context().trace_id not in store
    assert small.get_span_context().trace_id in store
    assert (store.dropped_spans, store.evicted_traces) == (1, 0)


def test_the_estimate_counts_long_text_in_attributes_events_and_links() -> None:
    store = TraceStore()
    tracer = provider_with(store).get_tracer("t")
    with tracer.start_as_current_span("plain") as plain:
        pass
    with tracer.start_as_current_span(
        "long", links=[trace.Link(plain.get_span_context(), {"l": "z" * 3000})]
    ) as long:
        long.set_attribute("tags", ("a" * 1000, "b" * 1000))
        long.add_event("exception", {"exception.stacktrace": "y" * 5000})

    [plain_span] = store.get_trace(plain.get_span_context().trace_id)
    [long_span] = store.get_trace(long.get_span_context().trace_id)
    assert estimated_bytes(long_span) - estimated_bytes(plain_span) > 10_000
    # Two traces, two spans; their resource and scope are the provider's and the tracer's.
    spans = estimated_bytes(plain_span) + estimated_bytes(long_span)
    assert store.estimated_bytes == 2 * TRACE_BYTES + spans
    store.clear()
    assert store.estimated_bytes == 0


def test_received_spans_count_towards_the_memory_bound() -> None:
    """~123 KB kept, then ~153 KB received for a newer trace: over 256 KiB, so the old goes."""
    store = TraceStore(max_bytes=256 * 1024)
    local = provider_with(store).get_tracer("local")
    with local.start_as_current_span("old request", attributes={"in": "x" * 120_000}) as old:
        pass
    with local.start_as_current_span("request") as request:
        pass
    elsewhere = TraceStore()
    remote = provider_with(elsewhere).get_tracer("remote")
    with remote.start_as_current_span(
        "process", context=trace.set_span_in_context(request), attributes={"out": "x" * 150_000}
    ):
        pass

    assert store.add_received(elsewhere.get_trace(request.get_span_context().trace_id)) == 1
    assert old.get_span_context().trace_id not in store
    assert store.evicted_traces == 1


def recounted(store: TraceStore, own: TracerProvider) -> int:
    """The store's bytes counted from scratch: each trace and span, and once each resource
    and scope the received spans point to (not those of ``own``, this process's)."""
    spans = [span for trace_id in store.trace_ids() for span in store.get_trace(trace_id)]
    received = [span for span in spans if span.resource is not own.resource]
    parts = {id(p): p for span in received for p in (span.resource, span.instrumentation_scope)}
    return (
        len(store) * TRACE_BYTES
        + sum(map(estimated_bytes, spans))
        + sum(map(part_bytes, parts.values()))
    )


def test_resources_many_spans_share_are_counted_once_and_freed_with_their_last_trace() -> None:
    """Senders whose 20 KB resources come back equal, export after export, into traces
    evicted one by one for the resource count: the store's figure is always the recount's."""
    store = TraceStore(max_traces=3, max_resources=4)
    own = provider_with(store)
    local = own.get_tracer("local")
    roots = []
    for index in range(6):
        with local.start_as_current_span(f"request {index}") as root:
            roots.append(root)
        for export in range(5):
            sender = f"worker {(index + export) % 5}"
            provider = TracerProvider(
                resource=Resource({"service.name": sender, "x": "y" * 20_000})
            )
            elsewhere = TraceStore()
            provider.add_span_processor(elsewhere)
            with provider.get_tracer(sender).start_as_current_span(
                "process", context=trace.set_span_in_context(root)
            ):
                pass
            received = elsewhere.get_trace(root.get_span_context().trace_id)
            shared = [
                ReadableSpan(
                    span.name,
                    span.context,
                    span.parent,
                    store.shared(span.resource),
                    span.attributes,
                    instrumentation_scope=store.shared(span.instrumentation_scope),
                )
                for span in received
            ]
            store.add_received(shared)
            assert store.estimated_bytes == recounted(store, own)
            assert store.stats()["resources"] <= store.max_resources

    # Older traces went for the resource count, with the trace count still free; and a
    # trace that alone points to four senders' resources took no fifth.
    assert (len(store), store.evicted_traces, store.dropped_spans) == (1, 5, 6)
    kept = [span for trace_id in store.trace_ids() for span in store.get_trace(trace_id)]
    by_sender: dict[object, set[int]] = {}
    for span in kept:
        by_sender.setdefault(span.resource.attributes["service.name"], set()).add(id(span.resource))
    assert all(len(ids) == 1 for ids in by_sender.values())  # one object per sender
    store.clear()
    assert store.estimated_bytes == 0 and store.stats()["resources"] == 0
