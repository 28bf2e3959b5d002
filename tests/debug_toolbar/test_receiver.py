"""The toolbar's OTLP/HTTP receiver: real payloads in, the answers the specification gives."""

from __future__ import annotations

import gzip
import json
import socket
import typing as t
import uuid

import pytest
from litestar.testing import TestClient
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceResponse
from saq.queue.redis import RedisQueue

from opentelemetry.instrumentation.saq.debug_toolbar.receivers import receiver
from opentelemetry.instrumentation.saq.debug_toolbar.tracing import trace_store
from tests.browser import serving
from tests.debug_toolbar.apps import litestar_app
from tests.debug_toolbar.otlp_payloads import (
    JSON,
    PROTOBUF,
    RECEIVER,
    otlp_json,
    protobuf,
    spans_without_saq,
    worker_attempt,
)
from tests.debug_toolbar.toolbar_api import panel, request_id

pytestmark = pytest.mark.usefixtures("instrument")
API = "/_debug_toolbar/saq/api/traces"


def new_queue(redis_url: str) -> RedisQueue:
    return RedisQueue.from_url(redis_url, name=f"recv-{uuid.uuid4().hex[:8]}")


def request_trace(client: t.Any) -> tuple[str, str, str]:
    """A request that enqueued one job nobody runs: its trace id, send span id, job key."""
    client.get("/page")
    stats = panel(client, request_id(client, "/page"))
    view = client.get(f"{API}/{stats['trace_id']}").json()
    (send,) = [row for row in view["rows"] if row["kind"] == "send"]
    return stats["trace_id"], send["id"], send["job_key"]


def test_a_protobuf_export_puts_the_workers_spans_under_the_request(redis_url: str) -> None:
    with TestClient(litestar_app(new_queue(redis_url), worker=False)) as client:
        trace_id, send_id, key = request_trace(client)
        body = protobuf(worker_attempt(trace_id, send_id, key))
        response = client.post(RECEIVER, content=body, headers=PROTOBUF)
        view = client.get(f"{API}/{trace_id}").json()
        page = client.get(f"/_debug_toolbar/saq/{trace_id}").text

    assert response.status_code == 200
    assert response.headers["content-type"].startswith("application/x-protobuf")
    answer = ExportTraceServiceResponse.FromString(response.content)
    assert not answer.HasField("partial_success")
    rows = {row["name"]: row for row in view["rows"]}
    process, child = rows["process remote"], rows["render email"]
    assert (process["kind"], process["service"], process["parent_id"]) == (
        "process",
        "remote-worker",
        send_id,
    )
    assert child["parent_id"] == process["id"] and child["depth"] == process["depth"] + 1
    assert view["worst_status"] == "complete" and "remote-worker" in view["services"]
    assert not [row for row in view["rows"] if row.get("pending")]
    assert 'data-service="remote-worker"' in page and "on remote-worker" in page


def test_a_gzipped_json_export_is_read_as_the_specification_writes_it(redis_url: str) -> None:
    with TestClient(litestar_app(new_queue(redis_url), worker=False)) as client:
        trace_id, send_id, key = request_trace(client)
        body = gzip.compress(otlp_json(worker_attempt(trace_id, send_id, key)))
        response = client.post(RECEIVER, content=body, headers={**JSON, "content-encoding": "gzip"})
        view = client.get(f"{API}/{trace_id}").json()

    assert response.status_code == 200 and response.json() == {}
    names = [row["name"] for row in view["rows"]]
    assert "process remote" in names and "render email" in names


def test_every_member_of_a_multi_member_gzip_body_is_read(redis_url: str) -> None:
    """gzip allows a body of several members (what ``cat a.gz b.gz`` makes): all are read."""
    with TestClient(litestar_app(new_queue(redis_url), worker=False)) as client:
        trace_id, send_id, key = request_trace(client)
        body = protobuf(worker_attempt(trace_id, send_id, key))
        half = len(body) // 2
        members = gzip.compress(b"") + gzip.compress(body[:half]) + gzip.compress(body[half:])
        response = client.post(RECEIVER, content=members, headers=GZIP)
        view = client.get(f"{API}/{trace_id}").json()

    assert response.status_code == 200, response.text
    assert not ExportTraceServiceResponse.FromString(response.content).HasField("partial_success")
    names = [row["name"] for row in view["rows"]]
    assert "process remote" in names and "render email" in names


def test_a_trace_without_saq_spans_the_app_did_not_start_is_refused_and_counted(
    redis_url: str,
) -> None:
    stranger = uuid.uuid4().hex
    before = receiver.counts.dropped_spans
    with TestClient(litestar_app(new_queue(redis_url), worker=False)) as client:
        body = protobuf(spans_without_saq(stranger))
        response = client.post(RECEIVER, content=body, headers=PROTOBUF)
        lookup = client.get(f"{API}/{stranger}")

    answer = ExportTraceServiceResponse.FromString(response.content)
    assert response.status_code == 200
    assert answer.partial_success.rejected_spans == 2
    assert receiver.counts.dropped_spans - before == 2
    assert lookup.status_code == 404
    assert int(stranger, 16) not in trace_store()


