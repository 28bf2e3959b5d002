"""What workers say outside any attempt: their start-up, SAQ's machinery, crashes between jobs.

The job log capture (``job_logs``) keeps a line under the span that was current; a line
written with no span current has nowhere to go there. This module keeps those of them a
worker wrote, in one ring bounded in bytes (the oldest line goes first), for the workers
page:

- in this process, through the same hook on ``Logger.callHandlers``: a line written by
  SAQ's ``saq`` loggers, or from inside a SAQ ``Worker``'s own code (its start-up hooks,
  its upkeep, the end of a job after its attempt: "Failed to run after process hook"),
  told by walking the logging call's stack to a frame of SAQ's ``worker.py``;
- from workers in other processes, through the OTLP logs receiver: records with no
  trace, kept by the resource that sent them (``service.name``, ``service.instance.id``).

Job arguments never stay: SAQ prints a job with its arguments ("Error processing job
Job<function: f, kwargs: {...}, ...>"), so every ``Job<...>`` in a line is cut down to
its function (``redact``).
"""

from __future__ import annotations

import dataclasses
import logging
import os
import re
import sys
import threading
import typing as t
from collections import deque

from opentelemetry.instrumentation.saq import _queues
from opentelemetry.instrumentation.saq.debug_toolbar.panel import job_logs

__all__ = ["DEFAULT_MAX_BYTES", "WorkerLine", "WorkerLogStore", "worker_log_store"]

_LINE_BYTES = 200  # the line's object and its slot in the ring (see job_logs.line_bytes)
_FIELDS = ("source", "queue", "time_ns", "level", "logger", "message", "exception")
_MAX_STACK = 200  # frames walked to find the worker that logged


@dataclasses.dataclass(frozen=True)
class WorkerLine:
    """One line a worker wrote outside any attempt."""

    source: str
    """Who wrote it ("worker <id>" in this process, or the remote resource's name)."""
    queue: str | None
    time_ns: int
    level: str
    level_number: int
    logger: str
    message: str
    exception: str | None = None

    def as_dict(self) -> dict[str, t.Any]:
        """The line as the workers page's JSON API sends it."""
        return {
            "source": self.source,
            "queue": self.queue,
            "time_ns": self.time_ns,
            "level": self.level,
            "logger": self.logger,
            "message": self.message,
            "exception": self.exception,
        }


def line_bytes(line: WorkerLine) -> int:
    """The memory a line holds, in bytes, as ``job_logs.line_bytes`` counts it."""
    return _LINE_BYTES + sum(sys.getsizeof(getattr(line, name)) for name in _FIELDS)


DEFAULT_MAX_BYTES = 2 * 1024 * 1024
"""The default bound on the memory the kept lines hold, in bytes."""


class WorkerLogStore:
    """The most recent lines, holding at most ``max_bytes`` bytes; thread-safe."""

    def __init__(self, max_bytes: int = DEFAULT_MAX_BYTES) -> None:
        self.max_bytes = max_bytes
        self.held_bytes = 0
        self.dropped_lines = 0
        """Lines that left the ring for newer ones, or were too large to keep at all."""
        self._lines: deque[tuple[WorkerLine, int]] = deque()
        self._lock = threading.Lock()

    def add(self, line: WorkerLine) -> bool:
        """Keep ``line``, dropping the oldest lines to stay within ``max_bytes``; says
        whether it was kept (a line larger than the bound alone is not)."""
        size = line_bytes(line)
        with self._lock:
            if size > self.max_bytes:
                self.dropped_lines += 1
                return False
            self._lines.append((line, size))
            self.held_bytes += size
            while self.held_bytes > self.max_bytes:
                _, gone = self._lines.popleft()
                self.held_bytes -= gone
                self.dropped_lines += 1
            return True

    def lines(self) -> list[WorkerLine]:
        """Every line kept, oldest first (a copy)."""
        with self._lock:
            found = [line for line, _ in self._lines]
        found.sort(key=lambda line: line.time_ns)
        return found

    def clear(self) -> None:
        """Forget every line."""
        with self._lock:
            self._lines.clear()
            self.held_bytes = 0


