"""Serving the toolbar never takes the process-wide tracer provider (issue 18).

An app that sets its own provider in a request handler, after the panel, the trace pages
and the receiver were hit, gets it; the toolbar's store, added to it as
docs/toolbar/settings.md says, then shows the next request's job with its spans.
"""

from __future__ import annotations

import json
import subprocess
import sys
import uuid
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize("framework", ["litestar", "fastapi"])
def test_an_app_that_sets_its_provider_while_serving_gets_it(
    redis_url: str, framework: str
) -> None:
    # A fresh interpreter: the global tracer provider can be set only once per process.
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "tests.debug_toolbar.own_provider_app",
            framework,
            redis_url,
            f"own-{uuid.uuid4().hex[:8]}",
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    seen = json.loads(result.stdout.strip().splitlines()[-1])
    # No SDK yet, so no spans: the trace page has nothing to show (404) until there is one.
    assert seen["served"] == [200, 200, 404, 200]
    assert seen["before"] == "ProxyTracerProvider"  # nothing set while serving
    assert seen["configured"] == {"own": True}, result.stderr
    assert "Overriding of current TracerProvider" not in result.stderr
    # The app's own provider got SAQ's spans.
    assert {name.split()[0] for name in seen["exported"]} >= {"send", "process"}, seen
    assert [kind for kind in seen["rows"] if kind in ("send", "wait", "process")] == [
        "send",
        "wait",
        "process",
    ]
