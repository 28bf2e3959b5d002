"""The trace page's time axis: long idle stretches compressed, labels from 0 ms."""

from __future__ import annotations

import typing as t

from opentelemetry.instrumentation.saq.debug_toolbar import trace_layout


def row(kind: str, start_ms: float, duration_ms: float, depth: int = 0) -> dict[str, t.Any]:
    return {"kind": kind, "start_ms": start_ms, "duration_ms": duration_ms, "depth": depth}


# A request with a job run at once and one scheduled 30 s ahead (a wait until then).
SCHEDULED = [
    row("request", 0, 20),
    row("send", 1, 1, 1),
    row("process", 5, 40, 2),
    row("send", 2, 1, 1),
    row("wait", 3, 30_000, 2),
    row("process", 30_003, 10, 2),
]


def test_a_job_scheduled_ahead_leaves_the_rest_of_the_trace_readable() -> None:
    axis = trace_layout.segments(SCHEDULED, 30_013)
    assert [segment.gap for segment in axis] == [False, True, False]
    # The first 45 ms get most of the width instead of 0.15 % of it.
    assert trace_layout.position(axis, 45) > 60
    assert trace_layout.gaps(axis) == [
        {"x": axis[1].x0, "width": trace_layout.GAP_WIDTH, "label": "29.96 s idle"}
    ]
    ticks = trace_layout.ticks(axis)
    assert ticks[0]["label"] == "0 ms" and ticks[-1]["label"] == "30.01 s"
    assert ticks[-1]["x"] == 100.0
    xs = [tick["x"] for tick in ticks]
    assert xs == sorted(xs)


def test_a_short_pause_is_drawn_to_scale() -> None:
    rows = [row("request", 0, 100), row("process", 150, 100, 1)]
    axis = trace_layout.segments(rows, 250)
    assert [segment.gap for segment in axis] == [False]
    assert trace_layout.position(axis, 125) == 50.0


def test_spans_are_coloured_by_where_they_ran() -> None:
    rows = [
        row("request", 0, 10),
        row("span", 9, 1, 1),  # the ASGI server's "http send"
        row("send", 1, 1, 1),
        row("process", 2, 5, 2),
        row("span", 3, 1, 3),  # inside the job
    ]
    assert trace_layout.colour(rows) == ["request", "request-span", "send", "process", "job-span"]
