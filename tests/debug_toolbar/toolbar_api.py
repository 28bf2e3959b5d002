"""Reading the panel the way a developer's browser does: the toolbar's JSON API."""

from __future__ import annotations

import time
import typing as t


class Client(t.Protocol):
    def get(self, url: str, **kwargs: t.Any) -> t.Any: ...


def request_id(client: Client, path: str) -> str:
    """The toolbar's id of the one recorded request to ``path``."""
    requests = client.get("/_debug_toolbar/api/requests").json()
    (found,) = [r["request_id"] for r in requests if r["metadata"].get("path") == path]
    return str(found)


def panel(client: Client, rid: str) -> dict[str, t.Any]:
    data = client.get(f"/_debug_toolbar/api/requests/{rid}").json()
    return t.cast(dict[str, t.Any], data["panel_data"]["SAQPanel"])


def wait_for_panel(
    client: Client, rid: str, done: t.Callable[[dict[str, t.Any]], bool], timeout: float = 15
) -> dict[str, t.Any]:
    deadline = time.monotonic() + timeout
    while True:
        stats = panel(client, rid)
        if done(stats):
            return stats
        if time.monotonic() > deadline:
            raise AssertionError(f"panel did not reach the expected state: {stats}")
        time.sleep(0.1)


def statuses(stats: dict[str, t.Any]) -> list[tuple[str, str]]:
    return [(job["function"], job["status"]) for job in stats["jobs"]]
