"""docker/: no Docker engine runs here, so the files are checked for what they start.

compose.yml and the collector's config (otel-collector.yaml) are read as YAML and checked
for what the collector needs to run the pipeline (every component it names is defined) and
for where the telemetry goes: every process to the collector, the collector's spans to
Jaeger and its metrics to Prometheus, Prometheus to Grafana's provisioned data source.

The processes compose would start are run for real by test_end_to_end.py (same commands,
same environment variables, a real Redis and a real OTLP receiver); the dashboard's and the
alert rules' queries run on a real Prometheus in tests/dashboards/.
"""

from __future__ import annotations

import importlib.util
import json
import os
import re
import subprocess
import sys
import typing as t
from pathlib import Path

import yaml

from tests.package.project import pyproject

ROOT = Path(__file__).resolve().parents[2]
COMPOSE = yaml.safe_load((ROOT / "docker" / "compose.yml").read_text())
SERVICES = COMPOSE["services"]


DEMO = ("app", "worker-1", "worker-2")


def test_compose_runs_redis_jaeger_v2_a_collector_prometheus_grafana_the_app_and_workers() -> None:
    assert set(SERVICES) == {"redis", "jaeger", "otel-collector", "prometheus", "grafana", *DEMO}
    assert SERVICES["redis"]["image"].startswith("redis:")
    # Jaeger v2 (v1's all-in-one reached its end of life on 31 December 2025).
    assert re.fullmatch(r"jaegertracing/jaeger:2\.\d+\.\d+", SERVICES["jaeger"]["image"])
    assert "16686:16686" in SERVICES["jaeger"]["ports"]  # the UI
    assert re.fullmatch(
        r"otel/opentelemetry-collector(-contrib)?:0\.\d+\.\d+", SERVICES["otel-collector"]["image"]
    )
    assert "8000:8000" in SERVICES["app"]["ports"]
    assert re.fullmatch(r"prom/prometheus:v2\.\d+\.\d+", SERVICES["prometheus"]["image"])
    assert "9090:9090" in SERVICES["prometheus"]["ports"]
    assert re.fullmatch(r"grafana/grafana:\d+\.\d+\.\d+", SERVICES["grafana"]["image"])
    assert "3000:3000" in SERVICES["grafana"]["ports"]


def mounts(service: str) -> dict[str, Path]:
    """Where compose mounts each file or folder of docker/ in the service's container."""
    found = {}
    for volume in SERVICES[service]["volumes"]:
        source, target = volume.split(":")[:2]
        found[target] = ROOT / "docker" / source
    return found


def collector_config() -> dict[str, t.Any]:
    """The config file compose mounts where the collector's --config option reads it."""
    collector = SERVICES["otel-collector"]
    (option,) = [arg for arg in collector["command"] if arg.startswith("--config=")]
    mounted = mounts("otel-collector")
    config: dict[str, t.Any] = yaml.safe_load(mounted[option.removeprefix("--config=")].read_text())
    return config


def component_type(name: str) -> str:
    return name.split("/", 1)[0]  # "otlp_grpc/jaeger" is an otlp_grpc exporter named jaeger


def test_the_collector_receives_otlp_batches_and_exports_to_jaeger() -> None:
    config = collector_config()
    protocols = config["receivers"]["otlp"]["protocols"]
    assert protocols["grpc"]["endpoint"] == "0.0.0.0:4317"
    assert protocols["http"]["endpoint"] == "0.0.0.0:4318"
    traces = config["service"]["pipelines"]["traces"]
    assert traces["receivers"] == ["otlp"]
    # The memory limiter first, batching last, as the collector's docs order them.
    assert traces["processors"] == ["memory_limiter", "batch"]
    (exporter,) = traces["exporters"]
    assert component_type(exporter) == "otlp_grpc"
    settings = config["exporters"][exporter]
    assert settings["endpoint"] == "jaeger:4317"  # Jaeger v2's OTLP/gRPC port
    assert settings["tls"]["insecure"] is True  # plain gRPC inside the compose network
    # Every component a pipeline names is defined, and every defined one is used.
    for kind in ("receivers", "processors", "exporters"):
        used = {
            name for pipeline in config["service"]["pipelines"].values() for name in pipeline[kind]
        }
        assert used == set(config[kind]), kind


