"""Real Redis and Postgres servers for the tests, started on free ports.

The servers are the Debian packages that .ci/run installs. A missing server fails the
test run instead of skipping it: a skip would hide exactly what CI must prove.
"""

from __future__ import annotations

import contextlib
import glob
import os
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _wait_for_port(port: int, proc: subprocess.Popen[bytes], timeout: float = 20) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited with {proc.returncode}")
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 0.2):
            return
        time.sleep(0.05)
    raise RuntimeError(f"server on port {port} did not start in {timeout}s")


class RedisServer:
    """A throwaway redis-server: no persistence, its own port."""

    def __init__(self) -> None:
        binary = shutil.which("redis-server")
        if binary is None:
            raise RuntimeError(
                "redis-server is not installed: run .ci/run or apt-get install redis-server"
            )
        self.port = free_port()
        self.url = f"redis://127.0.0.1:{self.port}"
        self._binary = binary
        self._proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        self._proc = subprocess.Popen(
            [
                self._binary,
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
                "--daemonize",
                "no",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        _wait_for_port(self.port, self._proc)

    def signal(self, signum: int) -> None:
        """Send ``signum`` to the server (SIGSTOP: a broker that hangs, SIGCONT: back)."""
        assert self._proc is not None
        self._proc.send_signal(signum)

    def stop(self) -> None:
        if self._proc is not None:
            self._proc.terminate()
            self._proc.wait(10)
            self._proc = None


def _pg_bin(name: str) -> str:
    found = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"))
    if not found:
        raise RuntimeError("postgresql is not installed: run .ci/run or apt-get install postgresql")
    return found[-1]


@contextlib.contextmanager
def postgres_server() -> Iterator[str]:
    """A throwaway Postgres cluster in a temporary directory; yields its URL.

    Postgres refuses to run as root, so as root the cluster runs as the `postgres` user.
    """
    port = free_port()
    root = os.geteuid() == 0
    workdir = tempfile.mkdtemp(prefix="saq-otel-pg-")
    datadir = os.path.join(workdir, "data")
    prefix = ["runuser", "-u", "postgres", "--"] if root else []
    if root:
        shutil.chown(workdir, "postgres", "postgres")
    subprocess.run(
        [*prefix, _pg_bin("initdb"), "-D", datadir, "-U", "postgres", "-A", "trust", "--no-sync"],
        check=True,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    proc = subprocess.Popen(
        [
            *prefix,
            _pg_bin("postgres"),
            "-D",
            datadir,
            "-p",
            str(port),
            "-k",
            workdir,
            "-c",
            "listen_addresses=127.0.0.1",
            "-c",
            "fsync=off",
            "-c",
            "max_connections=200",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        _wait_for_port(port, proc, timeout=30)
        yield f"postgresql://postgres@127.0.0.1:{port}/postgres"
    finally:
        proc.terminate()
        proc.wait(20)
        shutil.rmtree(workdir, ignore_errors=True)
