"""An app that configured no TracerProvider: run as a script by test_no_provider.py."""

from __future__ import annotations

import json
import logging
import sys

from litestar.testing import TestClient
from saq.queue.redis import RedisQueue

from opentelemetry.instrumentation.saq import SAQInstrumentor
from tests.debug_toolbar.apps import litestar_app
from tests.debug_toolbar.toolbar_api import request_id, statuses, wait_for_panel


def main() -> None:
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr)
    SAQInstrumentor().instrument()  # no provider anywhere: the panel must cope
    queue = RedisQueue.from_url(sys.argv[1], name=sys.argv[2])
    with TestClient(litestar_app(queue)) as client:
        client.get("/slow", params={"seconds": 0.05})
        rid = request_id(client, "/slow")
        stats = wait_for_panel(client, rid, lambda s: statuses(s) == [("slow", "complete")])
        trace = client.get(stats["trace_page"].replace("/saq/", "/saq/api/traces/")).json()
    print(json.dumps({"stats": stats, "trace": trace}))


if __name__ == "__main__":
    main()
