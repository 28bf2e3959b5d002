"""A gzip body costs the receiver work in proportion to its size, and a bounded number of
decompressors: a 4 MiB body of 20-byte empty members took 10 s of CPU (each member
copied the rest of the body) and is now refused at once."""

from __future__ import annotations

import gzip
import json
import random
import typing as t
import uuid
import zlib

import pytest
from litestar.testing import TestClient
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceResponse
from saq.queue.redis import RedisQueue

from opentelemetry.instrumentation.saq.debug_toolbar.receivers import gzip_body, receiver
from tests.debug_toolbar.apps import litestar_app
from tests.debug_toolbar.otlp_payloads import PROTOBUF, RECEIVER, protobuf, worker_attempt
from tests.debug_toolbar.test_receiver import API, request_trace

pytestmark = pytest.mark.usefixtures("instrument")
GZIP = {**PROTOBUF, "content-encoding": "gzip"}
EMPTY_MEMBER = gzip.compress(b"")  # 20 bytes
MOST_MEMBERS = 64  # as docs/toolbar/security.md says


def new_queue(redis_url: str) -> RedisQueue:
    return RedisQueue.from_url(redis_url, name=f"gz-{uuid.uuid4().hex[:8]}")


def test_a_body_of_many_empty_members_is_refused_with_400_saying_why(redis_url: str) -> None:
    body = EMPTY_MEMBER * (receiver.MAX_BODY_BYTES // len(EMPTY_MEMBER))
    before = receiver.counts.refused_requests
    with TestClient(litestar_app(new_queue(redis_url), worker=False)) as client:
        response = client.post(RECEIVER, content=body, headers=GZIP)
        still_serving = client.get("/page")

    assert response.status_code == 400, response.text
    message = json.loads(response.content)["message"]
    assert message == (
        f"gzip body of more than {MOST_MEMBERS} members: compress the export as one gzip member"
    )
    assert receiver.counts.refused_requests == before + 1
    assert still_serving.status_code == 200


def test_an_export_behind_the_most_members_allowed_is_kept_and_one_more_is_refused(
    redis_url: str,
) -> None:
    with TestClient(litestar_app(new_queue(redis_url), worker=False)) as client:
        trace_id, send_id, key = request_trace(client)
        export = gzip.compress(protobuf(worker_attempt(trace_id, send_id, key)))
        over = client.post(RECEIVER, content=EMPTY_MEMBER * MOST_MEMBERS + export, headers=GZIP)
        view_after_refusal = client.get(f"{API}/{trace_id}").json()
        members = EMPTY_MEMBER * (MOST_MEMBERS - 1) + export
        response = client.post(RECEIVER, content=members, headers=GZIP)
        view = client.get(f"{API}/{trace_id}").json()

    assert over.status_code == 400, over.text
    assert "process remote" not in [row["name"] for row in view_after_refusal["rows"]]
    assert response.status_code == 200, response.text
    assert (
        ExportTraceServiceResponse.FromString(response.content).partial_success.rejected_spans == 0
    )
    assert "process remote" in [row["name"] for row in view["rows"]]


class CountingZlib:
    """The real zlib, counting the input bytes handed to its decompressors: what zlib
    reads and, at a member's end, copies into ``unused_data``."""

    error = zlib.error

    def __init__(self) -> None:
        self.given = 0
        self.decompressors = 0

    def decompressobj(self, **kwargs: t.Any) -> t.Any:
        self.decompressors += 1
        inner = zlib.decompressobj(**kwargs)
        counter = self

        class Counting:
            def decompress(self, data: t.Any, max_length: int = 0) -> bytes:
                counter.given += len(data)
                return inner.decompress(data, max_length)

            def __getattr__(self, name: str) -> t.Any:
                return getattr(inner, name)

        return Counting()


def test_members_are_inflated_with_input_in_proportion_to_the_body(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    rng = random.Random(24)
    # Incompressible members of 1 to 2 KiB: the body's members are of real sizes.
    texts = [rng.randbytes(rng.randint(1024, 2048)) for _ in range(48)]
    body = b"".join(gzip.compress(text) for text in texts)
    counting = CountingZlib()
    monkeypatch.setattr(gzip_body, "zlib", counting)

    assert gzip_body.gunzip(body, receiver.MAX_BODY_BYTES) == b"".join(texts)
    assert counting.decompressors == 48  # one per member
    # Each member's input is handed over in steps that at most double it: linear. Handing
    # every member the rest of the body read 24 times the body here (and grows with it).
    assert counting.given <= 3 * len(body), (counting.given, len(body))
