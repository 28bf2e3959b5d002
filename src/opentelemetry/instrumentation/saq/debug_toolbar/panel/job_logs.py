"""The log records jobs write, kept by the span that was current, for the panel and pages.

Two doors lead in. In the app's process, ``capture()`` hooks ``logging`` (below, why
not with a handler on the root logger) to keep each record written while a span is
current (a job's attempt, or a span the job started), with its time, level, logger,
message and exception. From workers in other processes, the OTLP/HTTP logs receiver
(``otlp_logs``) hands over the records the SDK's log exporter sent. Both end in one
bounded ``LogStore``.

The capture sees only what the user's logging configuration lets through (the loggers'
levels and filters) and changes nothing of it: every line still goes where it went. It
costs one ContextVar read for a record written with no span current (and, while a SAQ
worker was made in this process, a walk up the stack: see ``worker_logs``), and it never
raises into the code that logged. SAQ's own lines are left out: they print the job's
arguments (which may hold secrets), and the attempt's span already tells its outcome.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import sys
import threading
import traceback
import typing as t
import weakref
from collections import OrderedDict

from opentelemetry import trace

if t.TYPE_CHECKING:
    from opentelemetry.instrumentation.saq.disk_store import DiskStore

__all__ = ["LogLine", "LogStore", "capture", "keep", "log_store", "release"]

MAX_MESSAGE_CHARS = 4_000
MAX_EXCEPTION_CHARS = 16_000
SKIPPED_LOGGERS = ("saq",)
"""Loggers whose lines are not kept, with their children ("saq.queue", ...)."""


def is_skipped(logger: str) -> bool:
    return any(logger == name or logger.startswith(name + ".") for name in SKIPPED_LOGGERS)


@dataclasses.dataclass(frozen=True)
class LogLine:
    """One log record, as the pages show it."""

    trace_id: int
    span_id: int
    time_ns: int
    level: str
    level_number: int
    logger: str
    message: str
    exception: str | None = None
    service: str | None = None
    """The service.name of the process that sent the line, or None when written in this one."""

    def as_dict(self) -> dict[str, t.Any]:
        """The line as the pages' JSON API sends it (ids in hex)."""
        return {
            "span_id": f"{self.span_id:016x}",
            "time_ns": self.time_ns,
            "level": self.level,
            "logger": self.logger,
            "message": self.message,
            "exception": self.exception,
            "service": self.service,
        }


def encode_line(line: LogLine) -> tuple[int, str, str]:
    """The line as the disk store keeps it: (trace id, a digest of it, JSON)."""
    body = json.dumps(dataclasses.asdict(line) | {"trace_id": None}, separators=(",", ":"))
    return line.trace_id, hashlib.blake2b(body.encode(), digest_size=12).hexdigest(), body


def _read_line(trace_id: int, body: str) -> LogLine | None:
    """A line ``encode_line`` wrote, or None for anything else (the file is not ours only)."""
    try:
        fields = json.loads(body)
        line = LogLine(**(fields | {"trace_id": trace_id}))
        ok = isinstance(line.message, str) and isinstance(line.time_ns, int)
        return line if ok and isinstance(line.span_id, int) else None
    except Exception:
        return None


def clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


DEFAULT_MAX_BYTES = 16 * 1024 * 1024
"""The default bound on the memory the kept lines hold, in bytes."""
# A line's object and its slot in its trace's list, measured with tracemalloc (CPython
# 3.11); its fields are counted with sys.getsizeof. And a trace's entries in the index.
_LINE_BYTES = 200
_TRACE_BYTES = 300
_FIELDS = tuple(field.name for field in dataclasses.fields(LogLine))


def line_bytes(line: LogLine) -> int:
    """The memory a line holds, in bytes: every field as ``sys.getsizeof`` counts it (a
    message of 4,000 four-byte characters holds 16 KB), and the line itself."""
    return _LINE_BYTES + sum(map(sys.getsizeof, map(line.__getattribute__, _FIELDS)))


