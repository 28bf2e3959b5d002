"""The documentation's screenshots are made by docs/screenshots.py; this runs it, so they stay true.

The pictures are written to a temporary directory (pixels differ run to run: times, ids);
what each one shows is checked, the checked-in files must be pictures of the same size, and
each page shows its picture at its real size: ``:width:`` is the file's width / SCALE, within
the theme's content column.
"""

from __future__ import annotations

import re
import struct
import sys
from pathlib import Path

from opentelemetry.instrumentation.saq import SAQInstrumentor

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "docs"))

import screenshots  # noqa: E402

# The page that shows each picture (README.md shows trace-page.png too; GitHub scales it).
PAGES = {
    "panel-right.png": "docs/toolbar/panel.md",
    "panel-bottom.png": "docs/toolbar/panel.md",
    "trace-page.png": "docs/toolbar/trace-pages.md",
}


def png_size(path: Path) -> tuple[int, int]:
    header = path.read_bytes()[:24]
    assert header[:8] == b"\x89PNG\r\n\x1a\n", path
    width, height = struct.unpack(">II", header[16:24])
    return width, height


def test_the_screenshot_script_shows_what_the_readme_says(tmp_path: Path) -> None:
    try:
        facts = screenshots.take(tmp_path)
    finally:
        SAQInstrumentor().uninstrument()  # the demo instruments SAQ for the whole process

    right, bottom = facts["panel-right.png"], facts["panel-bottom.png"]
    for dock in (right, bottom):
        assert dock["rows"] == 4  # the /everything request's jobs, one row each
        assert dock["failed_attempts"] == 2  # the CRM sync's first try and the invoice
        assert str(dock["link"]).startswith("/_debug_toolbar/saq/")
        assert dock["broken_ids"] == []
        assert not dock["page_scrolls_sideways"] and not dock["panel_scrolls_sideways"]
        assert not dock["panel_scrolls_down"]  # the picture shows all four jobs
    assert right["width"] <= 400 and not right["header_shown"]  # stacked lines
    assert bottom["header_shown"]  # a table with its header
    trace = facts["trace-page.png"]
    assert trace["first_tick"] == "0 ms"
    assert trace["gaps"] and all(gap.endswith(" idle") for gap in trace["gaps"])
    assert trace["request_spans"] >= 1 and trace["job_spans"] >= 1
    assert not trace["page_scrolls_sideways"]

    for name in facts:
        fresh, committed = png_size(tmp_path / name), png_size(ROOT / "docs" / name)
        assert fresh[0] == committed[0], name
        if name != "trace-page.png":  # a full-page picture's height follows its rows
            assert fresh == committed, name


def declared_width(page: str, name: str) -> int:
    """The ``:width:`` of the ``{image}`` directive that shows ``name`` on ``page``."""
    text = (ROOT / page).read_text()
    found = re.search(
        r"```\{image\} \.\./" + re.escape(name) + r"\n(?:(?!```).*\n)*?:width: (\d+)px\n", text
    )
    assert found, f"{page} shows no {name} with a :width: in px"
    return int(found[1])


def test_each_page_shows_its_screenshot_at_its_real_size() -> None:
    """Not scaled down into the column (blurred text), nor up: one CSS px per SCALE file px."""
    for name, page in PAGES.items():
        width, _ = png_size(ROOT / "docs" / name)
        assert width % screenshots.SCALE == 0, name
        shown = declared_width(page, name)
        assert shown == width // screenshots.SCALE, (name, shown, width)
        assert shown <= screenshots.COLUMN, (name, shown)
