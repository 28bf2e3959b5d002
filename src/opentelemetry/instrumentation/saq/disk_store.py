"""DiskStore: rows kept by trace id in an SQLite file, so they outlive the process.

The toolbar's span and log stores write through one each: a reload (``--reload``) or a
crash restarts the app's process, and the earlier traces and their log lines are still
there for the pages and for the toolbar's history links. Several processes of one app
(``uvicorn --workers 2``, a reloader's child and its successor) share the file: WAL
journal, a busy timeout, one transaction per batch.

Nothing is written on the caller's thread: ``put`` only hands the item to a background
thread, which lets items gather for ``LINGER`` seconds, encodes and inserts them in one
transaction, and then holds the bounds: at most ``max_traces`` traces and ``max_bytes``
bytes of file, measured as SQLite counts it (``page_count * page_size``; freed pages are
given back with incremental vacuum), the oldest traces going first.

A file that is not an SQLite database, is damaged, or was written by another version of
this schema (``PRAGMA user_version``) is replaced by a fresh one with a warning; when even
that fails (a read-only folder, a full disk) the store stops writing, with a warning, and
the memory stores carry on alone. No error reaches the caller.
"""

from __future__ import annotations

import atexit
import contextlib
import logging
import os
import queue
import sqlite3
import threading
import time
import typing as t
import weakref
from pathlib import Path

from opentelemetry.instrumentation.saq._sqlite_file import (
    SCHEMA_VERSION,
    UnusableFileError,
    checked,
    connect,
    damaged,
    insert,
)

__all__ = ["SCHEMA_VERSION", "DiskStore", "Encode"]

logger = logging.getLogger(__name__)

MAX_PENDING = 20_000
"""Items waiting for the writer beyond this are not written (the memory store has them)."""
_BATCH = 2_000
LINGER = 0.1
"""Seconds the writer lets items gather after the first: one transaction for them all, and
no wake-up of the writer per span (each wake-up takes the GIL from the app)."""
Encode = t.Callable[[t.Any], tuple[int, str, str]]
"""An item as (trace id, its key within the trace, its JSON body)."""


class _Flush:
    def __init__(self) -> None:
        self.done = threading.Event()


_STOP = object()
_open_stores: weakref.WeakSet[DiskStore] = weakref.WeakSet()


