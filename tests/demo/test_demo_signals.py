"""The demo on its embedded Redis, ended as people end it: `kill PID` (SIGTERM) or Ctrl-C
(SIGINT). Either way its redis-server child is gone and its temporary directory removed."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from tests.demo.test_end_to_end import _wait_until_serving
from tests.servers import free_port

pytestmark = pytest.mark.slow
ROOT = Path(__file__).resolve().parents[2]


def _children(pid: int) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:  # ended meanwhile
            continue
        # "pid (comm) state ppid ...": comm may hold spaces, so read after its ")".
        if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
            found.append(int(entry.name))
    return found


def _running(pid: int) -> bool:
    """True while ``pid`` is a live process (a zombie has ended)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_the_demo_stops_its_embedded_redis_and_removes_its_directory(
    signum: signal.Signals, tmp_path: Path
) -> None:
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OTEL_", "REDIS_URL"))}
    env.update({"PORT": str(port), "TMPDIR": str(tmp_path)})  # the demo's mkdtemp lands here
    with (tmp_path / "demo.log").open("wb") as log:
        demo = subprocess.Popen(
            [sys.executable, "-m", "examples.demo"], cwd=ROOT, env=env, stdout=log, stderr=log
        )
    redis: list[int] = []
    try:
        _wait_until_serving(f"http://127.0.0.1:{port}", [demo])
        redis = [pid for pid in _children(demo.pid) if "redis" in _command(pid)]
        (directory,) = tmp_path.glob("saq-demo-redis-*")
        assert len(redis) == 1 and _running(redis[0])

        os.kill(demo.pid, signum)
        returncode = demo.wait(30)

        log_text = (tmp_path / "demo.log").read_text(errors="replace")
        assert not _running(redis[0]), f"redis-server left running\n{log_text}"
        assert not directory.exists(), f"{directory} left behind\n{log_text}"
        # After the cleanup, ended as uvicorn ends on that signal (by the signal again, or
        # with status 0 when asyncio took the SIGINT), never with an error or a traceback.
        assert returncode in (-signum, 0)
        assert "Traceback" not in log_text
    finally:
        if demo.poll() is None:
            redis = redis or [pid for pid in _children(demo.pid) if "redis" in _command(pid)]
            demo.kill()
            demo.wait()
        for pid in redis:  # what the demo left behind, on the code this test catches
            if _running(pid):
                os.kill(pid, signal.SIGKILL)


def _command(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    except OSError:
        return ""
