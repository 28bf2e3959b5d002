"""The store on disk: what it keeps of a span and a log line, its bounds measured as SQLite
counts the file, and what it does with a file it cannot use."""

from __future__ import annotations

import contextlib
import logging
import os
import sqlite3
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from opentelemetry import trace as trace_api
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import Link, SpanKind, Status, StatusCode

from opentelemetry.instrumentation.saq._span_json import encode_span
from opentelemetry.instrumentation.saq.debug_toolbar.panel.job_logs import (
    LogLine,
    LogStore,
    encode_line,
)
from opentelemetry.instrumentation.saq.debug_toolbar.tracing import STORE_ENV, store_folder
from opentelemetry.instrumentation.saq.disk_store import SCHEMA_VERSION, DiskStore
from opentelemetry.instrumentation.saq.trace_store import TraceStore


@contextlib.contextmanager
def on_disk(path: Path, **bounds: int) -> Iterator[tuple[TraceStore, DiskStore]]:
    store = TraceStore()
    disk = DiskStore(
        path,
        encode_span,
        max_traces=bounds.get("max_traces", 1000),
        max_bytes=bounds.get("max_bytes", 2**26),
    )
    disk.start()
    store.keep_on_disk(disk)
    try:
        yield store, disk
    finally:
        disk.close()


def provider_for(store: TraceStore) -> TracerProvider:
    provider = TracerProvider(resource=Resource.create({"service.name": "shop"}))
    provider.add_span_processor(store)
    return provider


def file_bytes(path: Path) -> int:
    """The file's size as SQLite counts it, read with a connection of our own."""
    with contextlib.closing(sqlite3.connect(path)) as db:
        pages = db.execute("PRAGMA page_count").fetchone()[0]
        return int(pages * db.execute("PRAGMA page_size").fetchone()[0])


def test_a_span_read_back_after_a_restart_has_what_the_pages_read(tmp_path: Path) -> None:
    path = tmp_path / "traces.sqlite3"
    with on_disk(path) as (store, disk):
        tracer = provider_for(store).get_tracer("shop.jobs", "1.2", schema_url="https://s")
        with tracer.start_as_current_span("send default", kind=SpanKind.PRODUCER) as send:
            send.set_attributes({"saq.job.key": "k-1", "tags": ("a", "b"), "n": 3, "ok": True})
            send.add_event("retry", {"delay": 1.5})
            with tracer.start_as_current_span(
                "process default",
                kind=SpanKind.CONSUMER,
                links=[Link(send.get_span_context(), {"why": "producer"})],
            ) as process:
                process.set_status(Status(StatusCode.ERROR, "<b>boom</b>"))
        written = store.get_trace(send.get_span_context().trace_id)
        assert disk.flush()

    with on_disk(path) as (restarted, _):  # a new process: nothing in memory
        trace_id = send.get_span_context().trace_id
        assert trace_id in restarted and restarted.trace_ids() == [trace_id]
        read = restarted.get_trace(trace_id)

    def seen(span: ReadableSpan) -> tuple[object, ...]:
        scope = span.instrumentation_scope
        return (
            span.name,
            span.context,
            span.parent,
            span.kind,
            span.start_time,
            span.end_time,
            (span.status.status_code, span.status.description),
            dict(span.attributes or {}),
            [(e.name, e.timestamp, dict(e.attributes or {})) for e in span.events],
            [(link.context, dict(link.attributes or {})) for link in span.links],
            dict(span.resource.attributes),
            (scope.name, scope.version, scope.schema_url) if scope else None,
        )

    assert [seen(span) for span in read] == [seen(span) for span in written]
    assert read[0].resource is read[1].resource  # shared, as a process's spans are


def test_log_lines_read_back_after_a_restart(tmp_path: Path) -> None:
    path = tmp_path / "logs.sqlite3"
    line = LogLine(7, 9, 1_000, "ERROR", 40, "shop.jobs", "<b>lost</b>", "Traceback ...")
    first = LogStore()
    disk = DiskStore(path, encode_line, max_traces=10, max_bytes=2**20)
    disk.start()
    first.keep_on_disk(disk)
    first.add(line)
    assert disk.flush()
    disk.close()

    restarted = LogStore()
    disk = DiskStore(path, encode_line, max_traces=10, max_bytes=2**20)
    disk.start()
    restarted.keep_on_disk(disk)
    try:
        assert restarted.lines(7) == [line]
        restarted.add(line)  # seen again in memory: shown once
        assert restarted.lines(7) == [line]
    finally:
        disk.close()


