"""Where ours spends bytecodes above the floor, function by function.

    python benchmarks/profile_bytecodes.py    # sampled and unsampled, enqueue and end to end
    python benchmarks/profile_bytecodes.py --top 40

Counts the Python bytecodes each function executes (its own, not its callees') per job,
for ours and for the floor under the same SDK set-up, and ranks the functions by what
ours executes more. Then, for each of our functions, what it costs with everything it
calls (the SDK and API included): what a change to that function can save.
Deterministic like the bytecode counts of overhead.py, so one run is enough. (Not named
profile.py: that would shadow the standard library module cProfile imports.)
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys
import types
import typing as t
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import Variant, redis_server
from overhead import connected_queue, end_to_end_run, enqueue_run, floor, ours, sdk_provider
from report import FLOOR, FLOOR_UNSAMPLED, SDK, UNSAMPLED
from saq.queue.redis import RedisQueue

import opentelemetry.instrumentation.saq as package

OURS = str(Path(package.__file__).resolve().parent)
FLOOR_FILE = str(Path(__file__).resolve().parent / "floor.py")
# How far up the stack to look for the function of ours a bytecode runs under (the SDK
# nests a handful of calls deep below our code), and the code that ends the search: a
# wrapper of ours calls SAQ's original, whose bytecodes are not ours.
DEPTH = 16
NOT_OURS = ("/saq/", "/redis/", "/asyncio/")


def where(code: types.CodeType) -> str:
    path = code.co_filename
    for marker in ("site-packages/", "src/", "benchmarks/"):
        if marker in path:
            path = path.rsplit(marker, 1)[1]
            break
    return f"{path.removesuffix('.py').replace('/', '.')}:{code.co_qualname}"


class Profile(t.NamedTuple):
    own: Counter[str]  # bytecodes per function, its own
    under: Counter[str]  # bytecodes per function of ours (or the floor's), callees included


async def profile(queue: RedisQueue, runner: t.Any, variant: Variant, jobs: int) -> Profile:
    own: Counter[types.CodeType] = Counter()
    under: Counter[types.CodeType] = Counter()

    def trace(frame: types.FrameType, event: str, arg: t.Any) -> t.Any:
        if event == "opcode":
            own[frame.f_code] += 1
            current: types.FrameType | None = frame
            for _ in range(DEPTH):
                if current is None:
                    break
                filename = current.f_code.co_filename
                if filename.startswith(OURS) or filename == FLOOR_FILE:
                    under[current.f_code] += 1
                    break
                if any(marker in filename for marker in NOT_OURS):
                    break
                current = current.f_back
        elif event == "call":
            frame.f_trace_lines = False
            frame.f_trace_opcodes = True
        return trace

    variant.instrument()
    try:
        await runner(queue, 20)
        sys.settrace(trace)
        try:
            await runner(queue, jobs)
        finally:
            sys.settrace(None)
    finally:
        variant.uninstrument()

    def per_job(counts: Counter[types.CodeType]) -> Counter[str]:
        named: Counter[str] = Counter()
        for code, count in counts.items():
            named[where(code)] += count
        return Counter({name: round(count / jobs) for name, count in named.items()})

    return Profile(per_job(own), per_job(under))


def show(title: str, mine: Profile, floor_: Profile, top: int) -> None:
    above = Counter(mine.own)
    above.subtract(floor_.own)
    total = sum(above.values())
    print(f"\n## {title}: ours {total:+,} bytecodes per job above the floor\n")
    print("| function | ours | floor | ours above |")
    print("| --- | --- | --- | --- |")
    for name, count in sorted(above.items(), key=lambda item: -abs(item[1]))[:top]:
        if count:
            print(f"| {name} | {mine.own[name]:,} | {floor_.own[name]:,} | {count:+,} |")
    print("\nwith callees (SDK and API included), per function of ours, then of the floor:\n")
    for name, count in mine.under.most_common(top):
        print(f"  {count:6,}  {name}")
    print(f"  {sum(mine.under.values()):6,}  all of ours")
    for name, count in floor_.under.most_common():
        print(f"  {count:6,}  {name}")
    print(f"  {sum(floor_.under.values()):6,}  all of the floor")


async def main(jobs: int, top: int) -> None:
    logging.getLogger("saq").setLevel(logging.ERROR)
    pairs = [
        ("sampled", ours(SDK, tracer_provider=sdk_provider(sampled=True)), floor(FLOOR, True)),
        (
            "unsampled",
            ours(UNSAMPLED, tracer_provider=sdk_provider(sampled=False)),
            floor(FLOOR_UNSAMPLED, False),
        ),
    ]
    with redis_server() as url:
        async with connected_queue(url) as queue:
            for how, mine, theirs in pairs:
                for what, runner in (("enqueue", enqueue_run), ("end to end", end_to_end_run)):
                    show(
                        f"{how}, {what}",
                        await profile(queue, runner, mine, jobs),
                        await profile(queue, runner, theirs, jobs),
                        top,
                    )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--jobs", type=int, default=200, help="jobs per count")
    parser.add_argument("--top", type=int, default=25, help="functions to list")
    arguments = parser.parse_args()
    asyncio.run(main(arguments.jobs, arguments.top))
