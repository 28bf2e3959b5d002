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

__all__ = ["CallerLocation", "EnqueuedJob", "caller_location", "listen", "listener", "stop"]


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


# Frames from these directories are SAQ's, ours, or asyncio's; the first frame outside
# them is the user's code that enqueued the job.
@functools.cache
def _skipped_dirs() -> tuple[str, ...]:
    import asyncio
    import contextlib

    import saq

    packages = [__file__, saq.__file__, asyncio.__file__]
    dirs = [os.path.dirname(os.path.abspath(path or "")) + os.sep for path in packages]
    dirs.append(os.path.abspath(contextlib.__file__ or ""))
    return tuple(dirs)


def caller_location(frame: FrameType | None = None) -> CallerLocation | None:
    """The first frame on the stack that is not SAQ's, ours or asyncio's."""
    skipped = _skipped_dirs()
    current: FrameType | None = frame if frame is not None else sys._getframe(1)
    while current is not None:
        filename = current.f_code.co_filename
        if not filename.startswith(skipped) and not filename.startswith("<"):
            code = current.f_code
            if sys.version_info >= (3, 11):
                name = code.co_qualname
            else:  # co_qualname is new in 3.11
                name = code.co_name
            return CallerLocation(filename, current.f_lineno, name)
        current = current.f_back
    return None
