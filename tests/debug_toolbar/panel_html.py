"""Reading the panel as the toolbar's request page renders it (HTML, not JSON)."""

from __future__ import annotations

import re
import typing as t

_ROW = re.compile(
    r'<tr class="saq-job" data-status="([^"]*)" data-function="([^"]*)">(.*?)</tr>'
    r'(?:\s*<tr class="saq-errors">(.*?)</tr>)?',
    re.S,
)
_ATTEMPT = re.compile(
    r'<div class="saq-attempt" data-attempt="(\d+)"><b>attempt \d+</b> (.*?)</div>', re.S
)


class Row(t.NamedTuple):
    status: str
    function: str
    cells: str
    attempts: list[tuple[int, str]]  # (attempt, error as escaped HTML)


def saq_section(page: str) -> str:
    """The SAQ panel's part of the toolbar's request page."""
    start = page.index('id="panel-SAQPanel"')
    end = page.find('<div class="panel" id="panel-', start + 1)
    return page[start : end if end != -1 else len(page)]


def rows(section: str) -> list[Row]:
    return [
        Row(status, function, cells, [(int(n), e) for n, e in _ATTEMPT.findall(errors or "")])
        for status, function, cells, errors in _ROW.findall(section)
    ]


def generic_keys(section: str) -> list[str]:
    """The keys of the toolbar's generic key/value table, in the order shown."""
    return re.findall(r"<td class='key'>([^<]*)</td>", section)
