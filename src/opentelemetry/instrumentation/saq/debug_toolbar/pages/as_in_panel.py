"""The trace page told as the panel tells it: map's jobs by their argument, in its order.

The panel tells apart jobs of one function by the argument whose value differs
(``jobs.distinguish``) and lists jobs in the order they were enqueued. The page takes
both from the panel's entries (``known``), so the two read alike.
"""

from __future__ import annotations

import typing as t

from opentelemetry.trace import SpanKind

from opentelemetry.instrumentation.saq._attributes import SAQ_JOB_KEY

if t.TYPE_CHECKING:
    from opentelemetry.sdk.trace import ReadableSpan

Known = t.Mapping[str, t.Mapping[str, t.Any]]


def order(siblings: list[ReadableSpan], known: Known) -> None:
    """Sends the panel lists, in the panel's order, in the places they hold by time.

    ``queue.map`` enqueues in tasks of its own, whose sends start in any order: the page
    lists them as the panel does, so that the two read alike.
    """
    listed_at = {key: index for index, key in enumerate(known)}

    def place(span: ReadableSpan) -> int | None:
        key = (span.attributes or {}).get(SAQ_JOB_KEY)
        sent = span.kind is SpanKind.PRODUCER and isinstance(key, str)
        return listed_at.get(t.cast(str, key)) if sent else None

    slots = [index for index, span in enumerate(siblings) if place(span) is not None]
    listed = sorted((siblings[index] for index in slots), key=lambda span: place(span) or 0)
    for index, span in zip(slots, listed, strict=True):
        siblings[index] = span


def name_arguments(rows: list[dict[str, t.Any]], known: Known) -> None:
    """Each row of a job gets the argument the panel shows for it (or None)."""
    for row in rows:
        entry = known.get(str(row.get("job_key")))
        row["argument"] = entry.get("argument") if entry is not None else None
