"""The code blocks of the README and of the pages under docs/, read with Sybil's parsers.

One place that knows how an example is written down (docs/development.md, "Every example
runs"): a fenced block (```python, ```bash), a Python block whose first line names the
file it is (``# myapp/worker.py``), and the marker on the line before a block that cannot
run whole (``<!-- not-run: why -->``). The tests that run a recipe in processes of their
own read their block from here; tests/docs/test_examples.py runs all the others.
"""

from __future__ import annotations

import re
import shlex
import typing as t
from collections.abc import Iterable, Iterator
from pathlib import Path

from sybil import Document, Example, Region
from sybil.parsers.markdown.lexers import DirectiveInHTMLCommentLexer
from sybil.parsers.myst import CodeBlockParser

ROOT = Path(__file__).resolve().parents[2]
DOCS = ROOT / "docs"
LANGUAGES = ("python", "bash")
NOT_RUN = "not-run"
# A Python block that is a file: its first line is a comment naming its path.
FILE_COMMENT = re.compile(r"# (?P<path>[\w/]+\.py)\n")


def pages() -> list[Path]:
    """The README and every page of the site (not the build, not the pages' includes)."""
    found = sorted(p for p in DOCS.rglob("*.md") if "_build" not in p.relative_to(DOCS).parts)
    return [ROOT / "README.md", *found]


class Block(t.NamedTuple):
    page: Path
    line: int  # of the opening fence, 1-based
    language: str
    source: str
    not_run: str | None  # why, when the block is marked
    invisible: bool  # <!-- invisible-code-block: python -->: the test's, not the reader's

    @property
    def file(self) -> str | None:
        """The path a Python block says it is (``myapp/worker.py``), if it says one."""
        match = FILE_COMMENT.match(self.source)
        return match["path"] if match else None

    def command(self) -> tuple[dict[str, str], list[str]]:
        """A one-command shell block as its variables and its words."""
        words = shlex.split(self.source.replace("\\\n", " "), comments=True)
        variables = dict(word.split("=", 1) for word in words if re.match(r"\w+=", word))
        return variables, [word for word in words if not re.match(r"\w+=", word)]


class NotRunParser:
    """``<!-- not-run: why -->``: the next block is not run (test_examples checks it still
    compiles and imports, or names files that exist)."""

    def __init__(self, evaluator: t.Callable[[Example], str | None]) -> None:
        self.lexer = DirectiveInHTMLCommentLexer(directive=NOT_RUN, arguments=".+?")
        self.evaluator = evaluator

    def __call__(self, document: Document) -> Iterable[Region]:
        for region in self.lexer(document):
            reason = str(region.lexemes["arguments"]).strip()
            assert reason, f"{document.path}: a not-run marker must say why"
            yield Region(region.start, region.end, reason, self.evaluator)


def _not_run_marker(document: Document, start: int) -> str | None:
    """The reason of the marker on the last non-blank line before ``start``, if any."""
    before = document.text[:start].rstrip().rsplit("\n", 1)[-1].strip()
    match = re.fullmatch(r"<!--\s*not-run:\s*(.+?)\s*-->", before)
    return match[1] if match else None


def blocks(page: Path, language: str | None = None) -> Iterator[Block]:
    """The fenced blocks of ``page`` in ``language`` (python or bash), in page order."""
    found = []
    for lang in LANGUAGES if language is None else (language,):
        document = Document.parse(str(page), CodeBlockParser(lang))
        for example in document:
            marker = _not_run_marker(document, example.start)
            invisible = document.text.startswith("<!--", example.start)
            found.append(Block(page, example.line, lang, str(example.parsed), marker, invisible))
    yield from sorted(found, key=lambda block: block.line)


def block(page: str, language: str, containing: str) -> Block:
    """The one block of ``page`` (relative to the repository) that contains ``containing``."""
    found = [b for b in blocks(ROOT / page, language) if containing in b.source]
    assert len(found) == 1, f"{page}: {len(found)} {language} blocks contain {containing!r}"
    return found[0]
