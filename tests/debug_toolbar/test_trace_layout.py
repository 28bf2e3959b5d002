"""The trace page's time axis: long idle stretches compressed, labels from 0 ms."""

from __future__ import annotations

import typing as t

from opentelemetry.instrumentation.saq.debug_toolbar.pages import trace_layout


def row(
    kind: str, start_ms: float, duration_ms: float, depth: int = 0, **more: t.Any
) -> dict[str, t.Any]:
    return {"kind": kind, "start_ms": start_ms, "duration_ms": duration_ms, "depth": depth, **more}


# A request with a job run at once and one scheduled 30 s ahead (a wait until then).
SCHEDULED = [
    row("request", 0, 20),
    row("send", 1, 1, 1),
    row("process", 5, 40, 2),
    row("send", 2, 1, 1),
    row("wait", 3, 30_000, 2, compressible=True),
    row("process", 30_003, 10, 2),
]


def test_a_job_scheduled_ahead_leaves_the_rest_of_the_trace_readable() -> None:
    axis = trace_layout.segments(SCHEDULED, 30_013)
    assert [segment.gap for segment in axis] == [False, True, False]
    # The first 45 ms get most of the width instead of 0.15 % of it.
    assert trace_layout.position(axis, 45) > 60
    assert trace_layout.gaps(axis) == [
        {"x": axis[1].x0, "width": trace_layout.GAP_WIDTH, "label": "29.96 s idle", "rank": 1}
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


def test_queue_wait_is_never_swallowed_by_an_idle_band() -> None:
    """Sign-up as seen: a 35 ms wait, a first attempt, a 500 ms retry delay, then a 336 ms
    wait for a worker before the second attempt."""
    rows = [
        row("request", 0, 40),
        row("send", 1, 1, 1),
        row("wait", 2, 35, 2),
        row("process", 37, 30, 2),
        row("wait", 567, 336, 2),  # the retry was due at 567 ms, a worker took it at 903
        row("process", 903, 30, 2),
    ]
    axis = trace_layout.segments(rows, 933)

    def width(start: float, length: float) -> float:
        return trace_layout.position(axis, start + length) - trace_layout.position(axis, start)

    # Drawn to scale against each other: the long wait about ten times the short one.
    assert width(567, 336) > 9 * width(2, 35)
    # The retry delay alone (67 → 567 ms) is the only band.
    assert [(s.start_ms, s.end_ms) for s in axis if s.gap] == [(67, 567)]
