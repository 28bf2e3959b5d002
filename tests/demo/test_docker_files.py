"""docker/: no Docker engine runs here, so the files are checked for what they start.

The processes compose would start are run for real by test_end_to_end.py (same commands,
same environment variables, a real Redis and a real OTLP receiver).
"""

from __future__ import annotations

import importlib.util
import os
import re
import subprocess
import sys
from pathlib import Path

import yaml

from tests.package.project import pyproject

ROOT = Path(__file__).resolve().parents[2]
COMPOSE = yaml.safe_load((ROOT / "docker" / "compose.yml").read_text())
SERVICES = COMPOSE["services"]


def test_compose_runs_redis_jaeger_the_app_and_two_workers() -> None:
    assert set(SERVICES) == {"redis", "jaeger", "app", "worker-1", "worker-2"}
    assert SERVICES["redis"]["image"].startswith("redis:")
    assert SERVICES["jaeger"]["image"].startswith("jaegertracing/all-in-one:")
    assert SERVICES["jaeger"]["environment"]["COLLECTOR_OTLP_ENABLED"] == "true"
    assert "16686:16686" in SERVICES["jaeger"]["ports"]  # the UI
    assert "4318:4318" in SERVICES["jaeger"]["ports"]  # OTLP/HTTP
    assert "8000:8000" in SERVICES["app"]["ports"]


def test_the_app_and_workers_export_otlp_to_jaeger_and_share_redis() -> None:
    for name in ("app", "worker-1", "worker-2"):
        env = SERVICES[name]["environment"]
        assert env["OTEL_EXPORTER_OTLP_ENDPOINT"] == "http://jaeger:4318"
        assert env["OTEL_EXPORTER_OTLP_PROTOCOL"] == "http/protobuf"
        assert env["REDIS_URL"] == "redis://redis:6379"
        assert {"redis", "jaeger"} <= set(SERVICES[name]["depends_on"])
    assert SERVICES["app"]["environment"]["HOST"] == "0.0.0.0"
    assert SERVICES["app"]["environment"]["OTEL_SERVICE_NAME"] == "saq-demo-app"
    assert SERVICES["worker-1"]["environment"]["OTEL_SERVICE_NAME"] == "saq-demo-worker"


def test_the_commands_exist_in_the_package() -> None:
    assert SERVICES["app"]["command"] == ["python", "-m", "examples.demo"]
    assert importlib.util.find_spec("examples.demo.__main__") is not None
    for name in ("worker-1", "worker-2"):
        command = SERVICES[name]["command"]
        assert command[0] == "saq"
        module, attribute = command[1].rsplit(".", 1)
        # Imported in a child: the settings module configures tracing globally.
        check = (
            f"import {module} as m; s = m.{attribute}; "
            "assert s['functions'] and s['queue'].name == 'demo'"
        )
        env = {**os.environ, "REDIS_URL": "redis://127.0.0.1:1"}
        subprocess.run([sys.executable, "-c", check], cwd=ROOT, env=env, check=True)
    saq_cli = Path(sys.executable).with_name("saq")
    assert saq_cli.exists(), "the saq command is installed next to python"


def test_the_dockerfile_builds_what_compose_runs() -> None:
    dockerfile = (ROOT / "docker" / "Dockerfile").read_text()
    copied = [
        src
        for line in re.findall(r"^COPY (.+)$", dockerfile, re.MULTILINE)
        for src in line.split()[:-1]
    ]
    for source in copied:
        assert (ROOT / source).exists(), source
    assert 'pip install ".[demo]"' in dockerfile
    extras = pyproject()["project"]["optional-dependencies"]
    assert "demo" in extras
    assert any(dep.startswith("opentelemetry-exporter-otlp-proto-http") for dep in extras["demo"])
    assert 'CMD ["python", "-m", "examples.demo"]' in dockerfile
    for name in ("app", "worker-1", "worker-2"):
        assert SERVICES[name]["build"] == {"context": "..", "dockerfile": "docker/Dockerfile"}
