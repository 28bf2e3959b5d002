"""The soak's judgement: one run's files and final jobs turned into the rows of its table.

Sources: the final jobs in Redis (status, result, attempts SAQ recorded); the workers'
attempt lines (``S``/``E`` per attempt, see soak_worker.py); the spans the receiver
decoded (spans.jsonl); the reports of the processes that stopped gracefully.
"""

from __future__ import annotations

import json
import typing as t
from collections import Counter
from pathlib import Path

import soak_worker
from saq.job import Status

PRODUCER, CONSUMER = 4, 5  # OTLP span kinds
WORKER_SERVICE = "soak-worker-"
Attempt = tuple[int, str, int]  # (worker pid, job key, attempt number)


def _attempt_lines(workdir: Path) -> tuple[Counter[Attempt], Counter[Attempt]]:
    started: Counter[Attempt] = Counter()
    ended: Counter[Attempt] = Counter()
    for path in workdir.glob("attempts-*.log"):
        pid = int(path.stem.split("-")[1])
        for line in path.read_text().splitlines():
            mark, key, attempt = line.split()
            (started if mark == "S" else ended)[pid, key, int(attempt)] += 1
    return started, ended


def _spans(workdir: Path) -> list[dict[str, t.Any]]:
    path = workdir / "spans.jsonl"
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines()]


def _rate(jobs: dict[str, t.Any], began_ms: float, enqueued_ms: float) -> str:
    """Jobs per second while the producer enqueued, by SAQ's own completion times.

    The producer keeps the queue short, so this is the workers' pace. Not to the last
    job: SAQ's sweep recovers the jobs the faults stranded one at a time, waiting up to
    5 s on each, which would make the figure about the sweep.
    """
    done = sum(1 for job in jobs.values() if job and 0 < job.completed <= enqueued_ms)
    return f"{done / max(0.001, (enqueued_ms - began_ms) / 1000):,.0f}"


def _ratio(part: int, whole: int) -> str:
    return f"{part / whole:.4f} ({part:,}/{whole:,})" if whole else f"- ({part:,}/0)"


def judge(run: dict[str, t.Any]) -> dict[str, str]:
    """The run's column of the table, row by row."""
    producer, jobs, workdir = run["producer"], run["jobs"], run["workdir"]
    killed = set(run["killed"])
    statuses: Counter[str] = Counter()
    wrong = attempts_recorded = 0
    for key, n in producer.enqueued.items():
        job = jobs.get(key)
        statuses[job.status.value if job else "none"] += 1
        if job is None:
            continue
        attempts_recorded += job.attempts
        function, result = soak_worker.expected_result(n)
        if job.status == Status.COMPLETE and (job.function, job.result) != (function, result):
            wrong += 1
    started, ended = _attempt_lines(workdir)
    in_flight = sum(max(0, started[a] - ended[a]) for a in started if a[0] in killed)
    final = sum(statuses[s.value] for s in (Status.COMPLETE, Status.FAILED, Status.ABORTED))
    enqueued = len(producer.enqueued)
    figures = {
        "jobs enqueued": f"{enqueued:,}",
        "enqueues refused by Redis, retried": f"{producer.errors:,}"
        + (f" ({producer.landed_anyway} had landed)" if producer.landed_anyway else ""),
        "complete": f"{statuses['complete']:,}",
        "failed": f"{statuses['failed']:,}",
        "aborted": f"{statuses['aborted']:,}",
        "missing (no final status)": f"{enqueued - final:,}",
        "complete with a wrong result": f"{wrong:,}",
        "jobs/s while enqueueing": _rate(jobs, run["began_ms"], run["enqueued_ms"]),
        "seconds to the last job final": f"{run['seconds']:,.0f}",
        "attempts SAQ recorded": f"{attempts_recorded:,}",
        "attempts started (before-process hook)": f"{sum(started.values()):,}",
        "attempts in flight in a SIGKILLed worker": f"{in_flight:,}",
    }
    if run["instrumented"]:
        figures.update(_span_figures(run, started, ended, attempts_recorded))
    return figures


