"""The project's own files, read for the tests that check they agree with each other."""

from __future__ import annotations

import sys
import typing as t
from pathlib import Path

if sys.version_info >= (3, 11):
    import tomllib
else:  # tomllib is new in 3.11
    import tomli as tomllib

ROOT = Path(__file__).resolve().parents[2]


def pyproject() -> dict[str, t.Any]:
    return tomllib.loads((ROOT / "pyproject.toml").read_text())
