"""The fault soak: many jobs through real workers while Redis restarts and workers die.

    python benchmarks/soak.py                 # 20,000 jobs, bare then instrumented
    python benchmarks/soak.py --jobs 2000     # a small run

Each run: a redis-server with an append-only file (its own port and directory), 4 `saq`
worker processes (benchmarks/soak_worker.py), and this process enqueueing a mix of quick
async jobs, jobs that fail once and succeed on retry, and sync jobs, keeping at most
``--backlog`` jobs queued. At 20%, 40%, 60% and 80% of the enqueues: Redis restarted
(stopped for ``--down`` seconds, the producer retrying its enqueues meanwhile), a worker
SIGKILLed and replaced, Redis restarted, another worker SIGKILLed and replaced. Then
every job is waited for, the workers are stopped gracefully (SIGTERM) and the table
(soak_report.py) compares the two runs. The instrumented run exports OTLP/HTTP from
every process to a receiver process (soak_receiver.py). See docs/reliability.md.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import functools
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import typing as t
from pathlib import Path

from saq.job import TERMINAL_STATUSES, Job
from saq.queue.redis import RedisQueue

sys.path.insert(0, str(Path(__file__).resolve().parent))

import soak_report
import soak_worker
from soak_processes import REDIS_DOWN, AppendOnlyRedis, Workers

from opentelemetry.instrumentation.saq import SAQInstrumentor

BENCHMARKS = Path(__file__).resolve().parent
WORKERS = 4


class Producer:
    """Enqueues the soak's jobs, retrying through Redis restarts, and counts what happened."""

    def __init__(self, queue: RedisQueue) -> None:
        self.queue = queue
        self.enqueued: dict[str, int] = {}  # key -> n, for every job Redis holds
        self.returned: set[str] = set()  # keys whose enqueue() returned the job
        self.errors = 0  # enqueue() raised, and was retried
        self.landed_anyway = 0  # enqueue() raised, yet Redis held the job
        self.duplicates = 0  # enqueue() returned None (Redis held the key already)

    async def read(self, call: t.Callable[[], t.Awaitable[t.Any]]) -> t.Any:
        while True:
            try:
                return await call()
            except REDIS_DOWN:
                await asyncio.sleep(0.1)

    async def enqueue(self, n: int) -> None:
        function, _ = soak_worker.expected_result(n)
        key = f"soak-{n}"
        refused = False
        while True:
            # An enqueue that raised may still have reached Redis: look before retrying,
            # since SAQ would enqueue a job whose earlier copy finished as a new one.
            if refused and await self.read(lambda: self.queue.job(key)) is not None:
                self.landed_anyway += 1
                break
            try:
                job = await self.queue.enqueue(function, key=key, n=n, timeout=5, retries=4, ttl=0)
            except REDIS_DOWN:
                self.errors += 1
                refused = True
                await asyncio.sleep(0.1)
                continue
            if job is None:
                self.duplicates += 1
            else:
                self.returned.add(key)
            break
        self.enqueued[key] = n

    async def wait_for_room(self, backlog: int) -> None:
        while await self.read(lambda: self.queue.count("queued")) > backlog:  # noqa: ASYNC110
            await asyncio.sleep(0.05)


async def final_jobs(producer: Producer, keys: list[str]) -> dict[str, Job | None]:
    found: dict[str, Job | None] = {}
    for start in range(0, len(keys), 500):
        chunk = keys[start : start + 500]
        jobs = await producer.read(functools.partial(producer.queue.jobs, chunk))
        found.update(zip(chunk, jobs, strict=True))
    return found


async def wait_until_finished(producer: Producer, stall: float) -> tuple[list[str], float]:
    """Wait for every job to reach a final status: the keys of those that did not, and
    when the last one that did got there. Gives up after ``stall`` seconds without progress.
    """
    pending = list(producer.enqueued)
    progress_at, before = time.monotonic(), (-1, -1)
    while pending and time.monotonic() - progress_at < stall:
        incomplete = await producer.read(lambda: producer.queue.count("incomplete"))
        if incomplete == 0 or len(pending) <= 2000:  # reading every job is costly
            jobs = await final_jobs(producer, pending)
            pending = [
                k for k, job in jobs.items() if not job or job.status not in TERMINAL_STATUSES
            ]
        if (incomplete, len(pending)) != before:
            progress_at, before = time.monotonic(), (incomplete, len(pending))
        await asyncio.sleep(0.5)
    return pending, progress_at


def _final(job: Job | None) -> bool:
    return job is not None and job.status in TERMINAL_STATUSES


async def settle(producer: Producer, quiet: float, limit: float) -> None:
    """Until the queue has been empty for ``quiet`` s: SAQ's sweep may still re-queue a job
    for a few seconds after it looked finished (it waits up to 5 s on each stuck job)."""
    empty_since, deadline = time.monotonic(), time.monotonic() + limit
    while time.monotonic() - empty_since < quiet and time.monotonic() < deadline:
        counts = [await producer.read(functools.partial(producer.queue.count, kind))
                  for kind in ("incomplete", "queued", "active")]  # fmt: skip
        if any(counts):
            empty_since = time.monotonic()
        await asyncio.sleep(0.5)


