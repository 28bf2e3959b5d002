"""Where each row of a trace is drawn: a time axis with its long idle gaps compressed.

A request with a job scheduled 30 s ahead would otherwise squash everything else into
slivers. Time when nothing happens but waiting for a due time (a scheduled delay, a retry
delay) is drawn as a narrow labelled band; the busy stretches share the rest of the width
in proportion to their length. Queue wait is never compressed: a job waiting for a worker
is what the page is there to show. Only rows marked ``compressible`` (a job not due yet,
an attempt whose times are not known here) may sit in a band.
"""

from __future__ import annotations

import functools
import inspect
import typing as t

from opentelemetry.instrumentation.saq.debug_toolbar.templating import ms

Row = t.Mapping[str, t.Any]

GAP_WIDTH = 6.0  # percent of the track per compressed gap
_MIN_GAP_MS = 100.0  # shorter idle stretches are drawn to scale
_MIN_GAP_SHARE = 0.5  # ... and so are those shorter than half the busy time
_MIN_TICK_SPACING = 5.0  # percent
_POLL_HINT_MS = 100.0  # a request outliving its last awaited job by more gets a hint


class Segment(t.NamedTuple):
    start_ms: float
    end_ms: float
    x0: float  # percent of the track
    x1: float
    gap: bool


def segments(rows: t.Sequence[Row], total_ms: float) -> list[Segment]:
    """The axis as busy and (compressed) idle stretches, covering 0 … ``total_ms``."""
    total_ms = max(total_ms, 0.001)
    busy = _merged(
        (float(row["start_ms"]), float(row["start_ms"]) + float(row["duration_ms"]))
        for row in rows
        if not row.get("compressible")
    )
    busy_ms = sum(end - start for start, end in busy)
    stretches: list[tuple[float, float, bool]] = []
    at = 0.0
    for start, end in [*busy, (total_ms, total_ms)]:
        if start - at > 0:
            stretches.append((at, start, _is_gap(start - at, busy_ms)))
        if end > start:
            stretches.append((start, end, False))
        at = max(at, end)
    stretches = _joined(stretches) or [(0.0, total_ms, False)]
    gaps = sum(1 for *_, gap in stretches if gap)
    drawn_ms = sum(end - start for start, end, gap in stretches if not gap) or 1.0
    scale = (100.0 - GAP_WIDTH * gaps) / drawn_ms
    result, x = [], 0.0
    for start, end, gap in stretches:
        width = GAP_WIDTH if gap else (end - start) * scale
        result.append(Segment(start, end, x, x + width, gap))
        x += width
    return result


def position(segments: t.Sequence[Segment], at_ms: float) -> float:
    """Where on the track (percent) the moment ``at_ms`` is drawn."""
    for segment in segments:
        if at_ms <= segment.end_ms:
            span = segment.end_ms - segment.start_ms
            share = (at_ms - segment.start_ms) / span if span > 0 else 0.0
            return segment.x0 + max(0.0, share) * (segment.x1 - segment.x0)
    return 100.0


def ticks(segments: t.Sequence[Segment]) -> list[dict[str, t.Any]]:
    """Labelled moments: the start, each busy stretch's ends, thirds of wide stretches.

    A label beside a gap leans away from it, so the two ends of a gap stay readable.
    """
    moments: list[tuple[float, float, str]] = []  # (x, ms, align)
    for index, segment in enumerate(segments):
        if segment.gap:
            continue
        after_gap = index > 0 and segments[index - 1].gap
        before_gap = index + 1 < len(segments) and segments[index + 1].gap
        moments.append((segment.x0, segment.start_ms, "start" if after_gap else "middle"))
        if segment.x1 - segment.x0 > 35:
            for share in (1 / 3, 2 / 3):
                x = segment.x0 + share * (segment.x1 - segment.x0)
                at_ms = segment.start_ms + share * (segment.end_ms - segment.start_ms)
                moments.append((x, at_ms, "middle"))
        moments.append((segment.x1, segment.end_ms, "end" if before_gap else "middle"))
    last = segments[-1]
    moments.append((last.x1, last.end_ms, "end"))
    moments[0] = (moments[0][0], moments[0][1], "start")
    kept: list[tuple[float, float, str]] = []
    for x, at_ms, align in sorted(moments, key=lambda moment: moment[0]):
        if kept:
            previous_x, _, previous_align = kept[-1]
            leaning_apart = previous_align == "end" and align == "start" and x > previous_x
            if x - previous_x < _MIN_TICK_SPACING and not leaning_apart:
                if x < 100.0:
                    continue
                kept.pop()  # the end of the axis is always labelled
        kept.append((x, at_ms, align))
    # Which labels the page keeps when two would overprint at its width (lowest first):
    # the axis's ends, then the ends of busy stretches beside a band, then the rest.
    return [
        {
            "x": x,
            "label": ms(at_ms),
            "align": align,
            "rank": 0 if index in (0, len(kept) - 1) else 2 if align != "middle" else 3,
        }
        for index, (x, at_ms, align) in enumerate(kept)
    ]


