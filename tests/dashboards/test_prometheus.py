"""Every query of the Grafana dashboard and of the alert rules, run on a real Prometheus.

Two SAQ workers and a producer run in processes of their own against a real Redis, each
serving its metrics for Prometheus (the SDK's PrometheusMetricReader); a real Prometheus
scrapes them every second. The producer runs finished work (some of it failing), then a
backlog: four jobs that hold every slot, two that wait behind them and one scheduled an
hour ahead. Each expression is read from docker/ (so the files cannot drift from what is
tested) and must return the series and values SAQ itself reports: a query that returns
nothing fails, and so does a query or a rule that has no expectation here.
"""

from __future__ import annotations

import asyncio
import json
import math
import os
import re
import select
import subprocess
import sys
import time
import typing as t
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import redis
import yaml
from saq.queue.redis import RedisQueue

from tests.dashboards.prometheus import Prometheus
from tests.servers import free_port

ROOT = Path(__file__).resolve().parents[2]
DASHBOARD = ROOT / "docker" / "grafana" / "dashboards" / "saq-queues.json"
RULES = ROOT / "docker" / "prometheus" / "saq-alerts.yml"
RATE_INTERVAL = "1m"  # what Grafana puts for $__rate_interval at a 15 s scrape interval

pytestmark = pytest.mark.slow

Vector = list[dict[str, t.Any]]


def dashboard_queries(queue: str) -> list[tuple[str, str, str]]:
    """(panel title, legend, PromQL) of every target, Grafana's variables filled in."""
    dashboard = json.loads(DASHBOARD.read_text())
    found = []
    for panel in dashboard["panels"]:
        for target in panel["targets"]:
            expr = target["expr"].replace("$queue", queue)
            expr = expr.replace("$__rate_interval", RATE_INTERVAL)
            assert "$" not in expr, expr
            found.append((panel["title"], target["legendFormat"], expr))
    return found


def alert_rules() -> dict[str, str]:
    groups = yaml.safe_load(RULES.read_text())["groups"]
    return {rule["alert"]: rule["expr"] for group in groups for rule in group["rules"]}


class Processes:
    """Two workers and the producer, each serving its metrics on a port of its own."""

    def __init__(self, redis_url: str, queue: str) -> None:
        self.ports = {"worker-1": free_port(), "worker-2": free_port(), "producer": free_port()}
        env = {k: v for k, v in os.environ.items() if not k.startswith("OTEL_")}
        env.update(REDIS_URL=redis_url, QUEUE=queue)
        self.procs = {
            name: subprocess.Popen(
                [sys.executable, "-m", "tests.dashboards.metrics_process", name.split("-")[0]],
                cwd=ROOT,
                env={**env, "METRICS_PORT": str(port)},
                stdin=subprocess.PIPE if name == "producer" else subprocess.DEVNULL,
                stdout=subprocess.PIPE if name == "producer" else subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
                text=True,
            )
            for name, port in self.ports.items()
        }

    @property
    def producer(self) -> subprocess.Popen[str]:
        return self.procs["producer"]

    def expect_line(self, line: str, timeout: float = 60) -> None:
        stdout = self.producer.stdout
        assert stdout is not None
        ready, _, _ = select.select([stdout], [], [], timeout)
        assert ready, f"the producer did not say {line!r} in {timeout} s"
        assert stdout.readline().strip() == line  # a dead producer says ""

    def stop(self, *names: str) -> None:
        for name in names or tuple(self.procs):
            proc = self.procs[name]
            proc.terminate()
            try:
                proc.wait(20)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(10)


@pytest.fixture
def queue_name(redis_url: str) -> str:
    name = f"dash-{uuid.uuid4().hex[:8]}"
    # SAQ's startup sweep can abort a job another worker just dequeued (its own race):
    # hold the sweep lock, as every worker test does.
    redis.Redis.from_url(redis_url).set(f"saq:{name}:sweep", 1, ex=3600)
    return name


