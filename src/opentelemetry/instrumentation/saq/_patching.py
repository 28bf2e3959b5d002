"""Wrapping SAQ's methods with ``wrapt`` and putting the originals back, exactly.

As contrib's instrumentations do, every patch is a ``wrapt.FunctionWrapper`` installed by
``wrapt.wrap_function_wrapper``: it keeps the method's name, signature and descriptor
behaviour, and other tools recognise it as a wrapper. Measured with
``benchmarks/overhead.py --quick``: bytecodes per job as with plain functions (wrapt's
wrapper is C code), see the commit that made the change.

Each wrapper is made by ``make(original)`` and calls the original object it was given;
``instance`` is passed as the first argument, so a wrapper reads like the method it wraps.

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

Wrapper = t.Callable[..., t.Any]


class Patch(t.NamedTuple):
    owner: type | ModuleType
    name: str
    original: t.Any
    replacement: t.Any  # the wrapt.FunctionWrapper installed in its place
    make: t.Callable[[t.Any], Wrapper]


def patch(owner: type | ModuleType, name: str, make: t.Callable[[t.Any], Wrapper]) -> Patch:
    """Wrap ``owner.name`` with ``make(original)``, which calls the original.

    Raises if ``owner`` itself does not define ``name`` (a SAQ without that method).
    """
    original = owner.__dict__[name]
    replacement = make(original)

    def call(wrapped: t.Any, instance: t.Any, args: t.Any, kwargs: t.Any) -> t.Any:
        if instance is None:  # a module's function, or ``original`` called as a function
            return replacement(*args, **kwargs)
        return replacement(instance, *args, **kwargs)

    installed = wrapt.wrap_function_wrapper(owner, name, call)
    return Patch(owner, name, original, installed, make)


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