_store = WorkerLogStore()


def worker_log_store() -> WorkerLogStore:
    """The process's one WorkerLogStore, which the workers page reads."""
    return _store


# "Job<function: f, kwargs: {...}, queue: q, key: k, ...>": SAQ's Job.info() (0.20 writes
# "Job<function=f, kwargs={...}, ...>"), whose kwargs, result and error may hold anything.
# The function name is an identifier; the rest goes, from the first "Job<" to the text's
# last ">" (a repr inside the arguments cannot end the cut early), or to the end when the
# text was clipped before its job's end. Linear: one find, one rfind.
_FUNCTION = re.compile(r"function(?:: |=)([\w.]{1,200})")


def redact(text: str) -> str:
    """``text`` with every job SAQ printed cut down to its function (no arguments)."""
    start = text.find("Job<")
    if start < 0:
        return text
    end = text.rfind(">")
    named = _FUNCTION.match(text, start + 4)
    kept = (
        f"Job<function: {named.group(1)}, arguments not kept>"
        if named
        else "Job<arguments not kept>"
    )
    # A text clipped short ("…", as job_logs.clip ends it) lost its job's end: the ">"
    # found may be one inside the arguments, so nothing after the job's start is kept.
    whole = end > start and not text.endswith("…")
    return text[:start] + kept + (text[end + 1 :] if whole else "")


def _worker_file() -> str | None:
    try:
        import saq.worker
    except Exception:  # pragma: no cover - SAQ is a dependency of the panel's users
        return None
    return os.path.abspath(saq.worker.__file__ or "")


_WORKER_FILE = _worker_file()


def _worker_of(frame: t.Any) -> t.Any:
    """The SAQ Worker whose code is on the stack below ``frame``, or None. Only SAQ's own
    frames are looked into (their ``self``, a free variable of its upkeep's loop too)."""
    depth = 0
    while frame is not None and depth < _MAX_STACK:
        if frame.f_code.co_filename == _WORKER_FILE:
            candidate = frame.f_locals.get("self")
            if candidate is not None and hasattr(candidate, "queue") and hasattr(candidate, "id"):
                return candidate
        frame = frame.f_back
        depth += 1
    return None


def keep_outside(record: logging.LogRecord) -> bool:
    """Keep ``record``, written with no span current, if a worker wrote it (SAQ's loggers,
    or code a SAQ Worker runs); says whether it did; never raises."""
    try:
        worker = _worker_of(sys._getframe(1)) if _queues.has_workers() else None
        if worker is None and not job_logs.is_skipped(record.name):
            return False
        line = job_logs.to_line(record, 0, 0, redact)  # before the clip cuts a job's end
        queue = getattr(getattr(worker, "queue", None), "name", None)
        return _store.add(
            WorkerLine(
                source=f"worker {worker.id}" if worker is not None else "SAQ in this process",
                queue=str(queue) if queue is not None else None,
                time_ns=line.time_ns,
                level=line.level,
                level_number=line.level_number,
                logger=line.logger,
                message=line.message,
                exception=line.exception,
            )
        )
    except Exception:
        return False


def resource_name(attributes: t.Mapping[str, t.Any]) -> str:
    """How a remote resource is shown: 'myapp-worker · instance 7f3a' (service.name and
    service.instance.id, when it has them)."""
    name = str(attributes.get("service.name") or "unknown service")
    instance = attributes.get("service.instance.id")
    return job_logs.clip(f"{name} · instance {instance}" if instance else name, 300)


def add_received(lines: t.Iterable[job_logs.LogLine], source: str) -> int:
    """Keep lines a remote resource sent with no trace; returns how many were kept."""
    kept = 0
    for line in lines:
        kept += _store.add(
            WorkerLine(
                source=source,
                queue=None,
                time_ns=line.time_ns,
                level=line.level,
                level_number=line.level_number,
                logger=line.logger,
                message=redact(line.message),
                exception=redact(line.exception) if line.exception else None,
            )
        )
    return kept