@pytest.fixture
def processes(redis_url: str, queue_name: str) -> Iterator[Processes]:
    started = Processes(redis_url, queue_name)
    try:
        started.expect_line("warm")
        yield started
    finally:
        started.stop()


@pytest.fixture
def prometheus(processes: Processes) -> Iterator[Prometheus]:
    server = Prometheus([f"127.0.0.1:{port}" for port in processes.ports.values()], [RULES])
    try:
        server.wait_ready()
        yield server
    finally:
        server.stop()


def saq_info(redis_url: str, name: str) -> dict[str, t.Any]:
    async def read() -> dict[str, t.Any]:
        queue = RedisQueue.from_url(redis_url, name=name)
        await queue.connect()
        try:
            return dict(await queue.info())
        finally:
            await queue.disconnect()

    return asyncio.run(read())


def poll(prometheus: Prometheus, expr: str, check: Callable[[Vector], bool]) -> Vector:
    """Query until ``check`` holds (scrapes come every second); fail with the last answer."""
    deadline = time.monotonic() + 60
    while True:
        result = prometheus.query(expr)
        if result and check(result):
            return result
        assert time.monotonic() < deadline, f"{expr}\n returned {result}"
        time.sleep(0.5)


def values(result: Vector, *labels: str) -> dict[tuple[str, ...], float]:
    return {
        tuple(series["metric"].get(label, "") for label in labels): float(series["value"][1])
        for series in result
    }


def one_value(result: Vector, queue: str) -> float:
    found = values(result, "messaging_destination_name")
    return found[(queue,)] if list(found) == [(queue,)] else math.nan