def test_every_service_exports_otlp_to_the_collector_only() -> None:
    config = collector_config()
    http_port = config["receivers"]["otlp"]["protocols"]["http"]["endpoint"].rsplit(":", 1)[1]
    exporting = [
        name
        for name, service in SERVICES.items()
        if "OTEL_SERVICE_NAME" in service.get("environment", {})
    ]
    assert sorted(exporting) == sorted(DEMO)
    for name in exporting:
        env = SERVICES[name]["environment"]
        otlp = {key: value for key, value in env.items() if key.startswith("OTEL_EXPORTER_OTLP")}
        assert otlp == {
            "OTEL_EXPORTER_OTLP_ENDPOINT": f"http://otel-collector:{http_port}",
            "OTEL_EXPORTER_OTLP_PROTOCOL": "http/protobuf",
        }, name
        assert "jaeger" not in str(env)
        assert env["REDIS_URL"] == "redis://redis:6379"
        assert set(SERVICES[name]["depends_on"]) == {"redis", "otel-collector"}
    assert SERVICES["otel-collector"]["depends_on"] == {"jaeger": {"condition": "service_started"}}
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
    for name in DEMO:
        assert SERVICES[name]["build"] == {"context": "..", "dockerfile": "docker/Dockerfile"}


def test_the_collector_serves_the_metrics_that_prometheus_scrapes() -> None:
    config = collector_config()
    metrics = config["service"]["pipelines"]["metrics"]
    assert metrics["receivers"] == ["otlp"]
    assert metrics["processors"] == ["memory_limiter", "batch"]
    assert metrics["exporters"] == ["prometheus"]
    exporter = config["exporters"]["prometheus"]
    port = exporter["endpoint"].rsplit(":", 1)[1]
    # A stopped worker's gauges must leave soon, or "workers alive" and SAQNoWorkerAlive
    # would wait for them; a live worker's must outlast two lost exports.
    export_s = int(SERVICES["worker-1"]["environment"]["OTEL_METRIC_EXPORT_INTERVAL"]) / 1000
    expiration = exporter["metric_expiration"]
    assert re.fullmatch(r"\d+s", expiration), expiration  # a Go duration, in seconds here
    assert int(expiration[:-1]) == 3 * export_s == 15

    prometheus = SERVICES["prometheus"]
    (option,) = [arg for arg in prometheus["command"] if arg.startswith("--config.file=")]
    mounted = mounts("prometheus")
    scrape = yaml.safe_load(mounted[option.removeprefix("--config.file=")].read_text())
    (job,) = scrape["scrape_configs"]
    assert job["static_configs"] == [{"targets": [f"otel-collector:{port}"]}]
    assert job["honor_labels"] is True  # each process stays its own instance
    # The rules Prometheus loads are the file tests/dashboards/ checks with promtool.
    (rules,) = scrape["rule_files"]
    assert mounted[rules] == ROOT / "docker" / "prometheus" / "saq-alerts.yml"
    assert set(prometheus["depends_on"]) == {"otel-collector"}


def test_grafana_provisions_prometheus_and_the_dashboard() -> None:
    mounted = mounts("grafana")
    provisioning = mounted["/etc/grafana/provisioning"]
    (source,) = yaml.safe_load((provisioning / "datasources" / "prometheus.yml").read_text())[
        "datasources"
    ]
    assert source["type"] == "prometheus"
    assert source["url"] == "http://prometheus:9090"
    (provider,) = yaml.safe_load((provisioning / "dashboards" / "saq.yml").read_text())["providers"]
    folder = mounted[provider["options"]["path"]]
    dashboard = json.loads((folder / "saq-queues.json").read_text())
    # Every panel, its queries and the queue picker read the provisioned data source.
    uids = {panel["datasource"]["uid"] for panel in dashboard["panels"]}
    uids |= {t["datasource"]["uid"] for panel in dashboard["panels"] for t in panel["targets"]}
    uids |= {variable["datasource"]["uid"] for variable in dashboard["templating"]["list"]}
    assert uids == {source["uid"]}
    home = SERVICES["grafana"]["environment"]["GF_DASHBOARDS_DEFAULT_HOME_DASHBOARD_PATH"]
    assert home == f"{provider['options']['path']}/saq-queues.json"
    titles = {panel["title"] for panel in dashboard["panels"]}
    assert len(titles) == len(dashboard["panels"]) >= 8


def test_the_demo_exports_metrics_and_its_workers_report_queue_health() -> None:
    check = (
        "from opentelemetry import metrics; from saq import Worker; "
        "from opentelemetry.sdk.metrics import MeterProvider; "
        "import examples.demo.worker; "
        "assert isinstance(metrics.get_meter_provider(), MeterProvider); "
        "assert Worker.__dict__['worker_info']._self_wrapper.__name__ == 'traced_worker_info'"
    )
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("OTEL_")},
        **SERVICES["worker-1"]["environment"],
        "REDIS_URL": "redis://127.0.0.1:1",
    }
    subprocess.run([sys.executable, "-c", check], cwd=ROOT, env=env, check=True)
