"""The built wheel carries the panel's templates and the dock script (package data)."""

from __future__ import annotations

import zipfile
from pathlib import Path

from hatchling.builders.wheel import WheelBuilder

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = "opentelemetry/instrumentation/saq/debug_toolbar"


def test_the_wheel_ships_the_templates_and_the_dock_script(tmp_path: Path) -> None:
    (wheel,) = WheelBuilder(str(ROOT)).build(directory=str(tmp_path), versions=["standard"])
    names = set(zipfile.ZipFile(wheel).namelist())
    sources = ROOT / "src" / PACKAGE
    shipped = [p.relative_to(sources).as_posix() for p in sources.glob("templates/*.html")]
    assert {"templates/panel.html", "templates/trace.html"} <= set(shipped)
    for name in [*shipped, "static/dock.js"]:
        assert f"{PACKAGE}/{name}" in names
