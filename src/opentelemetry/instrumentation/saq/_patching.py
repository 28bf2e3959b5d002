"""Wrapping SAQ's methods with ``wrapt`` and putting the originals back, exactly.

As contrib's instrumentations do, every patch is a ``wrapt.FunctionWrapper`` installed by
``wrapt.wrap_function_wrapper``, and every wrapper has wrapt's signature
``(wrapped, instance, args, kwargs)``: ``wrapped`` is the method bound to ``instance``
(the queue, worker or job), and the wrapper calls ``wrapped(*args, **kwargs)``. wrapt's
wrapper is C code: measured with ``benchmarks/overhead.py --quick``, an enqueue and a job
cost at most 0.3% more bytecodes than with plain functions set by ``setattr``. (A
method-shaped function behind each wrapt wrapper cost 30 bytecodes more per enqueue: the
arguments re-packed once more.)

Undone by putting the original object back, not by contrib's ``unwrap()``: that reads the
attribute through its descriptor, and on a class where two of our wrappers are stacked
(the quiet worker's over the consumer's) it leaves a bound wrapper behind instead of the
original. ``uninstrument()`` puts back the identical original objects.
"""

from __future__ import annotations

import importlib
import logging
import typing as t
from types import ModuleType

import wrapt

logger = logging.getLogger(__name__)

Args = tuple[t.Any, ...]
Kwargs = dict[str, t.Any]
Method = t.Callable[..., t.Awaitable[t.Any]]
# wrapt's wrapper: (wrapped, instance, args, kwargs) -> what the wrapped call returns.
Wrapper = t.Callable[[t.Any, t.Any, Args, Kwargs], t.Any]


class Patch(t.NamedTuple):
    owner: type | ModuleType
    name: str
    original: t.Any
    replacement: t.Any  # the wrapt.FunctionWrapper installed in its place
    wrapper: Wrapper


def patch(owner: type | ModuleType, name: str, wrapper: Wrapper) -> Patch:
    """Wrap ``owner.name`` with ``wrapper``, which calls the wrapped original.

    Raises if ``owner`` itself does not define ``name`` (a SAQ without that method).
    """
    original = owner.__dict__[name]
    installed = wrapt.wrap_function_wrapper(owner, name, wrapper)
    return Patch(owner, name, original, installed, wrapper)


def restore(patches: t.Iterable[Patch]) -> None:
    """Put the originals back, unless someone else has since replaced ours."""
    for item in reversed(list(patches)):
        current = item.owner.__dict__.get(item.name)
        if current is item.replacement:
            setattr(item.owner, item.name, item.original)
        else:
            logger.warning(
                "%s.%s was replaced after SAQ was instrumented; leaving it as it is",
                getattr(item.owner, "__qualname__", item.owner.__name__),
                item.name,
            )


def queue_classes_defining(name: str) -> list[type]:
    """SAQ's queue classes whose own body defines ``name`` (those whose extras are installed)."""
    found = []
    for module, class_name in (
        ("saq.queue.base", "Queue"),
        ("saq.queue.redis", "RedisQueue"),
        ("saq.queue.postgres", "PostgresQueue"),
        ("saq.queue.http", "HttpQueue"),
    ):
        try:
            owner = getattr(importlib.import_module(module), class_name)
        except Exception:  # that queue's extra (redis, psycopg, aiohttp) is not installed
            continue
        if name in owner.__dict__:
            found.append(owner)
    return found
