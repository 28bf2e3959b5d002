"""The soak's other processes: an append-only Redis that restarts, and `saq` workers."""

from __future__ import annotations

import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import redis
import redis.exceptions

BENCHMARKS = Path(__file__).resolve().parent
# What redis-py raises while Redis is stopped or still loading its append-only file.
REDIS_DOWN = (redis.exceptions.ConnectionError, redis.exceptions.TimeoutError, OSError)


class AppendOnlyRedis:
    """A redis-server with an append-only file that keeps its data across restarts."""

    def __init__(self, workdir: Path) -> None:
        binary = shutil.which("redis-server")
        if binary is None:
            raise SystemExit("redis-server is not installed (apt-get install redis-server)")
        self._binary = binary
        self._dir = workdir / "redis"
        self._dir.mkdir()
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            self.port = int(sock.getsockname()[1])
        self.url = f"redis://127.0.0.1:{self.port}"
        self._proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        self._proc = subprocess.Popen(
            [self._binary, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
             "--appendonly", "yes", "--dir", str(self._dir)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )  # fmt: skip
        client = redis.Redis(port=self.port, socket_timeout=1)
        deadline = time.monotonic() + 60
        while True:  # until it accepts and has loaded its append-only file
            try:
                client.ping()
                break
            except REDIS_DOWN:
                if time.monotonic() > deadline or self._proc.poll() is not None:
                    raise
                time.sleep(0.05)
        client.close()

    def stop(self) -> None:
        if self._proc is not None:
            self._proc.terminate()  # SIGTERM: Redis fsyncs its append-only file and exits
            self._proc.wait(30)
            self._proc = None

    def restart(self, down_seconds: float) -> None:
        self.stop()
        time.sleep(down_seconds)
        self.start()


class Workers:
    """The `saq` worker processes: started, SIGKILLed and replaced, stopped gracefully."""

    def __init__(self, env: dict[str, str], workdir: Path) -> None:
        self._env = env
        self._workdir = workdir
        self.running: list[subprocess.Popen[bytes]] = []
        self.killed: list[int] = []

    def start(self) -> subprocess.Popen[bytes]:
        log = open(self._workdir / f"worker-{len(self.running) + len(self.killed)}.log", "wb")  # noqa: SIM115
        proc = subprocess.Popen(
            [sys.executable, "-m", "saq", "soak_worker.settings"],
            cwd=BENCHMARKS,
            env=self._env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        log.close()
        self.running.append(proc)
        return proc

    def kill_and_replace(self, index: int) -> None:
        proc = self.running.pop(index % len(self.running))
        proc.send_signal(signal.SIGKILL)
        proc.wait(30)
        self.killed.append(proc.pid)
        self.start()

    def stop(self, timeout: float = 60) -> list[int]:
        """SIGTERM every worker; the pids of those that stopped gracefully in time."""
        for proc in self.running:
            proc.send_signal(signal.SIGTERM)
        stopped = []
        for proc in self.running:
            try:
                proc.wait(timeout)
                stopped.append(proc.pid)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        return stopped
