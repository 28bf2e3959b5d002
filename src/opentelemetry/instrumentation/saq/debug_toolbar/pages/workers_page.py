"""The workers page as server-rendered HTML (templates/workers.html), polled while open.

The view model is plain data from ``workers_view``; the template escapes all of it (queue
names, worker ids and log lines come from user code and other processes).
"""

from __future__ import annotations

import datetime as dt
import typing as t

from opentelemetry.instrumentation.saq.debug_toolbar.pages.trace_view import PAGE_PREFIX
from opentelemetry.instrumentation.saq.debug_toolbar.templating import duration, render

WORKERS_PATH = f"{PAGE_PREFIX}/workers"
POLL_SECONDS = 2.0
"""How often an open, visible workers page reads the queues again."""


def render_workers(view: dict[str, t.Any]) -> str:
    """Each queue's depth and workers, and what workers said outside attempts."""
    queues = [
        {
            **queue,
            "oldest": _age(queue.get("oldest_age_s")),
            "workers": [_worker(worker) for worker in queue.get("workers", [])],
        }
        for queue in view["queues"]
    ]
    lines = [{**line, "clock": _clock(line["time_ns"])} for line in view["lines"]]
    return render(
        "workers.html",
        title="SAQ workers and queues",
        prefix=PAGE_PREFIX,
        queues=queues,
        lines=lines,
        view=view,
        poll_seconds=POLL_SECONDS,
    )


def _worker(worker: dict[str, t.Any]) -> dict[str, t.Any]:
    seen = worker.get("last_seen_s")
    last_seen = "-" if seen is None else f"{duration(seen)} ago"
    if seen is not None and worker.get("last_seen_assumed"):
        last_seen = f"about {last_seen}"
    slots = "-"
    if worker.get("concurrency") is not None:
        slots = f"{worker.get('busy', 0)} / {worker['concurrency']}"
    elif worker.get("busy") is not None:  # read from the queue's active jobs
        slots = f"{worker['busy']} / not known"
    uptime = worker.get("uptime_s")
    return {
        **worker,
        "last_seen": last_seen,
        "slots": slots,
        "uptime": "-" if uptime is None else duration(uptime),
    }


def _age(seconds: float | None) -> str:
    if seconds is None:
        return "not known"
    return "none waiting" if seconds == 0 else f"{duration(seconds)} late"


def _clock(time_ns: int) -> str:
    return dt.datetime.fromtimestamp(time_ns / 1e9).strftime("%H:%M:%S.%f")[:-3]
