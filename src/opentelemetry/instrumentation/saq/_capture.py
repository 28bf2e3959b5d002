"""What a listener (the debug toolbar's panel) learns about each enqueue.

Nothing here runs unless a listener is installed for the current context, or the user
asked for caller locations: the producer asks ``listener()`` once per enqueue, a
ContextVar read.
"""

from __future__ import annotations

import dataclasses
import functools
import os
import sys
import typing as t
from contextvars import ContextVar, Token

if t.TYPE_CHECKING:
    from types import FrameType

    from opentelemetry.context import Context
    from saq.job import Job
    from saq.queue import Queue

__all__ = [
    "CallerLocation",
    "EnqueuedJob",
    "caller_location",
    "end_map",
    "forget_caller",
    "in_map",
    "listen",
    "listener",
    "remember_caller",
    "start_map",
    "stop",
]


@dataclasses.dataclass(frozen=True)
class CallerLocation:
    """Where in the user's code an enqueue was called."""

    file: str
    line: int
    function: str


@dataclasses.dataclass
class EnqueuedJob:
    """One enqueue, as the producer saw it."""

    queue: Queue
    job: Job
    trace_id: int
    span_id: int
    duplicate: bool
    caller: CallerLocation | None
    duration_ns: int = 0
    """How long the enqueue took, SAQ's round trip included."""
    started_ns: int = 0
    """When the enqueue was called (epoch ns): concurrent enqueues overlap, awaited ones not."""
    in_map: bool = False
    """Enqueued by ``Queue.map`` (or ``apply``), not by a call of its own."""


class Listener(t.Protocol):
    """Told of every enqueue in the context it listens to."""

    def __call__(self, enqueued: EnqueuedJob) -> None: ...

    def parent(self) -> Context | None:
        """The context a send span starts in when no span is current, or None."""


_LISTENER: ContextVar[Listener | None] = ContextVar("saq_enqueue_listener", default=None)


def listen(listener: Listener) -> Token[Listener | None]:
    """Tell ``listener`` of every enqueue in this context (and tasks it starts)."""
    return _LISTENER.set(listener)


def stop(token: Token[Listener | None]) -> None:
    _LISTENER.reset(token)


def listener() -> Listener | None:
    return _LISTENER.get()


# Frames from these directories are SAQ's, ours, asyncio's or contextlib's; the first
# frame outside them is the user's code that enqueued the job.
@functools.cache
def _skipped_dirs() -> tuple[str, ...]:
    import asyncio
    import contextlib

    import saq

    packages = [__file__, saq.__file__, asyncio.__file__]
    dirs = [os.path.dirname(os.path.abspath(path or "")) + os.sep for path in packages]
    dirs.append(os.path.abspath(contextlib.__file__ or ""))
    return tuple(dirs)


@functools.cache
def _event_loop_files() -> tuple[str, ...]:
    """Where a task's outermost frame returns to: the loop, not the task's creator."""
    import asyncio

    folder = os.path.dirname(os.path.abspath(asyncio.__file__ or "")) + os.sep
    return tuple(folder + name for name in ("events.py", "base_events.py", "runners.py"))


# Set by Queue.map (and apply, which calls it) for the enqueues it fans out to tasks:
# their stacks end at the event loop, and the user's frame is only known before.
_CALLER: ContextVar[CallerLocation | None] = ContextVar("saq_enqueue_caller", default=None)


def remember_caller(location: CallerLocation | None) -> Token[CallerLocation | None]:
    """Use ``location`` for every enqueue in this context (and tasks it starts)."""
    return _CALLER.set(location)


def forget_caller(token: Token[CallerLocation | None]) -> None:
    _CALLER.reset(token)


# Set by Queue.map for the enqueues it fans out: the panel tells them from one-by-one calls.
_IN_MAP: ContextVar[bool] = ContextVar("saq_enqueue_in_map", default=False)


def start_map() -> Token[bool]:
    return _IN_MAP.set(True)


def end_map(token: Token[bool]) -> None:
    _IN_MAP.reset(token)


def in_map() -> bool:
    return _IN_MAP.get()


def caller_location(frame: FrameType | None = None) -> CallerLocation | None:
    """Where the user's code called SAQ: the remembered place, or the first frame on the
    stack that is not SAQ's, ours, asyncio's or contextlib's.

    None when the stack reaches the event loop first (an enqueue in a task of its own):
    the place is not known, and the loop's caller (a server's ``run``) is not it.
    """
    remembered = _CALLER.get()
    if remembered is not None:
        return remembered
    skipped = _skipped_dirs()
    loop_files = _event_loop_files()
    current: FrameType | None = frame if frame is not None else sys._getframe(1)
    while current is not None:
        filename = current.f_code.co_filename
        if filename.startswith(loop_files):
            return None
        if not filename.startswith(skipped) and not filename.startswith("<"):
            return CallerLocation(filename, current.f_lineno, _qualified_name(current))
        current = current.f_back
    return None


def _qualified_name(frame: FrameType) -> str:
    """``module.Class.method``: code.function.name as the conventions define it."""
    code = frame.f_code
    name: str = getattr(code, "co_qualname", code.co_name)  # co_qualname is new in 3.11
    module = frame.f_globals.get("__name__")
    return f"{module}.{name}" if isinstance(module, str) and module else name