async def run(instrumented: bool, args: argparse.Namespace, workdir: Path) -> dict[str, t.Any]:
    """One soak run; what soak_report needs to judge it."""
    redis_server = AppendOnlyRedis(workdir)
    redis_server.start()
    receiver = None
    env = {**os.environ, "SOAK_REDIS_URL": redis_server.url, "SOAK_QUEUE": "soak",
           "SOAK_DIR": str(workdir), "SOAK_INSTRUMENTED": "1" if instrumented else "0"}  # fmt: skip
    instrumentor = provider = None
    if instrumented:
        receiver = subprocess.Popen(  # noqa: ASYNC220 (before the run starts)
            [sys.executable, str(BENCHMARKS / "soak_receiver.py"), str(workdir / "spans.jsonl")],
            stdout=subprocess.PIPE,
        )
        assert receiver.stdout is not None
        endpoint = receiver.stdout.readline().decode().strip()
        env["OTEL_EXPORTER_OTLP_ENDPOINT"] = endpoint
        provider = soak_worker.traced_provider(
            "soak-producer", workdir / "report-producer.json", f"{endpoint}/v1/traces"
        )
        instrumentor = SAQInstrumentor()
        instrumentor.instrument(tracer_provider=provider)
    queue = RedisQueue.from_url(redis_server.url, name="soak")
    producer = Producer(queue)
    workers = Workers(env, workdir)
    try:
        await queue.connect()
        for _ in range(WORKERS):
            workers.start()
        while len((await queue.info())["workers"]) < WORKERS:  # noqa: ASYNC110 (polling Redis)
            await asyncio.sleep(0.1)
        await asyncio.sleep(1)  # past the workers' startup sweep (SAQ's own race)

        faults = {
            args.jobs * 2 // 10: "restart Redis",
            args.jobs * 4 // 10: "SIGKILL worker",
            args.jobs * 6 // 10: "restart Redis",
            args.jobs * 8 // 10: "SIGKILL worker",
        }
        restart: asyncio.Task[None] | None = None
        began, began_ms = time.monotonic(), time.time() * 1000
        batch = 50
        for start in range(0, args.jobs, batch):
            for at, fault in faults.items():
                if start <= at < start + batch:
                    if restart is not None:
                        await restart  # one fault at a time
                    print(f"  {fault} at job {at:,}", file=sys.stderr, flush=True)
                    if fault == "restart Redis":
                        # In a thread: the producer keeps enqueueing while Redis is down.
                        restart = asyncio.create_task(
                            asyncio.to_thread(redis_server.restart, args.down)
                        )
                    else:
                        workers.kill_and_replace(len(workers.killed))
            if restart is None or restart.done():
                await producer.wait_for_room(args.backlog)
            # else: enqueue while Redis is down, whatever the backlog: that is the fault.
            await asyncio.gather(
                *(producer.enqueue(n) for n in range(start, min(start + batch, args.jobs)))
            )
        enqueued_ms = time.time() * 1000
        if restart is not None:
            await restart
        missing, finished_at = await wait_until_finished(producer, args.stall)
        seconds = finished_at - began
        await settle(producer, quiet=6, limit=args.stall)
        graceful = workers.stop()
        jobs = await final_jobs(producer, list(producer.enqueued))
    finally:
        for proc in workers.running:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
        if instrumentor is not None and provider is not None:
            instrumentor.uninstrument()
            provider.shutdown()  # the producer's spans flushed, and its report written
        await queue.disconnect()
        if receiver is not None:
            receiver.send_signal(signal.SIGTERM)
            receiver.wait(30)
        redis_server.stop()
    return {
        "instrumented": instrumented,
        "workdir": workdir,
        "producer": producer,
        "jobs": jobs,
        "missing": missing,
        "seconds": seconds,
        "began_ms": began_ms,
        "enqueued_ms": enqueued_ms,
        "killed": workers.killed,
        "graceful": graceful,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=20_000)
    parser.add_argument("--backlog", type=int, default=200, help="most jobs kept queued")
    parser.add_argument("--down", type=float, default=1.0, help="seconds Redis stays down")
    parser.add_argument("--stall", type=float, default=120, help="give up after s without progress")
    parser.add_argument("--only", choices=["bare", "instrumented"], help="one run, not both")
    parser.add_argument("--keep", action="store_true", help="keep the runs' files (logs, spans)")
    args = parser.parse_args()
    results = []
    for instrumented in (False, True):
        if args.only and args.only != ("instrumented" if instrumented else "bare"):
            continue
        workdir = Path(tempfile.mkdtemp(prefix="saq-soak-"))
        print(f"{'instrumented' if instrumented else 'bare'} run in {workdir}", file=sys.stderr)
        try:
            results.append(asyncio.run(run(instrumented, args, workdir)))
            results[-1]["figures"] = soak_report.judge(results[-1])
        finally:
            if not args.keep:
                shutil.rmtree(workdir, ignore_errors=True)
    print(soak_report.table(results, args.jobs))


if __name__ == "__main__":
    with contextlib.suppress(KeyboardInterrupt):
        main()
