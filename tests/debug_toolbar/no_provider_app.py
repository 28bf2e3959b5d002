"""An app that configured no TracerProvider: run as a script by test_no_provider.py."""

from __future__ import annotations

import json
import logging
import sys

from litestar.testing import TestClient
from opentelemetry import trace as trace_module
from saq.queue.redis import RedisQueue

from opentelemetry.instrumentation.saq import SAQInstrumentor
from tests.debug_toolbar.apps import litestar_app
from tests.debug_toolbar.toolbar_api import request_id, statuses, wait_for_panel


def main() -> None:
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr)
    SAQInstrumentor().instrument()  # no provider anywhere: the panel must cope
    queue = RedisQueue.from_url(sys.argv[1], name=sys.argv[2])
    app = litestar_app(queue)
    at_start_up = trace_module.get_tracer_provider()  # installed with the app, before any request
    with TestClient(app) as client:
        client.get("/slow", params={"seconds": 0.05})
        rid = request_id(client, "/slow")
        stats = wait_for_panel(client, rid, lambda s: statuses(s) == [("slow", "complete")])
        trace = client.get(stats["trace_page"].replace("/saq/", "/saq/api/traces/")).json()
    unchanged = trace_module.get_tracer_provider() is at_start_up
    print(
        json.dumps(
            {
                "stats": stats,
                "trace": trace,
                "start_up": type(at_start_up).__name__,
                "unchanged": unchanged,
            }
        )
    )


if __name__ == "__main__":
    main()
