"""The SQLite side of the disk store: the schema, the checks of a file, a batch's insert
and the bounds, measured as SQLite counts the file (see ``disk_store``)."""

from __future__ import annotations

import contextlib
import os
import sqlite3
import time
from pathlib import Path

SCHEMA_VERSION = 1
"""The version of the files' layout, written in ``PRAGMA user_version``. A file holding
another one (written by another release of this package) is never read: it is replaced by
an empty one, with a warning."""
BUSY_MS = 5_000
WAL_BYTES = 1024 * 1024
_SCHEMA = """
CREATE TABLE IF NOT EXISTS traces (
    trace_id TEXT PRIMARY KEY, updated INTEGER NOT NULL, payload INTEGER NOT NULL);
CREATE INDEX IF NOT EXISTS traces_by_age ON traces (updated);
CREATE TABLE IF NOT EXISTS rows (
    seq INTEGER PRIMARY KEY, trace_id TEXT NOT NULL, key TEXT NOT NULL, body TEXT NOT NULL);
CREATE UNIQUE INDEX IF NOT EXISTS rows_by_trace ON rows (trace_id, key);
"""


class UnusableFileError(Exception):
    """The file cannot be used as it is."""


def connect(path: Path) -> sqlite3.Connection:
    connection = sqlite3.connect(
        path, timeout=BUSY_MS / 1000, isolation_level=None, check_same_thread=False
    )
    connection.execute(f"PRAGMA busy_timeout = {BUSY_MS}")
    return connection


def checked(path: Path) -> sqlite3.Connection:
    """A connection to a file of our schema, created if new; raises ``UnusableFileError`` (or
    ``sqlite3.DatabaseError``) for a file of another version or a damaged one."""
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    if not path.exists():  # made readable by its user alone (the journal files take its mode)
        with contextlib.suppress(FileExistsError):
            os.close(os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600))
    connection = connect(path)
    try:
        connection.execute("PRAGMA auto_vacuum = INCREMENTAL")  # before any table exists
        connection.execute("PRAGMA journal_mode = WAL")
        connection.execute("PRAGMA synchronous = NORMAL")  # WAL: safe against a crash
        # The journal beside the file stays small: checkpointed, then cut, at 1 MiB.
        connection.execute(f"PRAGMA wal_autocheckpoint = {WAL_BYTES // 4096}")
        connection.execute(f"PRAGMA journal_size_limit = {WAL_BYTES}")
        connection.execute("BEGIN IMMEDIATE")
        version = connection.execute("PRAGMA user_version").fetchone()[0]
        if version == 0:
            connection.executescript(f"{_SCHEMA}PRAGMA user_version = {SCHEMA_VERSION};")
            connection.execute("BEGIN IMMEDIATE")  # executescript commits first
        elif version != SCHEMA_VERSION:
            raise UnusableFileError(
                f"schema version {version}, this version writes {SCHEMA_VERSION}"
            )
        problems = [row[0] for row in connection.execute("PRAGMA quick_check")]
        if problems != ["ok"]:
            raise UnusableFileError("damaged: " + " ".join(problems[:3])[:200])
        connection.execute("COMMIT")
        return connection
    except BaseException:
        connection.close()
        raise


def damaged(error: sqlite3.Error) -> bool:
    text = str(error)
    return not isinstance(error, sqlite3.OperationalError) or "malformed" in text


def insert(
    connection: sqlite3.Connection,
    rows: list[tuple[str, str, str, int]],
    max_traces: int,
    max_bytes: int,
) -> None:
    """Insert a batch and hold the bounds, in one transaction."""
    now = time.time_ns()  # plus the row's place in the batch: ages stay in put order
    written: dict[str, tuple[int, int]] = {}  # per trace: its newest place, bytes written
    connection.execute("BEGIN IMMEDIATE")
    try:
        for place, (trace_id, key, body, size) in enumerate(rows):
            cursor = connection.execute(
                "INSERT OR IGNORE INTO rows (trace_id, key, body) VALUES (?, ?, ?)",
                (trace_id, key, body),
            )
            written[trace_id] = (place, written.get(trace_id, (0, 0))[1] + size * cursor.rowcount)
        connection.executemany(
            "INSERT INTO traces (trace_id, updated, payload) VALUES (?, ?, ?) ON CONFLICT "
            "(trace_id) DO UPDATE SET updated = max(updated, excluded.updated), "
            "payload = payload + excluded.payload",
            [(trace_id, now + place, size) for trace_id, (place, size) in written.items()],
        )
        _hold_bounds(connection, max_traces, max_bytes)
        connection.execute("COMMIT")
        # The file gives the freed pages back (sqlite3's execute would free one only).
        connection.executescript("PRAGMA incremental_vacuum;")
    except BaseException:
        if connection.in_transaction:
            connection.execute("ROLLBACK")
        raise


def _file_bytes(connection: sqlite3.Connection) -> int:
    """The file's size once its free pages are given back (``insert`` does, after)."""
    pages = connection.execute("PRAGMA page_count").fetchone()[0]
    pages -= connection.execute("PRAGMA freelist_count").fetchone()[0]
    return int(pages) * int(connection.execute("PRAGMA page_size").fetchone()[0])


def _hold_bounds(connection: sqlite3.Connection, max_traces: int, max_bytes: int) -> None:
    """Drop the oldest traces until at most ``max_traces`` remain and the file holds at
    most ``max_bytes``; the newest trace stays."""
    for _ in range(64):  # each round frees at least one trace
        count = connection.execute("SELECT COUNT(*) FROM traces").fetchone()[0]
        size = _file_bytes(connection)
        if count <= 1 or (count <= max_traces and size <= max_bytes):
            return
        oldest = connection.execute(
            "SELECT trace_id, payload FROM traces ORDER BY updated, trace_id LIMIT ?",
            (count - 1,),
        )
        going: list[str] = []
        excess = size - max_bytes
        for trace_id, payload in oldest:
            if len(going) >= count - max_traces and excess <= 0:
                break
            going.append(trace_id)
            excess -= payload
        places = ",".join("?" * len(going))
        connection.execute(f"DELETE FROM rows WHERE trace_id IN ({places})", going)
        connection.execute(f"DELETE FROM traces WHERE trace_id IN ({places})", going)
