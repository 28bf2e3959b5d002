"""What every span and metric point of one queue shares, worked out once per queue.

The queue's name, the broker it talks to (``server.address``, ``server.port``) and the
attribute sets and span names built from them do not change while the queue lives, and
a dict per job is measurable next to a Redis round trip on loopback.
"""

from __future__ import annotations

import logging
import typing as t
import weakref
from urllib.parse import urlsplit

from opentelemetry.instrumentation.saq._attributes import (
    MESSAGING_DESTINATION_NAME,
    MESSAGING_OPERATION_NAME,
    MESSAGING_OPERATION_TYPE,
    MESSAGING_SYSTEM,
    MESSAGING_SYSTEM_SAQ,
    PROCESS,
    SEND,
    SERVER_ADDRESS,
    SERVER_PORT,
)

if t.TYPE_CHECKING:
    from opentelemetry.util.types import AttributeValue
    from saq.queue import Queue

    Attributes = dict[str, AttributeValue]

logger = logging.getLogger(__name__)

_POSTGRES_PORT = 5432


class QueueFacts:
    """One queue's names and shared attributes (never mutate the dicts)."""

    __slots__ = (
        "functions",
        "name",
        "outcomes",
        "process",
        "process_name",
        "queue",
        "send",
        "send_errors",
        "send_name",
        "server",
    )

    def __init__(self, queue: Queue) -> None:
        self.name: str = queue.name
        self.server: Attributes = broker_attributes(queue)
        # The queue itself, with no operation: what its health gauges carry.
        self.queue: Attributes = {
            MESSAGING_SYSTEM: MESSAGING_SYSTEM_SAQ,
            MESSAGING_DESTINATION_NAME: self.name,
            **self.server,
        }
        self.send_name = f"{SEND} {self.name}"
        self.process_name = f"{PROCESS} {self.name}"
        # The attributes the messaging conventions list as relevant for sampling: a span
        # starts with these alone, and metric points carry the same set.
        self.send: Attributes = self._operation(SEND)
        self.process: Attributes = self._operation(PROCESS)
        # Metric attribute sets by job function (bounded by the caller: registered names
        # and _OTHER), by (function, status, error type) and by error type, filled as met.
        self.functions: dict[str, Attributes] = {}
        self.outcomes: dict[tuple[str, str, str | None], Attributes] = {}
        self.send_errors: dict[str, Attributes] = {}

    def _operation(self, operation: str) -> Attributes:
        return {
            MESSAGING_SYSTEM: MESSAGING_SYSTEM_SAQ,
            MESSAGING_OPERATION_TYPE: operation,
            MESSAGING_OPERATION_NAME: operation,
            **self.queue,
        }


_FACTS: weakref.WeakKeyDictionary[Queue, QueueFacts] = weakref.WeakKeyDictionary()


def known_queues() -> list[Queue]:
    """The queues this process has enqueued to or run a job of (while instrumented), and
    those of the workers made here: what the debug toolbar's workers page reads."""
    queues = list(_FACTS.keys())
    queues += [worker.queue for worker in known_workers() if worker.queue not in _FACTS]
    return list({id(queue): queue for queue in queues}.values())


# Workers made in this process while instrumented (Worker.__init__, never a job's path):
# weakly held, so a stopped worker goes with its last reference.
_WORKERS: weakref.WeakSet[t.Any] = weakref.WeakSet()


def remember_worker(worker: t.Any) -> None:
    _WORKERS.add(worker)


def has_workers() -> bool:
    """Whether a worker was made in this process (a cheap test, for each log record)."""
    return len(_WORKERS) > 0


def known_workers() -> list[t.Any]:
    return [worker for worker in list(_WORKERS) if getattr(worker, "queue", None) is not None]


def facts(queue: Queue) -> QueueFacts:
    """The facts of ``queue``, worked out on its first job."""
    found = _FACTS.get(queue)
    if found is None or found.name != queue.name:
        found = _FACTS[queue] = QueueFacts(queue)
    return found


def broker_attributes(queue: Queue) -> Attributes:
    """``server.address`` and ``server.port`` of the Redis, Postgres or HTTP server.

    Empty when the queue's client does not say (a cluster, a custom connection): the
    conventions want these attributes only when they are known.
    """
    try:
        host, port = _broker(queue)
    except Exception:
        logger.debug("could not tell which server queue %s uses", queue.name, exc_info=True)
        return {}
    attributes: Attributes = {}
    if host:
        attributes[SERVER_ADDRESS] = host
        if port:
            attributes[SERVER_PORT] = port
    return attributes


def _broker(queue: Queue) -> tuple[str | None, int | None]:
    redis = getattr(queue, "redis", None)
    if redis is not None:
        kwargs = redis.connection_pool.connection_kwargs
        if kwargs.get("path"):  # a Unix socket: its path is the address, no port
            return str(kwargs["path"]), None
        return _host(kwargs.get("host")), _port(kwargs.get("port"))
    pool = getattr(queue, "pool", None)
    conninfo = getattr(pool, "conninfo", None)
    if isinstance(conninfo, str):
        from psycopg.conninfo import conninfo_to_dict

        params = conninfo_to_dict(conninfo)
        host = _host(params.get("host") or params.get("hostaddr"))
        if host is None or "," in host:  # several hosts: which one is not known here
            return None, None
        if host.startswith("/"):  # a Unix socket directory
            return host, None
        return host, _port(params.get("port")) or _POSTGRES_PORT
    url = getattr(queue, "url", None)
    if isinstance(url, str):
        parts = urlsplit(url)
        return parts.hostname, parts.port or {"https": 443, "http": 80}.get(parts.scheme)
    return None, None


def _host(value: object) -> str | None:
    return value if isinstance(value, str) and value else None


def _port(value: object) -> int | None:
    try:
        port = int(str(value))
    except ValueError:
        return None
    return port if 0 < port < 65536 else None