class LogStore:
    """At most ``max_lines_per_trace`` lines for each of the ``max_traces`` most recent
    traces, holding at most ``max_bytes`` bytes in all (the oldest trace goes first);
    thread-safe, as records come from any thread."""

    def __init__(
        self,
        max_traces: int = 1000,
        max_lines_per_trace: int = 500,
        max_bytes: int = DEFAULT_MAX_BYTES,
    ) -> None:
        self.max_traces = max_traces
        self.max_lines_per_trace = max_lines_per_trace
        self.max_bytes = max_bytes
        self._traces: OrderedDict[int, list[LogLine]] = OrderedDict()
        self._bytes: dict[int, int] = {}  # held per trace
        self.held_bytes = 0
        """The memory the kept lines hold, in bytes (see ``line_bytes``)."""
        self._lock = threading.Lock()
        self._disk: DiskStore | None = None
        self.dropped_lines = 0
        """Lines not kept because their trace had all it may keep."""

    def keep_on_disk(self, disk: DiskStore | None) -> None:
        """Write the lines kept from now on to ``disk`` too (None: memory only); ``lines``
        then reads it back, so lines outlive the process (see ``TraceStore.keep_on_disk``)."""
        self._disk = disk

    def add(self, line: LogLine) -> bool:
        """Keep ``line`` if its trace may keep one more, evicting the oldest traces to stay
        within the bounds; says whether it was kept. Never raises for a full store."""
        kept = self._add(line)
        if kept and self._disk is not None:
            self._disk.put(line)  # written behind, by the disk store's own thread
        return kept

    def _add(self, line: LogLine) -> bool:
        size = line_bytes(line)
        with self._lock:
            if size + _TRACE_BYTES > self.max_bytes:
                self.dropped_lines += 1
                return False
            lines = self._traces.get(line.trace_id)
            if lines is None:
                lines = self._traces[line.trace_id] = []
                self._bytes[line.trace_id] = _TRACE_BYTES
                self.held_bytes += _TRACE_BYTES
            else:
                self._traces.move_to_end(line.trace_id)
            if len(lines) >= self.max_lines_per_trace:
                self.dropped_lines += 1
                return False
            lines.append(line)
            self._bytes[line.trace_id] += size
            self.held_bytes += size
            while len(self._traces) > self.max_traces or self.held_bytes > self.max_bytes:
                oldest, _ = self._traces.popitem(last=False)
                self.held_bytes -= self._bytes.pop(oldest)
            return line.trace_id in self._traces

    def add_received(self, lines: t.Iterable[LogLine], spans: t.Container[int]) -> int:
        """Keep lines another process exported, of traces ``spans`` already holds (a
        TraceStore, or their ids), as the trace receiver does; returns how many were kept."""
        return sum(
            1
            for line in lines
            if line.trace_id in spans and not is_skipped(line.logger) and self.add(line)
        )

    def lines(self, trace_id: int) -> list[LogLine]:
        """The trace's lines, oldest first (a copy)."""
        with self._lock:
            found = list(self._traces.get(trace_id, ()))
        disk = self._disk
        if disk is not None:  # written by this process or another, before or since
            rows = disk.rows(trace_id)
            if rows:
                written = {key for key, _ in rows}
                found = [line for line in found if encode_line(line)[1] not in written]
                found += filter(None, (_read_line(trace_id, body) for _, body in rows))
        found.sort(key=lambda line: line.time_ns)
        return found

    def clear(self) -> None:
        """Forget every line."""
        with self._lock:
            self._traces.clear()
            self._bytes.clear()
            self.held_bytes = 0


_store = LogStore()


def log_store() -> LogStore:
    """The process's one LogStore, which the panel and the trace pages read."""
    return _store


