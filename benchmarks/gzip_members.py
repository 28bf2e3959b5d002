"""What a gzip body of many members costs the OTLP receivers' decoding (CPU seconds).

A hostile body is a run of 20-byte empty members: 4 MiB holds 209,715 of them. Prints the
time the receiver's ``gzip_body.gunzip`` takes as it is (refusing past ``MAX_MEMBERS``),
then with the cap lifted, at three sizes, to show the cost grows in proportion to the
body. Before issue 24, each member copied the rest of the body: 0.05 s, 0.69 s and
10.06 s at these sizes (quadratic).

    python benchmarks/gzip_members.py
"""

from __future__ import annotations

import gzip
import time

from opentelemetry.instrumentation.saq.debug_toolbar.receivers import gzip_body, receiver

MEMBER = gzip.compress(b"")
SIZES = (256 * 1024, 1024 * 1024, 4 * 1024 * 1024)


def cpu_seconds(body: bytes, max_members: int) -> tuple[float, str]:
    started = time.process_time()
    try:
        gzip_body.gunzip(body, receiver.MAX_BODY_BYTES, max_members)
        outcome = "decoded"
    except gzip_body.TooManyMembersError:
        outcome = "refused (too many members)"
    return time.process_time() - started, outcome


def main() -> None:
    for size in SIZES:
        body = MEMBER * (size // len(MEMBER))
        members = len(body) // len(MEMBER)
        capped, outcome = cpu_seconds(body, gzip_body.MAX_MEMBERS)
        lifted, _ = cpu_seconds(body, members)
        print(
            f"{size // 1024:>5} KiB, {members:>7} empty members: {capped:.4f} s, {outcome}; "
            f"all members read: {lifted:.3f} s"
        )


if __name__ == "__main__":
    main()