def _span_figures(
    run: dict[str, t.Any], started: Counter[Attempt], ended: Counter[Attempt], recorded: int
) -> dict[str, str]:
    producer, workdir, killed = run["producer"], run["workdir"], set(run["killed"])
    spans = _spans(workdir)
    sends = [s for s in spans if s["kind"] == PRODUCER]
    accepted = [s for s in sends if not s["error"] and not s["duplicate"]]
    refused = [s for s in sends if s["error"]]
    per_job = Counter(s["key"] for s in accepted)
    not_one = sum(per_job[key] != 1 for key in producer.returned)
    send_ids: dict[str, set[tuple[str, str]]] = {}
    for send in sends:
        send_ids.setdefault(send["key"], set()).add((send["trace"], send["span"]))
    processes = [s for s in spans if s["kind"] == CONSUMER]
    misparented = sum(
        (p["trace"], p["parent"]) not in send_ids.get(p["key"], set()) for p in processes
    )
    exported: Counter[Attempt] = Counter(
        (int(p["service"].removeprefix(WORKER_SERVICE)), p["key"], p["attempt"]) for p in processes
    )
    lost_in_flight = lost_buffered = lost_surviving = 0
    for attempt, count in started.items():
        missing = max(0, count - exported[attempt])
        if attempt[0] in killed:
            never_ended = max(0, count - ended[attempt])
            lost_in_flight += min(missing, never_ended)
            lost_buffered += missing - min(missing, never_ended)
        else:
            lost_surviving += missing
    unmatched = sum(max(0, count - started[attempt]) for attempt, count in exported.items())
    # Reports come from the processes that stopped gracefully: the producer (this
    # process) and the workers that SIGTERM stopped in time. SIGKILLed ones write none.
    reported = [json.loads(p.read_text()) for p in workdir.glob("report-*.json")]
    run["notes"] = [
        f"pid {r['pid']}: {note}"
        for r in reported
        for note in [*r["our_samples"], *r["sdk_samples"]]
        + ([f"open spans {r['open_names']}"] if r["open_names"] else [])
    ]
    open_spans = sum(r["spans_open"] for r in reported)
    reporters = f"{len(reported)} of {len(run['graceful']) + 1} processes reported"
    return {
        "send spans per successful enqueue": _ratio(len(accepted), len(producer.returned))
        + (f", {not_one:,} jobs with other than one" if not_one else ""),
        "send spans of refused enqueues (ERROR)": f"{len(refused):,} of {producer.errors:,}",
        "process spans per attempt SAQ recorded": _ratio(len(processes), recorded),
        "process spans per attempt started, less those lost with a SIGKILLed worker": _ratio(
            len(processes), sum(started.values()) - lost_in_flight - lost_buffered
        ),
        "attempts without a span: in flight in a SIGKILLed worker": f"{lost_in_flight:,}",
        "attempts without a span: ended, unexported when SIGKILLed": f"{lost_buffered:,}",
        "attempts without a span: in a surviving worker": f"{lost_surviving:,}",
        "process spans of no started attempt": f"{unmatched:,}",
        "attempts whose parent is not their send span": f"{misparented:,}",
        "spans started, never ended (surviving processes)": f"{open_spans:,} ({reporters})",
        "warnings from opentelemetry.instrumentation.saq.*": _total(reported, "our_warnings"),
        "warnings from the SDK and exporter": _total(reported, "sdk_warnings"),
    }


def _total(reports: list[dict[str, t.Any]], field: str) -> str:
    return f"{sum(r[field] for r in reports):,}"


def table(runs: list[dict[str, t.Any]], jobs: int) -> str:
    """One Markdown table, a column per run, and what the reports said below it."""
    names = ["instrumented" if run["instrumented"] else "bare" for run in runs]
    rows: list[str] = []
    for run in runs:
        rows.extend(row for row in run["figures"] if row not in rows)
    lines = [f"| {jobs:,} jobs, 4 workers | {' | '.join(names)} |",
             "| --- |" + " ---: |" * len(runs)]  # fmt: skip
    for row in rows:
        cells = [run["figures"].get(row, "-") for run in runs]
        lines.append(f"| {row} | {' | '.join(cells)} |")
    for run, name in zip(runs, names, strict=True):
        lines.extend(f"{name}, {note}" for note in run.get("notes", []))
    return "\n".join(lines)
