"""The toolbar as a local OTLP/HTTP trace receiver: workers in other processes export here.

A worker started with
``OTEL_EXPORTER_OTLP_TRACES_ENDPOINT=http://127.0.0.1:8000/_debug_toolbar/saq/v1/traces``
sends its spans with the SDK's own exporter; they go into the toolbar's TraceStore next to
the app's, so the panel and the trace pages show the attempts and every span the job
started. The web framework hands us the headers and the body as a stream; this module
answers as the OTLP/HTTP specification says:

- 413 when the body is over ``MAX_BODY_BYTES`` (announced or streamed, compressed or
  not): nothing more is kept, but the rest is read and thrown away up to
  ``DRAIN_CAP_BYTES`` before the answer goes out, as for every refusal;
- 415 for a content type other than protobuf or JSON, or an encoding other than gzip;
- 400 when the body cannot be decoded, or is gzip of more than
  ``gzip_body.MAX_MEMBERS`` members (a sender's gzip writes one);
- 200 otherwise, with ``partial_success.rejected_spans`` for spans not kept.

Spans are kept for traces the store already holds (the app's own requests) and for
traces that hold SAQ spans (``messaging.system`` "saq"): a worker's cron ticks, jobs a
script or another service enqueued. Other traffic of a sender is refused, so that it
cannot push the developer's jobs out of the bounded store; within it, the oldest traces
go first. Decoding runs in a worker thread, never on the event loop.

The logs receiver (``.../v1/logs``, see ``otlp_logs``) is this same code with another
``Signal``: only decoding and keeping differ.
"""

from __future__ import annotations

import logging
import threading
import typing as t

import anyio.to_thread

from opentelemetry.instrumentation.saq._attributes import MESSAGING_SYSTEM, MESSAGING_SYSTEM_SAQ
from opentelemetry.instrumentation.saq.debug_toolbar import error_pages
from opentelemetry.instrumentation.saq.debug_toolbar.pages.trace_view import PAGE_PREFIX
from opentelemetry.instrumentation.saq.debug_toolbar.panel import job_logs
from opentelemetry.instrumentation.saq.debug_toolbar.receivers import gzip_body, otlp
from opentelemetry.instrumentation.saq.debug_toolbar.receivers.pending_logs import pending_lines
from opentelemetry.instrumentation.saq.debug_toolbar.tracing import trace_store

if t.TYPE_CHECKING:
    from collections.abc import AsyncIterator, Iterable

    from opentelemetry.sdk.trace import ReadableSpan

    from opentelemetry.instrumentation.saq.trace_store import TraceStore

logger = logging.getLogger(__name__)

RECEIVER_PATH = f"{PAGE_PREFIX}/v1/traces"
LOGS_RECEIVER_PATH = f"{PAGE_PREFIX}/v1/logs"
MAX_BODY_BYTES = 4 * 1024 * 1024
"""The largest body accepted, as sent and once decompressed (the SDK sends 512 spans at most
per export, well under this)."""
DRAIN_CAP_BYTES = 16 * MAX_BODY_BYTES
"""A refused body is read to its end (and thrown away) up to this size before the answer
goes out: a client that sends its whole body before reading the answer (the SDK's
exporter, urllib, requests) would otherwise see the connection reset, not the 413, and
retry. A body announced larger than this is answered at once, and reading stops here:
that client sees the connection closed."""


class Answer(t.NamedTuple):
    status: int
    body: bytes
    media_type: str


class ReceiverCounts:
    """What the receiver took in and turned away since the app started."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.received_spans = 0
        """Spans kept in the TraceStore."""
        self.dropped_spans = 0
        """Spans not kept: traces the store does not hold, full traces, invalid ids, repeats
        (log records: also those that waited for their trace in vain, ``pending_logs``)."""
        self.refused_requests = 0
        """Exports answered 4xx (too large, unsupported, undecodable)."""

    def add(self, kept: int, dropped: int) -> None:
        with self._lock:
            self.received_spans += kept
            self.dropped_spans += dropped

    def refused(self) -> None:
        with self._lock:
            self.refused_requests += 1


counts = ReceiverCounts()
log_counts = ReceiverCounts()
"""The logs receiver's counts (its ``*_spans`` fields count log records)."""


class Signal(t.NamedTuple):
    """What differs between the trace and the logs receivers."""

    what: str
    """What an export holds, for error messages: "trace", "logs"."""
    keep: t.Callable[[bytes, str], tuple[int, int]]
    """Decode a body (decompressed) of a media type and keep what fits: (kept, dropped);
    raises ``otlp.UndecodableError``."""
    respond: t.Callable[[str, int, str], bytes]
    """The success answer: (media type, rejected, message) → body."""
    counts: ReceiverCounts


async def receive(
    headers: t.Mapping[str, str], body: AsyncIterator[bytes], signal: Signal | None = None
) -> Answer:
    """Answer one export, given its request's headers (a framework's case-insensitive
    mapping) and its body as a stream; never raises. Spans unless ``signal`` says."""
    signal = signal or TRACES
    stream = _Body(body)
    try:
        answer = await _receive(
            headers.get("content-type"),
            headers.get("content-encoding"),
            headers.get("content-length"),
            stream,
            signal,
        )
    except Exception:
        logger.warning("the SAQ toolbar's OTLP receiver failed on an export", exc_info=True)
        answer = _error(500, "internal error: see the application log")
    if answer.status >= 400:
        signal.counts.refused()
        await stream.drain(headers.get("content-length"))
    return answer


