"""The span and log stores' bounds hold against what other processes post: measured by
``tracemalloc`` (bytes allocated and still held), not by the stores' own figures.

Hostile exports in the real OTLP wire format (protobuf), posted to the receivers of a real
Litestar app, into traces the app's own requests started: 1 MiB resources (128 values of
8 KiB), 8 KiB span names, scope names and versions, status messages of 8,192 four-byte
characters; log records with long bodies, stack traces and resources.
"""

from __future__ import annotations

import gc
import time
import tracemalloc
import typing as t
import uuid

import pytest
from litestar.testing import TestClient
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import KeyValue
from opentelemetry.proto.resource.v1.resource_pb2 import Resource
from opentelemetry.proto.trace.v1.trace_pb2 import Status
from opentelemetry.semconv.attributes.exception_attributes import EXCEPTION_STACKTRACE
from saq.queue.redis import RedisQueue

from opentelemetry.instrumentation.saq.debug_toolbar.panel import job_logs
from opentelemetry.instrumentation.saq.debug_toolbar.receivers.otlp_limits import (
    DEFAULT_VALUE_LENGTH,
)
from opentelemetry.instrumentation.saq.debug_toolbar.tracing import trace_store
from tests.debug_toolbar.apps import litestar_app
from tests.debug_toolbar.otlp_payloads import PROTOBUF, RECEIVER
from tests.debug_toolbar.test_receiver import API
from tests.debug_toolbar.toolbar_api import panel, request_id

pytestmark = pytest.mark.usefixtures("instrument")
LOGS = "/_debug_toolbar/saq/v1/logs"
MiB = 2**20
BOUND = 8 * MiB
"""The bound each test gives its store: small, so that the hostile exports pass it often."""
SLACK = 2 * MiB
"""What else the app may hold after the exports (the receiver's counts, Litestar's caches):
beyond the store's own figure, about 0.1 MiB."""
SAQ_SYSTEM = KeyValue(key="messaging.system", value={"string_value": "saq"})
WIDE = "\U0001d11e"  # four bytes a character in a Python string, as in UTF-8


def resource(sender: str, values: int) -> Resource:
    """A sender's resource of ``values`` attributes of 8 KiB each (the receiver's length)."""
    pairs = [KeyValue(key="service.name", value={"string_value": sender})]
    text = (sender * DEFAULT_VALUE_LENGTH)[:DEFAULT_VALUE_LENGTH]
    pairs += [
        KeyValue(key=f"host.detail.{index}", value={"string_value": text})
        for index in range(values)
    ]
    return Resource(attributes=pairs)


def hostile_spans(
    sender: str, traces: list[tuple[str, str]], spans: int, values: int = 127, saq: bool = False
) -> bytes:
    """One export of ``spans`` spans per trace, as ``sender`` would send it; SAQ's
    (``messaging.system`` "saq") if ``saq``."""
    request = ExportTraceServiceRequest()
    resource_spans = request.resource_spans.add(resource=resource(sender, values))
    scope_spans = resource_spans.scope_spans.add()
    scope_spans.scope.name = "n" * DEFAULT_VALUE_LENGTH
    scope_spans.scope.version = sender + "v" * DEFAULT_VALUE_LENGTH
    for trace_id, send_id in traces:
        for _ in range(spans):
            scope_spans.spans.add(
                trace_id=bytes.fromhex(trace_id),
                span_id=uuid.uuid4().bytes[:8],
                parent_span_id=bytes.fromhex(send_id),
                name="s" * DEFAULT_VALUE_LENGTH,
                kind=5,
                start_time_unix_nano=1,
                end_time_unix_nano=2,
                status=Status(code=2, message=WIDE * DEFAULT_VALUE_LENGTH),
                attributes=[SAQ_SYSTEM] if saq else [],
            )
    return request.SerializeToString()


def hostile_logs(sender: str, traces: list[tuple[str, str]], records: int) -> bytes:
    """One logs export of ``records`` records per held trace, with 16 KiB bodies, 32 KiB
    stack traces, 200-character scope names and a 160 KiB resource."""
    request = ExportLogsServiceRequest()
    resource_logs = request.resource_logs.add(resource=resource(sender, 20))
    scope_logs = resource_logs.scope_logs.add()
    scope_logs.scope.name = "l" * 10_000
    for trace_id, send_id in traces:
        for index in range(records):
            record = scope_logs.log_records.add(
                trace_id=bytes.fromhex(trace_id),
                span_id=bytes.fromhex(send_id),
                time_unix_nano=index + 1,
                severity_number=17,
            )
            record.body.string_value = WIDE * job_logs.MAX_MESSAGE_CHARS
            record.attributes.add(
                key=EXCEPTION_STACKTRACE, value={"string_value": WIDE * DEFAULT_VALUE_LENGTH}
            )
    return request.SerializeToString()


def held_bytes(post: t.Callable[[int], None], exports: int) -> int:
    """What the process holds, in bytes, after ``exports`` posts (tracemalloc). Measured
    until it is within the bound, for up to 5 s: a thread of the app's may still be
    letting go of the last body (that memory is not held; memory held stays)."""
    gc.collect()
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        for index in range(exports):
            post(index)
        deadline = time.monotonic() + 5
        while True:
            gc.collect()
            held = tracemalloc.get_traced_memory()[0] - before
            if held <= BOUND + SLACK or time.monotonic() > deadline:
                return held
            time.sleep(0.1)
    finally:
        tracemalloc.stop()


def trace(trace_id: str) -> list[t.Any]:
    return trace_store().get_trace(int(trace_id, 16))


