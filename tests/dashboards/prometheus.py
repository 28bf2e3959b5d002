"""A real Prometheus (Debian's package, which .ci/run installs) for the dashboard tests."""

from __future__ import annotations

import shutil
import subprocess
import tempfile
import time
import typing as t
from pathlib import Path

import httpx
import yaml

from tests.servers import free_port


class Prometheus:
    """Scrapes ``targets`` every second and evaluates ``rule_files``; queried over HTTP."""

    def __init__(self, targets: list[str], rule_files: list[Path]) -> None:
        binary = shutil.which("prometheus")
        if binary is None:
            raise RuntimeError(
                "prometheus is not installed: run .ci/run or apt-get install prometheus"
            )
        self._dir = tempfile.TemporaryDirectory(prefix="saq-prometheus-")
        config = Path(self._dir.name) / "prometheus.yml"
        config.write_text(
            yaml.safe_dump(
                {
                    "global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
                    "rule_files": [str(path) for path in rule_files],
                    "scrape_configs": [
                        {"job_name": "saq", "static_configs": [{"targets": targets}]}
                    ],
                }
            )
        )
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self._proc = subprocess.Popen(
            [
                binary,
                f"--config.file={config}",
                f"--storage.tsdb.path={self._dir.name}/data",
                f"--web.listen-address=127.0.0.1:{self.port}",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        self.client = httpx.Client(base_url=self.url, timeout=10)

    def wait_ready(self, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while True:
            assert self._proc.poll() is None, f"prometheus exited with {self._proc.returncode}"
            try:
                if self.client.get("/-/ready").status_code == 200:
                    return
            except httpx.TransportError:
                pass
            assert time.monotonic() < deadline, "prometheus did not get ready"
            time.sleep(0.1)

    def query(self, expr: str) -> list[dict[str, t.Any]]:
        """An instant query's vector: [{"metric": {labels}, "value": [time, "value"]}]."""
        answer = self.client.get("/api/v1/query", params={"query": expr}).json()
        assert answer["status"] == "success", (expr, answer)
        assert answer["data"]["resultType"] == "vector", (expr, answer["data"]["resultType"])
        return t.cast(list[dict[str, t.Any]], answer["data"]["result"])

    def label_values(self, label: str, match: str) -> list[str]:
        answer = self.client.get(f"/api/v1/label/{label}/values", params={"match[]": match}).json()
        assert answer["status"] == "success", answer
        return t.cast(list[str], answer["data"])

    def stop(self) -> None:
        self.client.close()
        self._proc.terminate()
        try:
            self._proc.wait(20)
        except subprocess.TimeoutExpired:
            self._proc.kill()
            self._proc.wait(10)
        self._dir.cleanup()