def test_every_dashboard_and_alert_query_returns_what_saq_reports(
    redis_url: str, queue_name: str, processes: Processes, prometheus: Prometheus
) -> None:
    q = queue_name
    # Every counter and histogram has a first sample before the measured work starts.
    poll(
        prometheus,
        f'count(messaging_process_duration_seconds_count{{messaging_destination_name="{q}"}})'
        f' + count(messaging_client_sent_messages_total{{messaging_destination_name="{q}"}})',
        lambda r: float(r[0]["value"][1]) == 3,
    )
    assert processes.producer.stdin is not None
    processes.producer.stdin.write("go\n")
    processes.producer.stdin.flush()
    processes.expect_line("enqueued")

    deadline = time.monotonic() + 60
    while True:  # SAQ's own account of the backlog, once both workers hold two jobs each
        info = saq_info(redis_url, q)
        if (info["queued"], info["active"], info["scheduled"]) == (2, 4, 1):
            break
        assert time.monotonic() < deadline, info
        time.sleep(0.2)
    assert len(info["workers"]) == 2

    def positive(r: Vector) -> bool:
        return one_value(r, q) > 0

    def ratio(r: Vector) -> bool:  # 10 of the 30 measured attempts failed
        return 0.2 < one_value(r, q) < 0.5

    def finite(r: Vector) -> bool:
        return 0 <= one_value(r, q) < math.inf

    def exactly(expected: float) -> Callable[[Vector], bool]:
        return lambda r: one_value(r, q) == expected

    def depth(r: Vector) -> bool:  # one true depth, as queue.info() says, not twice it
        return values(r, "messaging_destination_name", "saq_job_state") == {
            (q, "queued"): info["queued"],
            (q, "active"): info["active"],
            (q, "scheduled"): info["scheduled"],
        }

    def by_function(r: Vector) -> bool:  # the blocking jobs have not finished
        found = values(r, "saq_job_function")
        return set(found) == {("ok",), ("fails",)} and all(v > 0 for v in found.values())

    def failing_functions(r: Vector) -> bool:
        found = values(r, "saq_job_function", "error_type")
        return list(found) == [("fails", "ValueError")] and found[("fails", "ValueError")] > 0

    queue_legend = "{{messaging_destination_name}}"
    expected: dict[tuple[str, str], Callable[[Vector], bool]] = {
        ("Throughput: jobs sent and attempts processed", f"sent {queue_legend}"): positive,
        ("Throughput: jobs sent and attempts processed", f"processed {queue_legend}"): positive,
        ("Failure ratio", queue_legend): ratio,
        ("Queue wait p50 / p95 / p99", f"p50 {queue_legend}"): finite,
        ("Queue wait p50 / p95 / p99", f"p95 {queue_legend}"): finite,
        ("Queue wait p50 / p95 / p99", f"p99 {queue_legend}"): finite,
        ("Queue depth by state", "{{saq_job_state}} " + queue_legend): depth,
        ("Oldest ready job age", queue_legend): positive,
        ("Workers alive", queue_legend): exactly(len(info["workers"])),
        ("Busy slots / concurrency", f"busy {queue_legend}"): exactly(4),
        ("Busy slots / concurrency", f"concurrency {queue_legend}"): exactly(4),
        ("Process duration p95 by function", "{{saq_job_function}}"): by_function,
        ("Failed attempts by function", "{{saq_job_function}} {{error_type}}"): failing_functions,
    }
    # Both workers have read the backlog (each reads once a second): from here on, a
    # dashboard that added their series up would show twice the depth.
    both = f'saq_queue_job_count{{messaging_destination_name="{q}"}}'
    poll(prometheus, f"min by (messaging_destination_name, saq_job_state) ({both})", depth)
    poll(prometheus, f"count({both})", lambda r: float(r[0]["value"][1]) == 6)

    queries = dashboard_queries(q)
    seen = set()
    for title, legend, expr in queries:
        assert (title, legend) in expected, f"no expectation for {title!r} {legend!r}: {expr}"
        poll(prometheus, expr, expected[title, legend])
        seen.add((title, legend))
    assert seen == set(expected)

    # The oldest job keeps ageing while the backlog stands.
    oldest = next(expr for title, _, expr in queries if title == "Oldest ready job age")
    first = one_value(prometheus.query(oldest), q)
    poll(prometheus, oldest, lambda r: one_value(r, q) > first)

    # The dashboard's queue picker.
    variable = json.loads(DASHBOARD.read_text())["templating"]["list"][0]
    metric, label = re.fullmatch(
        r"label_values\((\w+), (\w+)\)", variable["query"]["query"]
    ).groups()  # type: ignore[union-attr]
    assert q in prometheus.label_values(label, metric)

    # The alerts: each one's measure returns the queue's value, and the alert holds
    # exactly when that value is over its threshold (here: only the failure ratio).
    rules = alert_rules()
    measures: dict[str, Callable[[Vector], bool]] = {
        "SAQOldestJobTooOld": positive,  # seconds
        "SAQQueueWaitHigh": finite,  # about a second
        "SAQFailureRatioHigh": ratio,  # a third of the attempts
        "SAQNoWorkerAlive": exactly(2),  # workers seen lately; the alert holds once gone
    }
    assert set(rules) == set(measures)
    for name, expr in rules.items():
        if name == "SAQNoWorkerAlive":
            left = expr.split(" unless ")[0]
            poll(prometheus, left, measures[name])
            assert prometheus.query(expr) == []
            continue
        parts = re.fullmatch(r"(.+?)\s*>\s*([0-9.]+)", expr)
        assert parts is not None, f"{name}: not <measure> > <threshold>"
        left, threshold = parts.group(1), float(parts.group(2))
        measured = one_value(poll(prometheus, left, measures[name]), q)
        holds = measured > threshold
        assert holds == (name == "SAQFailureRatioHigh"), (name, measured)
        assert bool(prometheus.query(expr)) == holds, name

    # No worker left: the queue's series end, and SAQNoWorkerAlive names the queue.
    processes.stop("worker-1", "worker-2")
    poll(prometheus, rules["SAQNoWorkerAlive"], exactly(2))
