"""An app with no OpenTelemetry SDK set up still gets a working panel and trace page."""

from __future__ import annotations

import json
import subprocess
import sys
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_the_panel_installs_a_local_provider_and_says_so(redis_url: str) -> None:
    # A fresh interpreter: the global tracer provider can be set only once per process.
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "tests.debug_toolbar.no_provider_app",
            redis_url,
            f"np-{uuid.uuid4().hex[:8]}",
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    output = json.loads(result.stdout.strip().splitlines()[-1])
    stats, trace = output["stats"], output["trace"]
    assert stats["trace_id"] is not None
    assert stats["jobs"][0]["status"] == "complete"
    assert [row["kind"] for row in trace["rows"] if row.get("function") == "slow"] == [
        "send",
        "wait",
        "process",
    ]
    # Installed once, when the app was built (the toolbar makes its panels then), and left
    # alone while serving.
    assert output["start_up"] == "TracerProvider" and output["unchanged"]
    assert "installed one at start-up that keeps spans in memory" in result.stderr
