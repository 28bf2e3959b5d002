"""A Python traceback as the trace page shows it: the exception first, library frames folded.

A job's traceback runs through SAQ's worker and asyncio before it reaches the job's own
code, and its last line, the exception, is what a reader looks for first: in a box of
fixed height scrolled to the top, it was out of sight. ``parse`` reads the text the
standard library formats (chained exceptions included) into parts whose runs of library
frames (site-packages, the standard library) the page folds; the innermost frame, where
the exception was raised, stays in sight wherever it is. Text of another shape (an
exception group, a traceback cut by a size limit) is not guessed at: ``parse`` answers
None and the page shows it as it came.
"""

from __future__ import annotations

import re
import typing as t

HEADING = "Traceback (most recent call last):"
_CHAINS = re.compile(
    r"\n\n(The above exception was the direct cause of the following exception:"
    r"|During handling of the above exception, another exception occurred:)\n\n"
)
_FRAME = re.compile(r'  File "([^"]*)", line \d+')
_INSTALLED = re.compile(r"[/\\](?:site|dist)-packages[/\\]([^/\\]+)")
_STDLIB = re.compile(r"[/\\]lib[/\\]python\d+(?:\.\d+)?t?[/\\]([^/\\]+)")
_FROZEN = re.compile(r"<frozen ([^.>]+)")
_GROUP = re.compile(r"^ *[|+]", re.M)  # an exception group's nested tracebacks


class Group(t.NamedTuple):
    """Consecutive frames: the user's own (``library`` empty), or of the named libraries."""

    library: list[str]
    frames: list[str]

    @property
    def text(self) -> str:
        return "\n".join(self.frames)


class Part(t.NamedTuple):
    """One exception of a chain: how it is joined to the one before, its frames, itself."""

    heading: str
    groups: list[Group]
    exception: str


class Traceback(t.NamedTuple):
    exception: str
    """The last exception's lines (``type: message``): what is shown first."""
    parts: list[Part]


def parse(text: str | None) -> Traceback | None:
    """The traceback ``text`` in parts, or None when it is not of the usual shape."""
    if not text or _GROUP.search(text):
        return None
    pieces = _CHAINS.split(text.strip("\n"))
    parts = []
    for index in range(0, len(pieces), 2):
        joined_by = pieces[index - 1] if index else ""
        part = _part(pieces[index], joined_by)
        if part is None:
            return None
        parts.append(part)
    if not parts or not parts[-1].exception:
        return None
    return Traceback(parts[-1].exception, parts)


def library(frame: str) -> str | None:
    """The package a frame's file belongs to, when it is not the user's code."""
    match = _FRAME.match(frame)
    path = match.group(1) if match else ""
    found = _INSTALLED.search(path) or _STDLIB.search(path) or _FROZEN.match(path)
    return found.group(1).removesuffix(".py") if found else None


def _part(text: str, heading: str) -> Part | None:
    lines = text.split("\n")
    frames: list[str] = []
    if lines[0] == HEADING:
        lines.pop(0)
        while lines and lines[0].startswith("  "):
            line = lines.pop(0)
            if _FRAME.match(line):
                frames.append(line)
            elif frames:  # its source line, carets, "[Previous line repeated …]"
                frames[-1] += "\n" + line
            else:
                return None
        heading = f"{heading}\n\n{HEADING}" if heading else HEADING
    exception = "\n".join(lines).rstrip()
    return Part(heading, _grouped(frames), exception)


def _grouped(frames: list[str]) -> list[Group]:
    groups: list[Group] = []
    for index, frame in enumerate(frames):
        # The innermost frame raised the exception: in sight, whoever's code it is.
        package = library(frame) if index < len(frames) - 1 else None
        last = groups[-1] if groups else None
        if last is not None and bool(last.library) == bool(package):
            last.frames.append(frame)
            if package and package not in last.library:
                last.library.append(package)
        else:
            groups.append(Group([package] if package else [], [frame]))
    return groups