@pytest.mark.parametrize(
    ("max_traces", "max_bytes"), [(1000, 256 * 1024), (40, 2**26)], ids=["bytes", "traces"]
)
def test_the_bounds_hold_on_disk(tmp_path: Path, max_traces: int, max_bytes: int) -> None:
    path = tmp_path / "traces.sqlite3"
    with on_disk(path, max_traces=max_traces, max_bytes=max_bytes) as (store, disk):
        tracer = provider_for(store).get_tracer("shop.jobs")
        ids = []
        for number in range(300):
            with tracer.start_as_current_span("process", attributes={"body": "x" * 3000}) as span:
                ids.append(span.get_span_context().trace_id)
            if number % 25 == 0:
                assert disk.flush()  # several batches, as spans come over time
        assert disk.flush()
        stats = store.stats()
        kept = [trace_id for trace_id, _ in disk.traces()]

    assert kept == ids[-len(kept) :]  # the oldest went first
    assert len(kept) <= max_traces and stats["disk_traces"] == len(kept)
    assert file_bytes(path) <= max_bytes and stats["disk_bytes"] == file_bytes(path)
    with contextlib.closing(sqlite3.connect(path)) as db:
        db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    assert os.path.getsize(path) <= max_bytes
    if max_traces < 300:
        assert len(kept) == max_traces
    else:  # a sixth of the 900 KB written fits
        assert 40 <= len(kept) < 80


