"""Tracebacks as the trace page shows them: the exception first, library frames folded."""

from __future__ import annotations

import asyncio
import json
import traceback
import uuid

import httpx
import pytest
from saq.queue.redis import RedisQueue

from opentelemetry.instrumentation.saq.debug_toolbar.pages import tracebacks
from tests.browser import browser_page, serving
from tests.debug_toolbar.apps import litestar_app
from tests.debug_toolbar.test_trace_pages import kinds, wait_for_trace
from tests.debug_toolbar.toolbar_api import panel, request_id

# As Python 3.11 prints a raised ExceptionGroup.
GROUP = """\
  + Exception Group Traceback (most recent call last):
  |   File "/app/jobs.py", line 3, in <module>
  |     raise ExceptionGroup("many", [ValueError("a"), KeyError("b")])
  | ExceptionGroup: many (2 sub-exceptions)
  +-+---------------- 1 ----------------
    | ValueError: a
    +---------------- 2 ----------------
    | KeyError: 'b'
    +------------------------------------
"""


async def _job() -> None:
    raise ConnectionError("<b>upstream</b> gone\nsecond line")


def formatted(error: BaseException) -> str:
    return "".join(traceback.format_exception(error))


def raised_through_asyncio() -> BaseException:
    try:
        asyncio.run(_job())
    except ConnectionError as error:
        return error
    raise AssertionError("not raised")


def test_the_exception_comes_first_and_library_frames_are_grouped() -> None:
    text = formatted(raised_through_asyncio())
    parsed = tracebacks.parse(text)

    assert parsed is not None
    assert parsed.exception == "ConnectionError: <b>upstream</b> gone\nsecond line"
    (part,) = parsed.parts
    assert part.heading == tracebacks.HEADING
    kinds_of = [(bool(group.library), len(group.frames)) for group in part.groups]
    # This test's frame, asyncio's (runners, base_events), and the job's, which raised.
    assert kinds_of[0] == (False, 1) and kinds_of[-1] == (False, 1), kinds_of
    assert [group.library for group in part.groups if group.library] == [["asyncio"]]
    assert "in _job" in part.groups[-1].text
    # Nothing is lost: every line of the text is in one part or another.
    shown = [part.heading, *(group.text for group in part.groups), part.exception]
    assert "\n".join(shown) == text.rstrip()


def test_a_chain_keeps_every_exception_and_shows_the_last_first() -> None:
    try:
        try:
            json.loads("{")
        except ValueError as error:
            raise RuntimeError("config unreadable") from error
    except RuntimeError as error:
        parsed = tracebacks.parse(formatted(error))

    assert parsed is not None
    assert parsed.exception == "RuntimeError: config unreadable"
    first, second = parsed.parts
    assert first.exception.startswith("json.decoder.JSONDecodeError")
    assert {name for group in first.groups for name in group.library} == {"json"}
    assert second.heading.startswith("The above exception was the direct cause")


def test_text_of_another_shape_is_left_as_it_came() -> None:
    assert tracebacks.parse(GROUP) is None
    assert tracebacks.parse("Traceback (most recent call last):\n  oops") is None
    assert tracebacks.parse("") is None
    # A remote line's exception may be its type and message only.
    only = tracebacks.parse("KeyError: 'row'")
    assert only is not None and only.exception == "KeyError: 'row'" and not only.parts[0].groups


@pytest.mark.slow
@pytest.mark.usefixtures("instrument")
def test_a_failed_attempt_shows_its_exception_first_and_folds_saq_and_asyncio(
    redis_url: str,
) -> None:
    queue = RedisQueue.from_url(redis_url, name=f"tb-{uuid.uuid4().hex[:8]}")
    with serving(litestar_app(queue)) as base, httpx.Client(base_url=base) as client:
        client.get("/signup")
        trace_id = panel(client, request_id(client, "/signup"))["trace_id"]
        wait_for_trace(client, trace_id, lambda v: len(kinds(v, "flaky_report")) == 5)
        with browser_page() as page:
            page.goto(f"{base}/_debug_toolbar/saq/{trace_id}")
            failed = page.locator('li.row[data-kind="process"][data-function="flaky_report"]')
            failed.first.locator(".label").click()
            box = failed.first.locator(".detail .stacktrace")
            box.wait_for(state="visible")
            first_line = box.inner_text().split("\n")[0]
            folded = box.locator("details.tb-library")
            libraries = folded.first.get_attribute("data-library")
            library_frames_seen = folded.first.locator(".tb-frames").is_visible()
            user_frame_seen = box.locator(".tb-user", has_text="in flaky_report").is_visible()
            shown, final = box.bounding_box(), box.locator(".tb-final").bounding_box()
            folded.first.locator("summary").click()
            unfolded = folded.first.locator(".tb-frames").inner_text()

    assert first_line == "ConnectionError: <script>alert('report')</script> server gone"
    assert set(str(libraries).split()) >= {"saq", "asyncio"}
    assert not library_frames_seen and user_frame_seen
    assert shown is not None and final is not None
    assert shown["y"] <= final["y"] and final["y"] + final["height"] <= shown["y"] + shown["height"]
    assert "saq/worker.py" in unfolded