async def _receive(
    content_type: str | None,
    content_encoding: str | None,
    content_length: str | None,
    body: _Body,
    signal: Signal,
) -> Answer:
    media_type = (content_type or "").split(";")[0].strip().lower()
    if media_type not in otlp.MEDIA_TYPES:
        return _error(415, f"unsupported content type {media_type!r}: use {otlp.MEDIA_TYPES}")
    encoding = (content_encoding or "identity").strip().lower()
    if encoding not in ("gzip", "identity"):
        return _error(415, f"unsupported content encoding {encoding!r}: use gzip or none")
    if content_length is not None:
        try:
            announced = int(content_length)
        except ValueError:
            return _error(400, "bad Content-Length")
        if announced > MAX_BODY_BYTES:
            return _too_large()
    raw = await body.read(MAX_BODY_BYTES)
    if raw is None:
        return _too_large()
    try:
        kept, dropped = await anyio.to_thread.run_sync(
            _decode_and_keep, raw, media_type, encoding == "gzip", signal
        )
    except gzip_body.TooLargeError:
        return _too_large()
    except gzip_body.TooManyMembersError as exc:
        # 400, not 413: the body is not too large (a small one of many members is refused
        # too); its shape is, and 413 would tell the sender to send less. Neither is retried.
        return _error(400, f"{exc}: compress the export as one gzip member")
    except otlp.UndecodableError as exc:
        logger.warning("OTLP export not decodable: %s", exc)
        return _error(400, f"not an OTLP {signal.what} export: {exc}")
    signal.counts.add(kept, dropped)
    message = "records of traces the app neither started nor holds SAQ spans of, or over limits"
    message = message if dropped else ""
    return Answer(200, signal.respond(media_type, dropped, message), media_type)


class _Body:
    """A request's body as it streams in, and how much of it was read."""

    def __init__(self, chunks: AsyncIterator[bytes]) -> None:
        self._chunks = chunks
        self.size = 0

    async def read(self, limit: int) -> bytes | None:
        """The body, or None as soon as it grows past ``limit`` (nothing more is kept)."""
        kept: list[bytes] = []
        async for chunk in self._chunks:
            self.size += len(chunk)
            if self.size > limit:
                return None
            kept.append(chunk)
        return b"".join(kept)

    async def drain(self, content_length: str | None) -> None:
        """Read and throw away the rest, up to ``DRAIN_CAP_BYTES`` in all."""
        try:
            if content_length is not None and int(content_length) > DRAIN_CAP_BYTES:
                return
            async for chunk in self._chunks:
                self.size += len(chunk)
                if self.size > DRAIN_CAP_BYTES:
                    return
        except Exception:  # a client gone, a bad Content-Length: the answer goes out anyway
            logger.debug("a refused export's body could not be read to its end", exc_info=True)


def _decode_and_keep(raw: bytes, media_type: str, gzipped: bool, signal: Signal) -> tuple[int, int]:
    if gzipped:
        raw = gzip_body.gunzip(raw, MAX_BODY_BYTES)
    return signal.keep(raw, media_type)


def _keep_spans(raw: bytes, media_type: str) -> tuple[int, int]:
    store: TraceStore = trace_store()
    spans, invalid = otlp.readable_spans(otlp.decode(raw, media_type), shared=store.shared)
    kept = store.add_received(spans, start=_with_saq_spans(spans))
    # Log lines that came before these spans (a trace no request of the app started).
    sent = pending_lines().waiting({span.context.trace_id for span in spans if span.context})
    release_logs(trace_id for trace_id in sent if trace_id in store)
    return kept, len(spans) - kept + invalid


def release_logs(trace_ids: Iterable[int]) -> None:
    """Move the log lines waiting for these traces (now held) into the LogStore, and
    count them: kept there, or dropped (aged out, or over its bounds)."""
    kept, dropped = pending_lines().release(trace_ids, job_logs.log_store())
    log_counts.add(kept, dropped)


def _with_saq_spans(spans: list[ReadableSpan]) -> set[int]:
    """The ids of the traces some of these spans say are SAQ's."""
    return {
        span.context.trace_id
        for span in spans
        if span.context is not None
        and (span.attributes or {}).get(MESSAGING_SYSTEM) == MESSAGING_SYSTEM_SAQ
    }


TRACES = Signal("trace", _keep_spans, otlp.encode_response, counts)


def _too_large() -> Answer:
    return _error(413, f"body over {MAX_BODY_BYTES} bytes")


def _error(status: int, message: str) -> Answer:
    # The specification asks for a google.rpc.Status body; its protobuf is not part of
    # opentelemetry-proto, so it goes in its JSON shape whatever the request's format.
    return Answer(status, error_pages.json_body(status, message), error_pages.JSON)