def gaps(segments: t.Sequence[Segment]) -> list[dict[str, t.Any]]:
    return [
        {"x": s.x0, "width": s.x1 - s.x0, "label": f"{ms(s.end_ms - s.start_ms)} idle", "rank": 1}
        for s in segments
        if s.gap
    ]


def colour(rows: t.Sequence[Row]) -> list[str]:
    """Each row's legend entry: a plain span is 'in a job' only under an attempt."""
    found: list[str] = []
    ancestors: list[tuple[int, str]] = []  # (depth, kind) of the rows above
    for row in rows:
        depth, kind = int(row["depth"]), str(row["kind"])
        while ancestors and ancestors[-1][0] >= depth:
            ancestors.pop()
        if kind == "span":
            in_job = any(above == "process" for _, above in ancestors)
            kind = "job-span" if in_job else "request-span"
        found.append(kind)
        ancestors.append((depth, str(row["kind"])))
    return found


def request_hint(rows: t.Sequence[Row], index: int) -> str | None:
    """Why a request bar outlasts its work: it awaited jobs, and SAQ polls for them."""
    request = rows[index]
    start = float(request["start_ms"])
    end = start + float(request["duration_ms"])
    depth = int(request["depth"])
    last_job_end = None
    for row in rows[index + 1 :]:
        if int(row["depth"]) <= depth:
            break
        row_end = float(row["start_ms"]) + float(row["duration_ms"])
        if row["kind"] == "process" and row_end <= end:
            last_job_end = max(last_job_end or 0.0, row_end)
    if last_job_end is None or end - last_job_end < _POLL_HINT_MS or not _map_polls():
        return None
    return (
        f"ended {ms(end - last_job_end)} after the last job it waited for: "
        "queue.map and queue.apply check job status every poll_interval (0.5 s by default) "
        "and wait one interval more after the last result"
    )


@functools.cache
def _map_polls() -> bool:
    """Whether this SAQ's ``map`` polls for its jobs (0.20 waits for a notification)."""
    try:
        from saq.queue.base import Queue

        return "poll_interval" in inspect.signature(Queue.map).parameters
    except Exception:  # no SAQ here, or a map we cannot read: say nothing rather than guess
        return False


def _is_gap(length_ms: float, busy_ms: float) -> bool:
    return length_ms >= _MIN_GAP_MS and length_ms >= _MIN_GAP_SHARE * busy_ms


def _merged(intervals: t.Iterable[tuple[float, float]]) -> list[tuple[float, float]]:
    merged: list[tuple[float, float]] = []
    for start, end in sorted(intervals):
        if merged and start <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(merged[-1][1], end))
        else:
            merged.append((start, end))
    return merged


def _joined(stretches: list[tuple[float, float, bool]]) -> list[tuple[float, float, bool]]:
    """Neighbouring stretches of the same kind as one (short idle time is drawn as busy)."""
    joined: list[tuple[float, float, bool]] = []
    for start, end, gap in stretches:
        if joined and joined[-1][2] == gap:
            joined[-1] = (joined[-1][0], end, gap)
        else:
            joined.append((start, end, gap))
    return joined
