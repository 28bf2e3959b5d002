"""Build the sdist and the wheel, check them, and run the wheel alone in a fresh venv.

``python -m tests.package.check_wheel WORKDIR`` (tox -e package; CI runs it once). The
test suite imports the source tree; this proves what users install works without it:

1. ``python -m build`` makes both; ``twine check --strict`` checks their metadata;
2. the wheel holds every module and every data file under ``src/`` (templates, ``py.typed``,
   whatever is added later), no ``opentelemetry/__init__.py`` (the namespace belongs to no
   one), and the ``opentelemetry_instrumentor`` entry point;
3. a fresh venv gets the wheel with its ``debug-toolbar`` extra, ``saq[redis]`` and the SDK,
   then ``roundtrip.py`` runs from a directory outside the source tree against a real
   redis-server: enqueue, a real worker, the spans, the panel's import.
"""

from __future__ import annotations

import configparser
import subprocess
import sys
import tarfile
import venv
import zipfile
from pathlib import Path

from tests.servers import RedisServer

ROOT = Path(__file__).resolve().parents[2]
SRC = ROOT / "src"
ENTRY_POINT = "opentelemetry.instrumentation.saq:SAQInstrumentor"


def run(*command: str | Path, cwd: Path = ROOT) -> None:
    print("+", " ".join(map(str, command)), flush=True)
    subprocess.run([str(part) for part in command], cwd=cwd, check=True)


def package_files() -> set[str]:
    """Every file under src/ that belongs in the wheel, as a path inside it."""
    return {
        path.relative_to(SRC).as_posix()
        for path in SRC.rglob("*")
        if path.is_file() and "__pycache__" not in path.parts and path.suffix != ".pyc"
    }


def check_wheel(wheel: Path) -> None:
    with zipfile.ZipFile(wheel) as archive:
        names = set(archive.namelist())
        (entry_points,) = [n for n in names if n.endswith(".dist-info/entry_points.txt")]
        entry_points_text = archive.read(entry_points).decode()
    missing = package_files() - names
    assert not missing, f"not in the wheel: {sorted(missing)}"
    assert "opentelemetry/instrumentation/saq/py.typed" in names
    assert "opentelemetry/__init__.py" not in names, "the namespace package must stay empty"
    assert "opentelemetry/instrumentation/__init__.py" not in names
    ini = configparser.ConfigParser()
    ini.read_string(entry_points_text)
    assert ini["opentelemetry_instrumentor"]["saq"] == ENTRY_POINT
    print(f"wheel: {len(names)} files, every file under src/ among them", flush=True)


def check_sdist(sdist: Path) -> None:
    with tarfile.open(sdist) as archive:
        names = {name.split("/", 1)[1] for name in archive.getnames() if "/" in name}
    expected = {f"src/{name}" for name in package_files()} | {
        "pyproject.toml",
        "README.md",
        "CHANGELOG.md",
        "docs/index.md",  # the tests run the site's examples
    }
    missing = expected - names
    assert not missing, f"not in the sdist: {sorted(missing)}"


def main(workdir: Path) -> None:
    dist = workdir / "dist"
    run(sys.executable, "-m", "build", "--outdir", dist, ROOT)
    (wheel,) = dist.glob("*.whl")
    (sdist,) = dist.glob("*.tar.gz")
    run(sys.executable, "-m", "twine", "check", "--strict", wheel, sdist)
    check_wheel(wheel)
    check_sdist(sdist)

    env = workdir / "venv"
    venv.create(env, clear=True, with_pip=True)
    python = env / "bin" / "python"
    run(python, "-m", "pip", "install", "-q", f"{wheel}[debug-toolbar]", "saq[redis]")

    outside = workdir / "elsewhere"  # not the source tree: imports come from the wheel
    outside.mkdir(exist_ok=True)
    redis = RedisServer()
    redis.start()
    try:
        run(python, "-I", Path(__file__).with_name("roundtrip.py"), redis.url, cwd=outside)
    finally:
        redis.stop()


if __name__ == "__main__":
    main(Path(sys.argv[1]).resolve())
