"""The benchmark's tables and the targets of the performance issue, PASS or FAIL.

One table, every set-up in both units: Python bytecodes per job (what is added to bare,
and that as a multiple of what the floor adds) and µs added per job.
"""

from __future__ import annotations

import typing as t

from common import BARE, Figures

API_ONLY = "API only (no SDK)"
SDK = "SDK, sampled"
UNSAMPLED = "SDK, unsampled (parentbased_always_off)"
FLOOR = "floor, sampled"
FLOOR_UNSAMPLED = "floor, unsampled"
STORE = "SDK, sampled + TraceStore"
METRICS = "SDK, sampled + SDK metrics"
AFTER = "after uninstrument()"
PEER = "peer: arq + opentelemetry-instrumentation-arq, sampled"
PEER_UNSAMPLED = "peer: arq + opentelemetry-instrumentation-arq, unsampled"

# Which floor each set-up of ours is held against.
FLOOR_OF = {SDK: FLOOR, STORE: FLOOR, METRICS: FLOOR, UNSAMPLED: FLOOR_UNSAMPLED}
# The peer's JSON names its set-ups in short.
PEER_NAMES = {BARE: "bare arq", "sampled": PEER, "unsampled": PEER_UNSAMPLED}

FLOOR_FACTOR = 1.10  # ours' added bytecodes at most this multiple of the floor's
API_ONLY_EXCESS = 0.07  # API only: bytecodes per enqueue within this of bare


def report(saq: dict[str, Figures], peer: dict[str, Figures] | None) -> None:
    rows = [("bare SAQ" if name == BARE else name, name, saq) for name in saq]
    if peer:
        rows += [(PEER_NAMES.get(name, name), name, peer) for name in peer]
    print(
        "| set-up | bytecodes per enqueue | added | ÷ floor's | bytecodes per job, end to end "
        "| added | ÷ floor's | µs added per enqueue | µs added per job, end to end |"
    )
    print("| --- | --- | --- | --- | --- | --- | --- | --- | --- |")
    for label, name, figures in rows:
        row = figures[name]
        base = figures[BARE]
        if name == BARE:
            print(
                f"| {label} | {row.enqueue_bytecodes:,.0f} | | | {row.e2e_bytecodes:,.0f} | | | "
                f"({row.enqueue_us:.0f} µs each) | ({row.e2e_us:.0f} µs each) |"
            )
            continue
        floor = saq.get(FLOOR_OF.get(name, ""))
        cells = []
        for unit in ("enqueue_bytecodes", "e2e_bytecodes"):
            added = getattr(row, unit) - getattr(base, unit)
            ratio = ""
            if floor is not None and figures is saq:
                ratio = f"x{added / (getattr(floor, unit) - getattr(base, unit)):.2f}"
            cells += [f"{getattr(row, unit):,.0f}", f"{added:+,.0f}", ratio]
        print(
            f"| {label} | {' | '.join(cells)} | {row.enqueue_us:+.0f} µs | {row.e2e_us:+.0f} µs |"
        )
    print()
    for met, label in targets(saq, peer):
        print(f"  [{'PASS' if met else 'FAIL'}] {label}")


def targets(saq: dict[str, Figures], peer: dict[str, Figures] | None) -> list[tuple[bool, str]]:
    """The issue's targets (and that uninstrument() leaves nothing), each met or not."""
    bare = saq[BARE]
    checks: list[tuple[bool, str]] = []
    for ours_name, floor_name, how in (
        (SDK, FLOOR, "sampled"),
        (UNSAMPLED, FLOOR_UNSAMPLED, "unsampled"),
    ):
        ours, floor = saq[ours_name], saq[floor_name]
        for unit, what in (("enqueue_bytecodes", "per enqueue"), ("e2e_bytecodes", "end to end")):
            ratio = _added(ours, bare, unit) / _added(floor, bare, unit)
            checks.append(
                (
                    ratio <= FLOOR_FACTOR,
                    f"{how}, {what}: ours' added bytecodes x{ratio:.2f} the floor's "
                    f"(target <= x{FLOOR_FACTOR:.2f})",
                )
            )
    if peer:
        for ours_name, peer_name, how in (
            (SDK, "sampled", "sampled"),
            (UNSAMPLED, "unsampled", "unsampled"),
        ):
            ours, theirs = saq[ours_name], peer[peer_name]
            for unit, what in (("enqueue_us", "per enqueue"), ("e2e_us", "per job end to end")):
                mine, peers = getattr(ours, unit), getattr(theirs, unit)
                checks.append(
                    (
                        mine <= peers,
                        f"{how}: ours adds {mine:+.0f} µs {what}, the peer {peers:+.0f} µs "
                        "(target: no more than the peer)",
                    )
                )
    else:
        checks.append((False, "the peer did not run: its targets are unchecked"))
    api = saq[API_ONLY].enqueue_bytecodes / bare.enqueue_bytecodes
    checks.append(
        (
            api <= 1 + API_ONLY_EXCESS,
            f"API only: x{api:.3f} bare's bytecodes per enqueue "
            f"(target <= x{1 + API_ONLY_EXCESS:.2f})",
        )
    )
    after = max(
        abs(saq[AFTER].enqueue_bytecodes / bare.enqueue_bytecodes - 1),
        abs(saq[AFTER].e2e_bytecodes / bare.e2e_bytecodes - 1),
    )
    checks.append(
        (after <= 0.01, f"after uninstrument(): bytecodes as bare, within {after:.1%} (<= 1%)")
    )
    return checks


def _added(figures: Figures, bare: Figures, unit: str) -> float:
    return t.cast(float, getattr(figures, unit) - getattr(bare, unit))
