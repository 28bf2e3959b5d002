"""The soak's OTLP/HTTP trace receiver, a process of its own: ``python soak_receiver.py OUT``.

Decodes the protobuf that exporters send to ``/v1/traces`` and appends one JSON line per
span to OUT before it answers, so that once an exporter's request returned, its spans are
on disk. Prints its endpoint on stdout when it is ready; stops on SIGTERM.
"""

from __future__ import annotations

import json
import signal
import sys
import threading
import typing as t
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)

KEY, ATTEMPT, DUPLICATE = "saq.job.key", "saq.job.attempt", "saq.job.duplicate"
STATUS_ERROR = 2


def _value(any_value: t.Any) -> t.Any:
    field = any_value.WhichOneof("value")
    return getattr(any_value, field) if field else None


def spans_of(body: bytes) -> list[dict[str, t.Any]]:
    """The few facts of each span the soak checks."""
    request = ExportTraceServiceRequest()
    request.ParseFromString(body)
    spans = []
    for resource_spans in request.resource_spans:
        resource = {a.key: _value(a.value) for a in resource_spans.resource.attributes}
        for scope_spans in resource_spans.scope_spans:
            for span in scope_spans.spans:
                attributes = {a.key: _value(a.value) for a in span.attributes}
                spans.append(
                    {
                        "service": resource.get("service.name"),
                        "name": span.name,
                        "kind": span.kind,
                        "trace": span.trace_id.hex(),
                        "span": span.span_id.hex(),
                        "parent": span.parent_span_id.hex(),
                        "key": attributes.get(KEY),
                        "attempt": attributes.get(ATTEMPT),
                        "duplicate": bool(attributes.get(DUPLICATE)),
                        "error": span.status.code == STATUS_ERROR,
                    }
                )
    return spans


def main(out_path: str) -> None:
    lock = threading.Lock()
    out = open(out_path, "a", encoding="utf-8")  # noqa: SIM115 (open for the server's life)

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
            if self.path == "/v1/traces":
                lines = "".join(json.dumps(span) + "\n" for span in spans_of(body))
                with lock:
                    out.write(lines)
                    out.flush()
            payload = ExportTraceServiceResponse().SerializeToString()
            self.send_response(200)
            self.send_header("Content-Type", "application/x-protobuf")
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        def log_message(self, format: str, *args: t.Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    signal.signal(signal.SIGTERM, lambda *_: threading.Thread(target=server.shutdown).start())
    print(f"http://127.0.0.1:{server.server_address[1]}", flush=True)
    try:
        server.serve_forever()
    finally:
        server.server_close()
        with lock:
            out.close()


if __name__ == "__main__":
    main(sys.argv[1])
