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

# Public as opentelemetry.instrumentation.saq.SpanHook, documented there.
SpanHook = t.Callable[[Span, Job], t.Awaitable[None] | None]

logger = logging.getLogger(__name__)


async def call(hook: SpanHook, which: str, span: Span, job: Job) -> None:
    """Call ``hook(span, job)`` (sync or async); log what it raises instead of raising."""
    try:
        result = hook(span, job)
        if inspect.isawaitable(result):
            await result
    except Exception:
        logger.warning("the %s hook raised; the job carries on", which, exc_info=True)
