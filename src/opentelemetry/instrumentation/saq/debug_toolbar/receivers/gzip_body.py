"""Gzip request bodies, inflated within limits, in time in proportion to their size.

gzip allows a body of several members (what ``cat a.gz b.gz`` makes): every member is
read, and they count together against the size limit. Each member's input goes to zlib
in steps that double from 64 bytes, as memoryview slices: zlib copies the input it did
not use at a member's end (``unused_data``), so handing a member the rest of the body
made a body of many small members cost time in the square of its size (a 4 MiB body of
20-byte empty members: 10 s of CPU).
"""

from __future__ import annotations

import zlib

from opentelemetry.instrumentation.saq.debug_toolbar.receivers.otlp import UndecodableError


class TooLargeError(ValueError):
    """The body, once decompressed, is larger than allowed."""


class TooManyMembersError(ValueError):
    """The gzip body has more members than allowed."""


MAX_MEMBERS = 64
"""Members of a gzip body read at most. A sender's gzip writes one (the SDK's exporter,
the Collector); a few come from ``cat a.gz b.gz``. Each costs a decompressor, and 20
bytes make an empty one: without a cap, a 4 MiB body holds 200,000 of them."""

# The step bounds what zlib reads and copies for a member by twice the member's size.
_FIRST_STEP = 64
_LAST_STEP = 1024 * 1024


def gunzip(body: bytes, limit: int, max_members: int = MAX_MEMBERS) -> bytes:
    """Decompress a gzip body, every member of it, refusing to inflate past ``limit`` bytes
    in all (a zip bomb, also one hidden behind an empty first member) or to read more than
    ``max_members`` members."""
    view = memoryview(body)
    out = bytearray()
    start = 0
    try:
        for _ in range(max_members):
            start = _inflate_member(view, start, out, limit)
            if start == len(view):
                return bytes(out)
    except zlib.error as exc:
        raise UndecodableError(f"not gzip: {exc}") from None
    raise TooManyMembersError(f"gzip body of more than {max_members} members")


def _inflate_member(view: memoryview, start: int, out: bytearray, limit: int) -> int:
    """Inflate the member at ``start`` into ``out``; returns where the next one starts."""
    inflater = zlib.decompressobj(wbits=31)
    step = _FIRST_STEP
    while not inflater.eof:
        if start == len(view):
            raise UndecodableError("truncated gzip body")
        given = view[start : start + step]  # a view: nothing copied
        # At least 1: zlib reads a max_length of 0 as "no limit".
        out += inflater.decompress(given, limit + 1 - len(out))
        if len(out) > limit or inflater.unconsumed_tail:
            raise TooLargeError(f"decompressed body over {limit} bytes")
        start += len(given) - len(inflater.unused_data)
        step = min(2 * step, _LAST_STEP)
    return start
