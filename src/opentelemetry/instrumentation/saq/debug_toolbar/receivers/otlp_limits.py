"""The SDK's span limits, applied to spans other processes send to the receiver.

A span made in this process is bounded by the SDK as it is recorded (``SpanLimits``:
attributes, events, links, value length). A span that arrives over OTLP was bounded by
its sender, with whatever limits the sender chose, or none: before it reaches the
TraceStore and the pages it is bounded again here, with the SDK's own classes
(``BoundedAttributes``, ``BoundedList``) and the SDK's own reading of the ``OTEL_*``
limit variables, so it keeps what an SDK span in this process would keep: the last
attributes, events and links within the counts, text values cut to the length limit.

One difference, because these bytes come from elsewhere: the SDK sets no limit on the
length of a value unless ``OTEL_ATTRIBUTE_VALUE_LENGTH_LIMIT`` (or
``OTEL_SPAN_ATTRIBUTE_VALUE_LENGTH_LIMIT``) says so; the receiver then cuts values at
``DEFAULT_VALUE_LENGTH`` characters. Names, status messages and resource attributes are
cut at the same length.
"""

from __future__ import annotations

import logging
import os
import typing as t

from opentelemetry.attributes import BoundedAttributes
from opentelemetry.sdk.environment_variables import (
    OTEL_ATTRIBUTE_VALUE_LENGTH_LIMIT,
)
from opentelemetry.sdk.trace import SpanLimits
from opentelemetry.sdk.util import BoundedList

logger = logging.getLogger(__name__)

_T = t.TypeVar("_T")

DEFAULT_VALUE_LENGTH = 8192
"""Characters kept of a text value when no ``OTEL_*_VALUE_LENGTH_LIMIT`` is set: room for
a stack trace, not for a 200 KB payload in a page."""

# The SDK's defaults, for when the OTEL_* variables cannot be read (the SDK would raise).
_SDK_DEFAULT_COUNT = 128


def span_limits() -> SpanLimits:
    """The limits an SDK ``TracerProvider`` made now would apply, with a value length limit
    of ``DEFAULT_VALUE_LENGTH`` when the environment sets none. Never raises: a malformed
    variable is logged and the SDK's defaults are used."""
    # The general length bounds what the span-specific one does not (events, links, the
    # resource, log records): it falls back to ours on its own, whatever the other says.
    general_set = OTEL_ATTRIBUTE_VALUE_LENGTH_LIMIT in os.environ
    try:
        return (
            SpanLimits() if general_set else SpanLimits(max_attribute_length=DEFAULT_VALUE_LENGTH)
        )
    except ValueError as exc:
        logger.warning("OTLP receiver: %s; using the SDK's default span limits", exc)
        return SpanLimits(
            *(_SDK_DEFAULT_COUNT,) * 6,
            max_attribute_length=DEFAULT_VALUE_LENGTH,
            max_span_attribute_length=DEFAULT_VALUE_LENGTH,
        )


def attributes(
    values: t.Mapping[str, t.Any], limit: int | None, length: int | None, dropped: int
) -> BoundedAttributes:
    """Attributes as the SDK bounds them (the last ``limit``, text cut to ``length``), with
    ``dropped`` added to those it drops: what the sender and ``last`` left out."""
    bounded = BoundedAttributes(limit, values, immutable=True, max_value_len=length)
    bounded.dropped += dropped
    return bounded


def items(found: t.Sequence[_T], limit: int | None, dropped: int) -> BoundedList[_T]:
    """Events or links as the SDK bounds them (the last ``limit``), with ``dropped`` added."""
    bounded = BoundedList.from_seq(limit, found)
    bounded.dropped += dropped
    return bounded


def last(found: t.Sequence[_T], limit: int | None) -> t.Sequence[_T]:
    """The last ``limit`` items (all with no limit), which the SDK would keep: taken before
    decoding, so that what it would drop is not even built (a hostile export may carry a
    hundred thousand attributes, and the SDK logs a warning for each one it drops)."""
    if limit is None or len(found) <= limit:
        return found
    return found[len(found) - limit :]


def text(value: str, length: int | None) -> str:
    return value if length is None else value[:length]
