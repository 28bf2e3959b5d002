"""server.address and server.port: the broker each kind of queue talks to."""

from __future__ import annotations

from saq.queue.http import HttpQueue
from saq.queue.postgres import PostgresQueue
from saq.queue.redis import RedisQueue

from opentelemetry.instrumentation.saq._queues import broker_attributes, facts


async def test_a_redis_queue_names_its_host_and_port(queue: RedisQueue, redis_url: str) -> None:
    port = int(redis_url.rsplit(":", 1)[1])
    assert broker_attributes(queue) == {"server.address": "127.0.0.1", "server.port": port}


def test_a_redis_queue_on_a_unix_socket_names_the_socket_and_no_port() -> None:
    queue = RedisQueue.from_url("unix:///run/redis/redis.sock", name="sock")
    assert broker_attributes(queue) == {"server.address": "/run/redis/redis.sock"}


async def test_a_postgres_queue_names_its_host_and_port(
    pg_queue: PostgresQueue, postgres_url: str
) -> None:
    port = int(postgres_url.rsplit(":", 1)[1].split("/")[0])
    assert broker_attributes(pg_queue) == {"server.address": "127.0.0.1", "server.port": port}


def test_postgres_defaults_to_its_port_and_says_nothing_of_several_hosts() -> None:
    default = PostgresQueue.from_url("postgresql://db.internal/app", name="pg")
    several = PostgresQueue.from_url("postgresql://a,b/app", name="pg")
    assert broker_attributes(default) == {"server.address": "db.internal", "server.port": 5432}
    assert broker_attributes(several) == {}


def test_an_http_queue_names_its_server() -> None:
    queue = HttpQueue("https://jobs.example.com/queue", name="http")
    assert broker_attributes(queue) == {"server.address": "jobs.example.com", "server.port": 443}


def test_facts_are_worked_out_once_per_queue(queue: RedisQueue) -> None:
    assert facts(queue) is facts(queue)
    assert facts(queue).send_name == f"send {queue.name}"
