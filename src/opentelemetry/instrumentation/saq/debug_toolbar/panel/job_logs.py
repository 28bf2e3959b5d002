"""The log records jobs write, kept by the span that was current, for the panel and pages.

Two doors lead in. In the app's process, ``install()`` adds a ``logging`` handler to the
root logger that keeps each record written while a span is current (a job's attempt, or
a span the job started), with its time, level, logger, message and exception. From
workers in other processes, the OTLP/HTTP logs receiver (``otlp_logs``) hands over the
records the SDK's log exporter sent. Both end in one bounded ``LogStore``.

The handler sees only what the user's logging configuration lets through (the loggers'
levels); it costs one ContextVar read for a record written with no span current, and it
never raises into the code that logged. SAQ's own lines are left out: they print the
job's arguments (which may hold secrets), and the attempt's span already tells its outcome.
"""

from __future__ import annotations

import dataclasses
import logging
import threading
import traceback
import typing as t
from collections import OrderedDict

from opentelemetry import trace

if t.TYPE_CHECKING:
    from opentelemetry.instrumentation.saq.trace_store import TraceStore

__all__ = ["LogLine", "LogStore", "SpanLogHandler", "install", "log_store"]

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
    """The service.name of the process that sent the line; None: written in this one."""

    def as_dict(self) -> dict[str, t.Any]:
        return {
            "span_id": f"{self.span_id:016x}",
            "time_ns": self.time_ns,
            "level": self.level,
            "logger": self.logger,
            "message": self.message,
            "exception": self.exception,
            "service": self.service,
        }


def clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


class LogStore:
    """At most ``max_lines_per_trace`` lines for each of the ``max_traces`` most recent
    traces, and at most ``max_chars`` characters of text in all (the oldest trace goes
    first); thread-safe, as records come from any thread."""

    def __init__(
        self, max_traces: int = 1000, max_lines_per_trace: int = 500, max_chars: int = 16_000_000
    ) -> None:
        self.max_traces = max_traces
        self.max_lines_per_trace = max_lines_per_trace
        self.max_chars = max_chars
        self._traces: OrderedDict[int, list[LogLine]] = OrderedDict()
        self._chars: dict[int, int] = {}  # text kept per trace
        self._total_chars = 0
        self._lock = threading.Lock()
        self.dropped_lines = 0
        """Lines not kept because their trace had all it may keep."""

    def add(self, line: LogLine) -> bool:
        size = _size(line)
        with self._lock:
            if size > self.max_chars:
                self.dropped_lines += 1
                return False
            lines = self._traces.get(line.trace_id)
            if lines is None:
                lines = self._traces[line.trace_id] = []
                self._chars[line.trace_id] = 0
            else:
                self._traces.move_to_end(line.trace_id)
            if len(lines) >= self.max_lines_per_trace:
                self.dropped_lines += 1
                return False
            lines.append(line)
            self._chars[line.trace_id] += size
            self._total_chars += size
            while len(self._traces) > self.max_traces or self._total_chars > self.max_chars:
                oldest, _ = self._traces.popitem(last=False)
                self._total_chars -= self._chars.pop(oldest)
            return line.trace_id in self._traces

    def add_received(self, lines: t.Iterable[LogLine], spans: TraceStore) -> int:
        """Keep lines another process exported, of traces ``spans`` already holds (as the
        trace receiver does); returns how many were kept."""
        return sum(
            1
            for line in lines
            if line.trace_id in spans and not is_skipped(line.logger) and self.add(line)
        )

    def lines(self, trace_id: int) -> list[LogLine]:
        """The trace's lines, oldest first (a copy)."""
        with self._lock:
            found = list(self._traces.get(trace_id, ()))
        found.sort(key=lambda line: line.time_ns)
        return found

    def clear(self) -> None:
        with self._lock:
            self._traces.clear()
            self._chars.clear()
            self._total_chars = 0


def _size(line: LogLine) -> int:
    return len(line.message) + len(line.exception or "") + len(line.logger) + 64


_store = LogStore()


def log_store() -> LogStore:
    return _store


class SpanLogHandler(logging.Handler):
    """Keeps records written while a span is current in the ``LogStore``."""

    def __init__(self, store: LogStore) -> None:
        super().__init__(logging.NOTSET)
        self.store = store

    def handle(self, record: logging.LogRecord) -> bool:
        # Checked before the handler's lock and filters: most records have no span.
        context = trace.get_current_span().get_span_context()
        if not context.is_valid or is_skipped(record.name):
            return False
        try:
            self.store.add(_line(record, context.trace_id, context.span_id))
        except Exception:  # never into the code that logged
            return False
        return True

    def emit(self, record: logging.LogRecord) -> None:  # handle() does the work
        return None


def _line(record: logging.LogRecord, trace_id: int, span_id: int) -> LogLine:
    try:
        message = record.getMessage()
    except Exception:  # bad %-arguments: show what was given
        message = f"{record.msg!r} % {record.args!r}"
    exception = None
    if record.exc_info and record.exc_info[0] is not None:
        exception = "".join(traceback.format_exception(*record.exc_info))
    elif record.exc_text:
        exception = record.exc_text
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


_install_lock = threading.Lock()
_handler: SpanLogHandler | None = None


def install() -> SpanLogHandler:
    """Add the handler to the root logger, once per process (again if a logging
    configuration, such as uvicorn's ``dictConfig``, took it off since)."""
    global _handler
    root = logging.getLogger()
    with _install_lock:
        if _handler is None:
            _handler = SpanLogHandler(_store)
        if _handler not in root.handlers:
            root.addHandler(_handler)
        return _handler


def uninstall() -> None:
    global _handler
    with _install_lock:
        if _handler is not None:
            logging.getLogger().removeHandler(_handler)
            _handler = None


def worst_level(lines: t.Iterable[LogLine]) -> str | None:
    """The most severe level among ``lines`` (by number, so custom levels count too)."""
    worst = max(lines, key=lambda line: line.level_number, default=None)
    return worst.level if worst is not None else None