def test_a_trace_with_saq_spans_the_app_did_not_start_is_kept_and_listed(
    redis_url: str,
) -> None:
    """A job a script or another service enqueued, run by a worker exporting here."""
    stranger = uuid.uuid4().hex
    key = f"script-{uuid.uuid4().hex[:8]}"
    with TestClient(litestar_app(new_queue(redis_url), worker=False)) as client:
        body = protobuf(worker_attempt(stranger, "1" * 16, key))
        response = client.post(RECEIVER, content=body, headers=PROTOBUF)
        view = client.get(f"{API}/{stranger}").json()
        listing = client.get(API, params={"q": key}).json()

    answer = ExportTraceServiceResponse.FromString(response.content)
    assert response.status_code == 200 and not answer.HasField("partial_success")
    assert {row["name"] for row in view["rows"]} >= {"process remote", "render email"}
    ((job,),) = [trace["listed_jobs"] for trace in listing["traces"]]
    assert (job["key"], job["trace_id"], job["status"]) == (key, stranger, "complete")
    assert (job["origin"], job["started_by"]) == ("outside", "outside a request")


def test_an_export_sent_twice_is_kept_once(redis_url: str) -> None:
    with TestClient(litestar_app(new_queue(redis_url), worker=False)) as client:
        trace_id, send_id, key = request_trace(client)
        body = protobuf(worker_attempt(trace_id, send_id, key))
        client.post(RECEIVER, content=body, headers=PROTOBUF)
        again = client.post(RECEIVER, content=body, headers=PROTOBUF)
        view = client.get(f"{API}/{trace_id}").json()

    assert ExportTraceServiceResponse.FromString(again.content).partial_success.rejected_spans == 2
    assert [row["name"] for row in view["rows"]].count("process remote") == 1


LIMIT = receiver.MAX_BODY_BYTES
GZIP = {**PROTOBUF, "content-encoding": "gzip"}
BAD_INPUTS = {
    "text content type": (415, {"content-type": "text/plain"}, b"hello"),
    "no content type": (415, {}, b"hello"),
    "brotli encoding": (415, {**PROTOBUF, "content-encoding": "br"}, b"\x00"),
    "garbage protobuf": (400, PROTOBUF, b"\xff\xff\xff\xff\xff"),
    "garbage json": (400, JSON, b"{not json"),
    "json that is a list": (400, JSON, b"[1, 2]"),
    "json with a base64 trace id": (
        400,
        JSON,
        b'{"resourceSpans":[{"scopeSpans":[{"spans":[{"traceId":"AAECAw=="}]}]}]}',
    ),
    "gzip that is not gzip": (400, GZIP, b"plain"),
    "gzip bomb": (413, GZIP, gzip.compress(b"\0" * (LIMIT + 1))),
    # Issue 18: an empty first member hid the rest, answered 200 with nothing decoded.
    "gzip bomb behind an empty member": (
        413,
        GZIP,
        gzip.compress(b"") + gzip.compress(b"\0" * (50 * 1024 * 1024)),
    ),
    "gzip members over the limit together": (
        413,
        GZIP,
        gzip.compress(b"\0" * (LIMIT // 2 + 1)) * 2,
    ),
    "gzip with garbage after a member": (400, GZIP, gzip.compress(b"") + b"plain"),
}


@pytest.mark.parametrize("case", BAD_INPUTS)
def test_bad_input_gets_the_status_the_specification_gives(redis_url: str, case: str) -> None:
    status, headers, body = BAD_INPUTS[case]
    before = receiver.counts.refused_requests
    with TestClient(litestar_app(new_queue(redis_url), worker=False)) as client:
        response = client.post(RECEIVER, content=body, headers=headers)
        still_serving = client.get("/page")
    assert response.status_code == status, response.text
    assert receiver.counts.refused_requests == before + 1
    assert still_serving.status_code == 200


def test_a_streamed_body_over_the_limit_is_refused(redis_url: str) -> None:
    chunk = b"\0" * (1024 * 1024)
    chunks = LIMIT // len(chunk) + 2
    with TestClient(litestar_app(new_queue(redis_url), worker=False)) as client:
        response = client.post(RECEIVER, content=iter([chunk] * chunks), headers=PROTOBUF)
    assert response.status_code == 413


def test_an_announced_body_over_the_limit_is_refused_before_it_is_sent(redis_url: str) -> None:
    """1 GB announced, a few bytes sent: the answer comes without waiting for the rest."""
    with serving(litestar_app(new_queue(redis_url), worker=False)) as base:
        host, port = base.removeprefix("http://").split(":")
        with socket.create_connection((host, int(port)), timeout=10) as sock:
            sock.sendall(
                b"POST " + RECEIVER.encode() + b" HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                b"Content-Type: application/x-protobuf\r\nContent-Length: 1000000000\r\n\r\n"
                b"\x0a\x00"
            )
            status_line = sock.makefile("rb").readline()
    assert status_line.split()[1] == b"413"


def test_the_json_answer_reports_rejected_spans_in_camel_case(redis_url: str) -> None:
    with TestClient(litestar_app(new_queue(redis_url), worker=False)) as client:
        body = otlp_json(spans_without_saq(uuid.uuid4().hex))
        response = client.post(RECEIVER, content=body, headers=JSON)
    assert json.loads(response.content)["partialSuccess"]["rejectedSpans"] == "2"
