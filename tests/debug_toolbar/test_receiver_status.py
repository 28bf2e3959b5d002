"""A received span's status message is kept with an ERROR code only: the SDK logs a
warning for each span given one with another code, so a sender could fill the app's log."""

from __future__ import annotations

import logging
import uuid
from collections.abc import Iterator

import pytest
from litestar.testing import TestClient
from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans
from opentelemetry.proto.trace.v1.trace_pb2 import Status as ProtoStatus
from saq.queue.redis import RedisQueue

from tests.debug_toolbar.apps import litestar_app
from tests.debug_toolbar.otlp_payloads import PROTOBUF, RECEIVER, worker_attempt
from tests.debug_toolbar.test_receiver import API, request_trace

pytestmark = pytest.mark.usefixtures("instrument")
SDK_WARNING = "description should only be set when status_code is set to"


def export(trace_id: str, send_id: str, key: str, statuses: list[tuple[int, str]]) -> bytes:
    """A worker's attempt on the wire, its spans' statuses set as any sender may set them
    (an SDK of another language, a Collector): a message with any code."""
    request = encode_spans(worker_attempt(trace_id, send_id, key))
    spans = [span for scope in request.resource_spans[0].scope_spans for span in scope.spans]
    for span, (code, message) in zip(spans, statuses, strict=True):
        span.status.code = code  # type: ignore[assignment]
        span.status.message = message
    return bytes(request.SerializeToString())


class Recorder(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.messages.append(record.getMessage())


@pytest.fixture
def sdk_warnings() -> Iterator[list[str]]:
    """What the SDK's ``Status`` logs (on its own logger: Litestar's logging set-up replaces
    the root logger's handlers, pytest's among them)."""
    recorder = Recorder()
    status_logger = logging.getLogger("opentelemetry.trace.status")
    status_logger.addHandler(recorder)
    yield recorder.messages
    status_logger.removeHandler(recorder)


def test_a_status_message_is_kept_with_error_only_and_nothing_is_logged(
    redis_url: str, sdk_warnings: list[str]
) -> None:
    queue = RedisQueue.from_url(redis_url, name=f"status-{uuid.uuid4().hex[:8]}")
    with TestClient(litestar_app(queue, worker=False)) as client:
        trace_id, send_id, key = request_trace(client)
        answers = []
        for statuses in (
            # The job's span first (the SDK ends it first), then the attempt.
            [
                (ProtoStatus.STATUS_CODE_ERROR, "render <b>failed</b>"),
                (ProtoStatus.STATUS_CODE_OK, "all good"),
            ],
            [
                (ProtoStatus.STATUS_CODE_UNSET, "nothing to say"),
                (ProtoStatus.STATUS_CODE_OK, "fine again"),
            ],
        ):
            body = export(trace_id, send_id, key, statuses)
            answers.append(client.post(RECEIVER, content=body, headers=PROTOBUF))
        view = client.get(f"{API}/{trace_id}").json()

    assert [answer.status_code for answer in answers] == [200, 200]
    assert not [message for message in sdk_warnings if SDK_WARNING in message]
    rows = [row for row in view["rows"] if row["name"] in ("render email", "process remote")]
    assert sorted((row["name"], row["status"], row["error"]) for row in rows) == [
        ("process remote", "ok", None),
        ("process remote", "ok", None),
        ("render email", "error", "render <b>failed</b>"),
        ("render email", "ok", None),
    ]