def to_line(
    record: logging.LogRecord,
    trace_id: int,
    span_id: int,
    redact: t.Callable[[str], str] | None = None,
) -> LogLine:
    """The record as a LogLine of that trace and span (message and traceback clipped,
    after ``redact``, if given, took out what must not be kept)."""
    try:
        message = record.getMessage()
    except Exception:  # bad %-arguments: show what was given
        message = f"{record.msg!r} % {record.args!r}"
    exception = None
    if record.exc_info and record.exc_info[0] is not None:
        exception = "".join(traceback.format_exception(*record.exc_info))
    elif record.exc_text:
        exception = record.exc_text
    if redact is not None:
        message = redact(message)
        exception = redact(exception) if exception else exception
    return LogLine(
        trace_id=trace_id,
        span_id=span_id,
        time_ns=int(record.created * 1e9),
        level=record.levelname,
        level_number=record.levelno,
        logger=record.name,
        message=clip(message, MAX_MESSAGE_CHARS),
        exception=clip(exception, MAX_EXCEPTION_CHARS) if exception else None,
    )


# Why a hook on ``Logger.callHandlers`` and not a handler on the root logger: any handler
# on root stops ``logging.lastResort`` (callHandlers prints through it only when it found
# no handler at all) and makes ``logging.basicConfig()`` a no-op (it configures only a
# root with no handlers), so the app's errors would vanish from its console. The hook sees
# each record once, after the logger's level, ``disabled`` and filters let it through
# (``Logger.handle`` calls callHandlers last), in the thread that logged, whether or not
# it propagates; it changes no handler, level or filter. Sentry's logging integration
# captures the same way, for the same reason.
_install_lock = threading.Lock()
_owners: weakref.WeakSet[object] = weakref.WeakSet()  # what keeps the capture on
CallHandlers = t.Callable[[logging.Logger, logging.LogRecord], None]
_hook: tuple[CallHandlers, CallHandlers] | None = None  # (ours, the one it wraps)


def _hooked(original: CallHandlers) -> CallHandlers:
    def call_handlers(logger: logging.Logger, record: logging.LogRecord) -> None:
        try:
            original(logger, record)  # the app's handlers first, exactly as before
        finally:
            if _owners:
                keep(record, _store)

    return call_handlers


def keep(record: logging.LogRecord, store: LogStore) -> bool:
    """Keep ``record`` in ``store`` if a span is current, or, written with no span current
    by a worker, in the workers page's ring (``worker_logs``); says whether it was kept;
    never raises into the code that logged."""
    try:
        # Read first: most records are written with no span current.
        context = trace.get_current_span().get_span_context()
        if not context.is_valid:  # a worker's start-up or crash between jobs, maybe
            return _outside(record)
        if is_skipped(record.name):
            return False
        return store.add(to_line(record, context.trace_id, context.span_id))
    except Exception:
        return False


def _outside(record: logging.LogRecord) -> bool:
    # Imported here: worker_logs builds on this module's lines.
    from opentelemetry.instrumentation.saq.debug_toolbar.panel import worker_logs

    return worker_logs.keep_outside(record)


def capture(owner: object) -> None:
    """Keep the records written while a span is current, for as long as ``owner`` (a panel)
    lives or until ``release(owner)``; the hook goes in once per process."""
    global _hook
    with _install_lock:
        _owners.add(owner)
        if _hook is None:
            original = logging.Logger.callHandlers
            _hook = (_hooked(original), original)
            logging.Logger.callHandlers = _hook[0]  # type: ignore[method-assign,assignment]


def release(owner: object) -> None:
    """Stop keeping records for ``owner``; the last owner takes the hook out again."""
    global _hook
    with _install_lock:
        _owners.discard(owner)
        if _owners or _hook is None:
            return
        ours, original = _hook
        # Another library may have wrapped ours since: then ours stays in its chain,
        # keeping nothing while no owner is left, and is used again by the next capture.
        if logging.Logger.__dict__.get("callHandlers") is ours:
            logging.Logger.callHandlers = original  # type: ignore[method-assign,assignment]
            _hook = None


def capturing() -> bool:
    """Whether records are being kept (some owner is alive and not released)."""
    return bool(_owners)


def worst_level(lines: t.Iterable[LogLine]) -> str | None:
    """The most severe level among ``lines`` (by number, so custom levels count too)."""
    worst = max(lines, key=lambda line: line.level_number, default=None)
    return worst.level if worst is not None else None