def app_traces(client: t.Any, count: int) -> list[tuple[str, str]]:
    """``count`` requests of the app, each enqueueing two jobs: (trace id, a send span id)."""
    traces = []
    for index in range(count):
        client.get(f"/tagged/t{index}")
        stats = panel(client, request_id(client, f"/tagged/t{index}"))
        view = client.get(f"{API}/{stats['trace_id']}").json()
        send = next(row for row in view["rows"] if row["kind"] == "send")
        traces.append((stats["trace_id"], send["id"]))
    return traces


def test_spans_posted_into_held_traces_stay_within_the_stores_bound_in_bytes(
    redis_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = trace_store()
    store.clear()
    monkeypatch.setattr(store, "max_bytes", BOUND)
    queue = RedisQueue.from_url(redis_url, name=f"memory-{uuid.uuid4().hex[:8]}")
    answers: list[int] = []
    shared: list[tuple[int, int, int]] = []
    with TestClient(litestar_app(queue, worker=False)) as client:
        traces = app_traces(client, 4)

        def post(index: int) -> None:
            # The first ten exports come from one sender (one resource, one scope: a
            # worker exporting every few seconds), the next from a new sender each.
            sender = "a" if index < 10 else f"w{index}"
            body = hostile_spans(sender, traces, spans=2)
            answers.append(client.post(RECEIVER, content=body, headers=PROTOBUF).status_code)
            if index == 9:
                kept = [span for trace_id, _ in traces for span in trace(trace_id)]
                from_a = [span for span in kept if span.resource.attributes["service.name"] == "a"]
                resources = {id(span.resource) for span in from_a}
                shared.append(
                    (
                        len(from_a),
                        len(resources),
                        len({id(span.instrumentation_scope) for span in from_a}),
                    )
                )

        held = held_bytes(post, exports=24)

    print(f"held {held / MiB:.1f} MiB, the store says {store.estimated_bytes / MiB:.1f} MiB")
    assert answers == [200] * 24
    assert held <= BOUND + SLACK
    # The one sender's 80 spans point to one resource and one scope, not one per export.
    assert shared == [(80, 1, 1)]
    assert store.estimated_bytes <= BOUND


def test_saq_traces_the_app_did_not_start_stay_within_the_stores_bounds(
    redis_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A worker's cron ticks and a script's jobs start traces here: within the same bound
    in bytes and in traces as the app's own, the oldest going first."""
    store = trace_store()
    store.clear()
    monkeypatch.setattr(store, "max_bytes", BOUND)
    monkeypatch.setattr(store, "max_traces", 80)
    queue = RedisQueue.from_url(redis_url, name=f"memory-{uuid.uuid4().hex[:8]}")
    answers: list[int] = []
    posted: list[str] = []
    with TestClient(litestar_app(queue, worker=False)) as client:
        (own, _), *_ = app_traces(client, 1)

        def post(index: int) -> None:
            new = [(uuid.uuid4().hex, uuid.uuid4().hex[:16]) for _ in range(4)]
            posted.extend(trace_id for trace_id, _ in new)
            body = hostile_spans("a", new, spans=2, saq=True)
            answers.append(client.post(RECEIVER, content=body, headers=PROTOBUF).status_code)

        held = held_bytes(post, exports=24)

    print(f"held {held / MiB:.1f} MiB, the store says {store.estimated_bytes / MiB:.1f} MiB")
    assert answers == [200] * 24
    assert held <= BOUND + SLACK
    assert store.estimated_bytes <= BOUND and len(store) <= 80
    kept = [f"{trace_id:032x}" for trace_id in store.trace_ids()]
    assert len(kept) < len(posted)  # the bound in bytes bit before the one in traces
    assert kept == posted[-len(kept) :]  # the newest, in order: the oldest went first
    assert own not in kept


def test_the_store_holds_a_bounded_number_of_resources(redis_url: str) -> None:
    """Small resources, one per sender: the count bounds them, not the bytes."""
    store = trace_store()
    store.clear()
    dropped = store.dropped_spans
    queue = RedisQueue.from_url(redis_url, name=f"memory-{uuid.uuid4().hex[:8]}")
    with TestClient(litestar_app(queue, worker=False)) as client:
        traces = app_traces(client, 2)
        for index in range(store.max_resources + 20):
            body = hostile_spans(f"w{index}", traces[-1:], spans=1, values=1)
            client.post(RECEIVER, content=body, headers=PROTOBUF)
        kept = [span for trace_id in store.trace_ids() for span in store.get_trace(trace_id)]

    # The oldest trace went to make room; then the newest alone holds the most it may, so
    # spans of yet another sender are not kept.
    assert store.trace_ids() == [int(traces[-1][0], 16)]
    senders = [span for span in kept if str(span.resource.attributes["service.name"])[0] == "w"]
    assert len({id(span.resource) for span in senders}) == store.max_resources
    assert store.dropped_spans - dropped == 20


def test_log_records_posted_into_held_traces_stay_within_the_stores_bound_in_bytes(
    redis_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    logs = job_logs.log_store()
    logs.clear()
    monkeypatch.setattr(logs, "max_bytes", BOUND, raising=False)
    queue = RedisQueue.from_url(redis_url, name=f"memory-{uuid.uuid4().hex[:8]}")
    with TestClient(litestar_app(queue, worker=False)) as client:
        traces = app_traces(client, 4)

        def post(index: int) -> None:
            body = hostile_logs(f"w{index}", traces, records=15)
            assert client.post(LOGS, content=body, headers=PROTOBUF).status_code == 200

        held = held_bytes(post, exports=25)
        lines = [line for trace_id, _ in traces for line in logs.lines(int(trace_id, 16))]

    print(f"held {held / MiB:.1f} MiB for {len(lines)} lines")
    assert lines, "the records of the newest traces were kept"
    assert held <= BOUND + SLACK