def test_a_file_of_another_version_is_replaced_with_one_warning(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "traces.sqlite3"
    with contextlib.closing(sqlite3.connect(path)) as db:
        db.execute("CREATE TABLE rows (something_else TEXT)")
        db.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    with caplog.at_level(logging.WARNING), on_disk(path) as (store, disk):
        with provider_for(store).get_tracer("t").start_as_current_span("process") as span:
            pass
        assert disk.flush()
        assert span.get_span_context().trace_id in disk
    warnings = [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]
    assert len(warnings) == 1 and "schema version 2" in warnings[0]
    with contextlib.closing(sqlite3.connect(path)) as db:
        assert db.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION


def test_rows_the_app_did_not_write_are_left_out(tmp_path: Path) -> None:
    path = tmp_path / "traces.sqlite3"
    with on_disk(path) as (store, disk):
        with provider_for(store).get_tracer("t").start_as_current_span("process") as span:
            pass
        assert disk.flush()
    trace_id = f"{span.get_span_context().trace_id:032x}"
    with contextlib.closing(sqlite3.connect(path)) as db, db:
        rows = [
            (trace_id, "00000000000000aa", "cos\nsystem\n(S'echo pwned'\ntR."),
            (trace_id, "00000000000000bb", '{"name": 3}'),
            (trace_id, "x", "[]"),
            (trace_id, "zzzzzzzzzzzzzzzz", "{}"),  # a span id's length, not a span id
        ]
        db.executemany("INSERT INTO rows (trace_id, key, body) VALUES (?, ?, ?)", rows)
        db.execute("INSERT INTO traces (trace_id, updated, payload) VALUES ('xyz', 1, 0)")
    with on_disk(path) as (restarted, _):
        assert [s.name for s in restarted.get_trace(int(trace_id, 16))] == ["process"]
        assert restarted.trace_ids() == [int(trace_id, 16)]


def test_a_folder_that_cannot_be_made_keeps_memory_only_with_a_warning(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    (tmp_path / "a-file").write_text("in the way")
    with (
        caplog.at_level(logging.WARNING),
        on_disk(tmp_path / "a-file" / "t.sqlite3") as (
            store,
            disk,
        ),
    ):
        with provider_for(store).get_tracer("t").start_as_current_span("process") as span:
            pass
        disk.flush()
        trace_id = span.get_span_context().trace_id
        assert [s.name for s in store.get_trace(trace_id)] == ["process"]
        assert store.trace_ids() == [trace_id] and not disk.working
    assert any("memory only" in r.getMessage() for r in caplog.records)


def test_the_place_is_the_working_directory_unless_set(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv(STORE_ENV, raising=False)
    monkeypatch.chdir(tmp_path)
    assert store_folder(None) == tmp_path / ".saq-toolbar"
    assert store_folder(str(tmp_path / "mine")) == tmp_path / "mine"
    monkeypatch.setenv(STORE_ENV, str(tmp_path / "from-env"))
    assert store_folder(None) == tmp_path / "from-env"
    monkeypatch.setenv(STORE_ENV, "memory")
    assert store_folder(None) is None


def test_the_default_folder_ignores_itself_in_git(tmp_path: Path) -> None:
    # In a process of its own: the toolbar's stores are opened once per process.
    code = (
        "from opentelemetry.instrumentation.saq.debug_toolbar import tracing\n"
        "tracing.open_disk_stores(tracing.store_folder(None))\n"
        "tracing.trace_store().force_flush()\n"
    )
    env = {key: value for key, value in os.environ.items() if key != STORE_ENV}
    subprocess.run([sys.executable, "-c", code], cwd=tmp_path, env=env, check=True, timeout=60)
    folder = tmp_path / ".saq-toolbar"
    assert (folder / ".gitignore").read_text().splitlines()[-1] == "*"
    assert sorted(path.name for path in folder.glob("*.sqlite3")) == [
        "app.logs.sqlite3",
        "app.traces.sqlite3",
    ]
    # Log lines, tracebacks and span attributes: readable by their user alone.
    assert folder.stat().st_mode & 0o777 == 0o700
    assert {path.stat().st_mode & 0o777 for path in folder.glob("*.sqlite3*")} == {0o600}


def test_a_remote_span_of_a_trace_held_only_on_disk_is_kept_after_a_restart(
    tmp_path: Path,
) -> None:
    path = tmp_path / "traces.sqlite3"
    with on_disk(path) as (store, disk):
        tracer = provider_for(store).get_tracer("shop")
        with tracer.start_as_current_span("GET /signup") as request:
            pass
        assert disk.flush()
    # The remote worker's span of that trace (a call its job made: no SAQ span in it),
    # exported after the app restarted.
    elsewhere = TracerProvider(resource=Resource.create({"service.name": "worker"}))
    exported = InMemorySpanExporter()
    elsewhere.add_span_processor(SimpleSpanProcessor(exported))
    parent = trace_api.set_span_in_context(trace_api.NonRecordingSpan(request.get_span_context()))
    elsewhere.get_tracer("worker").start_span("smtp send", context=parent).end()
    remote = list(exported.get_finished_spans())

    with on_disk(path) as (restarted, disk):
        trace_id = request.get_span_context().trace_id
        assert trace_id not in restarted._traces  # on disk only
        assert restarted.add_received(remote) == 1
        assert restarted.add_received(remote) == 0  # an exporter's retry: kept once
        assert disk.flush()
        names = sorted(span.name for span in restarted.get_trace(trace_id))
    assert names == ["GET /signup", "smtp send"]


def test_a_file_another_process_holds_locked_is_left_whole_not_replaced(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "traces.sqlite3"
    with on_disk(path) as (store, disk):
        with provider_for(store).get_tracer("t").start_as_current_span("kept") as span:
            pass
        assert disk.flush()
    inode = path.stat().st_ino
    # A sibling process (or a sqlite shell) holds the file past the busy timeout.
    holder = sqlite3.connect(path, isolation_level=None)
    holder.execute("BEGIN EXCLUSIVE")
    try:
        with caplog.at_level(logging.WARNING), on_disk(path) as (_, locked):
            assert locked.flush(10)
            assert not locked.working
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    assert path.stat().st_ino == inode
    assert [r.getMessage() for r in caplog.records if "replaced" in r.getMessage()] == []
    assert any("left as it is" in r.getMessage() for r in caplog.records)
    with on_disk(path) as (reopened, _):
        trace_id = span.get_span_context().trace_id
        assert [s.name for s in reopened.get_trace(trace_id)] == ["kept"]
