"""The Jinja2 environment of the panel and the trace pages (templates/ in this package).

Autoescaping is on for every template: span names, queue names, job arguments and
exception messages come from user code and are shown as text, never as markup.
"""

from __future__ import annotations

import datetime as dt
import functools
import re
import typing as t

import jinja2
from markupsafe import Markup, escape

# A line may break after these, so a long path or key wraps between its parts, not inside.
_BREAK_AFTER = re.compile(r"([/.:_-])")


def ms(value: float | None) -> str:
    """'0 ms', '12.5 ms', '1.42 s': one unit per magnitude, zero always in ms."""
    if value is None:
        return "-"
    if value == 0:
        return "0 ms"
    if value < 1:
        return f"{value * 1000:.0f} µs"
    if value < 1000:
        return f"{value:.0f} ms" if float(value).is_integer() else f"{value:.1f} ms"
    return f"{value / 1000:.2f} s"


def duration(seconds: float) -> str:
    """'28 s', '4 min 5 s', '2 h 0 min': a whole-second span, two units at most."""
    whole = max(0, round(seconds))
    if whole < 60:
        return f"{whole} s"
    if whole < 3600:
        return f"{whole // 60} min {whole % 60} s"
    return f"{whole // 3600} h {whole % 3600 // 60} min"


def due(at_epoch: float, now_epoch: float) -> str:
    """'due in 28 s, at 14:03:12' (the server's local time), or 'due since 3 s, at …'."""
    clock = dt.datetime.fromtimestamp(at_epoch).strftime("%H:%M:%S")
    ahead = at_epoch - now_epoch
    when = f"in {duration(ahead)}" if ahead >= 0 else f"since {duration(-ahead)}"
    return f"due {when}, at {clock}"


def breakable(value: t.Any) -> Markup:
    """The text escaped, with line-break opportunities after ``/ . : _ -`` (``<wbr>``)."""
    parts = _BREAK_AFTER.split(str(value))
    return Markup("").join(
        escape(part) + (Markup("<wbr>") if _BREAK_AFTER.fullmatch(part) else "") for part in parts
    )


def plural(count: int, word: str, many: str | None = None) -> str:
    """'1 job', '2 jobs'; ``many`` for words that do not just take an s ('retries')."""
    return f"{count} {word if count == 1 else many or word + 's'}"


@functools.lru_cache(maxsize=1)
def environment() -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.PackageLoader("opentelemetry.instrumentation.saq.debug_toolbar"),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters.update(ms=ms, breakable=breakable)
    env.globals.update(plural=plural)
    return env


def render(template: str, **view: t.Any) -> str:
    return environment().get_template(template).render(**view)