class DiskStore:
    """Items of traces (spans, log lines) in the SQLite file at ``path``, within bounds.

    ``encode`` turns an item into (trace id, key, JSON body); an item whose key its trace
    already holds is not written twice. ``rows(trace_id)`` gives the bodies back as
    (key, body) pairs, oldest first. The toolbar makes one for its span store and one for
    its log store (``SAQPanel.keep_on_disk``); ``TraceStore.keep_on_disk`` and
    ``LogStore.keep_on_disk`` take one. Call ``start()`` before the first ``put``.

    It holds at most ``max_traces`` traces and ``max_bytes`` bytes of file, dropping the
    oldest traces first. It never writes on the caller's thread (``put`` only queues the
    item, and at most ``MAX_PENDING`` wait), never raises into the caller (a failed read
    gives nothing and is logged; a failed write is logged and counted in ``not_written``),
    never pickles (bodies are JSON text), and never keeps a file it cannot use: a damaged
    or foreign one is replaced, once, and after that the store stops writing (``working``
    is False) and reads give nothing.
    """

    def __init__(self, path: Path, encode: Encode, *, max_traces: int, max_bytes: int) -> None:
        self.path = Path(path)
        self.max_traces = max_traces
        self.max_bytes = max_bytes
        self._encode = encode
        self._queue: queue.SimpleQueue[t.Any] = queue.SimpleQueue()
        self._read_lock = threading.Lock()
        self._reader: sqlite3.Connection | None = None
        self._ready = threading.Event()  # the file was checked (or given up)
        self._thread: threading.Thread | None = None
        self.working = True
        """False once the store gave up writing (see the module's docstring)."""
        self.not_written = 0
        """How many items were not written (too many waiting, or a write failed)."""
        self.replaced = 0
        """Times a damaged or foreign file was replaced by a fresh one."""
        self._damage_seen = False  # by a read, told to the writer once

    # The caller's side: no I/O.
    def start(self) -> None:
        """Start the writer (which checks the file first); again after a fork."""
        self._queue = queue.SimpleQueue()
        self._ready.clear()
        # After a fork the parent's lock may be held and its connection is not ours.
        self._read_lock = threading.Lock()
        self._reader = None
        self._thread = threading.Thread(
            target=self._run, name=f"saq-toolbar-store:{self.path.name}", daemon=True
        )
        self._thread.start()
        _open_stores.add(self)

    def put(self, item: t.Any) -> None:
        """Hand ``item`` to the writer."""
        if self._queue.qsize() < MAX_PENDING:
            self._queue.put(item)
        else:
            self.not_written += 1

    def flush(self, timeout: float = 5.0) -> bool:
        """Wait until what was put before is written; False if that took too long."""
        thread = self._thread
        if thread is None or not thread.is_alive():
            return False
        marker = _Flush()
        self._queue.put(marker)
        return marker.done.wait(timeout)

    def close(self, timeout: float = 5.0) -> None:
        """Write what is waiting, then stop the writer."""
        thread = self._thread
        if thread is not None and thread.is_alive():
            self._queue.put(_STOP)
            thread.join(timeout)
        with self._read_lock:
            if self._reader is not None:
                self._reader.close()
                self._reader = None

    # Reading: short queries, never raising.
    def rows(self, trace_id: int) -> list[tuple[str, str]]:
        """The trace's (key, body) pairs, in the order they were written."""
        found = self._read(
            "SELECT key, body FROM rows WHERE trace_id = ? ORDER BY seq", (f"{trace_id:032x}",)
        )
        return [(str(key), str(body)) for key, body in found]

    def traces(self) -> list[tuple[int, int]]:
        """(trace id, when it was last written, epoch ns), most recently written last."""
        found = self._read("SELECT trace_id, updated FROM traces ORDER BY updated, trace_id", ())
        return [
            (int(trace_id, 16), int(updated))
            for trace_id, updated in found
            if _hex_id(trace_id) and isinstance(updated, int)
        ]

    def __contains__(self, trace_id: object) -> bool:
        if not isinstance(trace_id, int):
            return False
        return bool(self._read("SELECT 1 FROM traces WHERE trace_id = ?", (f"{trace_id:032x}",)))

    def stats(self) -> dict[str, int]:
        """Traces and bytes on disk (``page_count * page_size``), and what was not written."""
        traces = self._read("SELECT COUNT(*) FROM traces", ())
        pages = self._read("PRAGMA page_count", ())
        size = self._read("PRAGMA page_size", ())
        return {
            "disk_traces": traces[0][0] if traces else 0,
            "disk_bytes": pages[0][0] * size[0][0] if pages and size else 0,
            "disk_not_written": self.not_written,
            "disk_replaced": self.replaced,
        }

    def _read(self, sql: str, parameters: tuple[t.Any, ...]) -> list[t.Any]:
        # Until the writer has checked the file (at start-up, once), reads wait for it.
        if self._thread is None or not self._ready.wait(5) or not self.working:
            return []
        try:
            with self._read_lock:
                if self._reader is None:
                    self._reader = connect(self.path)
                return self._reader.execute(sql, parameters).fetchall()
        except sqlite3.Error as error:
            if damaged(error) and not self._damage_seen:  # the writer replaces it
                self._damage_seen = True
                self._queue.put(error)
            else:
                logger.debug("could not read the store %s", self.path, exc_info=True)
            return []

    # The writer's side.
    def _run(self) -> None:
        try:
            connection = self._open()
        finally:
            self._ready.set()
        while True:
            batch = [self._queue.get()]
            if not isinstance(batch[0], _Flush) and batch[0] is not _STOP:
                time.sleep(LINGER)
            while len(batch) < _BATCH:
                try:
                    batch.append(self._queue.get_nowait())
                except queue.Empty:
                    break
            try:
                connection = self._handle(connection, batch)
            except Exception:  # the writer carries on: its items are in the memory stores
                logger.warning(
                    "the SAQ toolbar's store %s failed a write", self.path, exc_info=True
                )
            for item in batch:
                if isinstance(item, _Flush):
                    item.done.set()
            if any(item is _STOP for item in batch):
                if connection is not None:
                    connection.close()
                return

    def _handle(
        self, connection: sqlite3.Connection | None, batch: list[t.Any]
    ) -> sqlite3.Connection | None:
        items = [item for item in batch if not isinstance(item, (_Flush, sqlite3.Error))]
        items = [item for item in items if item is not _STOP]
        if connection is not None and items:
            connection = self._write(connection, items)
        elif items:
            self.not_written += len(items)
        if connection is not None and any(isinstance(item, sqlite3.Error) for item in batch):
            connection = self._replace(connection, "damaged, as a read found")
        self._damage_seen = False
        return connection

    def _open(self) -> sqlite3.Connection | None:
        """A checked connection to the file, replacing it if it cannot be used."""
        try:
            return checked(self.path)
        except (UnusableFileError, sqlite3.Error) as error:
            if isinstance(error, UnusableFileError) or damaged(error):
                return self._replace(None, error)
            # Locked or busy past the timeout (a sibling process, an open sqlite shell), or
            # an I/O error: the file may be sound and shared, so it is never deleted here.
            self._keep_to_memory(error)
            return None
        except OSError as error:
            self._keep_to_memory(error)
            return None

    def _keep_to_memory(self, error: BaseException) -> None:
        self.working = False
        logger.warning(
            "The SAQ toolbar's store %s could not be opened (%s): it is left as it is, and "
            "traces are kept in memory only until the app restarts.",
            self.path,
            error,
        )

    def _replace(
        self, connection: sqlite3.Connection | None, error: BaseException | str
    ) -> sqlite3.Connection | None:
        if connection is not None:
            connection.close()
        with self._read_lock:
            if self._reader is not None:
                self._reader.close()
                self._reader = None
        if self.replaced:  # a fresh file failed too: the memory stores carry on alone
            self.working = False
            logger.warning(
                "The SAQ toolbar's store %s failed again (%s): traces are kept in memory only "
                "until the app restarts.",
                self.path,
                error,
            )
            return None
        self.replaced += 1
        logger.warning(
            "The SAQ toolbar's store %s could not be used (%s): it is replaced by an empty one.",
            self.path,
            error,
        )
        try:
            for suffix in ("", "-wal", "-shm", "-journal"):
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(f"{self.path}{suffix}")
            return checked(self.path)
        except (sqlite3.Error, UnusableFileError, OSError) as again:
            self.working = False
            logger.warning(
                "The SAQ toolbar's store %s cannot be created (%s): traces are kept in memory "
                "only.",
                self.path,
                again,
            )
            return None

    def _write(
        self, connection: sqlite3.Connection, items: list[t.Any]
    ) -> sqlite3.Connection | None:
        rows: list[tuple[str, str, str, int]] = []
        for item in items:
            try:
                trace_id, key, body = self._encode(item)
            except Exception:  # an item we cannot encode is not written, nothing else changes
                logger.debug("could not encode %r for the store", item, exc_info=True)
                self.not_written += 1
                continue
            rows.append((f"{trace_id:032x}", key, body, len(body)))
        try:
            insert(connection, rows, self.max_traces, self.max_bytes)
        except sqlite3.Error as error:
            self.not_written += len(rows)
            if damaged(error) or "full" in str(error):
                return self._replace(connection, error)
            logger.debug("could not write to the store %s", self.path, exc_info=True)
        return connection


@atexit.register
def _write_what_is_waiting() -> None:
    # A reload ends the process normally: what its writers hold still reaches the file.
    for store in list(_open_stores):
        store.flush(2.0)


def _after_fork() -> None:
    # A forked child has no writer thread: it gets its own (and its own connections).
    for store in list(_open_stores):
        if store._thread is not None:
            store.start()


os.register_at_fork(after_in_child=_after_fork)


def _hex_id(text: object) -> bool:
    """Whether ``text`` is a trace id as we write it (a foreign row's is left out)."""
    return isinstance(text, str) and len(text) == 32 and all(c in "0123456789abcdef" for c in text)
