"""Memory: 100,000 spans through the TraceStore stay within its bounds."""

from __future__ import annotations

import gc

from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider

from opentelemetry.instrumentation.saq.trace_store import TraceStore

SPANS, PER_TRACE = 100_000, 10


def rss_bytes() -> int:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    raise RuntimeError("no VmRSS")


def test_a_hundred_thousand_spans_stay_within_the_stores_bounds() -> None:
    store = TraceStore(max_traces=200, max_spans_per_trace=PER_TRACE)
    tracer = TracerProvider()
    tracer.add_span_processor(store)
    spans = tracer.get_tracer("memory")
    gc.collect()
    before = rss_bytes()
    for _ in range(SPANS // PER_TRACE):
        with spans.start_as_current_span("request", attributes={"payload": "x" * 200}) as root:
            context = trace.set_span_in_context(root)
            for _ in range(PER_TRACE - 1):
                spans.start_span("child", context=context, attributes={"payload": "y" * 200}).end()
    gc.collect()
    grown = rss_bytes() - before

    kept = sum(len(store.get_trace(trace_id)) for trace_id in store.trace_ids())
    assert len(store) == 200
    assert kept == 200 * PER_TRACE
    assert store.evicted_traces == SPANS // PER_TRACE - 200
    assert store.evicted_spans + kept == SPANS
    # 2,000 spans kept of 100,000: the store's share of memory is bounded. Keeping them
    # all costs about 285 MiB here (see docs/reliability.md).
    print(f"RSS grew by {grown / 2**20:.1f} MiB for {SPANS} spans, {kept} kept")
    assert grown < 48 * 2**20
