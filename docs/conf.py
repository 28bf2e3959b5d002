"""Sphinx configuration: MyST Markdown pages, the API reference from docstrings.

Built strictly (warnings are errors, every reference must resolve) by `tox -e docs`:
    sphinx-build -W --keep-going -n -b html docs docs/_build/html
"""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from opentelemetry.instrumentation.saq.version import __version__  # noqa: E402

project = "opentelemetry-instrumentation-saq"
author = "opentelemetry-instrumentation-saq developers"
copyright = "the opentelemetry-instrumentation-saq developers"
release = version = __version__

extensions = [
    "myst_parser",
    "sphinx.ext.autodoc",
    "sphinx.ext.intersphinx",
    "sphinx.ext.napoleon",
    "sphinx.ext.viewcode",
]
source_suffix = {".md": "markdown"}
root_doc = "index"
exclude_patterns = ["_build", "screenshots.py", "conftest.py"]

myst_enable_extensions = ["colon_fence", "deflist", "fieldlist"]
myst_heading_anchors = 3

nitpicky = True
autodoc_typehints = "description"
autodoc_member_order = "bysource"
autodoc_default_options = {"members": True, "show-inheritance": False}

# No network in the build: intersphinx only from inventories shipped with the packages
# (none today), so external names are written as plain text, not cross-references.
intersphinx_mapping: dict[str, tuple[str, str | None]] = {}

html_theme = "furo"
html_title = "opentelemetry-instrumentation-saq"

# Names of other projects in signatures and type hints (no network, so no intersphinx):
# written as text, not links. Type hints imported under TYPE_CHECKING reach autodoc as
# bare names (``RequestContext``) or with the module's alias (``t.Any``).
nitpick_ignore_regex = [
    ("py:class", r"(opentelemetry\.(trace|metrics|context|sdk|util)|saq|litestar)\..*"),
    ("py:class", r"opentelemetry\.instrumentation\.instrumentor\.BaseInstrumentor"),
    ("py:class", r"(debug_toolbar|starlette|logging|config\.app|t)\..*"),
    (
        "py:class",
        r"AppConfig|Context|DebugToolbar|DebugToolbarConfig|Part|Path|ReadableSpan"
        r"|RequestContext|Route|Router|Span|Starlette",
    ),
]
