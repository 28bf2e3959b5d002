"""Log lines of a worker elsewhere may arrive after its spans: how long a page waits for them.

A worker sends its spans and its log lines through two exporters on two schedules (the
SDK's defaults: spans every 5 s, ``OTEL_BSP_SCHEDULE_DELAY``; logs every 1 s,
``OTEL_BLRP_SCHEDULE_DELAY``). When the span exporter's turn falls in the second after an
attempt ended, before the logs exporter's (about one retry in ten), the attempt's span is
here before the lines it wrote. Every job then reads final, and a page that stopped
following at that moment would never show those lines.

So a trace is ``settling`` for a grace period after it last changed: the logs exporter's
interval, the time an export takes, and a margin for a loaded machine. It last changed at
the latest of the moment its spans or lines were last seen to change here (by a reader
polling it) and the end of its latest span (a span ends after every line it was current
for was written, and the logs exporter sends those lines within its interval).
"""

from __future__ import annotations

import os
import threading
import time
import typing as t
from collections import OrderedDict

from opentelemetry.sdk.environment_variables import OTEL_BLRP_SCHEDULE_DELAY

if t.TYPE_CHECKING:
    from opentelemetry.sdk.trace import ReadableSpan

_SDK_LOGS_INTERVAL_S = 1.0  # the SDK's default OTEL_BLRP_SCHEDULE_DELAY (1000 ms)
_MARGIN_S = 4.0  # an export's round trip and a loaded machine's delays
_REMEMBERED = 256  # traces whose last change is remembered: the ones pages are open on

_lock = threading.Lock()
_seen: OrderedDict[int, tuple[tuple[int, int], float]] = OrderedDict()


def grace_seconds() -> float:
    """How long after its last change a trace may still gain log lines from elsewhere.

    Workers are usually started with the app's environment: a logs interval set there
    (``OTEL_BLRP_SCHEDULE_DELAY``, in ms) is taken as theirs.
    """
    try:
        interval = float(os.environ.get(OTEL_BLRP_SCHEDULE_DELAY, "")) / 1000
    except ValueError:
        interval = _SDK_LOGS_INTERVAL_S
    return max(interval, _SDK_LOGS_INTERVAL_S) + _MARGIN_S


def settling(trace_id: int, spans: list[ReadableSpan], log_lines: int) -> bool:
    """Whether the trace changed within the grace period (see the module docstring)."""
    now = time.time()
    shape = (len(spans), log_lines)
    with _lock:
        seen = _seen.get(trace_id)
        # A trace first asked about now changed when its content says, not now: an old
        # trace's page is final at once.
        changed_at = 0.0 if seen is None else seen[1] if seen[0] == shape else now
        _seen[trace_id] = (shape, changed_at)
        _seen.move_to_end(trace_id)
        while len(_seen) > _REMEMBERED:
            _seen.popitem(last=False)
    ended = max((span.end_time or 0 for span in spans), default=0) / 1e9
    return now - max(changed_at, ended) < grace_seconds()
