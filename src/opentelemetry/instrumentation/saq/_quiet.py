"""Quiet workers: SAQ's own Redis, Postgres and HTTP calls out of other instrumentations' sight.

With the Redis (or psycopg, aiohttp-client) instrumentation on, a worker's machinery makes
a root trace of every command: the schedule script every second, the stats writes, the
dequeue, the job fetch, the status write before the attempt. SAQ's machinery runs under
the standard suppression key of ``opentelemetry-instrumentation`` instead, and only there:

- The worker's upkeep tasks (schedule, sweep, stats, abort polling) are created inside a
  quiet context; each ``Worker.process`` (dequeue, Postgres' listen and polling, the
  ACTIVE status write) runs in one, and so do ``Queue.connect`` and ``disconnect``
  (Postgres' migrations).
- The quiet context remembers the context it was made from; where the user's code starts
  inside SAQ's machinery, that context is attached again ("lifted"): at the top of
  ``_before_process`` until the end of ``_after_process`` (the user's hooks and the job's
  task, created in between, inherit it; a Worker subclass's overrides of the two are
  wrapped as well, see _overrides), and by the producer around ``_before_enqueue``
  (the user's before-enqueue callbacks, e.g. of a cron enqueue). Our lift comes before
  the consumer's attach and ends after its detach, so every context nests.
- Our own wrappers still see a quiet context as instrumentable (:func:`only_saq_is_quiet`):
  SAQ's quiet, unlike the user's ``suppress_instrumentation()``, costs no span or metric.

Inside a send or process span SAQ's calls (the enqueue script, the status writes after the
job ran) stay visible as its children unless ``internal_instrumentation_in_jobs=False``
quiets those too; ``enable_internal_instrumentation=True`` installs none of this.
"""

from __future__ import annotations

import contextlib
import logging
import typing as t
from contextvars import ContextVar

from opentelemetry import context
from opentelemetry.context import Context
from opentelemetry.instrumentation.utils import suppress_instrumentation

from opentelemetry.instrumentation.saq._patching import Patch, patch, queue_classes_defining

if t.TYPE_CHECKING:
    from collections.abc import Iterator
    from contextvars import Token

    from opentelemetry.instrumentation.saq._patching import Args, Kwargs, Method

logger = logging.getLogger(__name__)

# Set while SAQ's machinery runs quiet: the context it was quieted from, to lift it again.
# A ContextVar of its own, set and reset with each attach and detach of the quiet
# context: reading it is the cheapest check on the per-job path.
OUTSIDE: ContextVar[Context | None] = ContextVar("saq_quiet_outside", default=None)


def _suppression() -> dict[str, object]:
    """The values ``suppress_instrumentation()`` sets in the context, learnt from it.

    Its keys are private names of the API (one, and its old plain name that some
    instrumentations read alone): the public context manager tells them, and a quiet
    context carries the same values without a context manager's cost per job.
    """
    try:
        token = context.attach(Context())
        try:
            with suppress_instrumentation():
                return dict(context.get_current())
        finally:
            context.detach(token)
    except Exception:  # a future API: quiet workers are off (see available())
        return {}


# What suppress_instrumentation() sets, and its keys: any of them set means suppressed.
_SUPPRESSED = _suppression()
_SUPPRESSION_KEYS = tuple(_SUPPRESSED)


class _Lift(t.NamedTuple):
    token: Token[Context]
    outside: Token[Context | None]


# The lift a worker task made in _before_process, undone at the end of _after_process.
_LIFTED: ContextVar[_Lift | None] = ContextVar("saq_quiet_lifted", default=None)


def only_saq_is_quiet() -> bool:
    """Whether instrumentation is suppressed here by SAQ's quiet alone (not by the user)."""
    return OUTSIDE.get() is not None


@contextlib.contextmanager
def lifted() -> Iterator[None]:
    """The context SAQ's machinery was quieted from, while the user's code runs."""
    lift = _lift()
    try:
        yield
    finally:
        if lift is not None:
            _unlift(lift)


def _lift() -> _Lift | None:
    outside = OUTSIDE.get()
    if outside is None:
        return None
    return _Lift(context.attach(outside), OUTSIDE.set(None))


def _unlift(lift: _Lift) -> None:
    OUTSIDE.reset(lift.outside)
    context.detach(lift.token)


def available() -> bool:
    """Whether SAQ's machinery can be quieted; logs once (per instrument()) when not."""
    if not _SUPPRESSED:
        logger.warning(
            "suppress_instrumentation() sets nothing this instrumentation can read: SAQ's "
            "own Redis, Postgres and HTTP calls are traced, as with "
            "enable_internal_instrumentation=True"
        )
    return bool(_SUPPRESSED)


class Quiet:
    """The patches that keep SAQ's machinery quiet; see the module's docs."""

    def __init__(self, in_jobs: bool = True) -> None:
        # False: SAQ's calls inside our send and process spans are quiet as well.
        self._in_jobs = in_jobs

    def patches_under_ours(self) -> list[Patch]:
        """Quiet SAQ's calls inside our spans: applied before our own wrappers."""
        if self._in_jobs:
            return []
        from saq.queue.base import Queue

        patches = [patch(Queue, name, _quiet) for name in ("enqueue", "finish", "retry")]
        patches += [patch(owner, "update", _quiet) for owner in queue_classes_defining("update")]
        return patches

    def patches_over_ours(self) -> list[Patch]:
        """Quiet the machinery and lift the quiet for the user: applied after our wrappers."""
        from saq.worker import Worker

        patches = [
            # Tasks the upkeep creates inherit its quiet context; a process task attaches
            # its own, so that nothing quiet is left behind in SAQ's done-callbacks.
            patch(Worker, "upkeep", _quiet),
            patch(Worker, "process", _quiet),
            patch(Worker, "_before_process", _lifted_before_process),
            patch(Worker, "_after_process", _lifted_after_process),
        ]
        for name in ("connect", "disconnect"):
            patches += [patch(owner, name, _quiet) for owner in queue_classes_defining(name)]
        return patches


async def _quiet(method: Method, instance: t.Any, args: Args, kwargs: Kwargs) -> t.Any:
    # Plain code, no context manager: Worker.process runs once per job.
    outside = context.get_current()
    if any(map(outside.get, _SUPPRESSION_KEYS)):
        # Suppressed already (by the user, or quiet already): the user's suppression
        # stays theirs, and nothing of ours lifts it.
        return await method(*args, **kwargs)
    # Every key, as suppress_instrumentation() sets them: some instrumentations read
    # only the plain one.
    quiet_context = Context({**outside, **_SUPPRESSED})
    token = context.attach(quiet_context)
    outside_token = OUTSIDE.set(outside)
    try:
        return await method(*args, **kwargs)
    finally:
        OUTSIDE.reset(outside_token)
        context.detach(token)


async def _lifted_before_process(
    before_process: Method, worker: t.Any, args: Args, kwargs: Kwargs
) -> None:
    if OUTSIDE.get() is not None:
        # Kept until _after_process: the job's task is created after this returns.
        _LIFTED.set(_lift())
    await before_process(*args, **kwargs)


async def _lifted_after_process(
    after_process: Method, worker: t.Any, args: Args, kwargs: Kwargs
) -> None:
    lift = _LIFTED.get()
    if lift is None:
        await after_process(*args, **kwargs)
        return
    _LIFTED.set(None)
    try:
        await after_process(*args, **kwargs)
    finally:
        _unlift(lift)
