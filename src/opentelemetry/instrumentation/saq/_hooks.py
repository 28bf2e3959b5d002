"""The user's hooks: called with a recording span and the job, never allowed to break it."""

from __future__ import annotations

import inspect
import logging
import typing as t

from opentelemetry.trace import Span

if t.TYPE_CHECKING:
    from saq.job import Job
else:
    Job = t.Any  # SAQ may not be installed where this is imported; hints still resolve

SpanHook = t.Callable[[Span, Job], t.Awaitable[None] | None]
"""The type of ``send_hook`` and ``process_hook``: ``hook(span, job)``, a plain function or a
coroutine function (awaited before the enqueue or the attempt goes on).

It is called only for spans that record, with the span and SAQ's ``Job``; what it returns
is ignored. A hook that raises is logged as a warning and never breaks the enqueue or the
job; its exception never reaches the code that enqueued or the job function.
"""

logger = logging.getLogger(__name__)


async def call(hook: SpanHook, which: str, span: Span, job: Job) -> None:
    """Call ``hook(span, job)`` (sync or async); log what it raises instead of raising."""
    try:
        result = hook(span, job)
        if inspect.isawaitable(result):
            await result
    except Exception:
        logger.warning("the %s hook raised; the job carries on", which, exc_info=True)
