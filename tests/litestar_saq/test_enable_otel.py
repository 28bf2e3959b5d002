"""The advice of docs/guides/litestar-saq.md for litestar-saq's own ``enable_otel``, checked.

With both on, every attempt gets two CONSUMER spans: ours (``process {queue}``) and
litestar-saq's (``{queue} process``, a child of ours); the sends are ours alone, since
litestar-saq 0.8 does not trace enqueues. The trace stays whole, and ``instrument()`` says
so in a warning, whichever comes first, ``instrument()`` or the app.
"""

from __future__ import annotations

import json
import logging
import subprocess
import sys
import uuid
from pathlib import Path

import pytest
from opentelemetry.sdk.trace import TracerProvider

from litestar_saq import instrumentation as litestar_saq_tracing
from opentelemetry.instrumentation.saq import SAQInstrumentor
from opentelemetry.instrumentation.saq._litestar_saq import DOUBLE_SPANS_WARNING
from tests.litestar_saq.app import make_app
from tests.litestar_saq.traces import Span, assert_one_trace_per_request

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize("order", ["instrument-first", "app-first"])
def test_with_litestar_saqs_enable_otel_each_attempt_gets_a_second_span_and_a_warning(
    redis_url: str, order: str
) -> None:
    queue = f"lsaq-otel-{uuid.uuid4().hex[:8]}"
    result = subprocess.run(
        [sys.executable, "-m", "tests.litestar_saq.double_spans", redis_url, queue, order],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    report = json.loads(result.stdout.strip().splitlines()[-1])
    # Said once, before any job ran: when the app was built or when instrument() was called.
    assert report["before_request"] == report["warnings"] == [DOUBLE_SPANS_WARNING]

    spans = [Span(**span) for span in report["spans"]]
    ours = {s.span_id: s for s in spans if s.name == f"process {queue}"}
    theirs = [s for s in spans if s.name == f"{queue} process"]
    assert len(ours) == len(theirs) == 3  # send_welcome once, sync_crm twice
    for span in theirs:
        assert span.kind == "consumer"
        parent = ours[span.parent_id]  # nested in our attempt, same trace
        assert span.trace_id == parent.trace_id
        assert span.attributes["messaging.message.id"] == parent.attributes["messaging.message.id"]
    assert [s.name for s in spans if s.kind == "producer"] == [f"send {queue}"] * 2
    assert_one_trace_per_request([s for s in spans if s not in theirs], queue, report["job_ids"])


def test_without_litestar_saqs_enable_otel_there_is_no_warning(
    redis_url: str, tracer_provider: TracerProvider, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="opentelemetry.instrumentation.saq")
    instrumentor = SAQInstrumentor()
    instrumentor.instrument(tracer_provider=tracer_provider)
    try:
        make_app(redis_url, "lsaq-quiet", separate_process=False, tracer_provider=tracer_provider)
    finally:
        instrumentor.uninstrument()
    assert DOUBLE_SPANS_WARNING not in caplog.messages


def test_uninstrument_restores_litestar_saqs_get_tracer(tracer_provider: TracerProvider) -> None:
    original = litestar_saq_tracing.get_tracer
    instrumentor = SAQInstrumentor()
    instrumentor.instrument(tracer_provider=tracer_provider)
    try:
        assert litestar_saq_tracing.get_tracer is not original
    finally:
        instrumentor.uninstrument()
    assert litestar_saq_tracing.get_tracer is original
