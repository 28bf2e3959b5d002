"""Worker subclasses that override SAQ's process hooks get our wrappers as well.

``Worker.process`` calls ``self._before_process(ctx)`` and ``self._after_process(ctx)``:
the attempt starts and ends in our wrappers of Worker's own, and so does the lift of the
quiet worker's suppression (see _quiet). A subclass that overrides either without calling
``super()`` would skip them: its jobs would run untraced, with instrumentation suppressed
(no span of the Redis or HTTP client the job calls). So every subclass that defines one of
these methods itself gets the same wrappers, in the same order, as Worker: the subclasses
that exist at ``instrument()``, and those first seen when one of their workers is made
(``Worker.__init__``, which every worker runs).

A subclass that does call ``super()`` goes through our wrappers twice; the inner pass finds
its attempt started (or ended) and the quiet lifted (or restored), and only calls on.
"""

from __future__ import annotations

import logging
import typing as t
import weakref

from opentelemetry.instrumentation.saq import _queues
from opentelemetry.instrumentation.saq._patching import Args, Kwargs, Patch, patch

logger = logging.getLogger(__name__)

# SAQ's hooks around each job that a subclass may override.
HOOKS = ("_before_process", "_after_process")


class Overrides:
    """Puts Worker's wrappers of :data:`HOOKS` on the subclasses that override them."""

    def __init__(self, worker_class: type, patches: list[Patch]) -> None:
        self._base = worker_class
        # The instrumentor's own list: uninstrument() restores what is added here too.
        self._patches = patches
        self._wrappers = {
            name: [
                item.wrapper for item in patches if item.owner is worker_class and item.name == name
            ]
            for name in HOOKS
        }
        self._seen: weakref.WeakSet[type] = weakref.WeakSet([worker_class])

    def cover_existing(self) -> None:
        """Wrap the overrides of every subclass defined so far."""
        pending: list[type] = list(self._base.__subclasses__())
        while pending:
            subclass = pending.pop()
            self.cover(subclass)
            pending += subclass.__subclasses__()

    def cover(self, cls: type) -> None:
        """Wrap the overrides of ``cls`` and of its bases between it and Worker."""
        for klass in reversed(cls.__mro__):  # Worker's subclasses before theirs
            if klass in self._seen or not issubclass(klass, self._base):
                continue
            self._seen.add(klass)
            for name, wrappers in self._wrappers.items():
                if name in klass.__dict__:
                    self._patches += [patch(klass, name, wrapper) for wrapper in wrappers]

    def covering_init(
        self, init: t.Callable[..., None], worker: t.Any, args: Args, kwargs: Kwargs
    ) -> None:
        """The wrapper of ``Worker.__init__``: covers the worker's class first."""
        cls = type(worker)
        if cls not in self._seen:
            try:
                self.cover(cls)
            except Exception:
                logger.warning(
                    "could not wrap the process hooks of %s", cls.__qualname__, exc_info=True
                )
        init(*args, **kwargs)
        try:  # for the debug toolbar's workers page: its concurrency and busy slots
            _queues.remember_worker(worker)
        except Exception:
            logger.debug("could not remember a worker", exc_info=True)
